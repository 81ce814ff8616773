"""The ``xchain`` pytest plugin (entry point ``pytest11``: ``xchain = relayer.testing.plugin``), loaded by pytest
whenever the package is installed. It does nothing until a test asks for one of its fixtures:

- ``xchain_session`` (session): the devnet of the families the session's tests ask for, the daemon, the baseline;
- ``xchain`` (function): an ``XChain`` on it, from the baseline (reset first if an earlier test used it);
- ``xchain_client`` (function): a ``RoutingClient`` on the daemon's API.

See ``relayer.testing`` for the design. Options: ``--xchain-reset=each|manual``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest

from relayer.testing.chains import FAMILIES, XChainError

if TYPE_CHECKING:
    from relayer.testing.session import XChainSession
    from relayer.testing.xchain import XChain
    from router.client import RoutingClient

MARKER = "xchain"
LOG_LINES = 50
_FAMILIES = pytest.StashKey[tuple[str, ...]]()
_SESSION = pytest.StashKey["XChainSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xchain", "cross-chain devnet (relayer.testing)")
    group.addoption("--xchain-reset", choices=("each", "manual"), default="each",
                    help="each (default): every test using xchain starts from the session's baseline (reset before "
                         "it if an earlier test used the devnet); manual: only xchain.reset() resets")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(families=[...]): the chain families the test needs (evm, solana, "
                                       "cosmos); the session's devnet has those of every collected test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[_FAMILIES] = session_families(items)


def session_families(items: list[pytest.Item]) -> tuple[str, ...]:
    """The union of the ``xchain`` markers' families over ``items``, evm always included, in the devnet's order."""
    wanted = {"evm"}
    for item in items:
        for mark in item.iter_markers(MARKER):
            wanted.update(marker_families(mark))
    return tuple(f for f in FAMILIES if f in wanted)


def marker_families(mark: pytest.Mark) -> list[str]:
    families = mark.kwargs.get("families", mark.args[0] if mark.args else ["evm"])
    names = [families] if isinstance(families, str) else list(families)
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise XChainError(f"@pytest.mark.xchain: unknown families {unknown}; known: {', '.join(FAMILIES)}")
    return names


@pytest.fixture(scope="session")
def xchain_session(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[XChainSession]:
    """The session's devnet and daemon, up once (per pytest-xdist worker), down at the end."""
    from relayer.testing.session import XChainSession

    session = XChainSession(tmp_path_factory.mktemp("xchain"), request.config.stash.get(_FAMILIES, ("evm",)))
    session.start()
    request.config.stash[_SESSION] = session
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def xchain(xchain_session: XChainSession, request: pytest.FixtureRequest) -> XChain:
    """The devnet for this test, from the baseline (see ``--xchain-reset``)."""
    from relayer.testing.xchain import XChain

    for mark in request.node.iter_markers(MARKER):
        missing = set(marker_families(mark)) - set(xchain_session.families)
        if missing:
            raise XChainError(f"the session's devnet has {xchain_session.families}, not {sorted(missing)}")
    if xchain_session.dirty and request.config.getoption("--xchain-reset") == "each":
        xchain_session.reset()
    xchain_session.dirty = True
    return XChain(xchain_session)


@pytest.fixture
def xchain_client(xchain: XChain) -> Iterator[RoutingClient]:
    """The typed routing client on the daemon's API."""
    from router.client import RoutingClient

    with RoutingClient(xchain.api_url) as client:
        yield client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                              pytest.TestReport]:
    """A failed test that used ``xchain`` gets two report sections: its messages (as ``relayer messages show``
    prints them, with their timelines) and the daemon's last log lines."""
    report = yield
    if report.failed and report.when == "call" and isinstance(item, pytest.Function) and "xchain" in item.funcargs:
        from relayer.testing.xchain import XChain

        xchain = item.funcargs["xchain"]
        if isinstance(xchain, XChain):
            report.sections.append(("xchain messages", _messages_section(xchain)))
            report.sections.append((f"xchain daemon log (last {LOG_LINES} lines)", xchain.daemon_log(LOG_LINES)))
    return report


def _messages_section(xchain: XChain) -> str:
    if not xchain.sent:
        return "(the test sent no message through the xchain fixture)"
    try:
        return xchain.report()
    except Exception as exc:  # noqa: BLE001 - the report must not hide the test's own failure
        return f"(could not read the messages: {type(exc).__name__}: {exc})"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None:
        terminalreporter.section("xchain")
        terminalreporter.write_line(session.timings.summary(session.families))
