"""Gas payments made to the relayer's fee account inside dispatch transactions (Solana, Cosmos: origins with no
paymaster contract; ``chains.<name>.gas_fee_account``).

A dispatch transaction may move native tokens to the fee account (Solana: top-level System ``Transfer``s of
lamports; Cosmos: bank ``MsgSend``s of the fee denom). What it moved there, in total, is the payment of the messages
it dispatches, split evenly between them in dispatch order, the remainder (a few smallest units) to the first. Each
share is one ``GasPayment`` keyed by the transaction and the message's own ``log_index`` (Solana: its position in the
transaction; Cosmos: the transaction's position in its block, one message per transaction), so the keys
``(origin, tx_hash, log_index)`` stay unique. A transfer to any other account or from the fee account itself pays
for nothing.

A top-up is a transaction that dispatches nothing, moves native tokens to the fee account the same way, and carries
one gas memo (``adapters.bridge_memo.GasMemo``: the message's destination and id): what it moved is one payment for
that message (``log_index`` 0). It counts only for a message of this origin whose destination is the memo's, as an
EVM ``GasPayment`` log counts only for its own route. A transaction that dispatches nothing and carries no gas memo
pays for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from adapters.base import DispatchedMessage
from adapters.bridge_memo import GasMemo
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


def top_up_payment(memo: GasMemo | None, total: int, height: int, tx_hash: str) -> list[GasPayment]:
    """The payment of a top-up transaction (``memo`` None: it is not one; ``total``: what it moved to the fee
    account)."""
    if memo is None or total <= 0:
        return []
    return [GasPayment(bytes(memo.message_id), int(memo.destination), 0, total, height, tx_hash, 0)]
