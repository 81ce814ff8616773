"""The ``deliveries`` table: one row per delivery transaction sent (pending, then confirmed, replaced, reverted,
dropped or abandoned), with the ids of the messages it carries; settling one moves its messages in the same
transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlmodel import Field, Session, SQLModel, col, select, update

from adapters.message import MessageId
from relayer.store.messages import BATCH_ROWS, MessageRecord, MessageState, message_id, message_keys
from relayer.store.schema import StoreTables, widen_ints


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

    def ids(self) -> list[MessageId]:
        """The messages this transaction carries."""
        return [message_id(k) for k in json.loads(self.message_ids)]


widen_ints([DeliveryRecord])


class DeliveryTable(StoreTables):
    def record_submission(self, *, tx_hash: str, destination: int, origin: int, sender: str, nonce: int,
                          ids: Sequence[MessageId], gas_limit: int, max_fee: int) -> None:
        """The delivery tx and the move of its messages to SUBMITTED, in one transaction."""
        now = self._clock()
        keys = message_keys(ids)
        with Session(self.engine) as s:
            s.add(DeliveryRecord(tx_hash=tx_hash, destination=destination, origin=origin, sender=sender, nonce=nonce,
                                 message_ids=json.dumps(keys), submitted_at=now, gas_limit=gas_limit,
                                 max_fee=max_fee, owner=self.owner))
            s.execute(update(MessageRecord).where(col(MessageRecord.id).in_(keys)).values(
                state=MessageState.SUBMITTED.value, delivery_tx=tx_hash, updated_at=now, lease_until=now + 3600))
            s.commit()

    def pending_deliveries(self, destination: int) -> list[DeliveryRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(DeliveryRecord).where(col(DeliveryRecord.destination) == destination)
                               .where(col(DeliveryRecord.state) == "pending")
                               .where(col(DeliveryRecord.owner) == self.owner)
                               .order_by(col(DeliveryRecord.nonce))).all())

    def orphaned_submissions(self, destination: int, older_than_s: float) -> list[MessageId]:
        """SUBMITTED messages whose delivery row is gone or finished (e.g. a crash between steps)."""
        now = self._clock()
        with Session(self.engine) as s:
            rows = s.exec(select(col(MessageRecord.id)).where(col(MessageRecord.destination) == destination)
                          .where(col(MessageRecord.state) == MessageState.SUBMITTED.value)
                          .where(col(MessageRecord.updated_at) < now - older_than_s)
                          .where(~col(MessageRecord.delivery_tx).in_(
                              select(col(DeliveryRecord.tx_hash)).where(col(DeliveryRecord.state) == "pending")))).all()
        return [message_id(k) for k in rows]

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
            s.execute(update(MessageRecord).where(col(MessageRecord.delivery_tx) == old_hash)
                      .values(delivery_tx=new_hash))
            s.commit()

    def finish_delivery(self, tx_hash: str, state: str, *, gas_used: int = 0, fee_paid: int = 0,
                        height: int | None = None) -> None:
        with Session(self.engine) as s:
            s.execute(update(DeliveryRecord).where(col(DeliveryRecord.tx_hash) == tx_hash).values(
                state=state, gas_used=gas_used, fee_paid=fee_paid, height=height))
            s.commit()

    def settle_delivery(self, tx_hash: str, delivered: Sequence[MessageId], *, at: float, gas_used: int,
                        fee_paid: int, height: int | None) -> None:
        """A confirmed delivery: its processed messages DELIVERED and its row finished, in one transaction (no
        window in which a crash leaves DELIVERED messages under a pending delivery)."""
        now = self._clock()
        keys = message_keys(delivered)
        with Session(self.engine) as s:
            for start in range(0, len(keys), BATCH_ROWS):
                s.execute(update(MessageRecord).where(col(MessageRecord.id).in_(keys[start:start + BATCH_ROWS])).values(
                    state=MessageState.DELIVERED.value, delivery_tx=tx_hash, delivered_height=height, delivered_at=at,
                    last_reason=None, lease_until=0.0, updated_at=now))
            s.execute(update(DeliveryRecord).where(col(DeliveryRecord.tx_hash) == tx_hash).values(
                state="confirmed", gas_used=gas_used, fee_paid=fee_paid, height=height))
            s.commit()
