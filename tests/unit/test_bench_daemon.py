"""The bench daemon is stopped when the bench is interrupted while it waits for the daemon to serve: at that
point the caller has no handle on it yet (a SIGTERM there left a serving daemon behind)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from relayer.bench import daemon as bench_daemon
from tests.integration.harness import wait_for


class FakeDevnet:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.config_path = directory / "relayer.toml"

    def manifest(self) -> dict[str, str]:
        return {"api_url": "http://127.0.0.1:9"}  # nothing serves there


def test_an_interrupt_while_the_daemon_starts_stops_the_daemon(tmp_path, monkeypatch):
    pid_file = tmp_path / "daemon.pid"
    # a real child process that never serves, in place of `relayer run`; it writes its pid
    script = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    command = [sys.executable, "-c", script]

    def interrupted(*_args):  # the fault: what SIGTERM raises under sigterm_as_interrupt, while waiting
        wait_for(pid_file.exists, 20, "the daemon to start")
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_daemon, "_wait_serving", interrupted)
    with pytest.raises(KeyboardInterrupt):
        bench_daemon.start_bench_daemon(FakeDevnet(tmp_path), {}, command=command)  # type: ignore[arg-type]
    pid = int(pid_file.read_text())
    wait_for(lambda: not alive(pid), 20, "the started daemon to be stopped")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a stopped child not yet reaped is a zombie: not running
        return stat.read().split()[2] != "Z"
