"""``relayer.store.threads.StoreThreads``: a call a client waits on (``first``) runs before the ordinary calls that
have not started; otherwise calls run in the order they were made, errors reach the caller, a call cancelled before
it started never runs, and shutdown runs what was already asked first."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from relayer.store.threads import StoreThreads


def _blocked(threads: StoreThreads) -> threading.Event:
    """Hold the one thread busy until the returned event is set."""
    release, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        release.wait(10)

    threads.ordinary.submit(hold)
    assert started.wait(10)
    return release


def test_a_first_call_overtakes_the_ordinary_calls_waiting() -> None:
    threads = StoreThreads(1, "t")
    ran: list[str] = []
    release = _blocked(threads)
    waiting = [threads.ordinary.submit(ran.append, f"ordinary {k}") for k in range(3)]
    urgent = threads.first.submit(ran.append, "first")
    release.set()
    for f in [*waiting, urgent]:
        f.result(10)
    assert ran == ["first", "ordinary 0", "ordinary 1", "ordinary 2"]
    threads.shutdown()


def test_calls_of_one_priority_run_in_the_order_they_were_made() -> None:
    threads = StoreThreads(1, "t")
    ran: list[int] = []
    release = _blocked(threads)
    futures = [threads.first.submit(ran.append, k) for k in range(20)]
    release.set()
    for f in futures:
        f.result(10)
    assert ran == list(range(20))
    threads.shutdown()


def test_an_error_reaches_the_caller_and_the_thread_goes_on() -> None:
    threads = StoreThreads(1, "t")

    def fail() -> None:
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        threads.first.submit(fail).result(10)
    assert threads.ordinary.submit(lambda: 7).result(10) == 7
    threads.shutdown()


def test_a_call_cancelled_before_it_started_never_runs() -> None:
    threads = StoreThreads(1, "t")
    ran: list[str] = []
    release = _blocked(threads)
    doomed = threads.ordinary.submit(ran.append, "cancelled")
    kept = threads.ordinary.submit(ran.append, "kept")
    assert doomed.cancel()
    release.set()
    kept.result(10)
    with pytest.raises(CancelledError):
        doomed.result(0)
    assert ran == ["kept"]
    threads.shutdown()


def test_shutdown_runs_the_calls_already_made_then_refuses_new_ones() -> None:
    threads = StoreThreads(2, "t")
    ran: list[int] = []
    release = _blocked(threads)
    futures = [threads.ordinary.submit(ran.append, k) for k in range(5)]
    release.set()
    threads.shutdown(wait=True)
    assert all(f.done() for f in futures) and sorted(ran) == list(range(5))
    with pytest.raises(RuntimeError, match="shut down"):
        threads.ordinary.submit(ran.append, 99)
