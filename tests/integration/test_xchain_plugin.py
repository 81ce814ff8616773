"""The ``xchain`` pytest plugin (``relayer.testing``) used as an outside dApp suite uses it: the example suite
(tests/xchain_plugin/example_app.py: only the ``xchain`` and ``xchain_client`` fixtures and the ``xchain`` marker) runs
in a pytest session of its own, in a temporary directory, with the plugin loaded from its ``pytest11`` entry point.

Its devnet is the only one this file brings up at a time: the second session runs after the first (two sessions at
once would be two devnets on this machine), and the ports' cross-process reservation is checked concurrently on its
own (two live processes reserving blocks). Measured and printed: the first session start, the resets (median), the
whole example suite."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "xchain_plugin"
EXAMPLE = EXAMPLES / "example_app.py"  # EVM chains: messages, tokens, resets, deploys, the routing client, a failure
FAMILIES_EXAMPLE = EXAMPLES / "example_families.py"  # TST to Cosmos and Solana, and resets
SUITE_TIMEOUT_S = 1200.0
RESET_BOUND_S = 5.0  # a loose bound (a loaded CI machine); the goal, under 1 s, is what the summary prints
SUMMARY = re.compile(r"xchain: families (?P<families>[\w, ]+); session start (?P<start>[\d.]+) s \(devnet up "
                     r"(?P<up>[\d.]+) s, first daemon start (?P<daemon>[\d.]+) s, snapshot and restart "
                     r"(?P<baseline>[\d.]+) s\); (?P<resets>\d+) resets: median (?P<median>[\d.]+) s")


@dataclass
class SuiteRun:
    output: str
    returncode: int
    wall_s: float
    ports: dict[str, Any]

    def outcomes(self) -> dict[str, int]:
        last = self.output.strip().splitlines()[-1]
        return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", last)}

    def section(self, title: str) -> str:
        """The text of a report section (``---- title ----``) up to the next separator line."""
        found = re.search(rf"^-+ {re.escape(title)} -+$\n(.*?)(?=^[-=_]{{5,}})", self.output, re.MULTILINE | re.DOTALL)
        assert found, f"no section {title!r} in the output:\n{self.output[-5000:]}"
        return found.group(1)


def run_example_suite(directory: Path, example: Path = EXAMPLE, *pytest_args: str) -> SuiteRun:
    """``pytest EXAMPLE`` in ``directory`` (a rootdir of its own: no project conftest, no ``-p``: the plugin comes
    from its entry point); its ports written by ``test_session_ports``."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(example, directory / example.name)
    (directory / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    ports = directory / "ports.json"
    env = {**os.environ, "XCHAIN_PORTS_FILE": str(ports)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", example.name, "-p", "no:cacheprovider", "-s",
                           "-o", "console_output_style=classic", *pytest_args],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S, check=False)
    wall = time.monotonic() - started
    return SuiteRun(done.stdout + done.stderr, done.returncode, wall,
                    json.loads(ports.read_text()) if ports.exists() else {})


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    return run_example_suite(tmp_path_factory.mktemp("xchain-suite"))


def _ports(ports: dict[str, Any]) -> set[int]:
    return {int(url.rsplit(":", 1)[1]) for url in [*ports["rpc"], ports["api"]]}


def test_the_plugin_is_a_pytest11_entry_point() -> None:
    """Looked up as pytest (pluggy) does: over every installed distribution (a stale ``*.egg-info`` in the source
    tree may shadow the installed one for ``entry_points()``, never for pytest)."""
    from importlib.metadata import distributions

    found = {(e.name, e.value) for d in distributions() for e in d.entry_points if e.group == "pytest11"}
    assert ("xchain", "relayer.testing.plugin") in found


def test_live_processes_never_get_the_same_ports() -> None:
    """Two processes reserving port blocks at the same time (as two sessions or two xdist workers do) get disjoint
    ones: the reservation is across processes, not just a free-port check."""
    code = ("import json, sys; from relayer.testing.ports import free_port_block; "
            "print(json.dumps([free_port_block(21) for _ in range(25)]), flush=True); sys.stdin.read()")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        blocks = [json.loads(p.stdout.readline()) for p in procs]  # type: ignore[union-attr]
    finally:
        for p in procs:
            p.communicate("", timeout=30)
    first, second = ({port for base in bases for port in range(base, base + 21)} for bases in blocks)
    assert len(first) == len(second) == 25 * 21
    assert not first & second


@pytest.mark.parametrize(("types", "values"), [
    (["uint256", "address", "bool"], [7, "0x" + "ab" * 20, True]),
    (["string", "bytes", "int8", "bytes4"], ["hello", b"\x01" * 40, -128, b"\xde\xad\xbe\xef"]),
    (["uint256[]", "address[2]", "string[]"], [[1, 2, 3], ["0x" + "11" * 20, "0x" + "22" * 20], ["a", "bc" * 40]]),
    (["uint256[2][]", "bytes[]", "string"], [[[1, 2], [3, 4]], [b"", b"x" * 33], ""]),
])
def test_deploy_encodes_constructor_arguments_as_eth_abi_does(types: list[str], values: list[Any]) -> None:
    from eth_abi import encode

    from relayer.testing.abi_args import encode_args

    assert encode_args(types, values) == encode(types, values)


def test_example_suite_passes_but_the_deliberate_failure(suite: SuiteRun) -> None:
    assert suite.outcomes() == {"passed": 7, "failed": 1}, suite.output[-5000:]
    assert "FAILED example_app.py::test_fails_on_purpose" in suite.output
    loaded = re.search(r"^plugins: .*xchain-relayer", suite.output, re.MULTILINE)
    assert loaded, "the plugin did not load from its entry point"


def test_failure_report_has_the_message_timeline_and_the_daemon_log(suite: SuiteRun) -> None:
    messages = suite.section("xchain messages")
    assert re.search(r"^message 0x[0-9a-f]{64} \(message l1 -> rollup_b\)$", messages, re.MULTILINE), messages
    # as `relayer messages show ID` prints it: every field right-aligned on 18 columns
    for field in ("id", "status", "origin", "destination", "origin_tx", "delivery_tx"):
        assert re.search(rf"^ *{field}: \S", messages, re.MULTILINE), (field, messages)
    # the test failed once the chain showed the delivery: the daemon may not have recorded it yet
    assert re.search(r"^ {12}status: (submitted|delivered)$", messages, re.MULTILINE), messages
    steps = re.findall(r"^  \S+  (dispatched|attested|submitted|delivered) ", messages, re.MULTILINE)
    assert steps[:3] == ["dispatched", "attested", "submitted"], messages
    log = suite.section("xchain daemon log (last 50 lines)").strip().splitlines()
    assert len(log) == 50, log
    assert sum('"event": ' in line for line in log) >= 40, log


def test_timings_are_measured_and_printed(suite: SuiteRun) -> None:
    found = SUMMARY.search(suite.output)
    assert found, suite.output[-3000:]
    explicit = [float(t) for line in re.findall(r"^.*XCHAIN_RESETS?_S (.*)$", suite.output, re.MULTILINE)
                for t in line.split()]
    median = float(found["median"])
    print(f"\nxchain plugin: first session start {found['start']} s (devnet up {found['up']} s, first daemon start "
          f"{found['daemon']} s, snapshot and restart {found['baseline']} s); {found['resets']} resets, median "
          f"{median:.2f} s; explicit back-to-back resets {explicit} (median {statistics.median(explicit):.2f} s); "
          f"whole example suite {suite.wall_s:.1f} s")
    assert found["families"] == "evm"
    assert int(found["resets"]) >= 6 and len(explicit) == 6
    assert median < RESET_BOUND_S


def test_a_second_session_gets_ports_of_its_own(suite: SuiteRun, tmp_path: Path) -> None:
    """One session after the other (one devnet at a time on this machine): each on its own free ports."""
    second = run_example_suite(tmp_path / "second", EXAMPLE, "-k", "session_ports or delivered_once")
    assert second.outcomes() == {"passed": 2}, second.output[-5000:]
    assert suite.ports and second.ports and suite.ports["pid"] != second.ports["pid"]
    assert not _ports(suite.ports) & _ports(second.ports), (suite.ports, second.ports)


def test_resets_across_chain_families(tmp_path: Path) -> None:
    """A session with Cosmos and Solana too: their chains go back with the anvils and the store (their devnets
    revert in place, ``xchain_revert``: no restart), and the relayer delivers to them after a reset."""
    run = run_example_suite(tmp_path / "families", FAMILIES_EXAMPLE)
    assert run.outcomes() == {"passed": 2}, run.output[-5000:]
    found = SUMMARY.search(run.output)
    assert found and found["families"] == "evm, cosmos, solana", run.output[-3000:]
    print(f"\nxchain plugin, families evm, cosmos, solana: session start {found['start']} s (devnet up {found['up']} "
          f"s); {found['resets']} resets, median {found['median']} s; suite {run.wall_s:.1f} s")
