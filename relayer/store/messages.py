"""The ``messages`` table: one row per dispatched message, from indexing through claim (a lease), attestation
and retries to DELIVERED or DROPPED. Ids are ``MessageId`` (bytes) outside the store and 0x hex in the table."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Index, case, func
from sqlmodel import Field, Session, SQLModel, col, select, update

from adapters.base import DispatchedMessage
from adapters.capabilities import GasPayment
from adapters.message import MessageId
from relayer.pipeline.outcome import FailureReason  # the one vocabulary of reasons (last_reason)
from relayer.store.cursors import CursorRecord
from relayer.store.schema import StoreTables, hex_id, widen_ints

BATCH_ROWS = 500  # ids per IN (...) list


class MessageState(str, enum.Enum):
    DISPATCHED = "DISPATCHED"
    ATTESTED = "ATTESTED"
    SUBMITTED = "SUBMITTED"
    DELIVERED = "DELIVERED"
    DROPPED = "DROPPED"


OPEN_STATES = (MessageState.DISPATCHED, MessageState.ATTESTED)


class MessageRecord(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_work", "destination", "state", "next_attempt_at"),
        Index("ix_messages_origin_nonce", "origin", "nonce", unique=True),
        # the explorer's list and event feed (newest change first, paged by (updated_at, id)) and its latest change:
        # without it every GET /v1/messages scanned and sorted the whole table (ms per 10,000 rows)
        Index("ix_messages_updated", "updated_at", "id"),
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
    gas_needed: int = 0  # the gas its delivery was estimated to need when it paid less than that (relayer.gas_payment)

    @property
    def message_id(self) -> MessageId:
        return message_id(self.id)


widen_ints([MessageRecord])


def message_id(key: str) -> MessageId:
    """A stored 0x hex id as the adapters' ``MessageId``."""
    return MessageId(bytes.fromhex(key.removeprefix("0x")))


def message_key(mid: MessageId | str) -> str:
    """The table's key of a message id: 0x lowercase hex (text is taken as the key itself, as the API gets it)."""
    return mid.lower() if isinstance(mid, str) else hex_id(mid)


def message_keys(ids: Sequence[MessageId]) -> list[str]:
    return [hex_id(i) for i in ids]


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: MessageId
    origin: int
    nonce: int
    destination: int
    raw: bytes
    state: str
    attempts: int
    dispatched_at: float
    gas_needed: int = 0  # MessageRecord.gas_needed


class GasPaymentRecord(SQLModel, table=True):
    __tablename__ = "gas_payments"

    origin: int = Field(primary_key=True)
    tx_hash: str = Field(primary_key=True, max_length=100)  # 0x-hex (EVM, lower case), base58 (Solana), hex (Cosmos)
    log_index: int = Field(primary_key=True)
    message_id: str = Field(index=True, max_length=66)
    destination: int
    gas_limit: int
    payment: str  # decimal, origin smallest units
    height: int


widen_ints([GasPaymentRecord])


def payment_rows(origin: int, payments: Sequence[GasPayment]) -> list[dict[str, object]]:
    return [{"origin": origin, "tx_hash": p.tx_hash.lower() if p.tx_hash.startswith("0x") else p.tx_hash,
             "log_index": p.log_index,
             "message_id": hex_id(MessageId(p.message_id)), "destination": p.destination, "gas_limit": p.gas_limit,
             "payment": str(p.payment), "height": p.height} for p in payments]


def reopen_underpaid(s: Session, ids: Sequence[str]) -> None:
    """Messages waiting for payment among ``ids`` are claimable at once (a payment for them was just indexed)."""
    m = MessageRecord
    if ids:
        s.execute(update(m).where(col(m.id).in_(ids)).where(col(m.state).in_([st.value for st in OPEN_STATES]))
                  .where(col(m.last_reason) == FailureReason.UNDERPAID.value).values(next_attempt_at=0.0))


class MessageTable(StoreTables):
    """Indexing and the relaying lifecycle of messages."""

    def record_dispatched(self, found: Sequence[DispatchedMessage], *, cursor: tuple[str, int],
                          known_destinations: set[int], payments: Sequence[GasPayment] = (), origin: int = 0) -> int:
        """Insert new messages (ignoring ids already stored) and the gas ``payments`` made on ``origin`` in the same
        heights, and advance the cursor, atomically; messages waiting for payment that were just paid for are
        claimable at once. Returns the number of new messages."""
        now = self._clock()
        rows = [self._dispatched_row(d, d.message.destination in known_destinations, now) for d in found]
        with Session(self.engine) as s:
            inserted = len(self._insert_new(s, MessageRecord, rows, "id"))
            if payments:
                self._insert_new(s, GasPaymentRecord, payment_rows(origin, payments), "tx_hash")
                reopen_underpaid(s, sorted({hex_id(MessageId(p.message_id)) for p in payments}))
            self._upsert(s, CursorRecord, {"name": cursor[0], "height": cursor[1]}, ["name"])
            s.commit()
        return inserted

    def _insert_new(self, s: Session, model: type[SQLModel], rows: list[dict[str, Any]], key: str) -> list[Any]:
        """Insert ``rows``, skipping those whose primary key is stored already; the ``key`` of each one inserted."""
        if not rows:
            return []
        table = model.__table__  # type: ignore[attr-defined]
        stmt: Any
        if self._is_postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(table).on_conflict_do_nothing()
        stmt = stmt.returning(table.c[key])  # rowcount of an executemany is -1 on psycopg
        inserted: list[Any] = []
        for start in range(0, len(rows), BATCH_ROWS):
            inserted += [r[0] for r in s.execute(stmt, rows[start : start + BATCH_ROWS]).all()]
        return inserted

    @staticmethod
    def _dispatched_row(d: DispatchedMessage, known: bool, now: float) -> dict[str, Any]:
        return {
            "id": hex_id(d.id),
            "origin": d.message.origin,
            "nonce": d.message.nonce,
            "destination": d.message.destination,
            "sender": hex_id(d.message.sender),
            "recipient": hex_id(d.message.recipient),
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

    def message_ids_in_order(self, origin: int) -> list[tuple[int, MessageId]]:
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.nonce), col(MessageRecord.id))
                          .where(col(MessageRecord.origin) == origin).order_by(col(MessageRecord.nonce))).all()
        return [(n, message_id(i)) for n, i in rows]

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
            return [StoredMessage(message_id(r.id), r.origin, r.nonce, r.destination, r.raw, r.state, r.attempts,
                                  r.dispatched_at, r.gas_needed) for r in rows]

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

    def mark_attested(self, ids: Sequence[MessageId], checkpoint_index: int) -> None:
        self._set(ids, state=MessageState.ATTESTED.value, checkpoint_index=checkpoint_index)

    def mark_delivered(self, ids: Sequence[MessageId], *, tx_hash: str | None, height: int | None, at: float) -> None:
        self._set(ids, state=MessageState.DELIVERED.value, delivery_tx=tx_hash, delivered_height=height,
                  delivered_at=at, last_reason=None, lease_until=0.0)

    def mark_retry(self, ids: Sequence[MessageId], reason: FailureReason, error: str, *,
                   backoff: Callable[[int], float], max_attempts: int) -> list[MessageId]:
        """Count an attempt; schedule the next by ``backoff(attempts)`` or drop past ``max_attempts``. Returns dropped
        ids."""
        if not ids:
            return []
        now = self._clock()
        dropped: list[str] = []
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.id), col(MessageRecord.attempts))
                          .where(col(MessageRecord.id).in_(message_keys(ids)))).all()
            by_attempts: dict[int, list[str]] = {}
            values: dict[str, Any]
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
        return [message_id(i) for i in dropped]

    def mark_not_ready(self, ids: Sequence[MessageId], reason: FailureReason, error: str, delay_s: float) -> None:
        """Waiting on something outside us (a checkpoint that does not cover it yet); not a failed attempt."""
        self._set(ids, last_reason=reason.value, last_error=error[:500], next_attempt_at=self._clock() + delay_s,
                  lease_until=0.0)

    def set_gas_needed(self, ids: Sequence[MessageId], gas: int) -> None:
        """The gas the delivery of ``ids`` was estimated to need (what ``relayer.gas_payment`` quotes them for)."""
        self._set(ids, gas_needed=gas)

    def requeue(self, ids: Sequence[MessageId]) -> None:
        """Back to DISPATCHED with no lease (e.g. SUBMITTED rows whose delivery record is gone)."""
        self._set(ids, state=MessageState.DISPATCHED.value, lease_until=0.0, delivery_tx=None)

    def release(self, ids: Sequence[MessageId]) -> None:
        """Give up this instance's lease on ``ids``, their state unchanged (any processor may take them now)."""
        self._set(ids, lease_until=0.0)

    def drop(self, ids: Sequence[MessageId], reason: FailureReason, error: str) -> None:
        self._set(ids, state=MessageState.DROPPED.value, last_reason=reason.value, last_error=error[:500],
                  lease_until=0.0)

    def dropped_for(self, reason: FailureReason) -> list[tuple[MessageId, bytes]]:
        """(id, raw bytes) of every message DROPPED for ``reason``."""
        m = MessageRecord
        with Session(self.engine) as s:
            rows = s.exec(select(col(m.id), col(m.raw)).where(col(m.state) == MessageState.DROPPED.value)
                          .where(col(m.last_reason) == reason.value)).all()
        return [(message_id(k), bytes(raw)) for k, raw in rows]

    def reopen(self, ids: Sequence[MessageId], reason: FailureReason, note: str) -> int:
        """DROPPED messages among ``ids`` back to DISPATCHED, attempts reset and claimable at once, with ``reason``
        and ``note`` as their last reason and error (the others are left as they are); how many."""
        table = MessageRecord.__table__  # type: ignore[attr-defined]
        keys = message_keys(ids)
        reopened = 0
        with self.engine.begin() as conn:
            for k in range(0, len(keys), BATCH_ROWS):
                reopened += conn.execute(table.update().where(
                    table.c.id.in_(keys[k:k + BATCH_ROWS]) & (table.c.state == MessageState.DROPPED.value)).values(
                    state=MessageState.DISPATCHED.value, attempts=0, next_attempt_at=0.0, lease_until=0.0,
                    last_reason=reason.value, last_error=note[:500], updated_at=self._clock())).rowcount
        return reopened

    def drop_reorged(self, origin: int, first_nonce: int, error: str) -> list[MessageId]:
        """Open (not submitted, not delivered) messages of ``origin`` from ``first_nonce`` on become
        ``DROPPED(origin_reorged)``, and so do those a processor already gave up on (dropped for want of a quorum or
        after its attempts): the origin no longer holds them, which is the reason an operator must see; returns
        their ids."""
        m = MessageRecord
        gave_up = [FailureReason.NO_QUORUM.value, FailureReason.MAX_ATTEMPTS.value]
        with Session(self.engine) as s:
            keys = list(s.exec(select(col(m.id)).where(col(m.origin) == origin).where(col(m.nonce) >= first_nonce)
                               .where(col(m.state).in_([st.value for st in OPEN_STATES])
                                      | ((col(m.state) == MessageState.DROPPED.value)
                                         & col(m.last_reason).in_(gave_up)))).all())
        ids = [message_id(k) for k in keys]
        self.drop(ids, FailureReason.ORIGIN_REORGED, error)
        return ids

    def _set(self, ids: Sequence[MessageId], **values: object) -> None:
        if not ids:
            return
        values["updated_at"] = self._clock()
        keys = message_keys(ids)
        with Session(self.engine) as s:
            for start in range(0, len(keys), BATCH_ROWS):
                s.execute(update(MessageRecord).where(col(MessageRecord.id).in_(keys[start:start + BATCH_ROWS]))
                          .values(**values))
            s.commit()
