"""Gas payments made to the relayer's fee account inside dispatch transactions (Solana, Cosmos: origins with no
paymaster contract; ``chains.<name>.gas_fee_account``).

A dispatch transaction may move native tokens to the fee account (Solana: top-level System ``Transfer``s of
lamports; Cosmos: bank ``MsgSend``s of the fee denom). What it moved there, in total, is the payment of the messages
it dispatches, split evenly between them in dispatch order, the remainder (a few smallest units) to the first. Each
share is one ``GasPayment`` keyed by the transaction and the message's own ``log_index`` (Solana: its position in the
transaction; Cosmos: the transaction's position in its block, one message per transaction), so the keys
``(origin, tx_hash, log_index)`` stay unique. A transaction that dispatches nothing pays for nothing, and so does a
transfer to any other account or from the fee account itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.base import DispatchedMessage
from adapters.capabilities import GasPayment


def split_payment(total: int, count: int) -> list[int]:
    """``total`` shared by ``count`` messages: evenly, the remainder to the first."""
    if count <= 0:
        return []
    share, rest = divmod(max(total, 0), count)
    return [share + rest] + [share] * (count - 1)


def dispatch_payments(dispatched: Sequence[DispatchedMessage], total: int) -> list[GasPayment]:
    """The payments of one transaction's messages (``dispatched``, in dispatch order) that paid ``total`` to the fee
    account; none when it paid nothing."""
    if total <= 0:
        return []
    return [GasPayment(bytes(d.id), int(d.message.destination), 0, share, int(d.height), str(d.tx_hash),
                       d.log_index)
            for d, share in zip(dispatched, split_payment(total, len(dispatched)), strict=True)]
