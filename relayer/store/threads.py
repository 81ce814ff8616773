"""``StoreThreads``: the threads a store's calls run on, with a way for a call a client waits on to go first.

Calls run in the order they were made, as on a ``ThreadPoolExecutor``, except that a call made through ``first``
(an API request a dApp is waiting on: ``POST /v1/intents``) runs before every ordinary call that has not started.
Background loops (the lanes' write-ahead, settling, the queue's release) can queue many calls at once on SQLite's one
thread; behind them a request waited a second for four short statements (issue 14: 200-600 ms per hop measured).
Order between two calls of one coroutine is kept either way: every caller awaits a call before making the next.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_FIRST, _ORDINARY, _STOP = 0, 1, 2


class _Lane(Executor):
    """``StoreThreads`` seen as an ``Executor`` (``loop.run_in_executor``) that submits at one priority."""

    def __init__(self, threads: StoreThreads, priority: int) -> None:
        self._threads = threads
        self._priority = priority

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._threads.put(self._priority, fn, args, kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._threads.shutdown(wait)


class StoreThreads:
    """``n`` threads serving one queue: ``ordinary`` and ``first`` are its two executors."""

    def __init__(self, n: int, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._closed = False
        self._lock = threading.Lock()
        self.ordinary = _Lane(self, _ORDINARY)
        self.first = _Lane(self, _FIRST)
        self._threads = [threading.Thread(target=self._serve, name=f"{name}_{k}", daemon=True) for k in range(n)]
        for t in self._threads:
            t.start()

    def put(self, priority: int, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the store's threads are shut down")
            self._queue.put((priority, next(self._order), (future, fn, args, kwargs)))
        return future

    def _serve(self) -> None:
        while True:
            priority, _, item = self._queue.get()
            if priority == _STOP:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():  # cancelled before it started: nothing was begun
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, as ThreadPoolExecutor does
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, wait: bool = True) -> None:
        """Run every call already made, then stop the threads (``wait``: until they have stopped)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for _ in self._threads:
                    self._queue.put((_STOP, next(self._order), None))
        if wait:
            for t in self._threads:
                if t is not threading.current_thread():
                    t.join()
