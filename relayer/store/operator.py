"""What the operator does to messages through the admin API: routes paused (``route_pauses``, shared by every
instance on the database, kept across restarts), stuck messages listed, a message dropped with a note."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Field, Session, SQLModel, col, select, update

from adapters.message import MessageId
from relayer.pipeline.outcome import FailureReason
from relayer.store.messages import OPEN_STATES, MessageRecord, MessageState, StoredMessage, message_key
from relayer.store.messages import message_id as message_id_of
from relayer.store.schema import StoreTables, widen_ints


class RoutePauseRecord(SQLModel, table=True):
    __tablename__ = "route_pauses"

    origin: int = Field(primary_key=True)
    destination: int = Field(primary_key=True)
    note: str = ""
    paused_at: float


widen_ints([RoutePauseRecord])


@dataclass(frozen=True)
class StuckMessage:
    id: str
    origin: int
    destination: int
    state: str
    reason: str | None
    error: str | None
    attempts: int
    waited_s: float
    next_attempt_at: float | None


class OperatorTable(StoreTables):
    def pause_route(self, origin: int, destination: int, note: str) -> None:
        with Session(self.engine) as s:
            self._upsert(s, RoutePauseRecord, {"origin": origin, "destination": destination, "note": note[:500],
                                               "paused_at": self._clock()}, ["origin", "destination"])
            s.commit()

    def resume_route(self, origin: int, destination: int) -> bool:
        """Resume the route: its messages waiting for it are claimable at once. False when it was not paused."""
        m = MessageRecord
        with Session(self.engine) as s:
            rec = s.get(RoutePauseRecord, (origin, destination))
            if rec is None:
                return False
            s.delete(rec)
            s.execute(update(m).where(col(m.origin) == origin).where(col(m.destination) == destination)
                      .where(col(m.state).in_([st.value for st in OPEN_STATES]))
                      .where(col(m.last_reason) == FailureReason.ROUTE_PAUSED.value).values(next_attempt_at=0.0))
            s.commit()
            return True

    def paused_routes(self) -> dict[tuple[int, int], str]:
        """(origin, destination) -> the operator's note, for every paused route."""
        with Session(self.engine) as s:
            return {(r.origin, r.destination): r.note for r in s.exec(select(RoutePauseRecord)).all()}

    def stuck_messages(self, min_wait_s: float, limit: int) -> list[StuckMessage]:
        """Undelivered messages dispatched at least ``min_wait_s`` ago, or dropped, or that failed at least once
        (a last reason other than the hand-over bookkeeping): the longest waiting first."""
        now = self._clock()
        m = MessageRecord
        q = (select(m).where(col(m.state) != MessageState.DELIVERED.value)
             .where((col(m.dispatched_at) <= now - min_wait_s) | (col(m.state) == MessageState.DROPPED.value)
                    | col(m.last_reason).is_not(None))
             .order_by(col(m.dispatched_at), col(m.id)).limit(limit))
        with Session(self.engine) as s:
            rows = s.exec(q).all()
        return [StuckMessage(r.id, r.origin, r.destination, r.state, r.last_reason, r.last_error, r.attempts,
                             round(now - r.dispatched_at, 3), r.next_attempt_at or None) for r in rows]

    def operator_drop(self, message_id: MessageId | str, note: str) -> tuple[MessageRecord | None, bool]:
        """An open message (DISPATCHED or ATTESTED) no processor holds becomes DROPPED(operator_dropped) with
        ``note``; one being submitted right now (leased), submitted, delivered or already dropped is left as it is.
        (The record as it is now, None: no such message; whether this call dropped it.)"""
        with Session(self.engine) as s:
            rec = s.get(MessageRecord, message_key(message_id))
            if rec is None or rec.state not in (MessageState.DISPATCHED.value, MessageState.ATTESTED.value):
                return rec, False
            if rec.lease_until > self._clock():  # a processor claimed it and may be sending it: not now
                return rec, False
            rec.state = MessageState.DROPPED.value
            rec.last_reason = FailureReason.OPERATOR_DROPPED.value
            rec.last_error = note[:500]
            rec.lease_until = 0.0
            rec.updated_at = self._clock()
            s.add(rec)
            s.commit()
            s.refresh(rec)
            return rec, True

    def claim_for_execution(self, message_id: MessageId | str, lease_s: float
                            ) -> tuple[MessageRecord | None, StoredMessage | None]:
        """The operator's manual execution takes one message: an open one no processor holds, or a dropped one that
        can still be delivered, is leased to this instance (a dropped one reopened as DISPATCHED first), so no
        processor sends it meanwhile. (The record as it was, None: no such message; the claimed message, None: it may
        not be executed now.)"""
        now = self._clock()
        with Session(self.engine) as s:
            rec = s.get(MessageRecord, message_key(message_id))
            if rec is None or not _executable(rec, now, self.owner):
                return rec, None
            if rec.state == MessageState.DROPPED.value:
                rec.state = MessageState.DISPATCHED.value
            rec.lease_owner, rec.lease_until, rec.updated_at = self.owner, now + lease_s, now
            rec.last_reason = FailureReason.OPERATOR_RETRY.value
            s.add(rec)
            s.commit()
            s.refresh(rec)
            return rec, StoredMessage(message_id_of(rec.id), rec.origin, rec.nonce, rec.destination, rec.raw,
                                      rec.state, rec.attempts, rec.dispatched_at, rec.gas_needed)


UNDELIVERABLE = frozenset({FailureReason.ORIGIN_REORGED.value, FailureReason.UNKNOWN_DESTINATION.value,
                           FailureReason.MALFORMED.value})


def _executable(rec: MessageRecord, now: float, owner: str) -> bool:
    """Open and not held by another processor, or dropped for a reason that leaves it deliverable."""
    if rec.state in (MessageState.DISPATCHED.value, MessageState.ATTESTED.value):
        return rec.lease_until <= now or rec.lease_owner == owner
    return rec.state == MessageState.DROPPED.value and rec.last_reason not in UNDELIVERABLE
