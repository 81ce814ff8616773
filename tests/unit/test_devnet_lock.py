"""The devnet's lock: a process bringing a devnet up or down keeps others out until it is done, so a bench started
while another is still taking the same devnet down waits for it instead of taking it for a running devnet."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.errors import RelayerError
from devnets.devnet import Devnet
from relayer.bench import daemon as bench_daemon

HOLD_LOCK = """
import sys
from pathlib import Path
from devnets.devnet import Devnet
with Devnet(Path(sys.argv[1])).locked():
    print("locked", flush=True)
    sys.stdin.read()  # held until the test closes our stdin
"""


@contextlib.contextmanager
def lock_held_elsewhere(directory: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(directory)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        if holder.stdin is not None and not holder.stdin.closed:
            holder.stdin.close()
        holder.wait(timeout=10)


def test_a_devnet_being_brought_up_or_down_elsewhere_is_waited_for(tmp_path: Path) -> None:
    with lock_held_elsewhere(tmp_path) as holder:
        with pytest.raises(RelayerError, match="still being brought up or down by another process"), \
                Devnet(tmp_path).locked(timeout_s=0.3):
            pass
        got = threading.Event()

        def wait_for_it() -> None:
            with Devnet(tmp_path).locked(timeout_s=30.0):
                got.set()

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        assert not got.wait(0.5)  # still held by the other process
        assert holder.stdin is not None
        holder.stdin.close()  # the other process is done: the waiter gets the lock
        assert got.wait(10.0)
        waiter.join(timeout=10)


def test_the_lock_is_reentrant_within_one_devnet_object(tmp_path: Path) -> None:
    devnet = Devnet(tmp_path)
    with devnet.locked(timeout_s=1.0), devnet.locked(timeout_s=1.0):
        pass
    with devnet.locked(timeout_s=1.0):  # released: taken again at once
        pass


class RecordingDevnet:
    """Records what a bench asks of its devnet, and whether the lock was held when it asked."""

    def __init__(self, up_before: bool) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.held = False
        self.up_before = up_before

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.held = True
        try:
            yield
        finally:
            self.held = False

    def status(self) -> dict[str, Any]:
        self.calls.append(("status", self.held))
        return {"up": self.up_before}

    def up(self) -> dict[str, Any]:
        self.calls.append(("up", self.held))
        return {}

    def down(self) -> list[str]:
        self.calls.append(("down", self.held))
        return []


@pytest.mark.parametrize("up_before", [False, True])
def test_a_bench_asks_whether_the_devnet_is_up_and_brings_it_up_under_the_lock(
        monkeypatch: pytest.MonkeyPatch, up_before: bool) -> None:
    monkeypatch.setattr(bench_daemon, "start_bench_daemon", lambda *a, **k: None)
    devnet = RecordingDevnet(up_before)
    with bench_daemon.bench_devnet_and_daemon(devnet, {}):  # type: ignore[arg-type]
        assert devnet.calls == [("status", True), ("up", True)]
    # only a devnet it found down is taken down at the end
    assert devnet.calls[2:] == ([] if up_before else [("down", False)])


def test_a_bench_that_cannot_get_the_lock_brings_nothing_down(monkeypatch: pytest.MonkeyPatch) -> None:
    devnet = RecordingDevnet(False)

    @contextlib.contextmanager
    def busy() -> Iterator[None]:
        raise RelayerError("still being brought up or down by another process")
        yield

    monkeypatch.setattr(devnet, "locked", busy)
    with pytest.raises(RelayerError), bench_daemon.bench_devnet_and_daemon(devnet, {}):  # type: ignore[arg-type]
        pass
    assert devnet.calls == []  # neither up nor down: the devnet is the other process's
