"""relayer.route_limits on the devnet (issue 15, relayer-side limits): a limited route's messages are spread over
delivery transactions at the configured rate, each delivered once. (Its own module: one daemon at a time on the
session devnet.)"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from tests.faults.conftest import metric
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    free_port_block,
    message_record,
    message_status,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

RELAY_TIMEOUT_S = 90.0


def _send_many(devnet: Any, n: int) -> list[bytes]:
    return dispatch_to_test_recipient(devnet, DevnetClient(devnet).key("l1", 1), "l1", "rollup_a",
                                      [f"limited #{k}".encode() for k in range(n)])


def test_a_route_limit_spreads_deliveries_and_loses_none(devnet, tmp_path) -> None:
    """relayer.route_limits: l1 -> rollup_a at 1 message a second, 1 at once. The route's history (30 messages another
    daemon delivered) takes no room: none of them ever waits for it. Four new messages dispatched in one transaction
    are each delivered once (read from the chain), in at least three delivery transactions of this daemon (the limit
    held the others back: rate_limited, no attempt spent), where without a limit one batch would carry them all."""
    plain = DaemonProcess(write_daemon_config(devnet, tmp_path / "plain", api_port=free_port_block(1)),
                          tmp_path / "plain.log", instance="no-limits").start()
    try:
        history = _send_many(devnet, 30)
        wait_for(lambda: delivered_on(devnet, "rollup_a", *history), RELAY_TIMEOUT_S, "the history delivered")
    finally:
        plain.stop()
    path = write_daemon_config(devnet, tmp_path / "limited", api_port=free_port_block(1))
    path.write_text(path.read_text() + '\n[[relayer.route_limits]]\norigin = "l1"\ndestination = "rollup_a"\n'
                                       'messages_per_s = 1.0\nburst = 1\n')
    daemon = DaemonProcess(path, tmp_path / "daemon.log", instance="route-limits").start()
    try:
        ids = _send_many(devnet, 4)
        wait_for(lambda: all(message_status(daemon.api_url, i) == ("delivered", None) for i in ids), RELAY_TIMEOUT_S,
                 "the four messages delivered")
        records = [message_record(daemon.api_url, i) for i in ids]
        assert delivered_on(devnet, "rollup_a", *ids)
        assert metric(daemon.api_url, "relayer_batches_submitted_total", destination="rollup_a") >= 3
        assert all(r and r["attempts"] == 0 for r in records)
        assert metric(daemon.api_url, "relayer_messages_rate_limited_total", destination="rollup_a") >= 3
        old = [message_record(daemon.api_url, i) for i in history]
        assert all(r and r["state"] == "DELIVERED" and r["last_reason"] != "rate_limited" for r in old)
    finally:
        daemon.stop()



def test_on_a_terminal_a_hangup_stops_the_daemon(devnet, tmp_path) -> None:
    """SIGHUP reloads the lists of a daemon run as a service (test_message_filters.py); on a terminal it means the
    terminal closed, and `relayer run` stops cleanly instead of living on headless."""
    import os
    import pty
    import signal
    import subprocess
    import sys
    import threading

    import httpx

    from tests.integration.harness import ROOT

    port = free_port_block(1)
    path = write_daemon_config(devnet, tmp_path, api_port=port)
    api_url = f"http://127.0.0.1:{port}"
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "relayer.cli", "run", "-c", str(path), "--no-status",
                             "--instance", "on-a-terminal"], stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True)
    os.close(slave)
    output: list[bytes] = []

    def drain() -> None:  # the terminal's reader: the daemon must never block on a full pty
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                output.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        def serving() -> bool:
            assert proc.poll() is None, b"".join(output)[-2000:]
            try:
                return httpx.get(f"{api_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(serving, 60, "the daemon on a terminal to serve")
        os.kill(proc.pid, signal.SIGHUP)
        assert proc.wait(30) == 0, b"".join(output)[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        os.close(master)
