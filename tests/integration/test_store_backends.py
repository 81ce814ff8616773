"""The store on both backends: a real SQLite file and a real PostgreSQL server (started by .ci/run)."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import text

from relayer.backoff import ExponentialBackoff
from relayer.store import FailureReason, MessageState, Store
from tests.fakes.chain import FakeChain


def _postgres_url() -> str:
    url = os.environ.get("RELAYER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("RELAYER_TEST_POSTGRES_URL is not set: .ci/run starts PostgreSQL for this test")
        pytest.skip("no PostgreSQL here: run scripts/ci-postgres.sh start DIR and set RELAYER_TEST_POSTGRES_URL")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url = _postgres_url()
    schema_reset = Store(url)
    with schema_reset.engine.begin() as conn:
        for table in ("messages", "deliveries", "checkpoints", "cursors"):
            conn.execute(text(f"DELETE FROM {table}"))
    schema_reset.close()
    yield url


def test_index_claim_deliver_retry(store_url):
    origin = FakeChain("o", 1)
    found = [origin.dispatch(2, b"m%d" % i) for i in range(20)]
    a, b = Store(store_url, owner="a"), Store(store_url, owner="b")
    try:
        assert a.record_dispatched(found, cursor=("index:1", 20), known_destinations={2}) == 20
        assert b.record_dispatched(found, cursor=("index:1", 20), known_destinations={2}) == 0  # idempotent
        assert a.cursor("index:1") == 20
        assert [n for n, _ in a.message_ids_in_order(1)] == list(range(20))

        got = a.claim_ready(2, 8, lease_s=60)
        assert [m.nonce for m in got] == list(range(8))
        ids = [m.id for m in got]
        a.record_submission(tx_hash="0x" + "aa" * 32, destination=2, origin=1, sender="0xr", nonce=0, ids=ids[:4],
                            gas_limit=1, max_fee=1)
        a.mark_delivered(ids[:4], tx_hash="0x" + "aa" * 32, height=5, at=1.0)
        dropped = a.mark_retry(ids[4:], FailureReason.TX_REVERTED, "reverted", backoff=ExponentialBackoff(1, 8), max_attempts=1)
        assert sorted(dropped) == sorted(ids[4:])
        counts = a.counts_by_state()
        assert counts[(2, MessageState.DELIVERED.value)] == 4 and counts[(2, MessageState.DROPPED.value)] == 4
        assert a.get(ids[4]).last_reason == FailureReason.MAX_ATTEMPTS.value
    finally:
        a.close()
        b.close()


def test_concurrent_claims_never_overlap(store_url):
    origin = FakeChain("o", 1)
    found = [origin.dispatch(2, b"m%d" % i) for i in range(200)]
    seed = Store(store_url)
    seed.record_dispatched(found, cursor=("index:1", 200), known_destinations={2})
    seed.close()
    stores = [Store(store_url, owner=f"w{i}") for i in range(4)]
    claimed: dict[str, list[str]] = {}

    def worker(store: Store) -> None:
        mine = claimed.setdefault(store.owner, [])
        while batch := store.claim_ready(2, 7, lease_s=60):
            mine.extend(m.id for m in batch)
            store.mark_delivered([m.id for m in batch], tx_hash=None, height=None, at=0.0)  # settle, as a processor does

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == 200 and len(set(all_ids)) == 200
    for s in stores:
        s.close()
