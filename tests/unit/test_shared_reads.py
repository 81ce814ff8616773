"""``SharedReads`` (relayer/explorer/shared_reads.py), behind ``GET /v1/messages``: identical requests under way
share one read, and every answer comes from a read that began after its request arrived."""

from __future__ import annotations

import asyncio
import threading

import pytest
from starlette.concurrency import run_in_threadpool

from relayer.explorer.shared_reads import SharedReads


class Table:
    """A value that changes (``write``) and reads that can be held open (``gate``), on the pool's threads."""

    def __init__(self) -> None:
        self.value = 0
        self.reads_started: list[int] = []  # the value each read saw when it started
        self.gate = threading.Event()
        self.gate.set()

    def write(self) -> None:
        self.value += 1

    def read(self) -> int:
        seen = self.value
        self.reads_started.append(seen)
        assert self.gate.wait(10)
        return seen


async def until(predicate, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def test_requests_arriving_while_a_read_runs_share_the_next_read_and_see_writes_before_them():
    async def main() -> None:
        table, shared = Table(), SharedReads[int](run_in_threadpool)
        table.gate.clear()
        first = asyncio.create_task(shared.read("page", table.read))
        await until(lambda: len(table.reads_started) == 1)  # the first read is running (held open)
        table.write()  # committed after the first read began: the later requests must see it
        later = [asyncio.create_task(shared.read("page", table.read)) for _ in range(20)]
        await asyncio.sleep(0.05)
        assert len(table.reads_started) == 1  # the next read waits for the running one
        table.gate.set()
        assert await first == 0
        assert await asyncio.gather(*later) == [1] * 20  # one read for all twenty, started after the write
        assert shared.reads == 2 and table.reads_started == [0, 1]

    asyncio.run(main())


def test_a_request_after_a_read_ended_gets_a_new_read_and_other_keys_are_not_shared():
    async def main() -> None:
        table, shared = Table(), SharedReads[int](run_in_threadpool)
        assert await shared.read("page", table.read) == 0
        table.write()
        assert await shared.read("page", table.read) == 1
        table.gate.clear()
        a = asyncio.create_task(shared.read(("page", 1), table.read))
        b = asyncio.create_task(shared.read(("page", 2), table.read))
        await until(lambda: len(table.reads_started) == 4)  # both keys read at once, neither waits for the other
        table.gate.set()
        assert await asyncio.gather(a, b) == [1, 1] and shared.reads == 4

    asyncio.run(main())


def test_a_failed_read_is_every_sharers_error_and_the_next_read_runs_afresh():
    async def main() -> None:
        calls = 0

        def failing() -> int:
            nonlocal calls
            calls += 1
            raise RuntimeError("store unavailable")

        shared = SharedReads[int](run_in_threadpool)
        sharers = [asyncio.create_task(shared.read("page", failing)) for _ in range(5)]
        results = await asyncio.gather(*sharers, return_exceptions=True)
        assert calls == 1 and all(isinstance(r, RuntimeError) and str(r) == "store unavailable" for r in results)
        assert await shared.read("page", lambda: 7) == 7

    asyncio.run(main())


def test_a_sharer_that_goes_away_leaves_the_read_to_the_others():
    async def main() -> None:
        table, shared = Table(), SharedReads[int](run_in_threadpool)
        table.gate.clear()
        gone = asyncio.create_task(shared.read("page", table.read))
        stays = asyncio.create_task(shared.read("page", table.read))
        await until(lambda: len(table.reads_started) == 1)
        gone.cancel()
        table.gate.set()
        assert await stays == 0
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert shared.reads == 1

    asyncio.run(main())
