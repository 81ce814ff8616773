"""The store on both backends: a real SQLite file and a real PostgreSQL server (the one .ci/run starts, named
by RELAYER_TEST_POSTGRES_URL, or else one of the tests' own from tests/pg.py)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from sqlalchemy import text
from sqlmodel import Session

from adapters.base import CosignRequest, SignedTerms
from adapters.message import MessageId
from relayer.pipeline.outcome import Backoff
from relayer.store import DeliveryRecord, FailureReason, InstanceState, MessageState, Store, StoredMessage
from tests.fakes.chain import FakeChain
from tests.integration.harness import free_port_block
from tests.pg import PostgresServer


@pytest.fixture(scope="module")
def own_pg_server():
    if os.environ.get("RELAYER_TEST_POSTGRES_URL"):
        yield None
        return
    server = PostgresServer(free_port_block(1)).init()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server = request.getfixturevalue("own_pg_server")
    if server is not None:
        yield server.new_database()
        return
    url = os.environ["RELAYER_TEST_POSTGRES_URL"]
    schema_reset = Store(url)
    with schema_reset.engine.begin() as conn:
        for table in ("messages", "deliveries", "checkpoints", "cursors", "instances", "cosignatures",
                      "accountant_cosigns", "payout_limit_log"):
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
        dropped = a.mark_retry(ids[4:], FailureReason.TX_REVERTED, "reverted", backoff=Backoff(1, 8), max_attempts=1)
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
            # settle, as a processor does
            store.mark_delivered([m.id for m in batch], tx_hash=None, height=None, at=0.0)

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == 200 and len(set(all_ids)) == 200
    for s in stores:
        s.close()


# ---- several instances on one store: heartbeats and hand-over

LEASE_S = 30.0


def _seed(url: str, n: int) -> None:
    origin = FakeChain("o", 1)
    seed = Store(url)
    seed.record_dispatched([origin.dispatch(2, b"m%d" % i) for i in range(n)], cursor=("index:1", n),
                           known_destinations={2})
    seed.close()


def _die_holding_work(url: str, name: str, *, claim: int, submit: int) -> tuple[Store, list[StoredMessage], str]:
    """An instance that registered 100 s ago, claimed ``claim`` messages (leased for 600 s), submitted the first
    ``submit`` of them in one delivery, and has been silent since."""
    then = time.time() - 100
    dead = Store(url, owner=name, clock=lambda: then)
    dead.register_instance("relayer")
    got = dead.claim_ready(2, claim, lease_s=600)
    assert len(got) == claim
    tx = "0x" + name.encode().hex().ljust(64, "0")
    dead.record_submission(tx_hash=tx, destination=2, origin=1, sender="0xdead", nonce=0,
                           ids=[m.id for m in got[:submit]], gas_limit=1, max_fee=1)
    return dead, got, tx


def test_dead_instances_are_handed_over_once_to_racing_adopters(store_url):
    dead_names = [f"dead{k}" for k in range(8)]
    _seed(store_url, 6 * len(dead_names))
    held = {}
    for name in dead_names:
        store, got, tx = _die_holding_work(store_url, name, claim=6, submit=4)
        held[name] = (got, tx)
        store.close()
    adopters = [Store(store_url, owner=f"live{k}") for k in range(4)]
    for a in adopters:
        a.register_instance("relayer")
    barrier = threading.Barrier(len(adopters))
    results: dict[str, list] = {}
    errors: list[BaseException] = []

    def race(store: Store) -> None:
        try:
            barrier.wait(10)
            results[store.owner] = store.adopt_dead_instances(LEASE_S)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(a,)) for a in adopters]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    winners = {h.from_instance: owner for owner, hs in results.items() for h in hs}
    handed = [h for hs in results.values() for h in hs]
    assert sorted(h.from_instance for h in handed) == dead_names  # each dead instance exactly once
    assert all(h.reason is FailureReason.INSTANCE_DIED and h.silent_s > LEASE_S for h in handed)
    assert all(len(h.deliveries) == 1 and h.submitted == 4 and h.released == 2 for h in handed)

    check = adopters[0]
    instances = {i.name: i for i in check.instances()}
    for name in dead_names:
        got, tx = held[name]
        winner = winners[name]
        assert instances[name].state == InstanceState.DEAD.value and instances[name].handed_over_to == winner
        delivery = _delivery(check, tx)
        assert delivery.owner == winner and delivery.adopted_from == name and delivery.adopted_at is not None
        assert delivery.ids() == [m.id for m in got[:4]]
        for m in got[:4]:
            rec = check.get(m.id)
            assert rec.state == MessageState.SUBMITTED.value and rec.lease_owner == winner
            assert rec.handed_over_from == name and rec.last_reason == FailureReason.INSTANCE_DIED.value
            assert f"handed over from {name} to {winner}" in rec.last_error
        for m in got[4:]:  # released at once: claimable by anyone, no need to wait for the 600 s lease
            rec = check.get(m.id)
            assert rec.state == MessageState.DISPATCHED.value and rec.lease_until == 0.0 and rec.lease_owner is None
            assert rec.handed_over_from == name and rec.last_reason == FailureReason.INSTANCE_DIED.value
    assert all(a.adopt_dead_instances(LEASE_S) == [] for a in adopters)  # nothing left, nothing taken twice
    assert adopters[0].alive_instances(LEASE_S) == len(adopters)
    released = adopters[1].claim_ready(2, 100, lease_s=60)
    assert len(released) == 2 * len(dead_names)
    for a in adopters:
        a.close()


def _delivery(store: Store, tx_hash: str) -> DeliveryRecord:
    with Session(store.engine) as s:
        rec = s.get(DeliveryRecord, tx_hash)
    assert rec is not None and rec.state == "pending"
    return rec


def test_live_instances_are_left_alone_and_a_returning_one_takes_back_its_name(store_url):
    _seed(store_url, 4)
    clock = [time.time()]
    busy = Store(store_url, owner="busy", clock=lambda: clock[0])
    busy.register_instance("relayer")
    got = busy.claim_ready(2, 2, lease_s=600)
    busy.record_submission(tx_hash="0x" + "bb" * 32, destination=2, origin=1, sender="0xb", nonce=0, ids=[got[0].id],
                           gas_limit=1, max_fee=1)
    peer = Store(store_url, owner="peer")
    peer.register_instance("relayer")
    assert peer.adopt_dead_instances(LEASE_S) == []  # busy beats: not touched
    assert [d.owner for d in busy.pending_deliveries(2)] == ["busy"]

    clock[0] -= 2 * LEASE_S  # busy's next beat comes late: it stalled for a whole lease (a GC pause, a slow disk)
    busy.heartbeat()
    (handover,) = peer.adopt_dead_instances(LEASE_S)
    assert handover.from_instance == "busy" and busy.pending_deliveries(2) == []
    clock[0] += 2 * LEASE_S
    was = busy.heartbeat()  # it is back, and learns that its work went to peer
    assert was is not None and was.handed_over_to == "peer"
    assert {i.name: i.state for i in peer.instances()}["busy"] == InstanceState.ALIVE.value
    assert busy.heartbeat() is None
    assert peer.adopt_dead_instances(LEASE_S) == []
    busy.close()
    peer.close()


def test_a_stopped_instance_releases_its_leases_and_is_handed_over_at_once(store_url):
    _seed(store_url, 5)
    leaving = Store(store_url, owner="leaving")
    leaving.register_instance("relayer")
    got = leaving.claim_ready(2, 5, lease_s=600)
    leaving.record_submission(tx_hash="0x" + "cc" * 32, destination=2, origin=1, sender="0xc", nonce=3, ids=[got[0].id],
                              gas_limit=1, max_fee=1)
    leaving.stop_instance()
    other = Store(store_url, owner="other")
    assert len(other.claim_ready(2, 10, lease_s=60)) == 4  # released by the clean stop, before any hand-over
    (handover,) = other.adopt_dead_instances(LEASE_S)  # stopped: no need to wait for the lease
    assert handover.reason is FailureReason.INSTANCE_STOPPED and handover.deliveries == ("0x" + "cc" * 32,)
    assert other.get(got[0].id).last_reason == FailureReason.INSTANCE_STOPPED.value
    leaving.close()
    other.close()


def test_a_lease_that_ran_out_under_another_instance_is_recorded(store_url):
    _seed(store_url, 3)
    clock = [1_000.0]
    a = Store(store_url, owner="a", clock=lambda: clock[0])
    b = Store(store_url, owner="b", clock=lambda: clock[0])
    assert len(a.claim_ready(2, 2, lease_s=10)) == 2
    assert len(a.claim_ready(2, 2, lease_s=10)) == 2  # our own lease: reclaimed, not "expired"
    ours = a.get(a.claim_ready(2, 2, lease_s=10)[0].id)
    assert ours.last_reason is None
    clock[0] += 11
    taken = b.claim_ready(2, 5, lease_s=10)
    assert len(taken) == 3
    reasons = {m.id: b.get(m.id).last_reason for m in taken}
    assert sorted(reasons.values(), key=str) == [None] + [FailureReason.LEASE_EXPIRED.value] * 2
    a.close()
    b.close()


def test_settle_delivery_is_one_step_and_upserts_survive_racing_writers(store_url):
    _seed(store_url, 3)
    s = Store(store_url, owner="a")
    got = s.claim_ready(2, 3, lease_s=60)
    tx = "0x" + "dd" * 32
    s.record_submission(tx_hash=tx, destination=2, origin=1, sender="0xa", nonce=0, ids=[m.id for m in got],
                        gas_limit=1, max_fee=1)
    # wei: far past 2**31
    s.settle_delivery(tx, [m.id for m in got[:2]], at=5.0, gas_used=7, fee_paid=3 * 10**18, height=11)
    assert s.pending_deliveries(2) == []
    assert [s.get(m.id).state for m in got] == ["DELIVERED", "DELIVERED", "SUBMITTED"]
    stores = [Store(store_url, owner=f"w{k}") for k in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def write(store: Store, k: int) -> None:
        try:
            barrier.wait(10)
            for i in range(20):
                store.set_cursor(f"race:{i}", k)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(st, k)) for k, st in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and all(s.cursor(f"race:{i}") in range(4) for i in range(20))
    for st in [s, *stores]:
        st.close()


def test_a_store_created_by_an_older_version_gains_the_new_columns(store_url):
    old = Store(store_url)
    with old.engine.begin() as conn:
        conn.execute(text("ALTER TABLE messages DROP COLUMN handed_over_from"))
        conn.execute(text("ALTER TABLE deliveries DROP COLUMN adopted_from"))
        if old.engine.dialect.name == "postgresql":  # an older version's 32-bit ints (SQLite's are 64-bit anyway)
            conn.execute(text("ALTER TABLE deliveries ALTER COLUMN fee_paid TYPE INTEGER"))
    old.close()
    _seed(store_url, 1)  # opens the store again: the columns are back, and wide
    s = Store(store_url, owner="a")
    (m,) = s.claim_ready(2, 1, lease_s=60)
    assert s.get(m.id).handed_over_from is None
    tx = "0x" + "ee" * 32
    s.record_submission(tx_hash=tx, destination=2, origin=1, sender="0xa", nonce=0, ids=[m.id], gas_limit=1, max_fee=1)
    s.settle_delivery(tx, [m.id], at=1.0, gas_used=1, fee_paid=10**18, height=1)
    assert s.get(m.id).state == MessageState.DELIVERED.value
    s.close()


async def test_cosignatures_and_reservations_take_and_give_message_ids(store_url):
    """The validators' tables: ids go in and come out as ``MessageId`` (0x hex in the rows), u64 terms fit, and the
    same calls are declared on ``store.aio``."""
    s = Store(store_url)
    ids = [MessageId(bytes([k]) * 32) for k in (1, 2)]
    far = SignedTerms(last_height=2**40, sequence=2**33, anchor="hash")
    await s.aio.record_cosignatures("0xv", "sol", ids, "aa" * 32, far, at=1.0)
    await s.aio.record_cosignatures("0xv", "sol", ids[1:], "bb" * 32, SignedTerms(7), at=2.0)  # replaces the second
    got = {c.message_id: c for c in await s.aio.cosignatures("0xv", "sol", [*ids, MessageId(b"\3" * 32)])}
    assert set(got) == set(ids) and got[ids[0]].terms == far
    assert (got[ids[1]].payload_sha256, got[ids[1]].terms) == ("bb" * 32, SignedTerms(7, None, ""))
    assert s.cosignatures("0xv", "cosmos", ids) == []
    request = CosignRequest("sol", b"payload", (b"m1", b"m2"), {"k": "v"})
    await s.aio.reserve_cosign("0xv", "sol", "cc" * 32, request, ids, {"1:0x7e": 10**30}, at=3.0)
    (row,) = await s.aio.open_reservations("0xv", "sol")
    assert row.ids() == ids and row.amount("1:0x7e") == 10**30 and row.amount("2:0x00") == 0
    assert row.cosign_request() == request and json.loads(row.message_ids)[0] == "0x" + "01" * 32
    await s.aio.settle_reservations([row], at=4.0)
    assert await s.aio.open_reservations("0xv", "sol") == []
    await s.aio.reserve_cosign("0xv", "sol", "cc" * 32, request, ids, {"1:0x7e": 1}, at=5.0)  # counts again
    (again,) = s.open_reservations("0xv", "sol")
    assert (again.signed_at, again.settled_at, again.amount("1:0x7e")) == (5.0, None, 10**30)
    s.close()
