"""Durable, exactly-once execution of operator-signed intents: one *lane* per (chain, operator account).

A lane owns its account's nonces (on Solana, which has none, its own sequence numbers). It is leased to one daemon
at a time (``operator_lanes``: owner, lease, epoch, next nonce), so two daemons on one database never sign with the
same account; daemons share the lanes fairly (each takes at most ``ceil(lanes / live daemons)``) and a silent
daemon's lanes are adopted when its lease runs out.

An intent's life in a lane, every step committed before the next begins:

    planned  --sign-->  signed  --broadcast-->  submitted  --mined-->  included | failed
      ^                   |  (write-ahead: raw transaction, hash, account and nonce stored, fenced by the lease)
      '-- provably dead --'  (decided without it: its nonce mined by another transaction on EVM, its blockhash
                             expired unseen on Solana; seen on two checks ``dead_after_s`` apart: only then is it
                             signed again)

On adoption (a restart, or another daemon's lane) the lane first *recovers*: each signed or submitted transaction
the chain has decided (``WriteAheadSender.decided``) is settled from its receipt (or, with no receipt, is provably
dead and goes back to planned); every other one is broadcast again as the same signed bytes. A second transaction is
never signed for an intent while its first can still be included. Every status write is fenced by the lease too,
and applies only while the intent still holds the transaction it is about: a daemon that lost its lane changes
nothing.
``tests/faults/test_kill9_intents.py`` kills the daemon in each state; ``tests/integration/test_solana_lanes.py`` and
``test_cosmos_lanes.py`` do the same on the Solana and Cosmos devnets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import structlog
from sqlalchemy import BigInteger, Column, and_, false, or_
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel, select

from adapters.base import AdapterError, OutboundRateLimited, TxReceipt
from adapters.capabilities import Broadcast, PreparedTx, PresignedTx, TxSpec, WriteAheadSender
from router.intents import IntentRecord, IntentStatus, OffLoop
from router.sql import dialect_insert, update_rows

log = structlog.get_logger("router.lanes")


class OperatorLane(SQLModel, table=True):
    """One operator account on one chain: who signs with it now, until when, and the next nonce it will use."""

    __tablename__ = "operator_lanes"

    chain: str = Field(primary_key=True, max_length=64)
    account: str = Field(primary_key=True, max_length=128)
    owner: str | None = Field(default=None, max_length=128)
    lease_until: float = 0.0
    epoch: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    next_nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    updated_at: float = 0.0


class LaneMember(SQLModel, table=True):
    """A daemon taking part in lane sharing, and when it last said so (the fair share counts the live ones)."""

    __tablename__ = "operator_lane_members"

    owner: str = Field(primary_key=True, max_length=128)
    seen_at: float = 0.0


@dataclass(frozen=True, slots=True)
class LaneKey:
    chain: str
    account: str  # 0x-hex, lower-case


@dataclass(slots=True)
class Lease:
    key: LaneKey
    epoch: int
    next_nonce: int | None


class LaneRow(NamedTuple):
    """What a lane reads of an intent."""

    id: str
    kind: str
    recipient: str
    units: str
    token: str
    calldata: str | None
    work: float | None
    nonce: int | None
    raw_tx: str | None
    tx_hash: str | None
    chain: str | None  # where it lands: the lane's own chain, or a cross-chain transfer's destination
    replaced_tx_hashes: str | None  # JSON list of earlier signatures at the same nonce (re-priced since)


class LeaseLost(Exception):
    """The lane's lease is no longer ours: nothing was written, and nothing may be sent."""


class LaneStore:
    """``operator_lanes`` and the intents' lane columns (short transactions, none across I/O; synchronous: the
    executor calls it through ``run``)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        SQLModel.metadata.create_all(engine, tables=[OperatorLane.__table__,  # type: ignore[attr-defined]
                                                     LaneMember.__table__])  # type: ignore[attr-defined]

    def _insert_ignore(self, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table = model.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            conn.execute(dialect_insert(self.engine, table).values(rows).on_conflict_do_nothing())

    def join(self, owner: str, lanes: Sequence[LaneKey]) -> None:
        """Make sure every lane has a row, and this daemon a member row."""
        self._insert_ignore(OperatorLane, [{"chain": k.chain, "account": k.account} for k in lanes])
        self.beat(owner)

    def beat(self, owner: str) -> None:
        table = LaneMember.__table__  # type: ignore[attr-defined]
        stmt = dialect_insert(self.engine, table).values(owner=owner, seen_at=self._clock())
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["owner"], set_={"seen_at": stmt.excluded.seen_at}))

    def leave(self, owner: str) -> None:
        """A clean stop: every lane of ``owner`` free at once, and it no longer counts as a member."""
        lanes, members = OperatorLane.__table__, LaneMember.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            conn.execute(sa_update(lanes).where(lanes.c.owner == owner).values(owner=None, lease_until=0.0))
            conn.execute(members.delete().where(members.c.owner == owner))

    def lease(self, owner: str, lease_s: float) -> list[Lease]:
        """Renew this daemon's leases, give back lanes above its fair share, take free or expired ones up to it;
        the lanes it holds afterwards."""
        lanes, members = OperatorLane.__table__, LaneMember.__table__  # type: ignore[attr-defined]
        now = self._clock()
        with self.engine.begin() as conn:
            conn.execute(members.update().where(members.c.owner == owner).values(seen_at=now))
            live = conn.execute(select(members.c.owner).where(members.c.seen_at > now - lease_s)).all()
            rows = conn.execute(select(lanes.c.chain, lanes.c.account, lanes.c.owner, lanes.c.lease_until)
                                .order_by(lanes.c.chain, lanes.c.account)).all()
            share = math.ceil(len(rows) / max(1, len(live)))
            mine = [r for r in rows if r.owner == owner]
            free = [r for r in rows if r.owner != owner and (r.owner is None or r.lease_until < now)]
            for r in mine[share:]:  # above the fair share: free for a daemon that has fewer
                conn.execute(lanes.update().where(and_(lanes.c.chain == r.chain, lanes.c.account == r.account,
                                                       lanes.c.owner == owner)).values(owner=None, lease_until=0.0))
            keep = mine[:share]
            conn.execute(lanes.update().where(and_(lanes.c.owner == owner, or_(*[
                and_(lanes.c.chain == r.chain, lanes.c.account == r.account) for r in keep] or [false()])))
                .values(lease_until=now + lease_s))
            for r in free[:max(0, share - len(keep))]:
                conn.execute(lanes.update().where(and_(
                    lanes.c.chain == r.chain, lanes.c.account == r.account,
                    or_(lanes.c.owner.is_(None), lanes.c.lease_until < now)))
                    .values(owner=owner, lease_until=now + lease_s, epoch=lanes.c.epoch + 1))
            held = conn.execute(select(lanes.c.chain, lanes.c.account, lanes.c.epoch, lanes.c.next_nonce)
                                .where(and_(lanes.c.owner == owner, lanes.c.lease_until > now))).all()
        return [Lease(LaneKey(r.chain, r.account), int(r.epoch), r.next_nonce) for r in held]

    def in_lane(self, key: LaneKey, statuses: Sequence[str], limit: int) -> list[LaneRow]:
        """The lane's intents in ``statuses``, in nonce then arrival order (plain rows: a lane reads thousands)."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        q = (select(*(table.c[f] for f in LaneRow._fields))
             .where(and_(table.c.origin == key.chain, table.c.operator == key.account, table.c.signer.is_(None),
                         table.c.status.in_(list(statuses))))
             .order_by(table.c.nonce, table.c.created_at, table.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [LaneRow(*r) for r in conn.execute(q)]

    def write_ahead(self, lease: Lease, owner: str, signed: Sequence[tuple[str, PresignedTx]], next_nonce: int,
                    failed: Sequence[tuple[str, str]] = (), waiting: Sequence[tuple[str, str]] = ()) -> None:
        """Store the signed transactions (``planned`` -> ``signed``) and the lane's next nonce in one transaction,
        only while the lease is still ours (else ``LeaseLost`` and nothing is written). ``failed``: intents that
        could not be prepared (reason), ended with no nonce spent; ``waiting``: intents that stay planned, saying
        why (reason)."""
        intents = IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        with self.engine.begin() as conn:
            self._fence(conn, lease, owner, now, next_nonce)
            # each still planned, and still this lane's account's (IntentStore.move_planned may have moved it)
            account = lease.key.account
            if signed:
                done = update_rows(conn, intents, ["id", "operator"], ["tx_hash", "nonce", "raw_tx"],
                                   [(i, account, t.tx_hash, t.nonce, t.raw.hex()) for i, t in signed],
                                   {"status": IntentStatus.SIGNED, "executor": owner, "reason": None,
                                    "updated_at": now}, status_in=[IntentStatus.PLANNED])
                if done != len(signed):
                    raise LeaseLost(f"lane {lease.key.chain}/{lease.key.account}: {len(signed) - done} "
                                    "intents were no longer planned for it")
            if failed:
                update_rows(conn, intents, ["id", "operator"], ["reason"], [(i, account, r[:500]) for i, r in failed],
                            {"status": IntentStatus.FAILED, "updated_at": now}, status_in=[IntentStatus.PLANNED])
            if waiting:
                update_rows(conn, intents, ["id", "operator"], ["reason"], [(i, account, r[:500]) for i, r in waiting],
                            {"updated_at": now}, status_in=[IntentStatus.PLANNED])

    def _fence(self, conn: Connection, lease: Lease, owner: str, now: float, next_nonce: int | None = None) -> None:
        """Inside a write: the lane is still ours at the epoch we leased it (else ``LeaseLost``, and the caller's
        transaction rolls back: a daemon that lost its lane writes nothing more about it)."""
        lanes = OperatorLane.__table__  # type: ignore[attr-defined]
        values: dict[str, Any] = {"updated_at": now}
        if next_nonce is not None:
            values["next_nonce"] = next_nonce
        fenced = conn.execute(lanes.update().where(and_(
            lanes.c.chain == lease.key.chain, lanes.c.account == lease.key.account, lanes.c.owner == owner,
            lanes.c.epoch == lease.epoch, lanes.c.lease_until > now)).values(**values))
        if fenced.rowcount != 1:
            raise LeaseLost(f"lane {lease.key.chain}/{lease.key.account} is no longer leased to {owner}")

    def mark_submitted(self, lease: Lease, owner: str, intent_ids: Sequence[str]) -> None:
        """``signed`` -> ``submitted`` for these intents (the node took their transactions), fenced by the lease: one
        statement per few thousand, not one row each (the same values for all)."""
        if not intent_ids:
            return
        intents = IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        with self.engine.begin() as conn:
            self._fence(conn, lease, owner, now)
            for k in range(0, len(intent_ids), 5000):
                conn.execute(sa_update(intents).where(and_(intents.c.id.in_(list(intent_ids[k:k + 5000])),
                                                           intents.c.status == IntentStatus.SIGNED))
                             .values(status=IntentStatus.SUBMITTED, updated_at=now))

    def settle(self, lease: Lease, owner: str, changes: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
        """Status changes of lane intents (submitted, included, failed, or planned again), each ``(intent id, the
        transaction hash it is about, values)``, in one transaction fenced by the lease; a change applies only
        while the intent still holds that transaction and is signed or submitted. The rows changed."""
        if not changes:
            return 0
        intents = IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        changed = 0
        with self.engine.begin() as conn:
            self._fence(conn, lease, owner, now)
            groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for intent_id, tx_hash, values in changes:
                cols = tuple(sorted(values))
                groups.setdefault(cols, []).append((intent_id, tx_hash, *(values[c] for c in cols)))
            for cols, rows in groups.items():
                changed += update_rows(conn, intents, ["id", "tx_hash"], cols, rows, {"updated_at": now},
                                       status_in=[IntentStatus.SIGNED, IntentStatus.SUBMITTED])
        return changed


@dataclass(slots=True)
class _Sent:
    intent_id: str
    tx: PresignedTx
    work: float
    broadcast: bool = False
    dead_seen: int = 0  # checks that found it decided (EVM: its nonce mined) and no receipt for it
    dead_since: float | None = None  # monotonic time of the first such check
    replaced: list[str] = field(default_factory=list)  # earlier signatures at this nonce: any of them may be mined
    sent_at: float = field(default_factory=time.monotonic)  # last broadcast (or re-pricing) of this nonce
    refused: str | None = None  # what the node last said refusing it, while it refuses it

    def hashes(self) -> list[str]:
        return [self.tx.tx_hash, *self.replaced]


@dataclass(slots=True)
class _LaneState:
    lease: Lease
    key_hex: str
    next_nonce: int = -1
    recovered: bool = False
    sent: dict[int, _Sent] = field(default_factory=dict)  # nonce -> transaction, while not settled
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    blocked: bool = False  # the node refuses a transaction of this lane: later nonces wait behind it
    blocked_said_at: float = 0.0  # monotonic time it was last said blocked
    held: dict[str, float] = field(default_factory=dict)  # intent id -> monotonic time it may be prepared again


BLOCKED_REPEAT_S = 10.0  # a blocked lane says so again this often (its account's new planned intents then move)

Failpoint = Callable[[str], Awaitable[None]]


async def _no_failpoint(_point: str) -> None:
    return None


class LaneExecutor:
    """Runs every lane this daemon leases: sign (write-ahead), broadcast, follow inclusion, recover on adoption."""

    def __init__(self, store: LaneStore, senders: Mapping[str, WriteAheadSender],
                 keys: Mapping[str, Mapping[str, str]], owner: str, run: OffLoop, *,
                 domains: Mapping[str, int] | None = None,
                 native_usd: float = 3000.0, lease_s: float = 10.0,
                 interval_s: float = 0.05, batch: int = 2000, dead_after_s: float = 5.0,
                 reprice_after_s: float = 30.0, on_repriced: Callable[[str], None] = lambda chain: None,
                 on_refused: Callable[[str], None] = lambda chain: None,
                 on_blocked: Callable[[LaneKey, bool], None] = lambda key, blocked: None,
                 failpoint: Failpoint = _no_failpoint,
                 on_settled: Callable[[str, float, bool], None] = lambda chain, work, ok: None,
                 call_allowed: Callable[[str, str, bytes], bool] = lambda chain, to, data: False,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``keys``: per chain, operator account (as the intents store it) -> private key; ``domains``: chain name ->
        domain, the destinations of cross-chain transfers; ``on_settled(chain, work, included)`` is told of each of
        this daemon's intents leaving the chain's pending load; ``call_allowed(chain, contract, calldata)`` is checked
        again before a call intent is signed; a transaction is dead (its intent signed again) only when two checks at
        least ``dead_after_s`` apart found it decided and no receipt for it (a node that briefly lacks a receipt must
        not cause a second payment)."""
        self.store = store
        self.senders = senders
        self.domains = dict(domains or {})
        self._keys = {chain: dict(accounts) for chain, accounts in keys.items()}
        self.owner = owner
        self._run = run
        self.native_usd = native_usd
        self.lease_s = lease_s
        self.interval_s = interval_s
        self.batch = batch
        self.dead_after_s = dead_after_s
        self.prerequisite_timeout_s = 60.0
        self.reprice_after_s = reprice_after_s
        self._on_repriced = on_repriced  # (chain) a transaction re-signed at its nonce: the daemon counts it
        self._on_refused = on_refused  # (chain) a transaction the node refused: the daemon counts it
        self._on_blocked = on_blocked  # (lane, blocked) the lane waits on a refused transaction, or no longer
        self._failpoint = failpoint
        self._on_settled = on_settled
        self._call_allowed = call_allowed
        self._monotonic = monotonic  # when an intent held for the bridge's outbound room may be prepared again
        self._lanes: dict[LaneKey, _LaneState] = {}
        self.lanes = [LaneKey(chain, account) for chain in senders for account in self._keys.get(chain, {})]
        self._kinds = {chain: sender.lane_kinds() for chain, sender in senders.items()}

    @property
    def chains(self) -> frozenset[str]:
        return frozenset(self.senders)

    def chains_for(self, kind: str) -> frozenset[str]:
        """The chains whose lanes sign intents of ``kind`` (a cross-chain transfer's: its origin)."""
        return frozenset(c for c, kinds in self._kinds.items() if kind in kinds and self._keys.get(c))

    def wake(self) -> None:
        """New planned intents: sign them now rather than at the next poll."""
        for lane in self._lanes.values():
            lane.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Hold this daemon's fair share of the lanes (renewed every quarter lease) and run each in its own task, so
        that a slow chain or node holds up only its own lanes."""
        await self._run(self.store.join, self.owner, self.lanes)
        try:
            while not stop.is_set():
                try:
                    await self._renew()
                except Exception as exc:  # noqa: BLE001 - store outage: keep the lanes until their lease says no
                    log.warning("lane_lease_renewal_failed", error=f"{type(exc).__name__}: {exc}"[:300])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.lease_s / 4)
        finally:
            for key in list(self._lanes):
                await self._drop(key)
            with contextlib.suppress(Exception):
                await self._run(self.store.leave, self.owner)

    async def _renew(self) -> None:
        leases = {lease.key: lease for lease in await self._run(self.store.lease, self.owner, self.lease_s)}
        for key in [k for k in self._lanes if k not in leases or leases[k].epoch != self._lanes[k].lease.epoch]:
            log.info("lane_released", chain=key.chain, account=key.account)
            await self._drop(key)
        for key, lease in leases.items():
            account_key = self._keys.get(key.chain, {}).get(key.account)
            if key not in self._lanes and key.chain in self.senders and account_key is not None:
                log.info("lane_leased", chain=key.chain, account=key.account, epoch=lease.epoch)
                lane = self._lanes[key] = _LaneState(lease, account_key)
                lane.task = asyncio.create_task(self._lane_loop(lane), name=f"lane-{key.chain}-{key.account}")

    async def _drop(self, key: LaneKey) -> None:
        lane = self._lanes.pop(key, None)
        if lane is not None:
            self._set_blocked(lane, False)  # whoever holds it next says
        if lane is not None and lane.task is not None and lane.task is not asyncio.current_task():
            lane.task.cancel()
            with contextlib.suppress(BaseException):
                await lane.task

    async def _lane_loop(self, lane: _LaneState) -> None:
        key = lane.lease.key
        while True:
            try:
                await self._step(lane)
            except LeaseLost as exc:
                log.warning("lane_lease_lost", chain=key.chain, account=key.account, detail=str(exc))
                self._lanes.pop(key, None)
                return
            except AdapterError as exc:
                log.warning("lane_chain_error", chain=key.chain, account=key.account, error=str(exc)[:300])
                await asyncio.sleep(0.5)
            except Exception as exc:  # noqa: BLE001 - store outage and the like: log, back off, go on
                log.warning("lane_step_failed", chain=key.chain, account=key.account,
                            error=f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(1.0)
            lane.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.wake.wait(), self.interval_s)

    async def _step(self, lane: _LaneState) -> None:
        if not lane.recovered:
            await self._recover(lane)
        await self._sign(lane)
        await self._broadcast(lane)
        await self._follow(lane)
        await self._reprice(lane)
        self._set_blocked(lane, any(s.refused is not None for s in lane.sent.values()))

    # ------------------------------------------------------------ recovery
    async def _recover(self, lane: _LaneState) -> None:
        """Adopted (or restarted): settle what is mined, re-plan what is provably dead, re-send the rest."""
        key, sender = lane.lease.key, self.senders[lane.lease.key.chain]
        rows = await self._run(self.store.in_lane, key, (IntentStatus.SIGNED, IntentStatus.SUBMITTED), 1_000_000)
        lane.sent = {int(r.nonce): _Sent(r.id, PresignedTx(bytes.fromhex(r.raw_tx or ""), r.tx_hash or "",
                                                             int(r.nonce)), float(r.work or 1.0),
                                         replaced=json.loads(r.replaced_tx_hashes or "[]"))
                     for r in rows if r.nonce is not None}
        pending = await sender.pending_nonce(key.account)
        known = max(lane.sent, default=-1) + 1
        lane.next_nonce = max(lane.lease.next_nonce or 0, pending, known)
        await self._follow(lane, recovering=True)
        lane.recovered = True
        log.info("lane_recovered", chain=key.chain, account=key.account, resent=len(lane.sent),
                 next_nonce=lane.next_nonce)

    # ------------------------------------------------------------ sign and store (write-ahead)
    async def _sign(self, lane: _LaneState) -> None:
        key, sender = lane.lease.key, self.senders[lane.lease.key.chain]
        room = self.batch - len(lane.sent)
        if room <= 0 or any(not s.broadcast for s in lane.sent.values()):
            return  # full, or a transaction the node has not taken yet: later nonces would wait behind it
        planned = await self._planned(lane, room)
        if not planned:
            return
        await self._failpoint("intent_before_sign")
        await self._prerequisites(lane, sender, [self._spec(r) for r in planned])
        prepared = await self._prepare(sender, key, planned)
        signed, failed, waiting = self._sign_prepared(lane, sender, planned, prepared)
        nonce = max((tx.nonce + 1 for _i, tx in signed), default=lane.next_nonce)
        await self._run(self.store.write_ahead, lane.lease, self.owner, signed, nonce, failed, waiting)
        lane.next_nonce = nonce
        work = {r.id: float(r.work or 1.0) for r in planned}
        for intent_id, tx in signed:
            lane.sent[tx.nonce] = _Sent(intent_id, tx, work[intent_id])
        for intent_id, _reason in failed:
            self._on_settled(key.chain, work[intent_id], False)
        await self._failpoint("intent_after_sign")

    async def _planned(self, lane: _LaneState, room: int) -> list[LaneRow]:
        """Up to ``room`` of the lane's planned intents, not counting those held for the bridge's outbound room."""
        now = self._monotonic()
        lane.held = {i: until for i, until in lane.held.items() if until > now}
        rows = await self._run(self.store.in_lane, lane.lease.key, (IntentStatus.PLANNED,), room + len(lane.held))
        return [r for r in rows if r.id not in lane.held][:room]

    def _sign_prepared(self, lane: _LaneState, sender: WriteAheadSender, planned: Sequence[LaneRow],
                       prepared: Sequence[PreparedTx | Exception]
                       ) -> tuple[list[tuple[str, PresignedTx]], list[tuple[str, str]], list[tuple[str, str]]]:
        """(signed at the lane's next nonces, failed with why, waiting with why). A cross-chain transfer the token
        bridge has no outbound room for yet waits, planned, and is prepared again once the wait the bridge gave is
        over (rate limits queue, they do not fail)."""
        signed: list[tuple[str, PresignedTx]] = []
        failed: list[tuple[str, str]] = []
        waiting: list[tuple[str, str]] = []
        nonce = lane.next_nonce
        for rec, prep in zip(planned, prepared, strict=True):
            if isinstance(prep, OutboundRateLimited):
                waiting.append((rec.id, (f"waiting for the token bridge's outbound room on {lane.lease.key.chain}: "
                                         f"about {prep.wait_s:.0f} s ({prep.reason})")))
                lane.held[rec.id] = self._monotonic() + max(prep.wait_s, 1.0)
            elif isinstance(prep, AdapterError):
                failed.append((rec.id, f"{type(prep).__name__}: {prep.reason}"))
            elif isinstance(prep, BaseException):
                failed.append((rec.id, f"{type(prep).__name__}: {prep}"))
            else:
                signed.append((rec.id, sender.sign(lane.key_hex, prep, nonce)))
                nonce += 1
        return signed, failed, waiting

    async def _prerequisites(self, lane: _LaneState, sender: WriteAheadSender, specs: Sequence[TxSpec]) -> None:
        """What must be mined before ``specs`` can be (the token bridge's standing approval): each signed at the
        lane's next nonce, sent, and waited for, before the lane stores that nonce as used. A crash in between costs
        nothing: on recovery the account's pending nonce covers a transaction the node holds, and one it never took
        leaves the nonce free."""
        for prep in await sender.prerequisites(lane.lease.key.account, specs):
            tx = sender.sign(lane.key_hex, prep, lane.next_nonce)
            ((outcome, detail),) = await sender.broadcast([tx.raw])
            if outcome is Broadcast.REFUSED:
                raise AdapterError(f"{prep.spec.kind} {prep.spec.symbol} refused: {detail}",
                                   chain=lane.lease.key.chain, reason="prerequisite refused")
            deadline = time.monotonic() + self.prerequisite_timeout_s
            while not (await sender.decided(lane.lease.key.account, [tx]))[0]:
                if time.monotonic() > deadline:
                    raise AdapterError(f"{prep.spec.kind} {prep.spec.symbol} ({tx.tx_hash}) not mined after "
                                       f"{self.prerequisite_timeout_s:.0f} s", chain=lane.lease.key.chain,
                                       reason="prerequisite not mined")
                await asyncio.sleep(0.2)
            (receipt,) = await sender.receipts([tx.tx_hash])
            lane.next_nonce = tx.nonce + 1
            await self._run(self.store.write_ahead, lane.lease, self.owner, [], lane.next_nonce)
            log.info("lane_prerequisite_mined", chain=lane.lease.key.chain, account=lane.lease.key.account,
                     kind=prep.spec.kind, symbol=prep.spec.symbol, tx=tx.tx_hash,
                     success=receipt is not None and receipt.success)

    def _spec(self, rec: LaneRow) -> TxSpec:
        if rec.kind == "call":
            return TxSpec("call", rec.recipient, data=bytes.fromhex((rec.calldata or "0x")[2:]))
        if rec.kind == "xchain":
            return TxSpec("xchain", rec.recipient, amount=int(rec.units), symbol=rec.token,
                          destination=self.domains[rec.chain or ""])
        if rec.kind == "native":  # an integrator payout (router.payouts): the chain's own coin (kind native)
            return TxSpec("native", rec.recipient, amount=int(rec.units))
        return TxSpec("transfer", rec.recipient, amount=int(rec.units), symbol=rec.token)

    async def _prepare(self, sender: WriteAheadSender, key: LaneKey, rows: Sequence[LaneRow]
                       ) -> list[PreparedTx | Exception]:
        """Each row priced for signing, or why not: a call not in the allow-list is refused here (the API refused it
        already), then the rest are prepared by the chain in one go."""
        specs = [self._spec(r) for r in rows]
        refused = [s.kind == "call" and not self._call_allowed(key.chain, s.to, s.data) for s in specs]
        ready = iter(await sender.prepare(key.account, [s for s, no in zip(specs, refused, strict=True) if not no]))
        return [ValueError("the contract or function is not in router.call_allowlist") if no else next(ready)
                for no in refused]

    # ------------------------------------------------------------ send what is stored
    async def _broadcast(self, lane: _LaneState) -> None:
        todo = [s for _n, s in sorted(lane.sent.items()) if not s.broadcast]
        if not todo:
            return
        answers = await self.senders[lane.lease.key.chain].broadcast([s.tx.raw for s in todo])
        await self._failpoint("intent_after_broadcast")
        taken, refused = [], None
        for sent, (outcome, detail) in zip(todo, answers, strict=True):
            if outcome is Broadcast.REFUSED:
                refused = sent if sent.refused != detail else None  # said once per new answer, not every pass
                sent.refused = detail
                self._on_refused(lane.lease.key.chain)
                log.warning("intent_broadcast_refused", chain=lane.lease.key.chain, intent=sent.intent_id,
                            nonce=sent.tx.nonce, error=detail)
                break  # later nonces would wait behind it: send them again in order next time
            sent.broadcast, sent.refused = True, None  # ACCEPTED, or NONCE_USED (mined: settled or found dead)
            taken.append(sent.intent_id)
        await self._run(self.store.mark_submitted, lane.lease, self.owner, taken)
        await self._say_refused(lane, refused)

    async def _say_refused(self, lane: _LaneState, sent: _Sent | None) -> None:
        """The intent whose transaction the node refuses says why it waits (its ``reason``, while still signed)."""
        if sent is None:
            return
        reason = (f"waiting: the node refuses its transaction ({sent.refused}); it is sent again until taken, and "
                  "this operator account gets no new intents meanwhile")
        await self._run(self.store.settle, lane.lease, self.owner, [(sent.intent_id, sent.tx.tx_hash,
                                                                     {"reason": reason[:500]})])

    def _set_blocked(self, lane: _LaneState, blocked: bool) -> None:
        """Say when the lane becomes blocked or unblocked; while it stays blocked, say so again every
        ``BLOCKED_REPEAT_S`` (other daemons may have planned intents for its account since: they move too)."""
        now = time.monotonic()
        if blocked != lane.blocked:
            lane.blocked, lane.blocked_said_at = blocked, now
            log.warning("lane_blocked" if blocked else "lane_unblocked", chain=lane.lease.key.chain,
                        account=lane.lease.key.account)
            self._on_blocked(lane.lease.key, blocked)
        elif blocked and now - lane.blocked_said_at >= BLOCKED_REPEAT_S:
            lane.blocked_said_at = now
            self._on_blocked(lane.lease.key, True)

    # ------------------------------------------------------------ inclusion
    async def _follow(self, lane: _LaneState, *, recovering: bool = False) -> None:
        """Settle every transaction the chain has decided (``WriteAheadSender.decided``: on EVM its nonce is mined):
        included / failed from its receipt, or provably dead (decided, no receipt for any of its signatures, on two
        checks ``dead_after_s`` apart) and planned again."""
        if not lane.sent:
            return
        key, sender = lane.lease.key, self.senders[lane.lease.key.chain]
        ordered = [s for _n, s in sorted(lane.sent.items())]
        decided = await sender.decided(key.account, [s.tx for s in ordered])
        done = [s for s, d in zip(ordered, decided, strict=True) if d]
        if recovering:  # everything not decided goes out again, as the same signed bytes
            for s, d in zip(ordered, decided, strict=True):
                s.broadcast = d
        if not done:
            return
        hashes = [h for s in done for h in s.hashes()]
        by_hash = dict(zip(hashes, await sender.receipts(hashes), strict=True))
        await self._failpoint("intent_before_settle")
        changes: list[tuple[str, str, dict[str, Any]]] = []
        now = time.time()
        for sent in done:
            landed = next((h for h in sent.hashes() if by_hash[h] is not None), None)
            receipt = by_hash[landed] if landed is not None else None
            if receipt is not None:
                values = self._mined(receipt, now)
                if landed != sent.tx.tx_hash:  # an earlier signature landed before its re-priced copy
                    values["tx_hash"] = landed
                changes.append((sent.intent_id, sent.tx.tx_hash, values))
                self._on_settled(key.chain, sent.work, receipt.success)
                del lane.sent[sent.tx.nonce]
                continue
            sent.dead_seen += 1
            sent.dead_since = sent.dead_since if sent.dead_since is not None else time.monotonic()
            if sent.dead_seen >= 2 and time.monotonic() - sent.dead_since >= self.dead_after_s:
                log.warning("intent_tx_dead", chain=key.chain, intent=sent.intent_id, nonce=sent.tx.nonce,
                            tx=sent.tx.tx_hash)
                changes.append((sent.intent_id, sent.tx.tx_hash, {
                    "status": IntentStatus.PLANNED, "nonce": None, "raw_tx": None, "tx_hash": None,
                    "replaced_tx_hashes": None,
                    "reason": f"its transaction {sent.tx.tx_hash} can no longer be included (the chain decided lane "
                              f"sequence {sent.tx.nonce} without it); signed again"}))
                del lane.sent[sent.tx.nonce]
        await self._run(self.store.settle, lane.lease, self.owner, changes)

    # ------------------------------------------------------------ fees outgrown
    async def _reprice(self, lane: _LaneState) -> None:
        """Transactions sent at least ``reprice_after_s`` ago and still not mined: a copy re-priced for the fees now
        where the chain's fees have outgrown them, stored (fenced, the earlier hash kept: either may be mined) before
        it is sent; the others are sent again as they are (a node may have dropped them)."""
        now = time.monotonic()
        stale = [s for _n, s in sorted(lane.sent.items()) if s.broadcast and now - s.sent_at >= self.reprice_after_s]
        if not stale:
            return
        sender = self.senders[lane.lease.key.chain]
        copies = await sender.replacements(lane.key_hex, [s.tx.raw for s in stale])
        changes = [(s.intent_id, s.tx.tx_hash, {"raw_tx": c.raw.hex(), "tx_hash": c.tx_hash,
                                                "replaced_tx_hashes": json.dumps(s.hashes())})
                   for s, c in zip(stale, copies, strict=True) if c is not None]
        await self._run(self.store.settle, lane.lease, self.owner, changes)
        for s, c in zip(stale, copies, strict=True):
            s.sent_at = now
            if c is not None:
                self._on_repriced(lane.lease.key.chain)
                log.warning("intent_tx_repriced", chain=lane.lease.key.chain, intent=s.intent_id, nonce=c.nonce,
                            tx=c.tx_hash, replaces=s.tx.tx_hash)
                s.replaced, s.tx = s.hashes(), c
        answers = await sender.broadcast([s.tx.raw for s in stale])
        for s, (outcome, detail) in zip(stale, answers, strict=True):
            if outcome is Broadcast.REFUSED:
                self._on_refused(lane.lease.key.chain)
                log.warning("intent_rebroadcast_refused", chain=lane.lease.key.chain, intent=s.intent_id,
                            nonce=s.tx.nonce, error=detail)

    def _mined(self, receipt: TxReceipt, now: float) -> dict[str, Any]:
        fee = {"height": int(receipt.height), "fee_paid": str(receipt.fee_paid),
               "fee_paid_usd": receipt.fee_native * self.native_usd, "included_at": now, "raw_tx": None}
        if not receipt.success:
            return {**fee, "status": IntentStatus.FAILED, "reason": "transaction reverted"}
        if receipt.message_id is not None:  # a cross-chain transfer: the message the relayer delivers
            fee["message_id"] = "0x" + receipt.message_id.hex()
        return {**fee, "status": IntentStatus.INCLUDED, "reason": None}


