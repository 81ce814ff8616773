"""What the benches share: the daemon a bench starts (and its API limits), block clocks, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

import httpx

from adapters.base import ChainAdapter
from devnets.devnet import Devnet

# a bench measures throughput from one loopback address: the daemon it starts lifts the per-client and intent-rate
# caps of [api] (they are what a public API needs against abuse; tests/faults/test_api_abuse.py measures them)
BENCH_API_LIMITS = {"RELAYER__API__MAX_INTENTS_PER_S": "1000000",
                    "RELAYER__API__MAX_CONNECTIONS_PER_CLIENT": "1024",
                    "RELAYER__API__MAX_REQUESTS_IN_FLIGHT_PER_CLIENT": "256",
                    "RELAYER__API__MAX_RELAY_REQUESTS_PER_S": "1000000",
                    "RELAYER__API__MAX_RELAY_REQUESTS_PER_S_PER_CLIENT": "1000000"}


async def _daemon_serving(api_url: str) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"{api_url}/healthz", timeout=1.0)).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def bench_devnet_and_daemon(devnet: Devnet, env_overrides: dict[str, str], *, instance: str = "bench",
                            keep_devnet: bool = False) -> Iterator[subprocess.Popen | None]:
    """Bring ``devnet`` up unless it is, and start the bench daemon unless one serves its API; on the way out (the
    bench's end, an error, Ctrl-C, or SIGTERM through ``sigterm_as_interrupt``) stop the daemon it started and,
    unless ``keep_devnet``, the devnet it brought up. A devnet or daemon that was already running is left as it was."""
    daemon = None
    was_up = True  # until known: a devnet this bench did not see down is never brought down by it
    try:
        with devnet.locked():  # a devnet another bench is still bringing down is waited for, not taken for running
            was_up = devnet.status()["up"]
            devnet.up()  # (stops what it started itself if it fails half-way)
        daemon = start_bench_daemon(devnet, env_overrides, instance)
        yield daemon
    finally:
        stop_bench_daemon(daemon)
        if not was_up and not keep_devnet:
            devnet.down()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises ``KeyboardInterrupt`` (once; a second one is ignored while cleaning up), so a bench killed
    with SIGTERM runs its clean-up like one stopped with Ctrl-C, instead of leaving its devnet and daemon running."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def start_bench_daemon(devnet: Devnet, env_overrides: dict[str, str], instance: str = "bench", *,
                       command: Sequence[str] | None = None, api_url: str | None = None) -> subprocess.Popen | None:
    """Start ``relayer run`` on ``devnet`` (or ``command``) in a child process unless a daemon already serves its API
    (``api_url``: the devnet's, unless given; another is passed to the daemon as ``RELAYER__API__URL``); wait for
    it."""
    if api_url is not None:
        env_overrides = {**env_overrides, "RELAYER__API__URL": api_url}
    api_url = api_url or devnet.manifest()["api_url"]
    if asyncio.run(_daemon_serving(api_url)):
        return None
    log_path = devnet.dir / f"{instance}-daemon.log"
    command = command or [sys.executable, "-m", "relayer.cli", "run", "-c", str(devnet.config_path), "--no-status",
                          "--instance", instance]
    daemon = subprocess.Popen(command, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                              env=dict(os.environ, **env_overrides))
    try:  # an interrupt (Ctrl-C, SIGTERM) while it starts stops it too: the caller has no handle on it yet
        _wait_serving(daemon, api_url, log_path)
    except BaseException:
        stop_bench_daemon(daemon)
        raise
    return daemon


def _wait_serving(daemon: subprocess.Popen, api_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while not asyncio.run(_daemon_serving(api_url)):
        if daemon.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the bench daemon did not start; see {log_path}")
        time.sleep(0.1)


def stop_bench_daemon(daemon: subprocess.Popen | None) -> None:
    if daemon is None:
        return
    daemon.terminate()
    try:
        daemon.wait(15)
    except subprocess.TimeoutExpired:
        daemon.kill()


class BlockClock:
    """Records when each block of one chain was first seen (wall clock)."""

    def __init__(self, adapter: ChainAdapter) -> None:
        self.adapter = adapter
        self.seen: dict[int, float] = {}
        self.latest = -1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                h = int(await self.adapter.latest_height())
            except Exception:  # noqa: BLE001 - a missed poll only coarsens timing
                h = self.latest
            now = time.time()
            for b in range(self.latest + 1, h + 1):
                self.seen[b] = now
            self.latest = max(self.latest, h)
            await asyncio.sleep(0.05)

    def time_of(self, height: int) -> float | None:
        return self.seen.get(height)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]
