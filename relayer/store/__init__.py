"""The persisted pipeline: messages, deliveries, signed checkpoints and watcher cursors (sqlmodel).

SQLite by default (WAL, one file, nothing to set up); PostgreSQL by URL. Every state change is one SQL
transaction, so ``kill -9`` at any instant leaves a consistent store and a restart resumes from it.
Bulk paths (indexing thousands of dispatches, moving a batch between states) use set-based statements,
not one ORM object per row.

Work is claimed with leases (``lease_owner``/``lease_until``) so that several relayer processes sharing
one database never work on the same message at once, and a dead process's claims expire.

Several instances on one database (PostgreSQL): each process registers in ``instances`` and beats every few
seconds. An instance silent for longer than ``relayer.instance_lease_s`` (or stopped cleanly) is handed over
by the first live instance to claim it (``adopt_dead_instances``): one conditional ``UPDATE instances ... WHERE
state = <as seen>`` decides the winner, which then takes the dead instance's pending deliveries (it confirms
them by transaction hash) and releases its leased open messages at once; every row it touches records
``handed_over_from`` and the typed reason. Every database error leaves this module as ``StoreError``.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Index, Integer, case, event, func, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlmodel import Field, Session, SQLModel, col, create_engine, select, update

from adapters.base import DispatchedMessage
from config.errors import RelayerError
from relayer.pipeline.outcome import FailureReason  # the one vocabulary of reasons (last_reason)


class StoreError(RelayerError):
    """The database failed a statement (unreachable, restarting, a conflict); ``reason`` says which (only
    ``store_rejected`` will not pass by itself)."""

    def __init__(self, message: str, *, reason: str = "store_unavailable") -> None:
        super().__init__(message)
        self.reason = reason


class MessageState(str, enum.Enum):
    DISPATCHED = "DISPATCHED"
    ATTESTED = "ATTESTED"
    SUBMITTED = "SUBMITTED"
    DELIVERED = "DELIVERED"
    DROPPED = "DROPPED"


OPEN_STATES = (MessageState.DISPATCHED, MessageState.ATTESTED)


class InstanceState(str, enum.Enum):
    ALIVE = "alive"
    STOPPED = "stopped"
    DEAD = "dead"  # declared dead and handed over (``handed_over_to``); it becomes alive again if it beats


class MessageRecord(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_work", "destination", "state", "next_attempt_at"),
        Index("ix_messages_origin_nonce", "origin", "nonce", unique=True),
    )

    id: str = Field(primary_key=True, max_length=66)
    origin: int
    nonce: int
    destination: int
    sender: str
    recipient: str
    raw: bytes
    origin_height: int
    origin_tx: str = Field(index=True)
    dispatched_at: float
    state: str = Field(default=MessageState.DISPATCHED.value)
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_reason: str | None = None
    last_error: str | None = None
    checkpoint_index: int | None = None
    delivery_tx: str | None = Field(default=None, index=True)
    delivered_at: float | None = None
    delivered_height: int | None = None
    lease_owner: str | None = None
    lease_until: float = 0.0
    updated_at: float = 0.0
    handed_over_from: str | None = None  # the instance that held it when it was declared dead or stopped


class DeliveryRecord(SQLModel, table=True):
    __tablename__ = "deliveries"

    tx_hash: str = Field(primary_key=True, max_length=66)
    destination: int = Field(index=True)
    origin: int
    sender: str
    nonce: int
    message_ids: str  # JSON list of hex ids
    submitted_at: float
    gas_limit: int = 0
    max_fee: int = 0
    state: str = Field(default="pending", index=True)
    replaced_by: str | None = None
    gas_used: int = 0
    fee_paid: int = 0
    height: int | None = None
    owner: str | None = None
    adopted_from: str | None = None  # submitted (and signed) by this instance, which died with it pending
    adopted_at: float | None = None


class InstanceRecord(SQLModel, table=True):
    """One ``relayer run`` process sharing the database: its heartbeat, and who took over its work."""

    __tablename__ = "instances"

    name: str = Field(primary_key=True, max_length=128)
    role: str = ""
    host: str = ""
    pid: int = 0
    started_at: float = 0.0
    heartbeat_at: float = 0.0
    state: str = InstanceState.ALIVE.value
    handed_over_to: str | None = None
    handed_over_at: float | None = None


class CheckpointRecord(SQLModel, table=True):
    __tablename__ = "checkpoints"

    validator: str = Field(primary_key=True, max_length=42)
    origin: int = Field(primary_key=True)
    index: int = Field(primary_key=True)
    origin_mailbox: str
    root: str
    signature: str
    signed_at: float


class CursorRecord(SQLModel, table=True):
    __tablename__ = "cursors"

    name: str = Field(primary_key=True, max_length=128)
    height: int


# chain numbers (u64 nonces, u32 domains, heights, wei) overflow PostgreSQL's 32-bit INTEGER: every int is BIGINT
for _model in (MessageRecord, DeliveryRecord, CheckpointRecord, CursorRecord, InstanceRecord):
    for _column in _model.__table__.columns:  # type: ignore[attr-defined,union-attr]
        if isinstance(_column.type, Integer) and not isinstance(_column.type, BigInteger):
            _column.type = BigInteger()


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    origin: int
    nonce: int
    destination: int
    raw: bytes
    state: str
    attempts: int
    dispatched_at: float


@dataclass(frozen=True, slots=True)
class Handover:
    """The work of one dead (or stopped) instance taken over by this one."""

    from_instance: str
    reason: FailureReason
    silent_s: float
    deliveries: tuple[str, ...]  # pending delivery tx hashes now followed by this instance
    submitted: int  # SUBMITTED messages in those deliveries
    released: int  # DISPATCHED/ATTESTED messages whose lease was released for anyone to claim

    @property
    def messages(self) -> int:
        return self.submitted + self.released


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # a short connect timeout: while the server restarts, callers get StoreError quickly and back off
    return create_engine(url, pool_pre_ping=True, pool_size=5, connect_args={"connect_timeout": 5})


_SCHEMA_LOCK = 0x72656C61  # pg_advisory_xact_lock key: instances starting together create the schema one at a time


def _create_schema(conn: Connection) -> None:
    """Create missing tables, and add columns a newer version declares to tables an older one created
    (nullable columns only: enough for the additive changes this store makes)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})"))
    SQLModel.metadata.create_all(conn)
    inspector = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise StoreError(f"table {table.name} lacks the non-null column {column.name}: use a fresh store.url",
                                 reason="schema")
            conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" '
                              f"{column.type.compile(dialect=conn.dialect)}"))
        if conn.dialect.name == "postgresql":  # tables of a version that stored ints as 32-bit INTEGER
            narrow = {c["name"] for c in inspector.get_columns(table.name)
                      if isinstance(c["type"], Integer) and not isinstance(c["type"], BigInteger)}
            for column in table.columns:
                if column.name in narrow and isinstance(column.type, BigInteger):
                    conn.execute(text(f'ALTER TABLE {table.name} ALTER COLUMN "{column.name}" TYPE BIGINT'))


F = TypeVar("F", bound=Callable[..., Any])


def _mapped(method: F) -> F:
    """Database errors leave the store as ``StoreError`` (with its reason), naming the operation, never the credentials."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            detail = (str(getattr(exc, "orig", None) or exc).strip().split("\n") or [""])[0][:300]
            if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
                reason = "store_unavailable"  # down, restarting, connection lost: later will do
            elif isinstance(exc, IntegrityError):
                reason = "store_conflict"  # another instance wrote the same row first
            else:
                reason = "store_rejected"  # a statement the database refuses (a bug, or a schema from elsewhere)
            error = StoreError(f"store {self._safe_url()}: {method.__name__} failed: {exc.__class__.__name__}: {detail}",
                               reason=reason)
            raise error from exc

    return wrapper  # type: ignore[return-value]


def _map_store_errors(cls: type[Store]) -> type[Store]:
    for name, attr in list(vars(cls).items()):
        if callable(attr) and not name.startswith("_") and name != "close":
            setattr(cls, name, _mapped(attr))
    return cls


@_map_store_errors
class Store:
    """All pipeline persistence. Methods are short transactions; none holds a transaction across I/O."""

    def __init__(self, url: str, *, owner: str = "relayer", clock=time.time) -> None:  # type: ignore[no-untyped-def]
        self.url = url
        self.owner = owner
        self._clock = clock
        try:
            self.engine = make_engine(url)
            with self.engine.begin() as conn:
                _create_schema(conn)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open store {self._safe_url()}: {exc.__class__.__name__}: {exc}") from exc
        self._is_postgres = self.engine.dialect.name == "postgresql"

    def _safe_url(self) -> str:
        before, sep, tail = self.url.partition("@")
        scheme = before.partition("://")[0]
        return f"{scheme}://<credentials>@{tail}" if sep else self.url

    def close(self) -> None:
        self.engine.dispose()

    # ---- cursors
    def cursor(self, name: str) -> int | None:
        with Session(self.engine) as s:
            rec = s.get(CursorRecord, name)
            return rec.height if rec else None

    def set_cursor(self, name: str, height: int) -> None:
        with Session(self.engine) as s:
            self._upsert(s, CursorRecord, {"name": name, "height": height}, ["name"])
            s.commit()

    def _upsert(self, s: Session, model: type[SQLModel], row: dict[str, Any], keys: list[str]) -> None:
        """Insert or overwrite one row in one statement (``merge`` reads first: two instances racing to insert
        the same key would make one of them fail)."""
        table = model.__table__  # type: ignore[attr-defined]
        if self._is_postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            pg_stmt = pg_insert(table).values(**row)
            s.execute(pg_stmt.on_conflict_do_update(index_elements=keys,
                                                    set_={k: pg_stmt.excluded[k] for k in row if k not in keys}))
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            lite_stmt = sqlite_insert(table).values(**row)
            s.execute(lite_stmt.on_conflict_do_update(index_elements=keys,
                                                      set_={k: lite_stmt.excluded[k] for k in row if k not in keys}))

    # ---- indexing
    def record_dispatched(
        self,
        found: Sequence[DispatchedMessage],
        *,
        cursor: tuple[str, int],
        known_destinations: set[int],
    ) -> int:
        """Insert new messages (ignoring ids already stored) and advance the cursor, atomically."""
        now = self._clock()
        rows = []
        for d in found:
            known = d.message.destination in known_destinations
            rows.append(
                {
                    "id": _hex(d.id),
                    "origin": d.message.origin,
                    "nonce": d.message.nonce,
                    "destination": d.message.destination,
                    "sender": _hex(d.message.sender),
                    "recipient": _hex(d.message.recipient),
                    "raw": d.raw,
                    "origin_height": d.height,
                    "origin_tx": d.tx_hash,
                    "dispatched_at": d.timestamp,
                    "state": MessageState.DISPATCHED.value if known else MessageState.DROPPED.value,
                    "attempts": 0,
                    "next_attempt_at": 0.0,
                    "last_reason": None if known else FailureReason.UNKNOWN_DESTINATION.value,
                    "lease_until": 0.0,
                    "updated_at": now,
                }
            )
        table = MessageRecord.__table__  # type: ignore[attr-defined]
        with Session(self.engine) as s:
            inserted = 0
            if rows:
                stmt: Any
                if self._is_postgres:
                    from sqlalchemy.dialects.postgresql import insert as pg_insert

                    stmt = pg_insert(table).on_conflict_do_nothing()
                else:
                    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                    stmt = sqlite_insert(table).on_conflict_do_nothing()
                stmt = stmt.returning(table.c.id)  # rowcount of an executemany is -1 on psycopg
                for start in range(0, len(rows), 500):
                    inserted += len(s.execute(stmt, rows[start : start + 500]).all())
            self._upsert(s, CursorRecord, {"name": cursor[0], "height": cursor[1]}, ["name"])
            s.commit()
        return inserted

    def message_ids_in_order(self, origin: int) -> list[tuple[int, bytes]]:
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.nonce), col(MessageRecord.id)).where(col(MessageRecord.origin) == origin).order_by(col(MessageRecord.nonce))).all()
        return [(n, bytes.fromhex(i[2:])) for n, i in rows]

    # ---- relaying
    def claim_ready(self, destination: int, limit: int, lease_s: float) -> list[StoredMessage]:
        """Claim up to ``limit`` open messages for ``destination`` whose retry time has come (FIFO per origin)."""
        now = self._clock()
        m = MessageRecord
        open_states = [s.value for s in OPEN_STATES]
        candidates = (
            select(col(m.id))
            .where(col(m.destination) == destination)
            .where(col(m.state).in_(open_states))
            .where(col(m.next_attempt_at) <= now)
            .where((col(m.lease_until) < now) | (col(m.lease_owner) == self.owner))
            .order_by(col(m.attempts), col(m.origin), col(m.nonce))  # fresh work before failing work
            .limit(limit)
        )
        if self._is_postgres:
            candidates = candidates.with_for_update(skip_locked=True)
        with Session(self.engine) as s:
            ids = list(s.exec(candidates).all())
            if not ids:
                return []
            # re-check everything the candidate query checked: between it and this update another instance
            # may have claimed, settled (state changed, lease released) or rescheduled a row
            s.execute(
                update(m)
                .where(col(m.id).in_(ids))
                .where(col(m.state).in_(open_states))
                .where(col(m.next_attempt_at) <= now)
                .where((col(m.lease_until) < now) | (col(m.lease_owner) == self.owner))
                .values(lease_owner=self.owner, lease_until=now + lease_s,
                        # held by another instance whose lease ran out before it settled the message
                        last_reason=case((col(m.lease_owner).is_not(None) & (col(m.lease_owner) != self.owner)
                                          & (col(m.lease_until) > 0), FailureReason.LEASE_EXPIRED.value),
                                         else_=col(m.last_reason)))
            )
            s.commit()
            rows = s.exec(
                select(m).where(col(m.id).in_(ids)).where(col(m.lease_owner) == self.owner)
                .where(col(m.state).in_(open_states)).where(col(m.lease_until) == now + lease_s)
                .order_by(col(m.origin), col(m.nonce))
            ).all()
            return [StoredMessage(r.id, r.origin, r.nonce, r.destination, r.raw, r.state, r.attempts, r.dispatched_at) for r in rows]

    def next_claim_in(self, destination: int) -> float | None:
        """Seconds until ``claim_ready(destination)`` can next return a message (<= 0: now), from the open
        messages' retry times and the leases other instances hold on them; None when nothing is open."""
        m = MessageRecord
        ours = col(m.lease_owner) == self.owner
        claimable_at = case((ours | (col(m.lease_until) < col(m.next_attempt_at)), col(m.next_attempt_at)),
                            else_=col(m.lease_until))
        with Session(self.engine) as s:
            due = s.exec(select(func.min(claimable_at)).where(col(m.destination) == destination)
                         .where(col(m.state).in_([st.value for st in OPEN_STATES]))).one()
        return None if due is None else float(due) - self._clock()

    def mark_attested(self, ids: Sequence[str], checkpoint_index: int) -> None:
        self._set(ids, state=MessageState.ATTESTED.value, checkpoint_index=checkpoint_index)

    def mark_delivered(self, ids: Sequence[str], *, tx_hash: str | None, height: int | None, at: float) -> None:
        self._set(ids, state=MessageState.DELIVERED.value, delivery_tx=tx_hash, delivered_height=height, delivered_at=at,
                  last_reason=None, lease_until=0.0)

    def mark_retry(self, ids: Sequence[str], reason: FailureReason, error: str, *, backoff, max_attempts: int) -> list[str]:  # type: ignore[no-untyped-def]
        """Count an attempt; schedule the next by ``backoff(attempts)`` or drop past ``max_attempts``. Returns dropped ids."""
        if not ids:
            return []
        now = self._clock()
        dropped: list[str] = []
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.id), col(MessageRecord.attempts)).where(col(MessageRecord.id).in_(list(ids)))).all()
            by_attempts: dict[int, list[str]] = {}
            for mid, attempts in rows:
                by_attempts.setdefault(attempts + 1, []).append(mid)
            for attempts, group in by_attempts.items():
                if attempts >= max_attempts:
                    dropped.extend(group)
                    values = {"state": MessageState.DROPPED.value, "last_reason": FailureReason.MAX_ATTEMPTS.value,
                              "last_error": f"{reason.value}: {error}"[:500]}
                else:
                    values = {"state": MessageState.DISPATCHED.value, "last_reason": reason.value,
                              "last_error": error[:500], "next_attempt_at": now + backoff(attempts)}
                s.execute(update(MessageRecord).where(col(MessageRecord.id).in_(group)).values(
                    attempts=attempts, lease_until=0.0, delivery_tx=None, updated_at=now, **values))
            s.commit()
        return dropped

    def mark_not_ready(self, ids: Sequence[str], reason: FailureReason, error: str, delay_s: float) -> None:
        """Waiting on something outside us (a checkpoint that does not cover it yet); not a failed attempt."""
        self._set(ids, last_reason=reason.value, last_error=error[:500], next_attempt_at=self._clock() + delay_s, lease_until=0.0)

    def requeue(self, ids: Sequence[str]) -> None:
        """Back to DISPATCHED with no lease (e.g. SUBMITTED rows whose delivery record is gone)."""
        self._set(ids, state=MessageState.DISPATCHED.value, lease_until=0.0, delivery_tx=None)

    def drop(self, ids: Sequence[str], reason: FailureReason, error: str) -> None:
        self._set(ids, state=MessageState.DROPPED.value, last_reason=reason.value, last_error=error[:500], lease_until=0.0)

    def drop_reorged(self, origin: int, first_nonce: int, error: str) -> list[str]:
        """Open (not submitted, not delivered) messages of ``origin`` from ``first_nonce`` on become
        ``DROPPED(origin_reorged)``; returns their ids."""
        m = MessageRecord
        with Session(self.engine) as s:
            ids = list(s.exec(select(col(m.id)).where(col(m.origin) == origin).where(col(m.nonce) >= first_nonce)
                              .where(col(m.state).in_([st.value for st in OPEN_STATES]))).all())
        self.drop(ids, FailureReason.ORIGIN_REORGED, error)
        return ids

    def _set(self, ids: Sequence[str], **values: object) -> None:
        if not ids:
            return
        values["updated_at"] = self._clock()
        with Session(self.engine) as s:
            for start in range(0, len(ids), 500):
                s.execute(update(MessageRecord).where(col(MessageRecord.id).in_(list(ids[start:start + 500]))).values(**values))
            s.commit()

    def record_submission(self, *, tx_hash: str, destination: int, origin: int, sender: str, nonce: int,
                          ids: Sequence[str], gas_limit: int, max_fee: int) -> None:
        """The delivery tx and the move of its messages to SUBMITTED, in one transaction."""
        now = self._clock()
        with Session(self.engine) as s:
            s.add(DeliveryRecord(tx_hash=tx_hash, destination=destination, origin=origin, sender=sender, nonce=nonce,
                                 message_ids=json.dumps(list(ids)), submitted_at=now, gas_limit=gas_limit,
                                 max_fee=max_fee, owner=self.owner))
            s.execute(update(MessageRecord).where(col(MessageRecord.id).in_(list(ids))).values(
                state=MessageState.SUBMITTED.value, delivery_tx=tx_hash, updated_at=now, lease_until=now + 3600))
            s.commit()

    def pending_deliveries(self, destination: int) -> list[DeliveryRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(DeliveryRecord).where(col(DeliveryRecord.destination) == destination)
                               .where(col(DeliveryRecord.state) == "pending").where(col(DeliveryRecord.owner) == self.owner)
                               .order_by(col(DeliveryRecord.nonce))).all())

    def orphaned_submissions(self, destination: int, older_than_s: float) -> list[str]:
        """SUBMITTED messages whose delivery row is gone or finished (e.g. a crash between steps)."""
        now = self._clock()
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.id)).where(col(MessageRecord.destination) == destination)
                          .where(col(MessageRecord.state) == MessageState.SUBMITTED.value)
                          .where(col(MessageRecord.updated_at) < now - older_than_s)
                          .where(~col(MessageRecord.delivery_tx).in_(
                              select(col(DeliveryRecord.tx_hash)).where(col(DeliveryRecord.state) == "pending")))).all()
        return list(rows)

    def replace_delivery(self, old_hash: str, new_hash: str, max_fee: int) -> None:
        with Session(self.engine) as s:
            old = s.get(DeliveryRecord, old_hash)
            if old is None:
                return
            s.add(DeliveryRecord(tx_hash=new_hash, destination=old.destination, origin=old.origin, sender=old.sender,
                                 nonce=old.nonce, message_ids=old.message_ids, submitted_at=self._clock(),
                                 gas_limit=old.gas_limit, max_fee=max_fee, owner=old.owner))
            old.state = "replaced"
            old.replaced_by = new_hash
            s.add(old)
            s.execute(update(MessageRecord).where(col(MessageRecord.delivery_tx) == old_hash).values(delivery_tx=new_hash))
            s.commit()

    def finish_delivery(self, tx_hash: str, state: str, *, gas_used: int = 0, fee_paid: int = 0, height: int | None = None) -> None:
        with Session(self.engine) as s:
            s.execute(update(DeliveryRecord).where(col(DeliveryRecord.tx_hash) == tx_hash).values(
                state=state, gas_used=gas_used, fee_paid=fee_paid, height=height))
            s.commit()

    def settle_delivery(self, tx_hash: str, delivered: Sequence[str], *, at: float, gas_used: int, fee_paid: int,
                        height: int | None) -> None:
        """A confirmed delivery: its processed messages DELIVERED and its row finished, in one transaction (no
        window in which a crash leaves DELIVERED messages under a pending delivery)."""
        now = self._clock()
        with Session(self.engine) as s:
            for start in range(0, len(delivered), 500):
                s.execute(update(MessageRecord).where(col(MessageRecord.id).in_(list(delivered[start:start + 500]))).values(
                    state=MessageState.DELIVERED.value, delivery_tx=tx_hash, delivered_height=height, delivered_at=at,
                    last_reason=None, lease_until=0.0, updated_at=now))
            s.execute(update(DeliveryRecord).where(col(DeliveryRecord.tx_hash) == tx_hash).values(
                state="confirmed", gas_used=gas_used, fee_paid=fee_paid, height=height))
            s.commit()

    # ---- instances sharing the database
    def register_instance(self, role: str) -> None:
        now = self._clock()
        with Session(self.engine) as s:
            self._upsert(s, InstanceRecord, {"name": self.owner, "role": role, "host": socket.gethostname(),
                                             "pid": os.getpid(), "started_at": now, "heartbeat_at": now,
                                             "state": InstanceState.ALIVE.value, "handed_over_to": None,
                                             "handed_over_at": None}, ["name"])
            s.commit()

    def heartbeat(self) -> InstanceRecord | None:
        """This instance is alive. Returns its record as it was before the beat when another instance had
        declared it dead meanwhile (its work is now someone else's), else None."""
        now = self._clock()
        with Session(self.engine) as s:
            rec = s.get(InstanceRecord, self.owner)
            before = None if rec is None else InstanceRecord.model_validate(rec.model_dump())
            if rec is None:
                s.add(InstanceRecord(name=self.owner, host=socket.gethostname(), pid=os.getpid(), started_at=now,
                                     heartbeat_at=now))
            else:
                s.execute(update(InstanceRecord).where(col(InstanceRecord.name) == self.owner).values(
                    heartbeat_at=now, state=InstanceState.ALIVE.value))
            s.commit()
        return before if before is not None and before.state == InstanceState.DEAD.value else None

    def stop_instance(self) -> None:
        """Clean shutdown: say so (peers take the work over at once) and release the open messages we hold."""
        now = self._clock()
        with Session(self.engine) as s:
            s.execute(update(InstanceRecord).where(col(InstanceRecord.name) == self.owner).values(
                state=InstanceState.STOPPED.value, heartbeat_at=now))
            s.execute(update(MessageRecord).where(col(MessageRecord.lease_owner) == self.owner)
                      .where(col(MessageRecord.state).in_([st.value for st in OPEN_STATES]))
                      .values(lease_until=0.0))
            s.commit()

    def instances(self) -> list[InstanceRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(InstanceRecord).order_by(col(InstanceRecord.name))).all())

    def alive_instances(self, lease_s: float) -> int:
        cutoff = self._clock() - lease_s
        with Session(self.engine) as s:
            return int(s.exec(select(func.count()).select_from(InstanceRecord)
                              .where(col(InstanceRecord.state) == InstanceState.ALIVE.value)
                              .where(col(InstanceRecord.heartbeat_at) >= cutoff)).one())

    def adopt_dead_instances(self, lease_s: float) -> list[Handover]:
        """Take over the work of every instance silent for longer than ``lease_s`` or stopped cleanly.

        Safe against live instances racing for the same dead one: the conditional update of its instance row
        (``state`` and ``heartbeat_at`` as we read them) succeeds for exactly one of them, inside the
        transaction that moves the work; a loser (or a dead instance that beat again meanwhile) moves nothing.
        """
        now = self._clock()
        cutoff = now - lease_s
        i = InstanceRecord
        with Session(self.engine) as s:
            candidates = s.exec(select(col(i.name), col(i.state), col(i.heartbeat_at)).where(col(i.name) != self.owner)
                                .where((col(i.state) == InstanceState.STOPPED.value)
                                       | ((col(i.state) == InstanceState.ALIVE.value) & (col(i.heartbeat_at) < cutoff)))
                                .order_by(col(i.name))).all()
        return [h for name, state, beat in candidates if (h := self._adopt_one(name, state, beat, now)) is not None]

    def _adopt_one(self, dead: str, state: str, beat: float, now: float) -> Handover | None:
        reason = FailureReason.INSTANCE_STOPPED if state == InstanceState.STOPPED.value else FailureReason.INSTANCE_DIED
        silent = now - beat
        note = f"handed over from {dead} to {self.owner}: " + (
            "it stopped" if reason is FailureReason.INSTANCE_STOPPED else f"no heartbeat for {silent:.1f}s")
        m, d, i = MessageRecord, DeliveryRecord, InstanceRecord
        with Session(self.engine) as s:
            won = s.execute(update(i).where(col(i.name) == dead).where(col(i.state) == state)
                            .where(col(i.heartbeat_at) == beat)
                            .values(state=InstanceState.DEAD.value, handed_over_to=self.owner, handed_over_at=now)
                            .returning(col(i.name))).all()
            if not won:
                s.rollback()
                return None
            taken = s.execute(update(d).where(col(d.owner) == dead).where(col(d.state) == "pending")
                              .values(owner=self.owner, adopted_from=dead, adopted_at=now)
                              .returning(col(d.tx_hash), col(d.message_ids))).all()
            submitted_ids = [mid for _tx, ids in taken for mid in json.loads(ids)]
            submitted = 0
            for start in range(0, len(submitted_ids), 500):
                submitted += len(s.execute(
                    update(m).where(col(m.id).in_(submitted_ids[start:start + 500]))
                    .where(col(m.state) == MessageState.SUBMITTED.value)
                    .values(lease_owner=self.owner, handed_over_from=dead, last_reason=reason.value, last_error=note,
                            updated_at=now).returning(col(m.id))).all())
            released = s.execute(
                update(m).where(col(m.lease_owner) == dead).where(col(m.state).in_([st.value for st in OPEN_STATES]))
                .where(col(m.lease_until) > 0)
                .values(lease_owner=None, lease_until=0.0, handed_over_from=dead, last_reason=reason.value,
                        last_error=note, updated_at=now).returning(col(m.id))).all()
            s.commit()
        return Handover(dead, reason, silent, tuple(tx for tx, _ids in taken), submitted, len(released))

    # ---- checkpoints (validator role)
    def save_checkpoint(self, rec: CheckpointRecord) -> None:
        with Session(self.engine) as s:
            self._upsert(s, CheckpointRecord, rec.model_dump(), ["validator", "origin", "index"])
            s.commit()

    def checkpoint(self, validator: str, origin: int, index: int | None) -> CheckpointRecord | None:
        c = CheckpointRecord
        with Session(self.engine) as s:
            q = select(c).where(col(c.validator) == validator.lower()).where(col(c.origin) == origin)
            q = q.where(col(c.index) == index) if index is not None else q.order_by(col(c.index).desc()).limit(1)
            return s.exec(q).first()

    # ---- inspection and operator actions
    def dispatched_range(self, origin: int, first_nonce: int, end_nonce: int) -> list[MessageRecord]:
        """Messages of ``origin`` with ``first_nonce <= nonce < end_nonce``, by nonce."""
        with Session(self.engine) as s:
            return list(s.exec(select(MessageRecord).where(col(MessageRecord.origin) == origin,
                                                           col(MessageRecord.nonce) >= first_nonce,
                                                           col(MessageRecord.nonce) < end_nonce)
                               .order_by(col(MessageRecord.nonce))).all())

    def messages_sent_by(self, origin: int, sender: str, first_nonce: int, end_nonce: int
                         ) -> tuple[int, list[tuple[int, str, bytes]]]:
        """(how many messages of ``origin`` have ``first_nonce <= nonce < end_nonce``, those among them whose sender
        is ``sender`` (0x bytes32) as ``(nonce, id, raw)`` by nonce): the accountant's token messages."""
        m = MessageRecord
        in_range = (col(m.origin) == origin, col(m.nonce) >= first_nonce, col(m.nonce) < end_nonce)
        with Session(self.engine) as s:
            count = s.exec(select(func.count()).select_from(m).where(*in_range)).one()
            rows = s.exec(select(col(m.nonce), col(m.id), col(m.raw)).where(*in_range, col(m.sender) == sender.lower())
                          .order_by(col(m.nonce))).all()
        return int(count), [(n, i, bytes(r)) for n, i, r in rows]

    def get(self, message_id: str) -> MessageRecord | None:
        with Session(self.engine) as s:
            return s.get(MessageRecord, message_id.lower())

    def find(self, key: str) -> list[MessageRecord]:
        """By message id or by origin / delivery transaction hash."""
        key = key.lower()
        with Session(self.engine) as s:
            rec = s.get(MessageRecord, key)
            if rec:
                return [rec]
            return list(s.exec(select(MessageRecord).where((col(MessageRecord.origin_tx) == key) | (col(MessageRecord.delivery_tx) == key))).all())

    def recent(self, *, state: str | None = None, limit: int = 50) -> list[MessageRecord]:
        with Session(self.engine) as s:
            q = select(MessageRecord)
            if state:
                q = q.where(col(MessageRecord.state) == state.upper())
            return list(s.exec(q.order_by(col(MessageRecord.updated_at).desc()).limit(limit)).all())

    def retry_now(self, message_id: str) -> MessageRecord | None:
        """Operator retry: a DROPPED or waiting message goes back to DISPATCHED with attempts reset."""
        with Session(self.engine) as s:
            rec = s.get(MessageRecord, message_id.lower())
            if rec is None or rec.state in (MessageState.DELIVERED.value, MessageState.SUBMITTED.value):
                return rec
            rec.state = MessageState.DISPATCHED.value
            rec.attempts = 0
            rec.next_attempt_at = 0.0
            rec.lease_until = 0.0
            rec.last_reason = FailureReason.OPERATOR_RETRY.value
            rec.updated_at = self._clock()
            s.add(rec)
            s.commit()
            s.refresh(rec)
            return rec

    def counts_by_state(self) -> dict[tuple[int, str], int]:
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.destination), col(MessageRecord.state), func.count()).group_by(col(MessageRecord.destination), col(MessageRecord.state))).all()
        return {(d, st): n for d, st, n in rows}

    def reasons(self) -> dict[str, int]:
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.last_reason), func.count()).where(col(MessageRecord.last_reason).is_not(None))
                          .where(col(MessageRecord.state) != MessageState.DELIVERED.value).group_by(col(MessageRecord.last_reason))).all()
        return {r: n for r, n in rows if r is not None}
