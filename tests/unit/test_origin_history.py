"""Origin history faults on fake chains: a chain back below the cursor, a reorg deeper than finality (the origin
halts, validators refuse, processors hold), no conflicting signature, and backlog catch-up progress."""

from __future__ import annotations

import pytest
from rich.console import Console
from structlog.testing import capture_logs

from adapters.base import DispatchedMessage, Height
from adapters.checkpoint import CheckpointSigner
from adapters.merkle import MerkleTree
from config.settings import RelayerRoleSettings
from relayer.cli.statusview import catch_up_table
from relayer.daemon.metrics import Metrics
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.processor import DestinationProcessor
from relayer.pipeline.validator import OriginAttester
from relayer.store import FailureReason, MessageState, Store
from tests.fakes.chain import FakeChain
from tests.unit.test_pipeline import VALIDATOR_KEY, Clock, TreeCollector


class RewritableChain(FakeChain):
    """A fake origin whose history can be cut back (a node restored from an older dump, or a reorg)."""

    def rewind(self, height: int) -> list[DispatchedMessage]:
        """Forget every block above ``height`` (their dispatches too); returns what was removed."""
        gone = [d for d in self.messages if d.height > height]
        self.messages = [d for d in self.messages if d.height <= height]
        self.tree = MerkleTree([d.id for d in self.messages])
        self.height = Height(height)
        return gone

    def mine_empty(self, blocks: int) -> None:
        self.height = Height(self.height + blocks)


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="test", clock=Clock())
    yield s
    s.close()


async def test_chain_back_below_the_cursor_is_waited_for_without_skipping_or_indexing_twice(store):
    chain = RewritableChain("o", 1)
    for i in range(3):
        chain.dispatch(2, b"m%d" % i)  # heights 1..3
    indexer = OriginIndexer(chain, store, known_destinations={2})
    assert await indexer.poll_once() == 3 and indexer.indexed_height == 3
    chain.height = Height(1)  # the node came back from a dump one block behind... with the same history
    with capture_logs() as logs:
        assert await indexer.poll_once() == 0
        assert await indexer.poll_once() == 0
    waiting = [e for e in logs if e["event"] == "chain_behind_cursor"]
    assert len(waiting) == 1 and waiting[0]["cursor"] == 3 and waiting[0]["finalized"] == 1
    assert indexer.indexed_height == 3 and indexer.reorg is None
    chain.height = Height(3)
    chain.dispatch(2, b"after")  # height 4
    assert await indexer.poll_once() == 1
    assert [n for n, _ in store.message_ids_in_order(1)] == [0, 1, 2, 3] and indexer.tree.root() == chain.tree.root()


async def test_rolled_back_over_empty_blocks_new_dispatches_there_are_indexed_not_skipped(store):
    chain = RewritableChain("o", 1)
    chain.dispatch(2, b"m0")  # height 1
    chain.mine_empty(5)
    indexer = OriginIndexer(chain, store, known_destinations={2})
    await indexer.poll_once()
    assert indexer.indexed_height == 6
    chain.rewind(2)  # the node lost blocks 3..6 (empty): every indexed message is still there
    with capture_logs() as logs:
        assert await indexer.poll_once() == 0
    (rewound,) = [e for e in logs if e["event"] == "cursor_rewound"]
    assert (rewound["cursor"] == 6 and rewound["to"] == 2 and indexer.indexed_height == 2
            and store.cursor("index:1") == 2)
    late = chain.dispatch(2, b"m1 at height 3, below the old cursor")
    assert await indexer.poll_once() == 1 and indexer.reorg is None
    assert store.get(late.id) is not None and [n for n, _ in store.message_ids_in_order(1)] == [0, 1]


async def test_new_messages_at_heights_the_cursor_passed_are_found_by_the_history_check(store):
    chain = RewritableChain("o", 1)
    chain.dispatch(2, b"m0")
    chain.mine_empty(5)  # height 6
    indexer = OriginIndexer(chain, store, known_destinations={2})
    await indexer.poll_once()
    chain.rewind(3)
    late = chain.dispatch(2, b"m1 at height 4")  # the chain re-grew past nothing; height 4 < cursor 6
    chain.mine_empty(3)  # height 7: final at the cursor again, with one message more than indexed there
    assert await indexer.poll_once() == 1 and indexer.reorg is None
    assert store.get(late.id).origin_height == 4


async def test_chain_back_lower_with_other_messages_is_a_reorg_and_drops_only_the_lost_ones(store):
    chain = RewritableChain("o", 1)
    kept = chain.dispatch(2, b"kept")
    lost = [chain.dispatch(2, b"lost%d" % i) for i in range(2)]
    indexer = OriginIndexer(chain, store, known_destinations={2})
    await indexer.poll_once()
    chain.rewind(1)
    assert await indexer.poll_once() == 0  # below the cursor and still a prefix: wait
    replaced = [chain.dispatch(2, b"other%d" % i) for i in range(3)]  # nonces 1, 2 now hold other messages
    with capture_logs() as logs:
        assert await indexer.poll_once() == 0
        assert await indexer.poll_once() == 0  # halted: nothing more indexed
    (event,) = [e for e in logs if e["event"] == "origin_reorged"]
    assert event["log_level"] == "error" and event["canonical_messages"] == 1 and event["indexed_messages"] == 3
    assert event["agreeing_height"] == 1 and event["dropped"] == 2
    assert indexer.reorg is not None and indexer.reorg.canonical_count == 1
    assert store.get(kept.id).state == MessageState.DISPATCHED.value
    for d in lost:
        rec = store.get(d.id)
        assert rec.state == MessageState.DROPPED.value and rec.last_reason == FailureReason.ORIGIN_REORGED.value
    assert all(store.get(d.id) is None for d in replaced)
    assert indexer.metrics.value("relayer_reorg_detected_total", chain="o") == 1
    assert indexer.metrics.value("relayer_origin_halted", chain="o") == 1


async def test_reorg_deeper_than_finality_halts_signing_and_delivery_but_not_the_canonical_prefix(tmp_path):
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="test", clock=clock)
    origin, dest = RewritableChain("o", 1), FakeChain("d", 2)
    metrics = Metrics()
    indexer = OriginIndexer(origin, store, known_destinations={1, 2}, metrics=metrics)
    signer = CheckpointSigner.from_hex(VALIDATOR_KEY)
    attester = OriginAttester(origin, indexer, [signer], store, metrics)
    collector = TreeCollector(origin.mailbox)
    settings = RelayerRoleSettings(batch_size=10, backoff_base_s=1.0, backoff_max_s=8.0, max_attempts=5)
    proc = DestinationProcessor(dest, store, {1: indexer}, collector, settings, metrics, clock=clock)  # type: ignore[arg-type]
    first = [origin.dispatch(2, b"a%d" % i) for i in range(2)]
    origin.mine_empty(2)
    second = [origin.dispatch(2, b"b%d" % i) for i in range(2)]  # heights 5, 6
    await indexer.poll_once()
    assert await attester.poll_once() == 3
    signed_root = (await attester.signed(signer.address, 3)).root
    origin.rewind(4)  # blocks 5, 6 replaced: other messages at nonces 2, 3
    forks = [origin.dispatch(2, b"fork%d" % i) for i in range(2)]
    with capture_logs() as logs:
        await indexer.poll_once()
        assert await attester.poll_once() is None
        assert await attester.poll_once() is None
    refused = [e for e in logs if e["event"] == "checkpoint_refused"]
    assert len(refused) == 1 and refused[0]["reason"] == "reorg" and refused[0]["log_level"] == "error"
    assert metrics.value("validator_checkpoint_refused_total", origin="o", reason="reorg") == 1
    assert await attester.signed(signer.address, 3) is None and await attester.signed(signer.address, None) is None
    assert store.checkpoint(signer.address, 1, 3).root == signed_root  # what was signed stays; nothing new
    # the processor delivers the canonical prefix and never the messages the chain no longer holds
    await proc.prepare_and_submit_once()
    await proc.confirm_once()
    assert set(dest.processed) == {d.id for d in first}
    for d in second:
        assert store.get(d.id).last_reason == FailureReason.ORIGIN_REORGED.value
    assert all(store.get(d.id) is None for d in forks)
    # a message an attempt in flight put back in the queue is dropped again on the next poll
    store.requeue([second[0].id])
    await indexer.poll_once()
    assert store.get(second[0].id).state == MessageState.DROPPED.value
    store.close()


async def test_validator_never_signs_another_root_at_an_index_it_signed(store):
    origin = RewritableChain("o", 1)
    for i in range(2):
        origin.dispatch(2, b"m%d" % i)
    indexer = OriginIndexer(origin, store, known_destinations={2})
    signer = CheckpointSigner.from_hex(VALIDATOR_KEY)
    attester = OriginAttester(origin, indexer, [signer], store, Metrics())
    await indexer.poll_once()
    assert await attester.poll_once() == 1
    with capture_logs() as logs:
        assert await attester._sign(signer.address, 1, b"\x42" * 32) is None
    assert [e["event"] for e in logs] == ["checkpoint_conflict"]
    assert attester.metrics.value("validator_checkpoint_refused_total", origin="o", reason="conflicting_root") == 1


async def test_backlog_catch_up_reports_progress_then_caught_up(store):
    chain = RewritableChain("o", 1)
    chain.dispatch(2, b"early")
    chain.mine_empty(4_000)
    chain.dispatch(2, b"late")
    ticks = iter(range(1_000))
    indexer = OriginIndexer(chain, store, known_destinations={2}, max_range=500, backlog_threshold=1_000,
                            progress_interval_s=0.0, clock=lambda: float(next(ticks)))
    with capture_logs() as logs:
        while indexer.indexed_height is None or indexer.indexed_height < chain.height:
            await indexer.poll_once()
            if indexer.backlog is not None:
                table = catch_up_table({1: indexer}, {1: "o"})
                assert table is not None
    progress = [e for e in logs if e["event"] == "backlog_progress"]
    assert [e["indexed"] for e in progress] == sorted({e["indexed"] for e in progress}) and len(progress) >= 5
    assert all(e["target"] == 4_002 and e["blocks_per_s"] > 0 and e["eta_s"] >= 0 for e in progress)
    assert next(e["event"] for e in logs if e["event"].startswith("backlog_")) == "backlog_started"
    (done,) = [e for e in logs if e["event"] == "backlog_caught_up"]
    assert done["indexed"] == 4_002 and done["blocks"] == 4_003  # heights 0..4002
    assert indexer.backlog is None and indexer.tree.count == 2
    assert catch_up_table({1: indexer}, {1: "o"}) is None


def test_catch_up_table_draws_a_bar_per_origin_behind(store):
    from relayer.pipeline.indexer import BacklogProgress

    chain = RewritableChain("o", 1)
    indexer = OriginIndexer(chain, store, known_destinations={2})
    indexer.backlog = BacklogProgress(start=0, indexed=2_500, target=10_000, started_at=0.0, blocks_per_s=500.0)
    console = Console(width=120, record=True)
    console.print(catch_up_table({1: indexer}, {1: "rollup_a"}))
    text = console.export_text()
    assert "rollup_a" in text and "2500 / 10000 (25%)" in text and "15s" in text


async def test_status_view_shows_catch_up_bars_and_halted_origins(store):
    from types import SimpleNamespace

    from relayer.cli.statusview import StatusView
    from relayer.pipeline.indexer import BacklogProgress, ReorgReport

    behind, halted = OriginIndexer(RewritableChain("a", 1), store, known_destinations={2}), \
        OriginIndexer(RewritableChain("b", 2), store, known_destinations={1})
    behind.backlog = BacklogProgress(start=100, indexed=600, target=1_100, started_at=0.0, blocks_per_s=50.0)
    halted.reorg = ReorgReport(10, 8, 3, 5, 2, "at height 10 ...")
    settings = SimpleNamespace(chains={"rollup_a": SimpleNamespace(domain=1), "rollup_b": SimpleNamespace(domain=2)},
                               api=SimpleNamespace(url="http://127.0.0.1:1"))
    daemon = SimpleNamespace(settings=settings, chain_status={}, indexers={1: behind, 2: halted}, attesters={},
                             store=store, role="all")
    console = Console(width=160, record=True)
    console.print(await StatusView(daemon, log_file=None).render())  # type: ignore[arg-type]
    text = console.export_text()
    assert "backlog catch-up" in text and "600 / 1100 (50%)" in text and "10s" in text
    assert "ORIGIN HALTED" in text and "rollup_b" in text
