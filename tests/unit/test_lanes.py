"""Durable lanes (router/lanes.py), as logic over a real SQLite file and an in-memory fake chain.

Covered:

* ``LaneStore.lease``: daemons share the lanes fairly (6 lanes, two daemons: three each, never one lane held by
  both); a silent daemon's lanes are adopted only once its lease has run out, under a higher epoch; a daemon whose
  lane was adopted is fenced: its ``write_ahead`` raises ``LeaseLost`` and writes nothing.
* ``LaneExecutor`` driven one ``_step`` at a time (no run loop, no threads): planned intents are signed at
  consecutive nonces from the chain's pending nonce, stored ``signed`` before they are sent, then settled
  ``included`` from their receipts; after a restart a stored signed transaction is sent again as the same bytes
  and never signed twice; a transaction whose nonce another transaction took is planned again only after two
  checks found it dead, then lands once; a call the allow-list refuses fails without spending a nonce.

The fake chain (``FakeChain``) keeps each account's mined nonce, a pool of raw transactions keyed by (account,
nonce), mines the pool in nonce order with ``mine()``, and records every raw broadcast and every signature.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest
from sqlalchemy import create_engine, select

from adapters.base import Height, OutboundRateLimited, TxReceipt
from adapters.capabilities import Broadcast, PreparedTx, PresignedTx, TxSpec, WriteAheadSender
from router.intents import IntentExecutor, IntentRecord, IntentStatus, IntentStore, Operator
from router.lanes import (
    BLOCKED_REPEAT_S,
    LaneExecutor,
    LaneKey,
    LaneStore,
    Lease,
    LeaseLost,
    OperatorLane,
    _LaneState,
)

CHAIN = "l1"
DESTINATION = "rollup_a"
KEY = "0x" + "01" * 32
ACCOUNT = "0x" + "0a" * 20
LANE = LaneKey(CHAIN, ACCOUNT)
CONTRACT = "0x" + "c0" * 20
LEASE_S = 10.0
FEE = 21_000 * 7  # what every mined transaction of the fake chain paid
P = ParamSpec("P")
R = TypeVar("R")


class Clock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _hash(raw: bytes) -> str:
    return "0x" + hashlib.sha256(raw).hexdigest()


class FakeChain(WriteAheadSender):
    """Mined nonces per account, a pool of raw transactions keyed by (account, nonce), receipts of mined ones; records
    every raw broadcast (``broadcasts``), every signature (``signed``) and every mined transaction (``landed``)."""

    def __init__(self, *, mined: int = 0) -> None:
        self.accounts = {KEY: ACCOUNT}  # key -> account
        self.mined = {ACCOUNT: mined}
        self.pool: dict[tuple[str, int], bytes] = {}
        self.receipts_by_hash: dict[str, TxReceipt] = {}
        self.broadcasts: list[bytes] = []
        self.signed: list[PresignedTx] = []
        self.landed: list[bytes] = []
        self.height = 100
        self.needs_approval = False
        self.base_fee = 1  # a transaction whose max fee is below it waits in the pool

    async def prerequisites(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx]:
        """An approval until one has landed, when a spec is ``xchain`` and ``needs_approval`` is set."""
        if not self.needs_approval or not any(s.kind == "xchain" for s in specs) or any(
                json.loads(raw)["target"] == "approve" for raw in self.landed):
            return []
        return [PreparedTx(TxSpec("approve", "bridge", symbol="TST"), "approve", b"", gas=50_000, max_fee=10, tip=1)]

    async def prepare(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx | Exception]:
        targets = {"call": None, "xchain": "bridge"}
        return [PreparedTx(spec, targets.get(spec.kind, f"token:{spec.symbol}") or spec.to, spec.data, gas=21_000,
                           max_fee=10, tip=1) for spec in specs]

    def sign(self, key: str, prepared: PreparedTx, nonce: int) -> PresignedTx:
        raw = json.dumps({"from": self.accounts[key], "nonce": nonce, "pays": prepared.spec.to,
                          "amount": prepared.spec.amount, "target": prepared.target,
                          "max_fee": prepared.max_fee}).encode()
        tx = PresignedTx(raw, _hash(raw), nonce)
        self.signed.append(tx)
        return tx

    async def broadcast(self, raws: Sequence[bytes]) -> list[tuple[Broadcast, str]]:
        self.broadcasts.extend(raws)
        return [self._take(raw) for raw in raws]

    def _take(self, raw: bytes) -> tuple[Broadcast, str]:
        tx = json.loads(raw)
        slot = (tx["from"], tx["nonce"])
        if tx["nonce"] < self.mined[tx["from"]]:
            return Broadcast.NONCE_USED, "nonce too low"
        pooled = self.pool.setdefault(slot, raw)
        if pooled != raw and json.loads(pooled).get("max_fee", math.inf) >= tx["max_fee"]:
            return Broadcast.REFUSED, "replacement transaction underpriced"
        self.pool[slot] = raw  # new, or a dearer replacement
        return Broadcast.ACCEPTED, ""

    async def replacements(self, key: str, raws: Sequence[bytes]) -> list[PresignedTx | None]:
        out: list[PresignedTx | None] = []
        for raw in raws:
            tx = json.loads(raw)
            if tx["max_fee"] >= self.base_fee:
                out.append(None)
                continue
            spec = TxSpec("transfer", tx["pays"], amount=tx["amount"])
            out.append(self.sign(key, PreparedTx(spec, tx["target"], b"", 21_000, self.base_fee * 2, 1), tx["nonce"]))
        return out

    def replace_pooled(self, account: str, nonce: int) -> None:
        """Another transaction of the account (its key used elsewhere) takes ``nonce`` in the pool."""
        self.pool[(account, nonce)] = json.dumps({"from": account, "nonce": nonce, "pays": "someone else"}).encode()

    def mine(self) -> None:
        """One block: every pooled transaction that is next in its account's nonce order, in that order."""
        self.height += 1
        for account in self.mined:
            while (raw := self.pool.get((account, self.mined[account]))) is not None:
                if json.loads(raw).get("max_fee", math.inf) < self.base_fee:
                    break  # priced out: it and every later nonce wait
                del self.pool[(account, self.mined[account])]
                xchain = json.loads(raw).get("target") == "bridge"
                self.receipts_by_hash[_hash(raw)] = TxReceipt(Height(self.height), True, FEE, account,
                                                              message_id=_hash(raw).encode()[:32] if xchain else None)
                self.landed.append(raw)
                self.mined[account] += 1

    def landed_to(self, recipient: str) -> int:
        return sum(json.loads(raw)["pays"] == recipient for raw in self.landed)

    def lane_kinds(self) -> frozenset[str]:
        return frozenset({"transfer", "call", "xchain"})

    async def decided(self, account: str, txs: Sequence[PresignedTx]) -> list[bool]:
        return [tx.nonce < self.mined[account] for tx in txs]

    async def pending_nonce(self, account: str) -> int:
        nonce = self.mined[account]
        while (account, nonce) in self.pool:
            nonce += 1
        return nonce

    async def receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        return [self.receipts_by_hash.get(h) for h in tx_hashes]


# ---------------------------------------------------------------- helpers

def _stores(tmp_path: Path, clock: Clock) -> tuple[IntentStore, LaneStore]:
    engine = create_engine(f"sqlite:///{tmp_path / 'lanes.sqlite'}")
    return IntentStore(engine, clock=clock), LaneStore(engine, clock=clock)


def _intent(i: int, *, kind: str = "transfer", recipient: str = "", calldata: str | None = None,
            chain: str = CHAIN) -> IntentRecord:
    return IntentRecord(id=f"int_{i}", batch="b", created_at=float(i), updated_at=float(i), kind=kind, token="TST",
                        amount="1", units="1000", recipient=recipient or _recipient(i), chain=chain, origin=CHAIN,
                        operator=ACCOUNT, calldata=calldata)


def _recipient(i: int) -> str:
    return f"0x{i:040x}"


def _lane_keys(n: int) -> list[LaneKey]:
    return [LaneKey(CHAIN, f"0x{i + 1:040x}") for i in range(n)]


def _holders(lanes: LaneStore, now: float) -> dict[LaneKey, str | None]:
    """Who holds each lane now, read from ``operator_lanes``."""
    table = OperatorLane.__table__  # type: ignore[attr-defined]
    with lanes.engine.connect() as conn:
        rows = conn.execute(select(table.c.chain, table.c.account, table.c.owner, table.c.lease_until)).all()
    return {LaneKey(r.chain, r.account): r.owner if r.lease_until > now else None for r in rows}


def _stored_next_nonce(lanes: LaneStore) -> int | None:
    table = OperatorLane.__table__  # type: ignore[attr-defined]
    with lanes.engine.connect() as conn:
        value = conn.execute(select(table.c.next_nonce).where(table.c.account == ACCOUNT)).scalar_one()
    return None if value is None else int(value)


def _lease(lanes: LaneStore, owner: str) -> Lease:
    lanes.join(owner, [LANE])
    [lease] = lanes.lease(owner, LEASE_S)
    return lease


def _lane(lanes: LaneStore, owner: str = "A") -> _LaneState:
    return _LaneState(_lease(lanes, owner), KEY)


async def _inline(fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
    """The executor's ``run``: the store's synchronous calls, inline (no threads)."""
    return fn(*args, **kwargs)


async def _no_failpoint(_point: str) -> None:
    return None


def _executor(lanes: LaneStore, chain: FakeChain, *, failpoint: Callable[[str], Any] = _no_failpoint,
              call_allowed: Callable[[str, str, bytes], bool] = lambda chain, to, data: True,
              dead_after_s: float = 0.0, reprice_after_s: float = 30.0) -> LaneExecutor:
    return LaneExecutor(lanes, {CHAIN: chain}, {CHAIN: {ACCOUNT: KEY}}, "A", _inline, lease_s=LEASE_S,
                        failpoint=failpoint,
                        call_allowed=call_allowed, dead_after_s=dead_after_s, domains={CHAIN: 1, DESTINATION: 2},
                        reprice_after_s=reprice_after_s)


def _get(intents: IntentStore, i: int) -> IntentRecord:
    rec = intents.get(f"int_{i}")
    assert rec is not None
    return rec


# ---------------------------------------------------------------- leases

def test_two_daemons_share_six_lanes_three_each_and_never_hold_one_lane_both(tmp_path: Path) -> None:
    clock = Clock()
    _, lanes = _stores(tmp_path, clock)
    keys = _lane_keys(6)
    lanes.join("A", keys)
    assert {lease.key for lease in lanes.lease("A", LEASE_S)} == set(keys)

    lanes.join("B", keys)
    held: dict[str, set[LaneKey]] = {}
    for owner in ("A", "B", "A", "B"):  # both renew, A first, twice
        clock.t += 1
        held[owner] = {lease.key for lease in lanes.lease(owner, LEASE_S)}
        rows = _holders(lanes, clock.t)
        assert held[owner] == {k for k, o in rows.items() if o == owner}
        assert not held.get("A", set()) & held.get("B", set())
    assert len(held["A"]) == len(held["B"]) == 3
    assert sorted(o or "" for o in _holders(lanes, clock.t).values()) == ["A"] * 3 + ["B"] * 3


def test_silent_daemons_lanes_are_adopted_only_after_its_lease_ran_out(tmp_path: Path) -> None:
    clock = Clock(1_000.0)
    _, lanes = _stores(tmp_path, clock)
    keys = _lane_keys(2)
    lanes.join("A", keys)
    epochs = {lease.key: lease.epoch for lease in lanes.lease("A", LEASE_S)}  # then A falls silent
    lanes.join("B", keys)

    clock.t = 1_000.0 + LEASE_S - 0.5
    assert lanes.lease("B", LEASE_S) == []
    assert set(_holders(lanes, clock.t).values()) == {"A"}

    clock.t = 1_000.0 + LEASE_S + 0.5
    adopted = lanes.lease("B", LEASE_S)
    assert {lease.key for lease in adopted} == set(keys)
    assert all(lease.epoch == epochs[lease.key] + 1 for lease in adopted)
    assert set(_holders(lanes, clock.t).values()) == {"B"}


def test_write_ahead_under_a_lease_adopted_by_another_daemon_raises_and_writes_nothing(tmp_path: Path) -> None:
    clock = Clock()
    intents, lanes = _stores(tmp_path, clock)
    old = _lease(lanes, "A")
    lanes.write_ahead(old, "A", [], next_nonce=7)
    intents.add_all([_intent(1), _intent(2)])
    clock.t += LEASE_S + 1
    assert _lease(lanes, "B").epoch == old.epoch + 1

    signed = [("int_1", PresignedTx(b"raw-1", "0x01", 7)), ("int_2", PresignedTx(b"raw-2", "0x02", 8))]
    with pytest.raises(LeaseLost):
        lanes.write_ahead(old, "A", signed, next_nonce=9)
    for i in (1, 2):
        rec = _get(intents, i)
        assert (rec.status, rec.nonce, rec.raw_tx, rec.tx_hash, rec.executor) == ("planned", None, None, None, None)
    assert _stored_next_nonce(lanes) == 7


def test_status_writes_of_a_daemon_that_lost_its_lane_are_refused_and_change_nothing(tmp_path: Path) -> None:
    """The double payment a review found: a daemon paused past its lease must not re-plan (or otherwise rewrite) an
    intent the adopting daemon has signed again in the meantime."""
    clock = Clock()
    intents, lanes = _stores(tmp_path, clock)
    old = _lease(lanes, "A")
    intents.add_all([_intent(1)])
    lanes.write_ahead(old, "A", [("int_1", PresignedTx(b"raw-1", "0x01", 0))], next_nonce=1)
    clock.t += LEASE_S + 1
    new = _lease(lanes, "B")
    assert lanes.settle(new, "B", [("int_1", "0x01", {"status": "planned", "tx_hash": None, "nonce": None})]) == 1
    lanes.write_ahead(new, "B", [("int_1", PresignedTx(b"raw-2", "0x02", 1))], next_nonce=2)

    with pytest.raises(LeaseLost):  # A wakes up and writes what it saw of its own transaction
        lanes.settle(old, "A", [("int_1", "0x01", {"status": "planned", "tx_hash": None, "nonce": None})])
    assert (_get(intents, 1).status, _get(intents, 1).tx_hash) == ("signed", "0x02")
    # even under the live lease, a change about a transaction the intent no longer holds changes nothing
    assert lanes.settle(new, "B", [("int_1", "0x01", {"status": "included"})]) == 0
    assert (_get(intents, 1).status, _get(intents, 1).tx_hash) == ("signed", "0x02")


# ---------------------------------------------------------------- the executor, one step at a time

async def test_planned_intents_are_signed_stored_sent_then_settled_included(tmp_path: Path) -> None:
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain(mined=5)
    chain.replace_pooled(ACCOUNT, 5)  # another transaction pending at 5: the chain's pending nonce is 6
    intents.add_all([_intent(i) for i in (1, 2, 3)])
    at_sign: list[list[str]] = []

    async def failpoint(point: str) -> None:
        if point == "intent_after_sign":
            at_sign.append([_get(intents, i).status for i in (1, 2, 3)])

    executor, lane = _executor(lanes, chain, failpoint=failpoint), _lane(lanes)
    await executor._step(lane)
    assert at_sign == [["signed"] * 3]  # stored signed before anything was sent
    rows = [_get(intents, i) for i in (1, 2, 3)]
    assert [r.status for r in rows] == ["submitted"] * 3
    assert [r.nonce for r in rows] == [6, 7, 8]
    assert chain.broadcasts == [bytes.fromhex(r.raw_tx or "") for r in rows]

    chain.mine()
    await executor._step(lane)
    for rec, before in zip([_get(intents, i) for i in (1, 2, 3)], rows, strict=True):
        assert (rec.status, rec.tx_hash, rec.nonce) == ("included", before.tx_hash, before.nonce)
        assert (rec.fee_paid, rec.height, rec.raw_tx) == (str(FEE), chain.height, None)


async def test_restart_sends_the_stored_signed_transaction_again_as_the_same_bytes(tmp_path: Path) -> None:
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain()
    intents.add_all([_intent(1)])

    class Crash(Exception):
        pass

    async def crash_after_sign(point: str) -> None:
        if point == "intent_after_sign":
            raise Crash(point)

    with pytest.raises(Crash):
        await _executor(lanes, chain, failpoint=crash_after_sign)._step(_lane(lanes))
    stored = _get(intents, 1)
    assert stored.status == "signed" and chain.broadcasts == []

    restarted, lane = _executor(lanes, chain), _lane(lanes)
    await restarted._step(lane)
    assert chain.broadcasts == [bytes.fromhex(stored.raw_tx or "")]
    chain.mine()
    await restarted._step(lane)
    rec = _get(intents, 1)
    assert (rec.status, rec.tx_hash, rec.nonce) == ("included", stored.tx_hash, stored.nonce)
    assert len(chain.signed) == 1
    assert chain.landed_to(_recipient(1)) == 1


async def test_transaction_whose_nonce_another_took_is_signed_again_after_two_dead_checks(tmp_path: Path) -> None:
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain()
    intents.add_all([_intent(1)])
    executor, lane = _executor(lanes, chain), _lane(lanes)
    await executor._step(lane)
    first = _get(intents, 1)
    assert first.nonce is not None
    chain.replace_pooled(ACCOUNT, first.nonce)
    chain.mine()  # the other transaction is mined at our nonce

    await executor._step(lane)  # first check: dead once, not yet planned again
    assert (_get(intents, 1).status, _get(intents, 1).tx_hash) == ("submitted", first.tx_hash)
    await executor._step(lane)  # second check: provably dead
    replanned = _get(intents, 1)
    assert (replanned.status, replanned.nonce, replanned.tx_hash) == ("planned", None, None)
    assert "signed again" in (replanned.reason or "")

    await executor._step(lane)
    again = _get(intents, 1)
    assert (again.status, again.nonce) == ("submitted", first.nonce + 1) and again.tx_hash != first.tx_hash
    chain.mine()
    await executor._step(lane)
    assert _get(intents, 1).status == "included"
    assert len(chain.signed) == 2
    assert chain.landed_to(_recipient(1)) == 1


async def test_call_to_a_contract_not_allowed_fails_and_spends_no_nonce(tmp_path: Path) -> None:
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain(mined=3)
    intents.add_all([_intent(1, kind="call", recipient=CONTRACT, calldata="0xabcdef00"), _intent(2)])
    executor = _executor(lanes, chain, call_allowed=lambda chain, to, data: False)
    await executor._step(_lane(lanes))

    call, transfer = _get(intents, 1), _get(intents, 2)
    assert call.status == IntentStatus.FAILED and "call_allowlist" in (call.reason or "")
    assert (call.nonce, call.tx_hash, call.raw_tx) == (None, None, None)
    assert (transfer.status, transfer.nonce) == ("submitted", 3)  # the nonce the call did not take
    assert _stored_next_nonce(lanes) == 4
    assert [tx.nonce for tx in chain.signed] == [3]


async def test_two_dead_checks_in_quick_succession_do_not_sign_again(tmp_path: Path) -> None:
    """A node that briefly lacks a receipt must not cause a second payment: the two checks must be dead_after_s
    apart."""
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain()
    intents.add_all([_intent(1)])
    executor, lane = _executor(lanes, chain, dead_after_s=60.0), _lane(lanes)
    await executor._step(lane)
    first = _get(intents, 1)
    assert first.nonce is not None
    chain.replace_pooled(ACCOUNT, first.nonce)
    chain.mine()
    for _ in range(3):
        await executor._step(lane)
    assert (_get(intents, 1).status, _get(intents, 1).tx_hash) == ("submitted", first.tx_hash)
    assert len(chain.signed) == 1


async def test_cross_chain_transfers_wait_for_the_bridge_approval_then_settle_with_their_message(tmp_path: Path
                                                                                                  ) -> None:
    """A cross-chain transfer runs in its origin's lane: the token bridge's approval is signed at the lane's next
    nonce and mined first (stored as used only then), the transfers take the nonces after it, and each settles with the
    id of the message it dispatched."""
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain(mined=3)
    chain.needs_approval = True
    intents.add_all([_intent(i, kind="xchain", chain=DESTINATION) for i in (1, 2)])
    executor, lane = _executor(lanes, chain), _lane(lanes)

    async def blocks() -> None:
        while True:
            await asyncio.sleep(0.01)
            chain.mine()

    miner = asyncio.create_task(blocks())
    try:
        await executor._step(lane)
    finally:
        miner.cancel()
    approve, *rest = [json.loads(raw) for raw in chain.broadcasts]
    assert (approve["target"], approve["nonce"]) == ("approve", 3)
    assert [(tx["target"], tx["nonce"]) for tx in rest] == [("bridge", 4), ("bridge", 5)]
    assert _stored_next_nonce(lanes) == 6
    chain.mine()
    await executor._step(lane)
    for i in (1, 2):
        rec = _get(intents, i)
        assert rec.status == "included" and rec.chain == DESTINATION and rec.origin == CHAIN
        assert rec.tx_hash and rec.message_id == "0x" + rec.tx_hash.encode()[:32].hex()
    await executor._step(lane)
    assert len([raw for raw in chain.broadcasts if json.loads(raw)["target"] == "approve"]) == 1  # once


class RateLimitedBridge(FakeChain):
    """The token bridge refuses cross-chain transfers (``OutboundRateLimited``, room in ``wait_s``) while ``full``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.full, self.prepared_xchain = True, 0

    async def prepare(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx | Exception]:
        self.prepared_xchain += sum(s.kind == "xchain" for s in specs)
        ready = await super().prepare(sender, specs)
        return [OutboundRateLimited("execution reverted: RateLimited(2,0x01,1000,10,30)", chain=CHAIN,
                                    reason="RateLimited(2,0x01,1000,10,30)", wait_s=30.0)
                if self.full and spec.kind == "xchain" else prep for spec, prep in zip(specs, ready, strict=True)]


async def test_a_cross_chain_transfer_the_bridge_has_no_room_for_waits_planned_then_goes(tmp_path: Path) -> None:
    """Rate limits queue: refused for want of outbound room, a cross-chain transfer stays planned with no nonce spent,
    saying how long, while the next intent takes the nonce; it is not prepared again before the bridge's wait is
    over, then it is signed and settles once."""
    intents, lanes = _stores(tmp_path, Clock())
    chain, now = RateLimitedBridge(mined=3), Clock()
    intents.add_all([_intent(1, kind="xchain", chain=DESTINATION), _intent(2)])
    executor = LaneExecutor(lanes, {CHAIN: chain}, {CHAIN: {ACCOUNT: KEY}}, "A", _inline, lease_s=LEASE_S,
                            domains={CHAIN: 1, DESTINATION: 2}, monotonic=now)
    lane = _lane(lanes)
    await executor._step(lane)
    waiting, transfer = _get(intents, 1), _get(intents, 2)
    assert waiting.status == IntentStatus.PLANNED and waiting.nonce is None
    assert "outbound room" in (waiting.reason or "") and "about 30 s" in (waiting.reason or "")
    assert (transfer.status, transfer.nonce) == ("submitted", 3)
    chain.full = False
    now.t += 29.0
    await executor._step(lane)
    assert chain.prepared_xchain == 1 and _get(intents, 1).status == IntentStatus.PLANNED  # held for its wait
    now.t += 2.0
    await executor._step(lane)
    signed = _get(intents, 1)
    assert (signed.status, signed.nonce, signed.reason) == ("submitted", 4, None) and chain.prepared_xchain == 2
    chain.mine()
    await executor._step(lane)
    assert _get(intents, 1).status == "included" and chain.landed_to(_get(intents, 1).recipient) == 1


@pytest.mark.parametrize("lands", ["the re-priced copy", "the first signature"])
async def test_a_transaction_the_base_fee_outgrew_is_repriced_and_either_signature_settles_it_once(
        tmp_path: Path, lands: str) -> None:
    """The base fee rises above a sent transaction's max fee: after ``reprice_after_s`` the lane signs a dearer copy
    at the same nonce, stores it (keeping the first hash) before sending it, and settles the intent from whichever
    of the two is mined. The intent is paid once and never planned again."""
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain(mined=0)
    intents.add_all([_intent(1)])
    executor, lane = _executor(lanes, chain, reprice_after_s=0.0), _lane(lanes)
    await executor._step(lane)  # signed, sent; the reprice pass finds it priced well enough
    first = _get(intents, 1)
    assert first.status == "submitted" and len(chain.broadcasts) == 2  # sent, then sent again as it was

    chain.base_fee = 1_000  # fees outgrew it: it waits in the pool
    chain.mine()
    await executor._step(lane)
    repriced = _get(intents, 1)
    assert repriced.status == "submitted" and repriced.nonce == first.nonce and repriced.tx_hash != first.tx_hash
    assert json.loads(repriced.replaced_tx_hashes or "[]") == [first.tx_hash]
    assert bytes.fromhex(repriced.raw_tx or "") == chain.broadcasts[-1]  # stored before it was sent

    if lands == "the first signature":  # another node still had the first one, and the base fee fell back
        chain.pool[(ACCOUNT, 0)] = bytes.fromhex(first.raw_tx or "")
        chain.base_fee = 1
    chain.mine()
    await executor._step(lane)
    done = _get(intents, 1)
    want = repriced.tx_hash if lands == "the re-priced copy" else first.tx_hash
    assert (done.status, done.tx_hash, done.nonce) == ("included", want, first.nonce)
    assert chain.landed_to(done.recipient) == 1
    for _ in range(3):  # nothing is signed again, whatever the lane sees next
        chain.mine()
        await executor._step(lane)
    assert _get(intents, 1).status == "included" and chain.landed_to(done.recipient) == 1


async def test_a_transaction_the_node_refuses_is_counted_and_holds_its_lane_until_taken(tmp_path: Path) -> None:
    """The node refuses a lane transaction (another transaction holds its nonce in the pool): it stays ``signed``,
    the refusal is counted for the operator (``on_refused``: ``router_lane_broadcasts_refused_total``), and the lane
    signs nothing after it until the node takes it."""
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain(mined=0)
    counted: list[tuple[str, str]] = []
    executor = LaneExecutor(lanes, {CHAIN: chain}, {CHAIN: {ACCOUNT: KEY}}, "A", _inline, lease_s=LEASE_S,
                            on_refused=lambda c: counted.append(("refused", c)),
                            on_repriced=lambda c: counted.append(("repriced", c)))
    lane = _lane(lanes)
    await executor._step(lane)  # recovered: nothing to do, next nonce 0
    chain.replace_pooled(ACCOUNT, 0)  # the account's key used elsewhere: nonce 0 is taken in the pool
    intents.add_all([_intent(1)])
    await executor._step(lane)
    intents.add_all([_intent(2)])
    await executor._step(lane)
    assert counted == [("refused", CHAIN)] * 2
    assert _get(intents, 1).status == "signed" and _get(intents, 2).status == "planned"  # nothing signed behind it


async def test_a_refused_transaction_says_why_it_waits_and_blocks_its_account_until_the_node_takes_it(
        tmp_path: Path) -> None:
    """While the node refuses a lane's transaction, its intent says why in ``reason`` (written once per new answer)
    and the lane reports itself blocked (``on_blocked``: the API then plans nothing new for that account); once the
    node takes it, the lane is unblocked and the intent settles as usual, its reason cleared."""
    intents, lanes = _stores(tmp_path, Clock())
    chain = FakeChain(mined=0)
    blocked: list[tuple[LaneKey, bool]] = []
    executor = LaneExecutor(lanes, {CHAIN: chain}, {CHAIN: {ACCOUNT: KEY}}, "A", _inline, lease_s=LEASE_S,
                            on_blocked=lambda key, b: blocked.append((key, b)))
    lane = _lane(lanes)
    await executor._step(lane)
    chain.replace_pooled(ACCOUNT, 0)  # nonce 0 held in the pool by another transaction: ours is refused
    intents.add_all([_intent(1)])
    await executor._step(lane)
    await executor._step(lane)
    reason = _get(intents, 1).reason or ""
    assert _get(intents, 1).status == "signed" and reason.startswith("waiting: the node refuses its transaction")
    assert "replacement transaction underpriced" in reason
    assert blocked == [(LANE, True)]  # said once, not at every refusal
    lane.blocked_said_at -= BLOCKED_REPEAT_S  # still blocked BLOCKED_REPEAT_S later: said again
    await executor._step(lane)
    assert blocked == [(LANE, True)] * 2
    del chain.pool[(ACCOUNT, 0)]  # the other transaction leaves the pool: the node takes ours
    await executor._step(lane)
    assert _get(intents, 1).status == "submitted" and blocked == [(LANE, True)] * 2 + [(LANE, False)]
    chain.mine()
    await executor._step(lane)
    assert (_get(intents, 1).status, _get(intents, 1).reason) == ("included", None)


class Holdings:
    """A chain's token balances per holder (what ``IntentExecutor.balances`` reads)."""

    def __init__(self, held: dict[str, int]) -> None:
        self.held = held

    async def token_balance(self, symbol: str, holder: str) -> int:
        return self.held.get(holder, 0)


async def _no_message(_message_id: str) -> str | None:
    return None


async def test_planned_intents_of_a_blocked_lane_move_to_accounts_that_can_pay_them(tmp_path: Path) -> None:
    """The lane of ACCOUNT is blocked (its node refuses a transaction of it): its planned intents, which nothing has
    signed, move to the other operator account that holds their amounts; the signed one stays, and so does one no
    account can pay. The lane of the account they moved to is woken."""
    intents, _lanes = _stores(tmp_path, Clock())
    rich, poor = Operator("0x" + "02" * 32, "0x" + "0b" * 20), Operator("0x" + "03" * 32, "0x" + "0c" * 20)
    woken: list[str] = []

    class Lanes:
        chains = frozenset({CHAIN})

        def chains_for(self, kind: str) -> frozenset[str]:
            return self.chains

        def wake(self) -> None:
            woken.append("wake")

        async def run(self, stop: asyncio.Event) -> None:
            await stop.wait()

    executor = IntentExecutor(intents, {CHAIN: Holdings({rich.address: 10_000, poor.address: 5})},  # type: ignore[dict-item]
                              {CHAIN: 1}, [Operator(KEY, ACCOUNT), rich, poor], _no_message, lanes=lambda _e: Lanes())
    intents.add_all([_intent(i) for i in (1, 2, 3)] + [_intent(4), _intent(5)])
    intents.update("int_4", status=IntentStatus.SIGNED, nonce=0, tx_hash="0x04")  # signed: it stays in its lane
    intents.update("int_5", units=str(10**9))  # more than any account holds: it stays too
    executor.lane_blocked(CHAIN, ACCOUNT, True)
    await asyncio.gather(*executor._moving)
    assert [_get(intents, i).operator for i in (1, 2, 3)] == [rich.address] * 3
    assert (_get(intents, 4).operator, _get(intents, 5).operator) == (ACCOUNT, ACCOUNT)
    assert woken == ["wake"] and (CHAIN, ACCOUNT) in executor.blocked_accounts
    # what moved is taken off the cached balance: a second blocked account finds 7,000 left at rich, not 10,000
    assert (await executor.operator_balances.get([CHAIN], "TST"))[CHAIN][1] == 10_000 - 3 * 1000


def test_a_lane_cannot_store_signed_an_intent_moved_to_another_account_meanwhile(tmp_path: Path) -> None:
    """The race ``move_off_blocked`` opens: a lane read an intent as planned, then it moved to another account; the
    lane's write-ahead of it is refused whole (nothing stored signed, the lane's next nonce unchanged)."""
    clock = Clock()
    intents, lanes = _stores(tmp_path, clock)
    lease = _lease(lanes, "A")
    intents.add_all([_intent(1), _intent(2)])
    assert intents.move_planned(CHAIN, ACCOUNT, [("int_1", "0x" + "0b" * 20)]) == 1
    with pytest.raises(LeaseLost, match="no longer planned for it"):
        lanes.write_ahead(lease, "A", [("int_1", PresignedTx(b"raw-1", "0x01", 0)),
                                       ("int_2", PresignedTx(b"raw-2", "0x02", 1))], next_nonce=2)
    assert [(_get(intents, i).status, _get(intents, i).tx_hash) for i in (1, 2)] == [("planned", None)] * 2
    assert _get(intents, 1).operator == "0x" + "0b" * 20 and _stored_next_nonce(lanes) is None
    assert intents.move_planned(CHAIN, ACCOUNT, [("int_1", ACCOUNT)]) == 0  # no longer ACCOUNT's: not moved back
