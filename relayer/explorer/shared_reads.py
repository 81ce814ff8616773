"""``SharedReads``: identical reads asked for while one is under way are made once for everyone who asked.

A read of key K asked for while no read of K is waiting to start gets a new read, which starts as soon as the read of
K already running (if any) has ended; every later request for K joins that waiting read until it starts. So:

- every answer comes from a read that began after the request arrived: nothing is older than it would have been
  without sharing (a write committed before the request is in its answer);
- at most two reads of one key are under way, one running and one waiting, however many clients ask: under load,
  N identical requests cost about one read per read's duration instead of N.

It belongs to one event loop (not thread-safe). ``run`` carries each read off the loop (a thread pool); an error of a
read is every sharer's error. A sharer that is cancelled (its client went away) leaves the read running for the
others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class SharedReads(Generic[V]):
    def __init__(self, run: Callable[[Callable[[], V]], Awaitable[V]]) -> None:
        self._run = run
        self._waiting: dict[Hashable, asyncio.Future[V]] = {}
        self._running: dict[Hashable, asyncio.Task[None]] = {}
        self.reads = 0  # reads made (for tests and figures): fewer than requests when requests shared them

    async def read(self, key: Hashable, fn: Callable[[], V]) -> V:
        """``fn()``'s result, from a read of ``key`` that starts after this call (shared with identical calls)."""
        shared = self._waiting.get(key)
        if shared is None:
            shared = self._waiting[key] = asyncio.get_running_loop().create_future()
            shared.add_done_callback(_retrieve)
            previous = self._running.get(key)
            self._running[key] = asyncio.create_task(self._start(key, shared, fn, previous),
                                                     name="explorer-shared-read")
        return await asyncio.shield(shared)

    async def _start(self, key: Hashable, shared: asyncio.Future[V], fn: Callable[[], V],
                     previous: asyncio.Task[None] | None) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])  # the read of the same key running when this one was asked for
            del self._waiting[key]  # from here on, a new request waits for the next read
            self.reads += 1
            result = await self._run(fn)
        except asyncio.CancelledError:
            if self._waiting.get(key) is shared:
                del self._waiting[key]
            shared.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every sharer, who raises it
            shared.set_exception(exc)
        else:
            shared.set_result(result)
        finally:
            if self._running.get(key) is asyncio.current_task():
                del self._running[key]


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a shared read's error as seen even when every sharer went away before it ended (no asyncio warning)."""
    if not future.cancelled():
        future.exception()
