"""What senders paid for their messages' delivery: the sums the gas policy and the profit-and-loss read of
``gas_payments`` (the origin paymasters' payments, written by ``MessageTable.record_dispatched`` with the dispatches
of the same heights, in the same transaction as the cursor).

Amounts are exact integers in the origin's smallest units, kept as decimal text (a payment may not fit 64 bits).
A payment counts for a message only when it names the message's own destination and was made on its own origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Float, cast, func
from sqlmodel import Session, col, select

from adapters.message import MessageId
from relayer.store.deliveries import DeliveryRecord
from relayer.store.messages import GasPaymentRecord, MessageRecord, message_keys
from relayer.store.schema import StoreTables


@dataclass(frozen=True)
class Paid:
    """What was paid for one message: the sum of its payments and of the gas they bought."""

    amount: int
    gas_limit: int
    payments: int


@dataclass(frozen=True)
class RouteMoney:
    """A route's fees collected (origin native tokens) and delivery gas spent (destination native tokens, smallest
    units as floats: for the profit-and-loss view, not for accounting)."""

    origin: int
    destination: int
    fees_collected: float
    gas_spent: float
    payments: int


class PaymentTable(StoreTables):
    def paid_for(self, ids: Sequence[MessageId]) -> dict[MessageId, Paid]:
        """Per message of ``ids`` with at least one payment on its origin for its destination: what it paid."""
        p, m = GasPaymentRecord, MessageRecord
        keys = message_keys(ids)
        q = (select(p.message_id, p.payment, p.gas_limit).join(m, col(m.id) == col(p.message_id))
             .where(col(p.message_id).in_(keys)).where(col(p.origin) == col(m.origin))
             .where(col(p.destination) == col(m.destination)))
        sums: dict[str, tuple[int, int, int]] = {}
        with Session(self.engine) as s:
            for key, payment, gas in s.exec(q).all():
                amount, total_gas, n = sums.get(key, (0, 0, 0))
                sums[key] = (amount + int(payment), total_gas + gas, n + 1)
        by_key = dict(zip(keys, ids, strict=True))
        return {by_key[k]: Paid(*v) for k, v in sums.items()}

    def route_money(self) -> list[RouteMoney]:
        """Per route with payments or deliveries: fees collected and gas spent (the profit-and-loss)."""
        p, m, d = GasPaymentRecord, MessageRecord, DeliveryRecord
        fees = (select(m.origin, m.destination, func.sum(cast(p.payment, Float)), func.count())
                .join(m, col(m.id) == col(p.message_id)).where(col(p.origin) == col(m.origin))
                .where(col(p.destination) == col(m.destination)).group_by(col(m.origin), col(m.destination)))
        spent = (select(d.origin, d.destination, func.sum(cast(d.fee_paid, Float)))
                 .where(col(d.fee_paid) > 0).group_by(col(d.origin), col(d.destination)))
        with Session(self.engine) as s:
            collected = {(o, dst): (float(v or 0), int(n)) for o, dst, v, n in s.exec(fees).all()}
            gas = {(o, dst): float(v or 0) for o, dst, v in s.exec(spent).all()}
        routes = sorted(set(collected) | set(gas))
        return [RouteMoney(o, dst, collected.get((o, dst), (0.0, 0))[0], gas.get((o, dst), 0.0),
                           collected.get((o, dst), (0.0, 0))[1]) for o, dst in routes]
