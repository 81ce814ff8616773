"""A bench stopped with SIGTERM stops what it started: its devnet's anvils, beacon and daemon (before, a killed
``bench route`` left four anvils and its daemon running). The window where the daemon serves but the bench has no
handle on it yet is held by tests/unit/test_bench_daemon.py."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx

from devnets.devnet import Devnet
from tests.integration.harness import ROOT, free_port_block, wait_for


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def relaying(api_url: str) -> bool:
    """The bench's daemon serves and the bench has dispatched messages (it is past its start-up)."""
    try:
        return bool(httpx.get(f"{api_url}/v1/messages", params={"limit": 1}, timeout=1.0).json()["messages"])
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def test_sigterm_while_relaying_stops_the_devnet_and_daemon_the_bench_started(tmp_path):
    base, api = free_port_block(3), free_port_block(1)
    devnet_dir = tmp_path / "devnet"
    bench = subprocess.Popen([sys.executable, "-m", "relayer.cli", "bench", "relay", "--messages", "200000",
                              "--devnet", str(devnet_dir), "--base-port", str(base), "--api-port", str(api), "--json"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: relaying(f"http://127.0.0.1:{api}") or bench.poll() is not None, 180, "the bench to relay")
        assert bench.poll() is None, bench.stderr.read().decode()[-2000:] if bench.stderr else ""
        assert all(listening(p) for p in (base, base + 1, base + 2))  # its anvils run
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(90) == 130  # stopped like Ctrl-C, after cleaning up
        ports = [base, base + 1, base + 2, api]
        wait_for(lambda: not any(listening(p) for p in ports), 30, "the devnet's and daemon's ports to close")
        assert Devnet(devnet_dir, base_port=base, api_port=api, families=("evm",)).status()["up"] is False
    finally:
        if bench.poll() is None:
            bench.kill()
        subprocess.run(["pkill", "-f", str(devnet_dir)], check=False)  # whatever a failed run left behind
