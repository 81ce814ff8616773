"""Shared event feeds (router/events.py, the explorer's feed): the store is read once per interval whatever the
number of streams, a new stream gets the current state, only changes follow, slow streams are dropped, and
nothing is left behind when the streams go."""

from __future__ import annotations

import asyncio
import gc
import json
import time

from relayer.api.server import message_view
from relayer.explorer import ChainSampleBuffer, ExplorerQueries
from relayer.explorer.routes import ExplorerFeed
from relayer.store import Store
from router.events import BatchFeed, Fanout
from router.intents import IntentRecord, IntentStore
from tests.integration.harness import wait_for_async


def intent(i: int, batch: str = "bat_1", status: str = "planned") -> IntentRecord:
    return IntentRecord(id=f"int_{i:04d}", batch=batch, created_at=float(i), updated_at=float(i), kind="transfer",
                        token="TST", amount="1", units="1", recipient="0x" + "ab" * 20, status=status)


def events_of(texts: list[str]) -> list[tuple[str, dict]]:
    """The events in SSE chunks (a chunk may carry several)."""
    out = []
    for text in texts:
        for event in text.split("\n\n"):
            if event:
                head, _, data = event.partition("\ndata: ")
                out.append((head.removeprefix("event: "), json.loads(data)))
    return out


async def take(stream, n: int, timeout_s: float = 10.0) -> list[str]:
    """Chunks of ``stream`` until they hold ``n`` events."""
    out: list[str] = []
    async with asyncio.timeout(timeout_s):
        async for text in stream:
            out.append(text)
            if len(events_of(out)) >= n:
                break
    return out


async def test_a_hundred_streams_on_a_batch_cost_one_read_per_interval(tmp_path):
    store = IntentStore(Store(f"sqlite:///{tmp_path / 'i.db'}", owner="t").engine)
    store.add_all([intent(i) for i in range(1000)])
    feed = BatchFeed(store.by_batch, poll_s=0.05)
    subs = await asyncio.gather(*(feed.subscribe("bat_1") for _ in range(100)))  # all at once: one read
    assert all(s is not None and len(events_of(s.initial)) == 1000 for s in subs)
    assert len({id(s.initial[0]) for s in subs if s is not None}) == 1  # one snapshot string, shared
    assert feed.queries == 1 and feed.followed == 1  # the first stream read the batch; the others got its cache
    streams = [feed.stream("bat_1", s, 30) for s in subs if s is not None]
    firsts = await asyncio.gather(*(take(st, 1000) for st in streams))
    assert all(len(f) == 1 and len(events_of(f)) == 1000 for f in firsts)  # the state in one chunk
    t0, reads0 = time.monotonic(), feed.queries
    await asyncio.sleep(0.5)  # the feed polls on its own pace meanwhile (measuring its reads, not synchronising)
    reads = feed.queries - reads0
    assert reads <= (time.monotonic() - t0) / 0.05 + 2, reads  # one read per interval, not one per stream
    store.update("int_0007", status="included")
    store.update("int_0008", status="failed", reason="reverted")
    changes = await asyncio.gather(*(take(st, 2) for st in streams))
    for got in changes:
        assert [(e, d["id"], d["status"]) for e, d in events_of(got)] == [
            ("intent", "int_0007", "included"), ("intent", "int_0008", "failed")]
    before_late = feed.queries
    late = await feed.subscribe("bat_1")  # a stream opened now gets the current state, from the cache
    assert late is not None and feed.queries == before_late
    late_events = events_of(late.initial)
    assert len(late_events) == 1000 and {d["id"]: d["status"] for _e, d in late_events}["int_0007"] == "included"
    store.update_many([(f"int_{i:04d}", {"status": "unserved"}) for i in range(1000) if i not in (7, 8)])
    ends = await asyncio.gather(*(take(st, 999) for st in streams))
    assert all(events_of(got)[-1] == ("done", {"batch": "bat_1", "settled": 1000}) for got in ends)

    async def stopped() -> bool:
        return feed.followed == 0

    await wait_for_async(stopped, 5, "the feed to stop once the batch settled")
    for st in streams:
        await st.aclose()


async def test_an_unknown_batch_is_none_and_a_settled_one_is_its_state_then_done(tmp_path):
    store = IntentStore(Store(f"sqlite:///{tmp_path / 'i.db'}", owner="t").engine)
    store.add_all([intent(i, "bat_2", "unserved") for i in range(3)])
    feed = BatchFeed(store.by_batch, poll_s=0.05)
    assert await feed.subscribe("bat_nope") is None
    sub = await feed.subscribe("bat_2")
    assert sub is not None and feed.followed == 0  # nothing to follow
    got = await take(feed.stream("bat_2", sub, 5), 4)
    assert [e for e, _ in events_of(got)] == ["intent"] * 3 + ["done"]


async def test_streams_that_go_leave_the_feed_which_then_stops(tmp_path):
    store = IntentStore(Store(f"sqlite:///{tmp_path / 'i.db'}", owner="t").engine)
    store.add_all([intent(i) for i in range(5)])
    feed = BatchFeed(store.by_batch, poll_s=0.05)
    started = await feed.subscribe("bat_1")
    never_started = await feed.subscribe("bat_1")  # a client gone before its answer began
    assert started is not None and never_started is not None
    stream = feed.stream("bat_1", started, 30)
    await take(stream, 5)
    await stream.aclose()
    unread = feed.stream("bat_1", never_started, 30)
    del unread
    gc.collect()

    async def stopped() -> bool:
        return feed.followed == 0

    await wait_for_async(stopped, 5, "the feed to stop with no stream left")


async def test_a_stream_too_far_behind_is_dropped_not_buffered():
    fanout = Fanout(max_queue=3)
    slow, fast = fanout.add(), fanout.add()
    for i in range(5):
        fanout.publish(f"e{i}")
        if fast.queue.qsize():
            fast.queue.get_nowait()
    assert slow.dropped and slow not in fanout.subscribers and fast in fanout.subscribers
    assert slow.queue.qsize() <= 3 and None in [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]


async def test_explorer_streams_share_one_poller(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'e.db'}", owner="t")
    samples = ChainSampleBuffer()
    feed = ExplorerFeed(ExplorerQueries(store.engine), samples, lambda r: message_view(r, {}), poll_s=0.05)
    subs = [await feed.subscribe() for _ in range(50)]
    t0, reads0 = time.monotonic(), feed.reads
    await asyncio.sleep(0.5)  # the feed polls on its own pace meanwhile (measuring its reads, not synchronising)
    assert feed.reads - reads0 <= (time.monotonic() - t0) / 0.05 + 2
    for sub in subs:
        feed.unsubscribe(sub)

    async def idle() -> bool:
        return feed._task is not None and feed._task.done()

    await wait_for_async(idle, 5, "the explorer feed to stop with no stream left")
    store.close()
