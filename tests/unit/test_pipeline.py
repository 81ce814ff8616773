"""Pipeline logic (indexer, attester, processor, store) on fake chains and a real SQLite file."""

from __future__ import annotations

import pytest

from adapters.base import Checkpoint, SignedCheckpoint, TxState
from adapters.checkpoint import CheckpointSigner
from config.settings import RelayerRoleSettings
from relayer.daemon.metrics import Metrics
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.processor import DestinationProcessor
from relayer.pipeline.validator import OriginAttester
from relayer.store import FailureReason, MessageState, Store
from tests.fakes.chain import FakeChain

VALIDATOR_KEY = "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"  # public anvil devnet test key


class TreeCollector:
    """Signs whatever the origin tree holds: stands in for the validators' HTTP endpoints."""

    def __init__(self, mailbox: bytes, *, upto: int | None = None) -> None:
        self.signer = CheckpointSigner.from_hex(VALIDATOR_KEY)
        self.mailbox = mailbox
        self.upto = upto
        self.last_problem: dict[int, str] = {}

    async def quorum(self, origin, tree):
        count = tree.count if self.upto is None else min(self.upto, tree.count)
        if count == 0:
            self.last_problem[origin] = "nothing"
            return None
        cp = Checkpoint(origin, self.mailbox, tree.root(count), count - 1)
        return SignedCheckpoint(cp, ((self.signer.address, self.signer.sign(cp)),))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path):
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="test", clock=clock)
    origin, dest = FakeChain("o", 1), FakeChain("d", 2)
    indexer = OriginIndexer(origin, store, known_destinations={1, 2})
    settings = RelayerRoleSettings(batch_size=4, backoff_base_s=1.0, backoff_max_s=8.0, max_attempts=3)
    collector = TreeCollector(origin.mailbox)
    proc = DestinationProcessor(dest, store, {1: indexer}, collector, settings, Metrics(), clock=clock)  # type: ignore[arg-type]
    yield clock, store, origin, dest, indexer, proc, collector
    store.close()


async def test_batches_deliver_each_message_once(world):
    clock, store, origin, dest, indexer, proc, _ = world
    for i in range(10):
        origin.dispatch(2, f"m{i}".encode())
    origin.dispatch(99, b"to nowhere")
    assert await indexer.poll_once() == 11
    assert await proc.prepare_and_submit_once() == 10
    assert [len(b.items) for b in dest.submitted] == [4, 4, 2]
    assert await proc.confirm_once() == 10
    assert all(n == 1 for n in dest.processed.values()) and len(dest.processed) == 10
    counts = store.counts_by_state()
    assert counts[(2, MessageState.DELIVERED.value)] == 10
    assert counts[(99, MessageState.DROPPED.value)] == 1
    # nothing left to do, and a second pass submits nothing
    assert await proc.prepare_and_submit_once() == 0


async def test_already_delivered_is_never_submitted(world):
    clock, store, origin, dest, indexer, proc, _ = world
    msgs = [origin.dispatch(2, b"x%d" % i) for i in range(3)]
    await indexer.poll_once()
    dest.processed[msgs[1].id] = 1  # another relayer got there first
    assert await proc.prepare_and_submit_once() == 2
    assert {it.id for it in dest.submitted[0].items} == {msgs[0].id, msgs[2].id}
    assert store.get(msgs[1].id).state == MessageState.DELIVERED.value


async def test_refused_message_is_isolated_and_backed_off_then_dropped(world):
    clock, store, origin, dest, indexer, proc, _ = world
    bad = None
    for i in range(8):
        d = origin.dispatch(2, b"poison" if i == 5 else b"ok%d" % i)
        bad = d if i == 5 else bad
    dest.rejects = lambda raw: raw.endswith(b"poison")
    await indexer.poll_once()
    assert await proc.prepare_and_submit_once() == 7
    rec = store.get(bad.id)
    assert rec.state == MessageState.DISPATCHED.value and rec.attempts == 1
    # the retry policy's backoff: 1 s, then 2 s, each less up to 20 % jitter
    assert rec.last_reason == FailureReason.ESTIMATE_REVERTED.value and 0.8 <= rec.next_attempt_at - clock.now <= 1.0
    assert await proc.prepare_and_submit_once() == 0  # not before its retry time
    clock.now = rec.next_attempt_at
    await proc.prepare_and_submit_once()
    second = store.get(rec.id).next_attempt_at
    assert 1.6 <= second - clock.now <= 2.0
    clock.now = second
    await proc.prepare_and_submit_once()
    rec = store.get(rec.id)
    assert rec.state == MessageState.DROPPED.value and rec.last_reason == FailureReason.MAX_ATTEMPTS.value
    assert "estimate_reverted" in rec.last_error


async def test_messages_past_the_checkpoint_wait_without_losing_an_attempt(world):
    clock, store, origin, dest, indexer, proc, collector = world
    for i in range(5):
        origin.dispatch(2, b"%d" % i)
    await indexer.poll_once()
    collector.upto = 3
    assert await proc.prepare_and_submit_once() == 3
    waiting = [r for r in store.recent(limit=10) if r.state == MessageState.DISPATCHED.value]
    assert len(waiting) == 2 and all(r.attempts == 0 and r.last_reason == "no_quorum" for r in waiting)


async def test_reverted_and_dropped_transactions_are_retried(world):
    clock, store, origin, dest, indexer, proc, _ = world
    origin.dispatch(2, b"a")
    await indexer.poll_once()
    dest.outcome_state = TxState.REVERTED
    await proc.prepare_and_submit_once()
    await proc.confirm_once()
    rec = store.recent(limit=1)[0]
    assert rec.state == MessageState.DISPATCHED.value and rec.last_reason == FailureReason.TX_REVERTED.value
    dest.outcome_state = TxState.CONFIRMED
    clock.now += 1.0
    await proc.prepare_and_submit_once()
    await proc.confirm_once()
    assert store.get(rec.id).state == MessageState.DELIVERED.value


async def test_restart_rebuilds_tree_and_cursor(world, tmp_path):
    clock, store, origin, dest, indexer, proc, _ = world
    for i in range(6):
        origin.dispatch(2, b"%d" % i)
    await indexer.poll_once()
    again = OriginIndexer(origin, Store(store.url, owner="test"), known_destinations={2})
    again.load()
    assert again.tree.root() == origin.tree.root() and again.indexed_height == origin.height
    assert await again.poll_once() == 0


async def test_attester_signs_only_matching_root(world):
    clock, store, origin, dest, indexer, proc, _ = world
    signer = CheckpointSigner.from_hex(VALIDATOR_KEY)
    attester = OriginAttester(origin, indexer, [signer], store, Metrics())
    for i in range(3):
        origin.dispatch(2, b"%d" % i)
    await indexer.poll_once()
    assert await attester.poll_once() == 2
    assert (await attester.signed(signer.address, 1)).root == "0x" + origin.tree.root(2).hex()
    # a node that reports a root our indexed logs do not give: refused, nothing signed
    origin.dispatch(2, b"late")
    await indexer.poll_once()
    origin.lying_root = b"\x99" * 32
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        assert await attester.poll_once() is None
    assert any(e["event"] == "checkpoint_root_mismatch" and e["log_level"] == "error" for e in logs)
    assert attester.mismatches == 1 and attester.latest_index == 2


def test_leases_keep_two_instances_apart(tmp_path):
    clock = Clock()
    a = Store(f"sqlite:///{tmp_path / 's.db'}", owner="a", clock=clock)
    b = Store(a.url, owner="b", clock=clock)
    origin = FakeChain("o", 1)
    found = [origin.dispatch(2, b"%d" % i) for i in range(6)]
    a.record_dispatched(found, cursor=("index:1", 6), known_destinations={2})
    assert b.record_dispatched(found, cursor=("index:1", 6), known_destinations={2}) == 0
    got_a = a.claim_ready(2, 4, lease_s=30)
    got_b = b.claim_ready(2, 4, lease_s=30)
    assert len(got_a) == 4 and len(got_b) == 2 and not {m.id for m in got_a} & {m.id for m in got_b}
    clock.now += 31  # a died: its leases expire and b takes the work over
    assert len(b.claim_ready(2, 10, lease_s=30)) == 6


async def test_store_from_another_chain_is_refused_clearly(world):
    from relayer.pipeline.indexer import StoreAheadOfChain

    clock, store, origin, dest, indexer, proc, _ = world
    store.set_cursor(indexer.cursor_name, 500)  # indexed far past this chain's head
    indexer.load()
    with pytest.raises(StoreAheadOfChain, match="belongs to another chain"):
        await indexer.poll_once()


async def test_next_claim_in_follows_retry_times_and_other_instances_leases(world, tmp_path):
    clock, store, origin, dest, indexer, proc, _ = world
    assert store.next_claim_in(2) is None  # nothing open
    m0, m1 = origin.dispatch(2, b"a"), origin.dispatch(2, b"b")
    await indexer.poll_once()
    assert store.next_claim_in(2) <= 0
    other = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="other", clock=clock)
    assert [m.id for m in other.claim_ready(2, 1, 60.0)] == [m0.id]
    store.mark_not_ready([m1.id], FailureReason.NO_QUORUM, "later", 3.0)
    assert store.next_claim_in(2) == pytest.approx(3.0)  # m1's retry time; m0 is leased by the other instance
    store.mark_delivered([m1.id], tx_hash=None, height=None, at=clock.now)
    assert store.next_claim_in(2) == pytest.approx(60.0)  # when the other instance's lease on m0 runs out
    assert other.next_claim_in(2) <= 0  # its own lease does not hold the other instance back
    assert store.next_claim_in(1) is None
    other.close()


async def test_idle_loops_are_woken_by_new_work_not_by_polling(world, monkeypatch):
    import asyncio
    import time

    from relayer.pipeline import processor as processor_module

    clock, store, origin, dest, indexer, proc, _ = world
    monkeypatch.setattr(processor_module, "IDLE_POLL_S", 600.0)  # a missed wake-up would stall the test
    idle_checks = 0
    real_next_claim_in = store.next_claim_in

    def counting_next_claim_in(destination: int) -> float | None:
        nonlocal idle_checks
        idle_checks += 1
        return real_next_claim_in(destination)

    monkeypatch.setattr(store, "next_claim_in", counting_next_claim_in)

    async def until(predicate, what: str) -> None:
        deadline = time.monotonic() + 30
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    stop = asyncio.Event()
    task = asyncio.create_task(proc.run(stop))
    try:
        await until(lambda: idle_checks >= 1, "the prepare loop to go idle")
        m = origin.dispatch(2, b"woken")
        await indexer.poll_once()
        assert indexer.take_fresh_destinations() == {2} and indexer.take_fresh_destinations() == set()
        proc.wake()
        await until(lambda: dest.processed.get(m.id) == 1, "the woken loops to submit and confirm the message")
        await until(lambda: store.get(m.id).state == MessageState.DELIVERED.value, "DELIVERED in the store")
        assert idle_checks < 20  # no busy polling while idle
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_an_idle_prepare_loop_asks_only_when_work_is_due(world, monkeypatch):
    import asyncio
    import time

    clock, store, origin, dest, indexer, proc, _ = world
    m = origin.dispatch(2, b"later")
    await indexer.poll_once()
    store.mark_not_ready([m.id], FailureReason.NO_QUORUM, "later", 3.0)  # open, due in 3 s
    calls = {"claim_ready": 0, "next_claim_in": 0}
    for name in calls:
        real = getattr(store, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, counting)
    stop = asyncio.Event()
    task = asyncio.create_task(proc._loop(stop, proc.prepare_and_submit_once, proc._prepare_wake, proc._prepare_idle_s,
                                          recheck=proc._prepare_due_in))
    try:
        deadline = time.monotonic() + 30
        while calls["next_claim_in"] < 4:  # the idle waits (capped at 1 s) ran out and were re-checked
            assert time.monotonic() < deadline, calls
            await asyncio.sleep(0.05)
        assert calls["claim_ready"] == 1 and dest.submitted == [], calls  # nothing due: the step did not run again
        clock.now += 3.0  # the retry time has come
        while not dest.submitted:
            assert time.monotonic() < deadline, calls
            await asyncio.sleep(0.05)
        assert calls["claim_ready"] >= 2, calls  # the due retry ran the step (then it may look for more at once)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_periodic_job_cut_short_by_the_stop_ends_quietly_and_earlier_cancellation_propagates():
    import asyncio

    from relayer.daemon.daemon import _ends_quietly_on_stop

    async def forever() -> None:
        await asyncio.Event().wait()

    stop = asyncio.Event()
    job = asyncio.create_task(_ends_quietly_on_stop(forever, stop)())
    await asyncio.sleep(0)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job  # not stopping: a cancellation is not swallowed

    job = asyncio.create_task(_ends_quietly_on_stop(forever, stop)())
    await asyncio.sleep(0)
    stop.set()
    job.cancel()
    assert await job is None  # the daemon's stop: the job ends without an error for apscheduler to log


def _gas_hungry(dest: FakeChain) -> list[int]:
    """``dest`` estimates 5M gas for a message ending in "heavy", 50k for any other; the gas of each submission."""
    sent: list[int] = []
    plain_submit = dest.submit_delivery

    async def estimate(batch):  # type: ignore[no-untyped-def]
        from adapters.base import CostEstimate

        return CostEstimate(sum(5_000_000 if it.message.endswith(b"heavy") else 50_000 for it in batch.items), 10, 1)

    async def submit(batch, estimate=None):  # type: ignore[no-untyped-def]
        sent.append(estimate.gas if estimate else -1)
        return await plain_submit(batch, estimate)

    dest.estimate_delivery = estimate  # type: ignore[method-assign]
    dest.submit_delivery = submit  # type: ignore[method-assign]
    return sent


async def test_a_message_over_the_gas_limit_is_isolated_dropped_and_executed_by_the_operator(world):
    """relayer.max_gas_per_message: a batch over it is split; the one message that needs more is
    DROPPED(gas_limit_exceeded), the others go; the operator's manual execution sends it alone with its own gas."""
    clock, store, origin, dest, indexer, proc, _ = world
    proc.settings = proc.settings.model_copy(update={"max_gas_per_message": 200_000})
    sent = _gas_hungry(dest)
    msgs = [origin.dispatch(2, b"heavy" if i == 2 else b"ok%d" % i) for i in range(4)]
    await indexer.poll_once()
    assert await proc.prepare_and_submit_once() == 3
    assert sorted(len(b.items) for b in dest.submitted) == [1, 2]  # halves, then the half holding it split again
    heavy = store.get(msgs[2].id)
    assert heavy.state == MessageState.DROPPED.value and heavy.last_reason == FailureReason.GAS_LIMIT_EXCEEDED.value
    assert "needs 5000000 gas, over relayer.max_gas_per_message (200000)" in heavy.last_error
    assert await proc.confirm_once() == 3
    _rec, claimed = store.claim_for_execution(msgs[2].id, 60.0)
    assert claimed is not None
    tx = await proc.execute_now(claimed, 6_000_000)
    assert sent[-1] == 6_000_000 and [it.id for it in dest.submitted[-1].items] == [msgs[2].id]
    assert store.get(msgs[2].id).state == MessageState.SUBMITTED.value and tx.tx_hash
    assert await proc.confirm_once() == 1
    assert store.get(msgs[2].id).state == MessageState.DELIVERED.value and dest.processed[msgs[2].id] == 1


async def test_manual_execution_refuses_what_is_delivered_or_undeliverable(world):
    from relayer.pipeline.processor import ManualExecutionRefused

    clock, store, origin, dest, indexer, proc, _ = world
    done = origin.dispatch(2, b"done")
    await indexer.poll_once()
    dest.processed[done.id] = 1  # someone delivered it
    _rec, claimed = store.claim_for_execution(done.id, 60.0)
    with pytest.raises(ManualExecutionRefused, match="delivered already"):
        await proc.execute_now(claimed, 100_000)
    assert store.get(done.id).state == MessageState.DELIVERED.value
    rec, claimed = store.claim_for_execution(done.id, 60.0)
    assert rec is not None and claimed is None  # delivered: nothing to execute
    reorged = origin.dispatch(2, b"reorged")
    await indexer.poll_once()
    store.drop([reorged.id], FailureReason.ORIGIN_REORGED, "gone")
    assert store.claim_for_execution(reorged.id, 60.0)[1] is None  # its origin no longer holds it
