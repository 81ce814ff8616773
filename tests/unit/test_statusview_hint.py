"""The first lines of ``relayer run``'s status view: the explorer's URL and one ``relayer send`` that works on this
devnet as configured (issue 17: the newcomer's first ten minutes). Rendering logic only: a fake daemon, a manifest
written to a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from relayer.cli import send
from relayer.cli.send import config_flags, relayer_program
from relayer.cli.statusview import StatusView, send_hint


def evm(name: str, *, accounts: bool = True, recipient: bool = True) -> dict[str, Any]:
    return {"name": name, "family": "evm",
            "accounts": [{"address": "0x90F79bf6EB2c4f870365E785982E1f101E93b906"}] if accounts else [],
            "contracts": {"test_recipient": "0x" + "11" * 20} if recipient else {}}


def settings_of(*chains: tuple[str, str], api: str = "http://127.0.0.1:8900") -> Any:
    return SimpleNamespace(chains={name: SimpleNamespace(family=family, domain=i + 1)
                                   for i, (name, family) in enumerate(chains)},
                           api=SimpleNamespace(url=api))


DEFAULT = settings_of(("l1", "evm"), ("rollup_a", "evm"), ("rollup_b", "evm"), ("cosmos", "cosmos"),
                      ("solana", "solana"))


def write_manifest(directory: Path, *chains: dict[str, Any]) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "devnet.json").write_text(json.dumps({"chains": {c["name"]: c for c in chains}}))
    return str(directory)


@pytest.fixture
def in_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory holds the default devnet (``.devnet``), as under ``make run``."""
    monkeypatch.chdir(tmp_path)
    write_manifest(tmp_path / ".devnet", evm("l1"), evm("rollup_a"), evm("rollup_b"),
                   {"name": "cosmos", "family": "cosmos", "accounts": [{"address": "cosmos1..."}]})
    return tmp_path


def test_the_default_devnet_gets_a_message_from_l1_to_rollup_a_with_no_flags(in_repo: Path) -> None:
    hint = send_hint(DEFAULT, devnet=".devnet", config=None, role="all", program="relayer")
    assert hint == "relayer send --from l1 --to rollup_a --body hello --wait"
    assert send_hint(DEFAULT, devnet=".devnet", config=".devnet/relayer.toml", role="all",
                     program="relayer") == hint  # the devnet's own config: no -c


def test_another_devnet_or_config_is_named_in_the_command(in_repo: Path) -> None:
    other = write_manifest(in_repo / "dev 2", evm("l1"), evm("rollup_a"))
    assert send_hint(DEFAULT, devnet=other, config=None, role="all", program="relayer") == (
        f"relayer send --from l1 --to rollup_a --body hello --wait --devnet '{other}'")
    assert send_hint(DEFAULT, devnet=".devnet", config="ops/relayer.toml", role="all", program="relayer") == (
        "relayer send --from l1 --to rollup_a --body hello --wait -c ops/relayer.toml")
    assert config_flags(other, f"{other}/relayer.toml") == ["--devnet", other]


def test_without_l1_and_rollup_a_the_first_two_evm_chains_are_used(tmp_path: Path) -> None:
    devnet = write_manifest(tmp_path / "route", evm("a", recipient=False), evm("b"), evm("c"),
                            {"name": "solana", "family": "solana", "accounts": [{"address": "So1..."}]})
    settings = settings_of(("solana", "solana"), ("a", "evm"), ("b", "evm"), ("c", "evm"))
    assert send_hint(settings, devnet=devnet, config=None, role="all", program="relayer") == (
        f"relayer send --from a --to b --body hello --wait --devnet {devnet}")
    # a destination needs a TestRecipient, an origin a funded account: b cannot send, so b -> a is not offered
    devnet = write_manifest(tmp_path / "two", evm("a", recipient=False), evm("b", accounts=False))
    assert send_hint(settings_of(("a", "evm"), ("b", "evm")), devnet=devnet, config=None, role="all",
                     program="relayer") == f"relayer send --from a --to b --body hello --wait --devnet {devnet}"


def test_a_daemon_that_does_not_deliver_offers_no_wait(in_repo: Path) -> None:
    assert send_hint(DEFAULT, devnet=".devnet", config=None, role="validator", program="relayer") == (
        "relayer send --from l1 --to rollup_a --body hello")


def test_no_devnet_or_no_evm_pair_means_no_send_line(tmp_path: Path) -> None:
    assert send_hint(DEFAULT, devnet=str(tmp_path / "none"), config=None, role="all") is None
    lonely = write_manifest(tmp_path / "one", evm("l1"))
    assert send_hint(DEFAULT, devnet=lonely, config=None, role="all") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "devnet.json").write_text("{not json")
    assert send_hint(DEFAULT, devnet=str(tmp_path / "bad"), config=None, role="all") is None


def test_the_program_is_named_as_the_user_can_run_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    script = tmp_path / ".venv" / "bin" / "relayer"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(send.shutil, "which", lambda name: None)  # make run, no activated venv
    assert relayer_program(".venv/bin/relayer") == ".venv/bin/relayer"
    monkeypatch.setattr(send.shutil, "which", lambda name: str(script))  # the venv is active
    assert relayer_program(str(script)) == "relayer"
    assert relayer_program("/somewhere/relayer/cli/__main__.py") == "relayer"  # python -m relayer.cli


class Aio:
    async def counts_by_state(self) -> dict[tuple[int, str], int]:
        return {}

    async def reasons(self) -> dict[str, int]:
        return {}


def fake_daemon(settings: Any) -> Any:
    return SimpleNamespace(settings=settings, chain_status={}, indexers={}, attesters={},
                           store=SimpleNamespace(aio=Aio()), role="all")


async def test_the_first_two_lines_are_the_explorer_and_the_command_before_the_tables() -> None:
    view = StatusView(fake_daemon(settings_of(("l1", "evm"), ("rollup_a", "evm"), api="http://127.0.0.1:8900/")),
                      log_file=None, send_hint="relayer send --from l1 --to rollup_a --body hello --wait")
    console = Console(width=120, record=True)
    console.print(await view.render())
    lines = console.export_text().splitlines()
    assert lines[:2] == ["explorer: http://127.0.0.1:8900/explorer",
                         "try:      relayer send --from l1 --to rollup_a --body hello --wait"]
    assert lines[2].strip() == "chains" and any("messages by state" in line for line in lines[3:])


async def test_without_a_command_the_explorer_alone_comes_first() -> None:
    view = StatusView(fake_daemon(settings_of(("l1", "evm"))), log_file=None)
    console = Console(width=120, record=True)
    console.print(await view.render())
    lines = console.export_text().splitlines()
    assert lines[0] == "explorer: http://127.0.0.1:8900/explorer" and lines[1].strip() == "chains"
