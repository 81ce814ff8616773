"""relayer.route_limits on the devnet (issue 15, relayer-side limits): a limited route's messages are spread over
delivery transactions at the configured rate, each delivered once. (Its own module: one daemon at a time on the
session devnet.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.harness import DaemonProcess, free_port_block, wait_for, write_daemon_config
from tests.integration.test_message_filters import _message, _metric, _processed_on_rollup_a

pytestmark = pytest.mark.integration

RELAY_TIMEOUT_S = 90.0


def _status(daemon: DaemonProcess, mid: bytes) -> tuple[str, str | None] | None:
    found = _message(daemon, mid)
    return None if found is None else (found["status"], found["substate"])


def test_a_route_limit_spreads_deliveries_and_loses_none(devnet, tmp_path) -> None:
    """relayer.route_limits: l1 -> rollup_a at 1 message a second, 1 at once. Four messages dispatched in one
    transaction are each delivered once (read from the chain), in at least three delivery transactions of this daemon
    (the limit held the others back: rate_limited, no attempt spent), where without a limit one batch would carry
    them all."""
    path = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    path.write_text(path.read_text() + '\n[[relayer.route_limits]]\norigin = "l1"\ndestination = "rollup_a"\n'
                                       'messages_per_s = 1.0\nburst = 1\n')
    daemon = DaemonProcess(path, tmp_path / "daemon.log", instance="route-limits").start()
    try:
        ids = _send_many(devnet, 4)
        wait_for(lambda: all(_status(daemon, i) == ("delivered", None) for i in ids), RELAY_TIMEOUT_S,
                 "the four messages delivered")
        records = [_message(daemon, i) for i in ids]  # type: ignore[arg-type]
        assert all(_processed_on_rollup_a(devnet, i) for i in ids)
        assert _metric(daemon, 'relayer_batches_submitted_total{destination="rollup_a"}') >= 3
        assert all(r and r["attempts"] == 0 for r in records)
        assert _metric(daemon, 'relayer_messages_rate_limited_total{destination="rollup_a"}') >= 3
    finally:
        daemon.stop()


def _send_many(devnet: Any, n: int) -> list[bytes]:
    import asyncio

    from adapters.message import address_to_bytes32
    from tests.integration.harness import DevnetClient

    async def go() -> list[bytes]:
        client = DevnetClient(devnet)
        try:
            recipient = address_to_bytes32(client.manifest["chains"]["rollup_a"]["contracts"]["test_recipient"])
            _tx, got = await client.adapters["l1"].dispatch_messages(  # type: ignore[attr-defined]
                client.key("l1", 1), client.domain("rollup_a"), recipient, [f"limited #{k}".encode() for k in range(n)])
            return [bytes(i) for i in got]
        finally:
            await client.close()

    return asyncio.run(go())
