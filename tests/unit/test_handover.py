"""Hand-over logic on fake chains and a real SQLite file: an adopted delivery whose tx (signed by the dead
instance's wallet) never gets mined is given up and its messages retried; store outages never end a loop."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from adapters.base import SubmittedTx, TxOutcome, TxState
from config.settings import RelayerRoleSettings
from relayer.daemon.metrics import Metrics
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.processor import DestinationProcessor
from relayer.store import FailureReason, MessageState, Store, StoreError
from tests.fakes.chain import FakeChain
from tests.unit.test_pipeline import Clock, TreeCollector


class StuckChain(FakeChain):
    """Every delivery tx sits in the pool, never mined."""

    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        return TxOutcome(TxState.PENDING, reason="in the pool")


def _processor(store: Store, origin: FakeChain, dest: FakeChain, clock: Clock, metrics: Metrics | None = None):
    indexer = OriginIndexer(origin, store, known_destinations={1, 2})
    indexer.load()
    settings = RelayerRoleSettings(batch_size=8, adopted_tx_timeout_s=60)
    return indexer, DestinationProcessor(dest, store, {1: indexer}, TreeCollector(origin.mailbox), settings,  # type: ignore[arg-type]
                                         metrics or Metrics(), clock=clock)


async def test_an_adopted_tx_that_is_never_mined_is_given_up_and_its_messages_retried(tmp_path):
    clock = Clock()
    url = f"sqlite:///{tmp_path / 'r.db'}"
    origin, dest = FakeChain("o", 1), StuckChain("d", 2)
    msgs = [origin.dispatch(2, b"m%d" % i) for i in range(4)]
    dead = Store(url, owner="dead", clock=clock)
    dead.register_instance("relayer")
    indexer, dead_proc = _processor(dead, origin, dest, clock)
    await indexer.poll_once()
    assert await dead_proc.prepare_and_submit_once() == 4
    clock.now += 31  # dead stops beating
    live = Store(url, owner="live", clock=clock)
    live.register_instance("relayer")
    (handover,) = live.adopt_dead_instances(30)
    assert handover.submitted == 4 and len(handover.deliveries) == 1
    _, live_proc = _processor(live, origin, dest, clock)
    assert await live_proc.confirm_once() == 0  # pending, and not yet for long
    assert len(live.pending_deliveries(2)) == 1
    dest.processed[msgs[0].id] = 1  # the chain did process one of them after all (another relayer)
    clock.now += 61
    dest.height += 1  # a new block: the processor looks again
    with capture_logs() as logs:
        await live_proc.confirm_once()
    assert live.pending_deliveries(2) == []
    (abandoned,) = [e for e in logs if e["event"] == "adopted_delivery_abandoned"]
    assert abandoned["from_instance"] == "dead" and abandoned["messages"] == 4
    recs = [live.get("0x" + m.id.hex()) for m in msgs]
    assert recs[0].state == MessageState.DELIVERED.value
    assert all(r.state == MessageState.DISPATCHED.value and r.last_reason == FailureReason.TX_DROPPED.value
               and r.attempts == 1 and "not mined after 60s" in r.last_error for r in recs[1:])
    dead.close()
    live.close()


async def test_a_store_outage_is_backed_off_and_the_loop_goes_on(tmp_path):
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="a", clock=clock)
    metrics = Metrics()
    _, proc = _processor(store, FakeChain("o", 1), FakeChain("d", 2), clock, metrics)
    stop = asyncio.Event()
    calls = 0

    async def step() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise StoreError("store down", reason="store_unavailable")
        stop.set()
        return 0

    with capture_logs() as logs:
        await asyncio.wait_for(proc._loop(stop, step), 10)
    assert calls == 3
    assert metrics.value("relayer_store_errors_total", reason="store_unavailable", where="d") == 2
    failed = [e for e in logs if e["event"] == "destination_step_failed"]
    assert [e["failures"] for e in failed] == [1, 2] and failed[1]["retry_in_s"] > failed[0]["retry_in_s"]
    store.close()
