"""The persisted pipeline: messages, deliveries, signed checkpoints and watcher cursors (sqlmodel).

SQLite by default (WAL, one file, nothing to set up); PostgreSQL by URL. Every state change is one SQL
transaction, so ``kill -9`` at any instant leaves a consistent store and a restart resumes from it.
Bulk paths (indexing thousands of dispatches, moving a batch between states) use set-based statements,
not one ORM object per row.

Work is claimed with leases (``lease_owner``/``lease_until``) so that several relayer processes sharing
one database never work on the same message at once, and a dead process's claims expire.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, event, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, create_engine, select, update

from adapters.base import DispatchedMessage
from config.errors import RelayerError


class StoreError(RelayerError):
    retryable = True


class MessageState(str, enum.Enum):
    DISPATCHED = "DISPATCHED"
    ATTESTED = "ATTESTED"
    SUBMITTED = "SUBMITTED"
    DELIVERED = "DELIVERED"
    DROPPED = "DROPPED"


OPEN_STATES = (MessageState.DISPATCHED, MessageState.ATTESTED)


class FailureReason(str, enum.Enum):
    """Why a message is waiting or dropped: the log field, the metric label and the ``messages show`` line."""

    UNKNOWN_DESTINATION = "unknown_destination"
    MALFORMED = "malformed"
    NO_QUORUM = "no_quorum"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    ESTIMATE_REVERTED = "estimate_reverted"
    TX_REVERTED = "tx_reverted"
    TX_DROPPED = "tx_dropped"
    RPC_UNAVAILABLE = "rpc_unavailable"
    RPC_ERROR = "rpc_error"
    FEE_TOO_HIGH = "fee_too_high"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NONCE_CONFLICT = "nonce_conflict"
    MAX_ATTEMPTS = "max_attempts"
    OPERATOR_RETRY = "operator_retry"
    ORIGIN_REORGED = "origin_reorged"  # the origin chain no longer holds it: a reorg deeper than its finality


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
for _model in (MessageRecord, DeliveryRecord, CheckpointRecord, CursorRecord):
    for _column in _model.__table__.columns:  # type: ignore[union-attr]
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
    return create_engine(url, pool_pre_ping=True, pool_size=5)


class Store:
    """All pipeline persistence. Methods are short transactions; none holds a transaction across I/O."""

    def __init__(self, url: str, *, owner: str = "relayer", clock=time.time) -> None:  # type: ignore[no-untyped-def]
        self.url = url
        self.owner = owner
        self._clock = clock
        try:
            self.engine = make_engine(url)
            SQLModel.metadata.create_all(self.engine)
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
            s.merge(CursorRecord(name=name, height=height))
            s.commit()

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
            s.merge(CursorRecord(name=cursor[0], height=cursor[1]))
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
                .values(lease_owner=self.owner, lease_until=now + lease_s)
            )
            s.commit()
            rows = s.exec(
                select(m).where(col(m.id).in_(ids)).where(col(m.lease_owner) == self.owner)
                .where(col(m.state).in_(open_states)).where(col(m.lease_until) == now + lease_s)
                .order_by(col(m.origin), col(m.nonce))
            ).all()
            return [StoredMessage(r.id, r.origin, r.nonce, r.destination, r.raw, r.state, r.attempts, r.dispatched_at) for r in rows]

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

    # ---- checkpoints (validator role)
    def save_checkpoint(self, rec: CheckpointRecord) -> None:
        with Session(self.engine) as s:
            s.merge(rec)
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
