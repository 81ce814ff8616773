"""Helpers for the lane tests on non-EVM origins (``test_solana_lanes.py``, ``test_cosmos_lanes.py``): one daemon
config and store, a daemon that is killed and one restarted on the same config, the intents' rows read from that
store, and the intents posted to the routing API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from devnets.devnet import Devnet
from tests.integration.harness import DaemonProcess, free_port_block, wait_for, write_daemon_config

LANE_ENV = {"RELAYER__ROUTER__LANE_LEASE_S": "3", "RELAYER__ROUTER__INTENTS_PER_S": "1000"}


def lane_config(devnet: Devnet, directory: Path) -> Path:
    return write_daemon_config(devnet, directory, api_port=free_port_block(1))


def lane_daemon(config: Path, *, failpoints: Path | None = None) -> DaemonProcess:
    """A daemon on ``config`` (not started); with ``failpoints``, it reads its failpoints from that file."""
    env = dict(LANE_ENV)
    if failpoints is not None:
        env["RELAYER_FAILPOINTS"] = f"@{failpoints}"
    return DaemonProcess(config, config.parent / "d.log", instance="lanes", env=env)


def boot(daemon: DaemonProcess) -> None:
    daemon.start(wait=False)
    wait_for(daemon.healthy, 150, f"the daemon to serve (log {daemon.log})")
    wait_for(lambda: httpx.get(f"{daemon.api_url}/v1/chains").status_code == 200, 60, "capacity to be sampled")


def intent_rows(directory: Path, ids: list[str]) -> dict[str, dict[str, Any]]:
    engine = create_engine(f"sqlite:///{directory / 'relayer.db'}")
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT id, status, tx_hash, raw_tx, nonce, operator, recipient, message_id, "
                                      "reason FROM intents")).mappings().all()
        return {r["id"]: dict(r) for r in found if r["id"] in ids}
    finally:
        engine.dispose()


def post_intents(daemon: DaemonProcess, intents: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{daemon.api_url}/v1/intents", json={"intents": intents}, timeout=30)


def dead_transactions(log: Path) -> set[str]:
    """The transactions the daemon's lanes found dead (``intent_tx_dead`` in its log)."""
    return {json.loads(line).get("tx") for line in log.read_text().splitlines() if '"intent_tx_dead"' in line}
