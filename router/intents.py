"""Submitted intents: their table, and their execution with the operator's accounts (issue 3, routing API).

The relayer creates ``IntentStore`` on its own database engine and hands ``IntentExecutor`` its chain
adapters (as ``MessageSender``), the operator keys and a way to read a relayed message's state, so this
module imports nothing of ``relayer`` (DESIGN.md "Layout").

Life of an intent:  planned (or unsigned: waiting for the dApp to sign and broadcast) -> submitted (same-chain tx
accepted) -> included (mined; for xchain: the origin tx mined and the message id known) -> delivered (xchain: the
relayer delivered the message); or failed (with the reason). An intent the planner leaves unserved is answered inline
and never stored (issue 12: refused input leaves no trace).

What counts for an integrator (``integrator_report``): only intents seen included on chain (cross-chain: delivered),
with the fee their transaction actually paid, read from its receipt (``TxReceipt``), never the planner's estimate.
A hash a dApp reports for its own signed transaction (signer mode) counts only if the mined transaction is the one
the router built for that intent (``claim_problem``) and no other intent claimed it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import structlog
from sqlalchemy import BigInteger, Column, Index, case, func, text
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from adapters.base import AdapterError, ChainAdapter, MessageSender, TxHash, TxNotFound, TxReceipt, TxReverted
from adapters.capabilities import UnsignedTransactions
from router.balances import OperatorBalances
from router.planner import XCHAIN_ORIGIN_WORK
from router.sql import insert_rows, update_rows

log = structlog.get_logger("router.intents")


_SIGNER_MODE = text("signer IS NOT NULL")


# indexes of earlier versions: ix_intents_status_kind and ix_intents_queue lead with status; the three others are
# the full indexes that the partial ix_intents_set_* replace (most intents have no integrator, signer or, when
# accepted, transaction)
RETIRED_INDEXES = ("ix_intents_status", "ix_intents_integrator", "ix_intents_signer", "ix_intents_tx_hash")


def _where_set(column: str) -> dict[str, Any]:
    """A partial index's clause on both databases: rows where ``column`` is set (most intents have no integrator,
    signer, or, when accepted, transaction: an index of the set ones costs their insert nothing)."""
    clause = text(f"{column} IS NOT NULL")
    return {"sqlite_where": clause, "postgresql_where": clause}


class IntentStatus(StrEnum):
    """Where an intent is. Stored and answered as its text (``"planned"``...): the JSON shapes and the ``status``
    column are plain strings. queued (accepted, waiting for room; or expired at its deadline, nothing sent) ->
    planned (accepted) -> signed (stored before it is sent: router/lanes.py) -> submitted
    -> included (-> delivered, cross-chain), or failed; signer mode: unsigned -> submitted (the dApp reported its
    transaction) -> ...; unserved: the router did not take it."""

    PLANNED = "planned"
    QUEUED = "queued"
    EXPIRED = "expired"
    SIGNED = "signed"
    UNSIGNED = "unsigned"
    SUBMITTED = "submitted"
    INCLUDED = "included"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNSERVED = "unserved"


FINAL_STATUSES = frozenset({IntentStatus.DELIVERED, IntentStatus.FAILED, IntentStatus.UNSERVED,
                            IntentStatus.EXPIRED})


class IntentFields(SQLModel):
    """An intent's columns as a plain model (no table): what the API builds for a batch (``model_construct``, without
    the ORM's per-attribute bookkeeping: a thousand intents per request) and what most code reads. ``IntentRecord``
    is the table."""

    id: str = Field(primary_key=True, max_length=40)
    batch: str = Field(index=True, max_length=40)
    created_at: float
    updated_at: float
    kind: str
    token: str
    amount: str                      # decimal token amount as submitted
    units: str                       # smallest units (string: may exceed 64 bits)
    recipient: str
    integrator: str | None = None
    from_chain: str | None = None
    chain: str | None = None         # where it runs (destination of an xchain transfer)
    origin: str | None = None        # where it starts (== chain for same-chain intents)
    operator: str | None = None      # address of the operator account that signs it
    status: str = IntentStatus.PLANNED  # an IntentStatus, stored as its text
    reason: str | None = None
    tx_hash: str | None = None
    message_id: str | None = None
    fee_usd: float | None = None     # the planner's estimate (shown, never counted)
    latency_s: float | None = None
    height: int | None = None        # block that included the (origin) transaction
    calldata: str | None = None      # call intents: 0x-hex data sent to ``recipient`` (the contract)
    work: float = 1.0                # gas in token transfers (the planner's unit)
    # issue 12: what was actually paid, and what a dApp-signed transaction must match
    fee_paid: str | None = None      # smallest native units, from the receipt (gas used x effective gas price)
    fee_paid_usd: float | None = None  # fee_paid in USD at router.native_usd
    signer: str | None = None  # signer mode: the dApp's account (None: operator-signed)
    client: str | None = None        # who submitted it (hashed API key or client address): may report its hash
    expected_to: str | None = None   # signer mode: the address the built transaction calls (where the chain has one)
    expected_input: str | None = None  # signer mode: its 0x-hex call data
    built_height: int | None = None  # signer mode: the chain's latest height when it was built (its tx comes later)
    # issue 14: durable lanes (router/lanes.py): the signed transaction stored before it is sent
    nonce: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    raw_tx: str | None = None        # hex of the signed transaction, kept until it is mined
    replaced_tx_hashes: str | None = None  # JSON list: earlier signatures at the same nonce, re-priced since
    executor: str | None = None      # the daemon that signed it
    included_at: float | None = None  # wall clock when the daemon saw it mined
    # queued intents (router/queue.py): what to plan them from, and until when they may wait
    request: str | None = None       # the IntentRequest as JSON
    deadline_at: float | None = None



_FIELD_DEFAULTS: dict[str, Any] = {name: f.get_default(call_default_factory=True)
                                   for name, f in IntentFields.model_fields.items() if not f.is_required()}


def intent_fields(values: dict[str, Any]) -> IntentFields:
    """``IntentFields`` from values already checked (router.validation), the columns not given at their defaults.
    What ``model_construct`` does, without resolving each default per record (70 µs a record: the API builds a
    thousand per request). ``values`` becomes the record's own ``__dict__``."""
    rec = IntentFields.__new__(IntentFields)
    object.__setattr__(rec, "__dict__", {**_FIELD_DEFAULTS, **values})
    object.__setattr__(rec, "__pydantic_fields_set__", set(values))
    object.__setattr__(rec, "__pydantic_extra__", None)
    object.__setattr__(rec, "__pydantic_private__", None)
    return rec


class IntentRecord(IntentFields, table=True):
    __tablename__ = "intents"
    # a transaction hash a dApp reports (signer mode) belongs to one intent only: the database refuses a second claim
    __table_args__ = (Index("ux_intents_signer_tx_hash", "tx_hash", unique=True, sqlite_where=_SIGNER_MODE,
                            postgresql_where=_SIGNER_MODE),
                      # a lane reads its own intents by status many times a second (router/lanes.py); a lane is
                      # the chain an intent starts on (its origin: a cross-chain transfer's lane is its origin's)
                      Index("ix_intents_lane_origin", "origin", "operator", "status"),
                      # unsettled(): the included cross-chain intents among every included one, without reading them
                      Index("ix_intents_status_kind", "status", "kind"),
                      Index("ix_intents_queue", "status", "created_at", "id"),  # queued(): oldest first
                      Index("ix_intents_set_tx_hash", "tx_hash", **_where_set("tx_hash")),
                      Index("ix_intents_set_signer", "signer", **_where_set("signer")),
                      Index("ix_intents_set_integrator", "integrator", **_where_set("integrator")))


def intent_view(rec: IntentFields) -> dict[str, Any]:
    return {"id": rec.id, "batch": rec.batch, "status": rec.status, "reason": rec.reason, "kind": rec.kind,
            "token": rec.token, "amount": rec.amount, "recipient": rec.recipient, "integrator": rec.integrator,
            "from_chain": rec.from_chain, "chain": rec.chain, "origin": rec.origin, "tx_hash": rec.tx_hash,
            "message_id": rec.message_id, "fee_estimate_usd": rec.fee_usd, "latency_estimate_s": rec.latency_s,
            "height": rec.height, "calldata": rec.calldata, "fee_paid": rec.fee_paid, "fee_paid_usd": rec.fee_paid_usd,
            "signer": rec.signer, "operator": rec.operator, "nonce": rec.nonce, "executor": rec.executor,
            "included_at": rec.included_at, "deadline_at": rec.deadline_at,
            "replaced_tx_hashes": json.loads(rec.replaced_tx_hashes) if rec.replaced_tx_hashes else [],
            "created_at": rec.created_at, "updated_at": rec.updated_at}


def counts_for_integrator(rec: IntentFields) -> bool:
    """Seen included on chain (same-chain), or delivered (cross-chain): the only intents a report counts."""
    return rec.status == IntentStatus.DELIVERED if rec.kind == "xchain" else rec.status == IntentStatus.INCLUDED


def claim_problem(rec: IntentFields, receipt: TxReceipt) -> str | None:
    """Why the mined transaction a dApp reported for its signer-mode intent ``rec`` is not the one the router built
    for it (None: it is). Checked: sent by the intent's signer; calls the expected address with the expected call
    data (where the chain has them: EVM), no native value; mined after the chain's latest height when the router
    built it (a transaction signed afterwards cannot be in that block or before; so an old transaction of the
    signer's cannot be passed off as this intent's). The caller also checks success."""
    if receipt.sender.lower() != (rec.signer or "").lower():
        return f"sent by {receipt.sender or 'unknown'}, not by the intent's signer {rec.signer}"
    if rec.expected_to and receipt.to.lower() != rec.expected_to.lower():
        return f"calls {receipt.to or 'nothing'}, not {rec.expected_to.lower()}"
    if rec.expected_input is not None and receipt.input != bytes.fromhex(rec.expected_input.removeprefix("0x")):
        return "its call data is not the one the router built for this intent"
    if receipt.value != 0:
        return f"sends {receipt.value} of the native token; the intent's transaction sends none"
    if rec.built_height is not None and receipt.height <= rec.built_height:
        return (f"mined at height {receipt.height}, before the router built this intent (the chain was at "
                f"{rec.built_height})")
    return None


def is_settled(rec: IntentFields) -> bool:
    """No further change will come: delivered, failed, unserved, or a same-chain intent included."""
    return rec.status in FINAL_STATUSES or (rec.status == IntentStatus.INCLUDED and rec.kind != "xchain")


def intent_work(kind: str, work: float | None) -> float:
    """An intent's work on the chain that sends it, in token transfers: ``XCHAIN_ORIGIN_WORK`` for a bridge
    transfer's origin leg, a call its own, a transfer one."""
    return XCHAIN_ORIGIN_WORK if kind == "xchain" else float(work or 1.0)


def _work_sql(table: Any) -> Any:
    """``intent_work`` as a column expression (sums over the intents table)."""
    return case((table.c.kind == "xchain", XCHAIN_ORIGIN_WORK), else_=func.coalesce(table.c.work, 1.0))


def new_intent_ids(n: int) -> list[str]:
    """``n`` intent ids, ``int_`` and 128 random bits each (as uuid4, which costs 4x more per id), from one read of
    the OS's random source (one read per id costs more than the rest of building an intent)."""
    pool = os.urandom(16 * n).hex()
    return ["int_" + pool[32 * k:32 * k + 32] for k in range(n)]


P = ParamSpec("P")
R = TypeVar("R")


class OffLoop(Protocol):
    """Runs a synchronous function off the event loop (``asyncio.to_thread``; the daemon passes its store's threads,
    so that SQLite's one writer is one thread)."""

    def __call__(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]: ...


class IntentStore:
    """Intent rows in the daemon's database (short transactions; none across I/O). Synchronous; code on an event
    loop uses ``aio`` (``AsyncIntentStore``)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time, run: OffLoop = asyncio.to_thread,
                 run_first: OffLoop | None = None) -> None:
        """``run``: where the ``aio`` calls run; ``run_first``: the same threads, ahead of the calls waiting there
        (for work a client waits on: ``AsyncIntentStore.run_first``; default ``run``)."""
        self.engine = engine
        self._clock = clock
        self.aio = AsyncIntentStore(self, run, run_first or run)
        SQLModel.metadata.create_all(engine, tables=[IntentRecord.__table__])  # type: ignore[attr-defined]
        self._create_indexes()
        self._drop_retired_indexes()

    def _drop_retired_indexes(self) -> None:
        """Indexes older versions made that newer ones replace (``RETIRED_INDEXES``), dropped where found: a store
        made before would otherwise keep paying for them on every insert."""
        for name in RETIRED_INDEXES:
            try:
                with self.engine.begin() as conn:
                    conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
            except SQLAlchemyError as exc:  # another instance is using the table: it goes at a later start
                log.info("intent_index_not_dropped", index=name, error=str(exc)[:200])

    def _create_indexes(self) -> None:
        """Indexes a table made by an older version lacks (``create_all`` adds them to new tables only)."""
        for index in IntentRecord.__table__.indexes:  # type: ignore[attr-defined]
            try:
                index.create(self.engine, checkfirst=True)
            except SQLAlchemyError as exc:  # another instance created it at the same moment
                log.info("intent_index_not_created", index=index.name, error=str(exc)[:200])

    def add_all(self, records: Sequence[IntentFields]) -> None:
        """Insert the rows, of the columns some record sets (the rest stay NULL), as multi-row statements
        (``router.sql.insert_rows``): no ORM unit of work, no per-row parameter processing, no per-row statement
        for a batch of a thousand."""
        if not records:
            return
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        rows = [r.__dict__ for r in records]
        names = [c.name for c in table.columns if any(row.get(c.name) is not None for row in rows)]
        with self.engine.begin() as conn:
            insert_rows(conn, table, names, [tuple(row.get(n) for n in names) for row in rows])

    def get(self, intent_id: str) -> IntentFields | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(IntentRecord, intent_id)

    def update(self, intent_id: str, **values: Any) -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            rec = s.get(IntentRecord, intent_id)
            if rec is None:
                return
            for k, v in values.items():
                setattr(rec, k, v)
            rec.updated_at = self._clock()
            s.add(rec)
            s.commit()

    def update_many(self, changes: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Several updates in one transaction (``(intent id, {column: value})`` each, applied in order), as one
        write of many rows (``router.sql.update_rows``) per run of changes to the same columns."""
        if not changes:
            return
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        with self.engine.begin() as conn:
            i = 0
            while i < len(changes):  # consecutive changes with the same columns go in one statement
                cols = sorted(changes[i][1])
                j = i
                while j < len(changes) and sorted(changes[j][1]) == cols:
                    j += 1
                update_rows(conn, table, ["id"], cols, [(cid, *(vals[c] for c in cols)) for cid, vals in changes[i:j]],
                            {"updated_at": now})
                i = j

    def planned_for(self, chain: str, operator: str, limit: int = 10_000) -> list[tuple[str, str, str, str]]:
        """``(id, kind, token, units)`` of the planned operator-signed intents ``operator``'s lane on ``chain`` would
        sign next (a cross-chain one's lane is its origin's), oldest first."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        q = (sa_select(table.c.id, table.c.kind, table.c.token, table.c.units)
             .where(table.c.origin == chain, table.c.operator == operator, table.c.signer.is_(None),
                    table.c.status == IntentStatus.PLANNED)
             .order_by(table.c.created_at, table.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [(str(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in conn.execute(q)]

    def move_planned(self, chain: str, operator: str, moves: Sequence[tuple[str, str]]) -> int:
        """Each ``(intent id, new operator account)``: the intent changes account while it is still planned and still
        ``operator``'s on ``chain`` (nothing was signed for it: a lane signs only what it reads as planned, and its
        write-ahead needs it still planned); the rows moved."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        moved = 0
        with self.engine.begin() as conn:
            for intent_id, new in moves:
                moved += conn.execute(sa_update(table).where(
                    table.c.id == intent_id, table.c.origin == chain, table.c.operator == operator,
                    table.c.status == IntentStatus.PLANNED).values(operator=new, updated_at=self._clock())).rowcount
        return moved

    def _fields(self, query: Any) -> list[IntentFields]:
        """The rows of ``query`` (a select of the whole table) as plain ``IntentFields``, without the ORM: loading
        ORM objects cost 10x more per row, and batch status and the queue read thousands of rows a second."""
        with self.engine.connect() as conn:
            result = conn.execute(query)
            names = list(result.keys())
            return [intent_fields(dict(zip(names, row, strict=True))) for row in result]

    def by_batch(self, batch: str) -> list[IntentFields]:
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        return self._fields(select(table).where(table.c.batch == batch).order_by(table.c.created_at, table.c.id))

    def unsettled(self, limit: int = 500) -> list[IntentFields]:
        """Intents whose status can still move on by itself: submitted, or included cross-chain."""
        t = IntentRecord.__table__  # type: ignore[attr-defined]
        return self._fields(select(t).where(((t.c.status == IntentStatus.SUBMITTED)
                                             & t.c.nonce.is_(None))  # lane intents: router/lanes.py
                                            | ((t.c.status == IntentStatus.INCLUDED) & (t.c.kind == "xchain")))
                            .order_by(t.c.updated_at).limit(limit))

    def queued(self, limit: int) -> list[IntentFields]:
        """Queued intents, oldest first (plain rows, read in index order: the releaser reads them four times a
        second)."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        return self._fields(select(table).where(table.c.status == IntentStatus.QUEUED)
                            .order_by(table.c.created_at, table.c.id).limit(limit))

    def queued_work(self) -> float:
        """The work (in token transfers) of every queued intent: what a new one would wait behind."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return float(conn.execute(select(func.coalesce(func.sum(_work_sql(table)), 0.0))
                                      .where(table.c.status == IntentStatus.QUEUED)).scalar_one())

    def queued_count(self) -> int:
        with Session(self.engine) as s:
            q = select(func.count()).select_from(IntentRecord).where(col(IntentRecord.status) == IntentStatus.QUEUED)
            return int(s.exec(q).one())

    def expire_queued(self) -> list[tuple[str | None, str, str]]:
        """Queued intents past their deadline end ``expired``: nothing was sent for them. Each one this call expired,
        as (client, token, amount): the value it reserved of its client's daily budget goes back."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        with self.engine.begin() as conn:
            rows = conn.execute(sa_update(table).where(
                (table.c.status == IntentStatus.QUEUED) & (table.c.deadline_at < now)).values(
                status=IntentStatus.EXPIRED, updated_at=now,
                reason="no room on an allowed chain before its deadline (max_wait_s); nothing was sent")
                .returning(table.c.client, table.c.token, table.c.amount)).all()
        return [(r.client, str(r.token), str(r.amount)) for r in rows]

    def release(self, records: Sequence[IntentFields]) -> list[str]:
        """Queued intents now planned: chain, operator and estimates written, each only if still queued (another
        daemon may have released it first); the ids this call released."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        groups: dict[tuple[Any, ...], list[str]] = {}  # one statement per plan (chain, account, estimates), not per row
        for r in records:
            groups.setdefault((r.chain, r.origin, r.operator, r.fee_usd, r.latency_s), []).append(r.id)
        released: set[str] = set()
        with self.engine.begin() as conn:
            for (chain, origin, operator, fee_usd, latency_s), ids in groups.items():
                for k in range(0, len(ids), 5000):
                    released.update(conn.execute(sa_update(table).where(  # never past its deadline: that expires
                        table.c.id.in_(ids[k:k + 5000]) & (table.c.status == IntentStatus.QUEUED)
                        & (table.c.deadline_at.is_(None) | (table.c.deadline_at >= now))).values(
                        status=IntentStatus.PLANNED, chain=chain, origin=origin, operator=operator, fee_usd=fee_usd,
                        latency_s=latency_s, reason=None, updated_at=now).returning(table.c.id)).scalars())
        return [r.id for r in records if r.id in released]

    def active_work(self) -> dict[str, float]:
        """Per chain that sends them, the work (in token transfers) of intents taken and not yet mined, whichever
        daemon took them: planned, signed or submitted (a cross-chain transfer's origin leg counts 2)."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        sender = func.coalesce(table.c.origin, table.c.chain)
        q = (select(sender, func.sum(_work_sql(table))).where(table.c.status.in_(
            [IntentStatus.PLANNED, IntentStatus.SIGNED, IntentStatus.SUBMITTED])).group_by(sender))
        with self.engine.connect() as conn:
            return {str(c): float(w or 0.0) for c, w in conn.execute(q)}

    def by_integrator(self, code: str) -> list[IntentFields]:
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        return self._fields(select(table).where(table.c.integrator == code))

    def tx_known(self, tx_hash: str) -> bool:
        """Whether any intent already holds ``tx_hash`` (sent by the operators, or claimed by a dApp)."""
        with Session(self.engine) as s:
            return (s.exec(select(IntentRecord.id).where(col(IntentRecord.tx_hash) == tx_hash).limit(1)).first()
                    is not None)

    def claim(self, intent_id: str, tx_hash: str) -> bool:
        """Move an ``unsigned`` intent to ``submitted`` with the hash its dApp reported, in one conditional UPDATE:
        False if it is no longer unsigned or another signer-mode intent holds the hash (unique index)."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        stmt = (sa_update(table).where((table.c.id == intent_id) & (table.c.status == IntentStatus.UNSIGNED))
                .values(status=IntentStatus.SUBMITTED, tx_hash=tx_hash, updated_at=self._clock()))
        try:
            with self.engine.begin() as conn:
                return bool(conn.execute(stmt).rowcount == 1)
        except IntegrityError:
            return False

    def open_signer_intents(self) -> int:
        """Signer-mode intents still unsigned or submitted (what ``router.max_open_unsigned`` bounds)."""
        with Session(self.engine) as s:
            q = select(func.count()).select_from(IntentRecord).where(
                col(IntentRecord.signer).is_not(None)
                & col(IntentRecord.status).in_((IntentStatus.UNSIGNED, IntentStatus.SUBMITTED)))
            return int(s.exec(q).one())

    def prune(self, ttl_s: float) -> tuple[int, list[str], int]:
        """Bound what callers leave behind that never landed: signer-mode intents still unsigned ``ttl_s`` after
        they were built are deleted, reported transactions still unmined ``ttl_s`` after the report fail, and failed
        intents are deleted ``ttl_s`` after they failed if they were signer-mode or never reached a chain (no
        transaction: e.g. a call the chain refused to estimate). Operator transactions that were sent stay (they
        cost us). (deleted unsigned, ids failed now, deleted failed)."""
        table = IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        old = table.c.updated_at < now - ttl_s
        signer = table.c.signer.is_not(None)
        unlanded = signer | table.c.tx_hash.is_(None)
        with self.engine.begin() as conn:
            expired = conn.execute(sa_delete(table).where(signer & old
                                                          & (table.c.status == IntentStatus.UNSIGNED))).rowcount
            removed = conn.execute(sa_delete(table).where(unlanded & old
                                                          & (table.c.status == IntentStatus.FAILED))).rowcount
            stale = [r[0] for r in conn.execute(select(table.c.id).where(signer & old
                                                                         & (table.c.status == IntentStatus.SUBMITTED)))]
            if stale:
                conn.execute(sa_update(table).where(table.c.id.in_(stale)
                                                    & (table.c.status == IntentStatus.SUBMITTED)).values(
                    status=IntentStatus.FAILED, updated_at=now,
                    reason=f"the reported transaction was not seen mined within {ttl_s:.0f} s "
                           "(router.unsigned_ttl_s)"))
        return int(expired or 0), stale, int(removed or 0)


def _off_loop(method: Callable[Concatenate[IntentStore, P], R]
              ) -> Callable[Concatenate[AsyncIntentStore, P], Coroutine[Any, Any, R]]:
    name = method.__name__

    @functools.wraps(method)
    async def call(self: AsyncIntentStore, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, R] = getattr(self.sync, name)  # the instance's own method (tests may replace it)
        return await self._run(bound, *args, **kwargs)

    return call


class AsyncIntentStore:
    """``IntentStore``'s operations as coroutines run off the event loop."""

    def __init__(self, store: IntentStore, run: OffLoop, run_first: OffLoop) -> None:
        self.sync = store
        self._run = run
        self._run_first = run_first

    async def run_sync(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Any synchronous database work on the store's threads (e.g. ``router.room``)."""
        return await self._run(fn, *args, **kwargs)

    async def run_first(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """As ``run_sync``, before the background loops' calls that wait for the store's threads: for the work of
        an API request (``POST /v1/intents``)."""
        return await self._run_first(fn, *args, **kwargs)

    add_all = _off_loop(IntentStore.add_all)
    get = _off_loop(IntentStore.get)
    update = _off_loop(IntentStore.update)
    update_many = _off_loop(IntentStore.update_many)
    by_batch = _off_loop(IntentStore.by_batch)
    unsettled = _off_loop(IntentStore.unsettled)
    by_integrator = _off_loop(IntentStore.by_integrator)
    queued = _off_loop(IntentStore.queued)
    queued_work = _off_loop(IntentStore.queued_work)
    queued_count = _off_loop(IntentStore.queued_count)
    expire_queued = _off_loop(IntentStore.expire_queued)
    release = _off_loop(IntentStore.release)
    tx_known = _off_loop(IntentStore.tx_known)
    claim = _off_loop(IntentStore.claim)
    open_signer_intents = _off_loop(IntentStore.open_signer_intents)
    prune = _off_loop(IntentStore.prune)


def integrator_report(code: str, records: Sequence[IntentFields], fee_share: float) -> dict[str, Any]:
    """Intents, volume (sum of amounts), fees actually paid (USD, from the receipts) and the integrator's share,
    total, by chain and by UTC day, of the intents seen included on chain (cross-chain: delivered) only; ``pending``
    counts those that may still count (planned, unsigned, submitted, or cross-chain on their way)."""

    def empty() -> dict[str, Any]:
        return {"intents": 0, "volume": Decimal(0), "fees_usd": 0.0}

    def add(bucket: dict[str, Any], rec: IntentFields) -> None:
        bucket["intents"] += 1
        bucket["volume"] += Decimal(rec.amount)
        bucket["fees_usd"] += rec.fee_paid_usd or 0.0

    def out(bucket: dict[str, Any]) -> dict[str, Any]:
        return {"intents": bucket["intents"], "volume": str(bucket["volume"]), "fees_usd": bucket["fees_usd"],
                "fee_share_usd": bucket["fees_usd"] * fee_share}

    total = empty()
    chains: dict[str, dict[str, Any]] = {}
    days: dict[str, dict[str, Any]] = {}
    pending = 0
    for rec in records:
        if not counts_for_integrator(rec):
            pending += rec.status not in (IntentStatus.FAILED, IntentStatus.UNSERVED, IntentStatus.EXPIRED)
            continue
        add(total, rec)
        add(chains.setdefault(rec.chain or "unknown", empty()), rec)
        day = dt.datetime.fromtimestamp(rec.created_at, dt.UTC).date().isoformat()
        add(days.setdefault(day, empty()), rec)
    return {"integrator": code, "fee_share": fee_share, **out(total), "pending": pending,
            "by_chain": {k: out(v) for k, v in sorted(chains.items())},
            "by_day": {k: out(v) for k, v in sorted(days.items())}}


@dataclass(slots=True)
class _InFlight:
    """A same-chain transaction sent and not yet seen mined."""

    intent_id: str
    tx_hash: str
    work: float
    sent_at: float
    claimed: IntentFields | None = None  # signer mode: the intent its dApp reported it for (checked when mined)


class LaneRunner(Protocol):
    """The durable executor of operator-signed same-chain intents (``router.lanes.LaneExecutor``)."""

    @property
    def chains(self) -> frozenset[str]: ...

    def chains_for(self, kind: str) -> frozenset[str]: ...

    def wake(self) -> None: ...

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True, slots=True)
class Operator:
    key: str        # private key (hex); never logged nor returned
    address: str    # its EVM address: the operator's name (and its account on every EVM chain)
    accounts: Mapping[str, str] = field(default_factory=dict)  # chain -> its account there, where not ``address``

    def on(self, chain: str) -> str:
        """This operator's account on ``chain`` (a Solana public key, a Cosmos address; on EVM ``address``)."""
        return self.accounts.get(chain, self.address)


class IntentExecutor:
    """The intents' chain side: the operators' balances, the durable lanes that sign and send operator-signed intents
    (``router.lanes``), the unsigned transactions of signer mode and the following of the hashes their dApps report,
    and the status refresh."""

    def __init__(self, store: IntentStore, senders: Mapping[str, MessageSender], domains: dict[str, int],
                 operators: Sequence[Operator], message_state: Callable[[str], Awaitable[str | None]],
                 *, native_usd: float = 3000.0,
                 lanes: Callable[[IntentExecutor], LaneRunner] | None = None) -> None:
        """``native_usd`` converts fees read from receipts to USD; ``lanes`` builds the durable runner
        (``router.lanes.LaneExecutor``) that executes every operator-signed intent: without it the operators sign
        nothing (``signable_chains`` is empty)."""
        self.store = store
        self.senders = senders
        self.domains = domains
        self.operators = list(operators)
        self.operator_balances = OperatorBalances(self.balances, [[o.address, *o.accounts.values()]
                                                                  for o in self.operators])
        self._message_state = message_state
        self.native_usd = native_usd
        self._in_flight: dict[tuple[str, str], list[_InFlight]] = {}  # (chain, operator) -> sent, oldest first
        self._watcher: asyncio.Task[None] | None = None
        self._unflushed: list[tuple[str, dict[str, Any]]] = []  # status changes written by the watcher, in order
        self._flushing: list[tuple[str, dict[str, Any]]] = []  # those being written now (off the loop)
        self._included: dict[str, collections.deque[tuple[float, float]]] = {}  # chain -> (monotonic t, work) mined
        self.blocked_accounts: set[tuple[str, str]] = set()  # (chain, account) whose lane waits on a refusal
        self._moving: set[asyncio.Task[int]] = set()
        self.lanes = lanes(self) if lanes is not None else None

    def lane_blocked(self, chain: str, account: str, blocked: bool) -> None:
        """A lane waits on a transaction its node refuses (``blocked``), or no longer: while it does, the API plans
        no new intents for that operator account on that chain (``blocked_accounts``), and the intents planned for it
        and not yet signed move to the other accounts that can pay them (``move_off_blocked``)."""
        (self.blocked_accounts.add if blocked else self.blocked_accounts.discard)((chain, account.lower()))
        if blocked and any(t.get_name() == f"move-off-{chain}-{account}" for t in self._moving):
            return  # a move of this account's intents is under way
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not from the daemon's loop (a test): the caller may move them itself
            return
        if blocked:
            task = loop.create_task(self.move_off_blocked(chain, account), name=f"move-off-{chain}-{account}")
            self._moving.add(task)
            task.add_done_callback(self._moving.discard)

    async def move_off_blocked(self, chain: str, account: str) -> int:
        """The planned intents of ``account``'s blocked lane on ``chain``, each to another operator account there that
        is not blocked and holds its amount (calls: spread over them); the intents moved. Those no account can pay
        stay, and wait for the lane."""
        planned = await self.store.aio.run_sync(self.store.planned_for, chain, account)
        others = [k for k, o in enumerate(self.operators) if o.on(chain).lower() != account.lower()
                  and (chain, o.on(chain).lower()) not in self.blocked_accounts]
        if not planned or not others:
            return 0
        funds = {token: (await self.operator_balances.get([chain], token))[chain]
                 for token in {token for _id, kind, token, _units in planned if kind != "call"}}
        moves: list[tuple[str, str]] = []
        for intent_id, kind, token, units in planned:
            if kind == "call":
                k = others[len(moves) % len(others)]
            else:
                k = max(others, key=lambda j: funds[token][j])
                if funds[token][k] < int(units):
                    continue
                funds[token][k] -= int(units)
                self.operator_balances.take(token, chain, self.operators[k].on(chain), int(units))
            moves.append((intent_id, self.operators[k].on(chain)))
        moved = await self.store.aio.run_sync(self.store.move_planned, chain, account, moves)
        log.warning("intents_moved_off_blocked_lane", chain=chain, account=account, moved=moved,
                    staying=len(planned) - moved)
        if moved and self.lanes is not None:
            self.lanes.wake()
        return moved

    def lane_settled(self, chain: str, work: float, included: bool) -> None:
        """A lane intent was mined (``included``: successfully), or failed before it was signed."""
        if included:
            self._included.setdefault(chain, collections.deque()).append((time.monotonic(), work))

    def signable_chains(self) -> dict[str, frozenset[str]]:
        """Per intent kind, where the operator accounts may sign it: the chains whose durable lanes
        (``router.lanes``) take that kind (EVM: every kind; Solana: cross-chain transfers). An operator-signed intent
        is planned there only (a cross-chain one: from there)."""
        lanes = self.lanes
        return {kind: lanes.chains_for(kind) if lanes is not None else frozenset()
                for kind in ("transfer", "call", "xchain")}

    def included_work_per_s(self, chain: str, within_s: float) -> float:
        """Work of our transactions seen mined on ``chain`` per second over the last ``within_s`` seconds: the
        chain's load that is ours (the capacity model must not count it as other users' background)."""
        q = self._included.get(chain)
        if not q or within_s <= 0:
            return 0.0
        cutoff = time.monotonic() - within_s
        while q and q[0][0] < cutoff:
            q.popleft()
        return sum(w for _t, w in q) / within_s

    async def balances(self, chains: Sequence[str], token: str,
                       holders: Sequence[str] | None = None) -> dict[str, list[int]]:
        """Each holder's (default: each operator's account on that chain) balance of ``token`` on each chain (0 where
        the token is unknown or the chain fails)."""
        def holders_on(chain: str) -> list[str]:
            return list(holders) if holders is not None else [o.on(chain) for o in self.operators]

        async def one(chain: str, address: str) -> int:
            try:
                return await self.senders[chain].token_balance(token, address)
            except AdapterError:
                return 0

        # every chain and holder at once: one RPC round trip of latency for the whole batch, not one per chain
        asked = [(chain, a) for chain in chains for a in holders_on(chain)]
        flat = iter(await asyncio.gather(*(one(chain, a) for chain, a in asked)))
        return {chain: [next(flat) for _ in holders_on(chain)] for chain in chains}

    async def unsigned(self, rec: IntentFields) -> dict[str, Any]:
        """The transaction of a planned same-chain intent for its signer (``rec.operator``) to sign; notes on
        ``rec`` what the transaction reported for it must match (its ``to`` and ``data`` where the chain's shape
        has them, and the chain's height now)."""
        assert rec.chain is not None and rec.operator is not None
        sender = self.senders[rec.chain]
        if not isinstance(sender, UnsignedTransactions):
            raise TxReverted(f"unsigned transactions are not offered on {rec.chain}", chain=rec.chain,
                             reason="not supported")
        tx = await sender.unsigned_transaction(
            rec.operator, rec.kind, to=rec.recipient, amount=int(rec.units), symbol=rec.token,
            data=bytes.fromhex((rec.calldata or "0x")[2:]))
        to, data = tx.get("to"), tx.get("data")
        rec.expected_to = to.lower() if isinstance(to, str) else None
        rec.expected_input = data.lower() if isinstance(data, str) else None
        if isinstance(sender, ChainAdapter):
            rec.built_height = int(await sender.latest_height())
        return tx

    async def knows_tx(self, tx_hash: str) -> bool:
        """A hash the operators sent, in memory or in the store: never claimable by a dApp."""
        if any(t.tx_hash == tx_hash for txs in self._in_flight.values() for t in txs):
            return True
        return any(v.get("tx_hash") == tx_hash
                   for _i, v in (*self._unflushed, *self._flushing)) or await self.store.aio.tx_known(tx_hash)

    def receipt_changes(self, receipt: TxReceipt, claimed: IntentFields | None = None) -> dict[str, Any]:
        """The columns to write once an intent's transaction is mined: included or failed (with the reason), and
        the fee the receipt says was paid. A signer-mode intent (``claimed``) is included only if the transaction
        is the one built for it (``claim_problem``)."""
        fee = {"height": int(receipt.height), "fee_paid": str(receipt.fee_paid),
               "fee_paid_usd": receipt.fee_native * self.native_usd}
        problem = claim_problem(claimed, receipt) if claimed is not None and claimed.signer is not None else None
        if problem is not None:
            assert claimed is not None
            log.warning("intent_claim_refused", intent=claimed.id, chain=claimed.chain, tx=claimed.tx_hash,
                        reason=problem)
            return {**fee, "status": IntentStatus.FAILED, "reason": f"reported transaction refused: {problem}"[:500]}
        if not receipt.success:
            return {**fee, "status": IntentStatus.FAILED, "reason": "transaction reverted"}
        return {**fee, "status": IntentStatus.INCLUDED, "reason": None}

    def track(self, rec: IntentFields, tx_hash: str) -> None:
        """Follow a transaction the dApp signed and broadcast itself for ``rec`` (already claimed: submitted)."""
        assert rec.chain is not None
        rec.tx_hash, rec.status = tx_hash, IntentStatus.SUBMITTED
        self._in_flight.setdefault((rec.chain, rec.operator or ""), []).append(
            _InFlight(rec.id, tx_hash, self.work_of(rec), time.monotonic(), claimed=rec))
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch_in_flight(), name="intents-in-flight")

    async def settle_claim(self, rec: IntentFields, tx_hash: str) -> IntentFields:
        """Right after a dApp's hash was claimed for ``rec``: if the transaction is mined already, check it and
        settle the intent now (a hash of someone else's transaction fails it at once); else follow it."""
        assert rec.chain is not None
        rec.tx_hash, rec.status = tx_hash, IntentStatus.SUBMITTED
        try:
            receipt = await self.senders[rec.chain].tx_receipt(TxHash(tx_hash))
        except AdapterError:  # not mined yet (or the node is away): the watcher follows it
            self.track(rec, tx_hash)
            return await self.store.aio.get(rec.id) or rec
        await self.store.aio.update(rec.id, **self.receipt_changes(receipt, rec))
        return await self.store.aio.get(rec.id) or rec

    def forget(self, intent_ids: Sequence[str]) -> None:
        """Stop following these intents (failed by ``prune``)."""
        gone = set(intent_ids)
        for key, txs in list(self._in_flight.items()):
            txs[:] = [t for t in txs if t.intent_id not in gone]

    async def prune(self, ttl_s: float) -> None:
        """The periodic bound on rows of intents that never landed (``IntentStore.prune``), logged when it acts."""
        expired, stale, removed = await self.store.aio.prune(ttl_s)
        self.forget(stale)
        if expired or stale or removed:
            log.info("signer_intents_pruned", expired_unsigned=expired, failed_unmined=len(stale),
                     deleted_failed=removed)

    def start(self, records: Sequence[IntentFields]) -> None:
        """New planned operator-signed ``records`` are stored: their lanes sign them now rather than at the next poll.
        Operator-signed intents exist only on chains with lanes (``signable_chains``: the API and the queue plan
        them nowhere else), so none is ever executed from memory."""
        if self.lanes is not None and records:
            self.lanes.wake()

    @staticmethod
    def work_of(rec: IntentFields) -> float:
        return intent_work(rec.kind, rec.work)

    async def _watch_in_flight(self, interval_s: float = 0.2, probe: int = 16, give_up_s: float = 600.0) -> None:
        """Move sent same-chain intents to included / failed as soon as their block is seen.

        Per (chain, operator) the oldest ``probe`` transactions are asked for their receipt every
        ``interval_s`` (nonces are mined in order, so the oldest go first); what is mined leaves the pending
        load at once, so the planner can give the chain's room to the next intents. A transaction unseen
        for ``give_up_s`` stops counting as pending (``refresh_unsettled`` still follows it)."""
        while True:
            changes, self._unflushed = self._unflushed, []  # "submitted" rows first, then what was mined

            async def check(chain: str, tx: _InFlight, changes: list[tuple[str, dict[str, Any]]] = changes) -> bool:
                try:
                    receipt = await self.senders[chain].tx_receipt(TxHash(tx.tx_hash))
                except (TxNotFound, AdapterError):
                    return time.monotonic() - tx.sent_at > give_up_s
                changes.append((tx.intent_id, self.receipt_changes(receipt, tx.claimed)))
                return True

            for (chain, _op), txs in list(self._in_flight.items()):
                head = txs[:probe]
                done = await asyncio.gather(*(check(chain, t) for t in head), return_exceptions=True)
                finished = {t.intent_id for t, d in zip(head, done, strict=True) if d is True}
                mined_at = time.monotonic()
                self._included.setdefault(chain, collections.deque()).extend(
                    (mined_at, t.work) for t in head if t.intent_id in finished)
                if finished:
                    txs[:] = [t for t in txs if t.intent_id not in finished]
            self._flushing = changes
            try:
                await self.store.aio.update_many(changes)
            except Exception as exc:  # noqa: BLE001 - keep them for the next pass rather than lose them
                log.warning("intent_status_flush_failed", error=str(exc)[:300], changes=len(changes))
                self._unflushed[:0] = changes
            self._flushing = []
            for key in [k for k, v in self._in_flight.items() if not v]:
                del self._in_flight[key]
            await asyncio.sleep(interval_s)

    async def refresh(self, rec: IntentFields) -> IntentFields:
        """Move a submitted intent to included / failed, an included xchain one to delivered, from the chain
        and the relayer's store."""
        if rec.status == IntentStatus.SUBMITTED and rec.tx_hash and rec.chain:
            try:
                receipt = await self.senders[rec.chain].tx_receipt(TxHash(rec.tx_hash))
            except AdapterError:  # TxNotFound included: not mined yet
                return rec
            await self.store.aio.update(rec.id, **self.receipt_changes(receipt, rec))
        elif (rec.status == IntentStatus.INCLUDED and rec.kind == "xchain" and rec.message_id
              and await self._message_state(rec.message_id) == "DELIVERED"):
            await self.store.aio.update(rec.id, status=IntentStatus.DELIVERED)
        return await self.store.aio.get(rec.id) or rec

    async def refresh_unsettled(self) -> int:
        """One pass over every intent that can still move on (a periodic job of the daemon)."""
        watched = {t.intent_id for txs in self._in_flight.values() for t in txs}
        records = [r for r in await self.store.aio.unsettled() if r.id not in watched]
        await asyncio.gather(*(self.refresh(r) for r in records))
        return len(records)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
        changes, self._unflushed = self._unflushed, []
        await self.store.aio.update_many(changes)
