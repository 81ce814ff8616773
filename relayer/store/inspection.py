"""Reads of the ``messages`` table for operators, the API and the attesters (ranges by nonce, lookups, counts),
and the operator's retry-now."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from adapters.message import MessageId
from relayer.store.messages import FailureReason, MessageRecord, MessageState, message_id, message_key
from relayer.store.schema import StoreTables


class MessageQueries(StoreTables):
    def dispatched_range(self, origin: int, first_nonce: int, end_nonce: int) -> list[MessageRecord]:
        """Messages of ``origin`` with ``first_nonce <= nonce < end_nonce``, by nonce."""
        with Session(self.engine) as s:
            return list(s.exec(select(MessageRecord).where(col(MessageRecord.origin) == origin,
                                                           col(MessageRecord.nonce) >= first_nonce,
                                                           col(MessageRecord.nonce) < end_nonce)
                               .order_by(col(MessageRecord.nonce))).all())

    def messages_sent_by(self, origin: int, sender: bytes, first_nonce: int, end_nonce: int
                         ) -> tuple[int, list[tuple[int, MessageId, bytes]]]:
        """(how many messages of ``origin`` have ``first_nonce <= nonce < end_nonce``, those among them whose sender
        is ``sender`` (bytes32) as ``(nonce, id, raw)`` by nonce): the accountant's token messages."""
        m = MessageRecord
        in_range = (col(m.origin) == origin, col(m.nonce) >= first_nonce, col(m.nonce) < end_nonce)
        with Session(self.engine) as s:
            count = s.exec(select(func.count()).select_from(m).where(*in_range)).one()
            rows = s.exec(select(col(m.nonce), col(m.id), col(m.raw))
                          .where(*in_range, col(m.sender) == "0x" + sender.hex())
                          .order_by(col(m.nonce))).all()
        return int(count), [(n, message_id(i), bytes(r)) for n, i, r in rows]

    def get(self, message_id: MessageId | str) -> MessageRecord | None:
        """By id (``MessageId``, or its 0x hex as the API and CLI take it)."""
        with Session(self.engine) as s:
            return s.get(MessageRecord, message_key(message_id))

    def find(self, key: str) -> list[MessageRecord]:
        """By message id or by origin / delivery transaction hash."""
        key = key.lower()
        with Session(self.engine) as s:
            rec = s.get(MessageRecord, key)
            if rec:
                return [rec]
            return list(s.exec(select(MessageRecord).where((col(MessageRecord.origin_tx) == key)
                                                           | (col(MessageRecord.delivery_tx) == key))).all())

    def recent(self, *, state: str | None = None, limit: int = 50) -> list[MessageRecord]:
        with Session(self.engine) as s:
            q = select(MessageRecord)
            if state:
                q = q.where(col(MessageRecord.state) == state.upper())
            return list(s.exec(q.order_by(col(MessageRecord.updated_at).desc()).limit(limit)).all())

    def retry_now(self, message_id: MessageId | str) -> MessageRecord | None:
        """Operator retry: a DROPPED or waiting message goes back to DISPATCHED with attempts reset."""
        with Session(self.engine) as s:
            rec = s.get(MessageRecord, message_key(message_id))
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
            rows = s.exec(select(col(MessageRecord.destination), col(MessageRecord.state), func.count())
                          .group_by(col(MessageRecord.destination), col(MessageRecord.state))).all()
        return {(d, st): n for d, st, n in rows}

    def reasons(self) -> dict[str, int]:
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.last_reason), func.count())
                          .where(col(MessageRecord.last_reason).is_not(None))
                          .where(col(MessageRecord.state) != MessageState.DELIVERED.value)
                          .group_by(col(MessageRecord.last_reason))).all()
        return {r: n for r, n in rows if r is not None}
