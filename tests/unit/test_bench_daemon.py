"""The bench daemon is stopped when the bench is interrupted while it waits for the daemon to serve: at that
point the caller has no handle on it yet (a SIGTERM there left a serving daemon behind)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from relayer.bench import daemon as bench_daemon


class FakeDevnet:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.config_path = directory / "relayer.toml"

    def manifest(self) -> dict[str, str]:
        return {"api_url": "http://127.0.0.1:9"}  # nothing serves there


def test_an_interrupt_while_the_daemon_starts_stops_the_daemon(tmp_path, monkeypatch):
    spawned: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(_args, **kwargs):  # a real child process in place of `relayer run`
        proc = real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)
        spawned.append(proc)
        return proc

    def interrupted(*_args):
        raise KeyboardInterrupt  # what SIGTERM raises under sigterm_as_interrupt

    monkeypatch.setattr(bench_daemon.subprocess, "Popen", popen)
    monkeypatch.setattr(bench_daemon, "_wait_serving", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench_daemon.start_bench_daemon(FakeDevnet(tmp_path), {})  # type: ignore[arg-type]
    assert len(spawned) == 1
    assert spawned[0].wait(20) is not None  # terminated, not left running
