"""What a Cosmos transaction's memo says to the relayer: a dispatch (origin side) or a delivery (destination).

Dispatch memo, on a bank ``MsgSend`` to the validators' ``vault`` multisig::

    xchain:v1:<base64(destination u32 big-endian | recipient bytes32 | body)>

For a token lock the body is the TokenBridge body (contracts/src/TokenBridge.sol)::

    abi.encode(uint32 homeDomain, bytes32 homeToken, bytes32 recipient, uint256 amount)   # 4 x 32 bytes

where a native Cosmos denom has ``homeDomain`` = this chain's domain and ``homeToken`` = ``sha256(denom)``,
and ``amount`` must equal what the ``MsgSend`` pays the vault in that denom. The memo carries only what the
sender chooses; version, nonce, origin and sender of the canonical message are set by the adapter.

Delivery memo, on the multisig's own ``MsgSend`` transactions::

    xchain-delivery:<id hex>,<id hex>,...

which is how ``delivered`` finds, on the chain, which message ids the vault has already paid out. The SDK
caps memos (``max_memo_characters``, 256 by default), so a delivery holds at most ``MAX_DELIVERY_IDS`` ids.
"""

from __future__ import annotations

import hashlib

from adapters import bridge_memo
from adapters.bridge_memo import (
    DELIVERY_PREFIX,
    DISPATCH_PREFIX,
    TOKEN_BODY_LEN,
    DispatchMemo,
    MemoFormatError,
    TokenBody,
    encode_dispatch_memo,
)
from adapters.message import MessageId

__all__ = [
    "DELIVERY_PREFIX", "DISPATCH_PREFIX", "MAX_DELIVERY_IDS", "MAX_MEMO_CHARS", "TOKEN_BODY_LEN", "DispatchMemo",
    "TokenBody", "decode_delivery_memo", "decode_dispatch_memo", "decode_token_body", "encode_delivery_memo",
    "encode_dispatch_memo", "native_home_token",
]

MAX_MEMO_CHARS = 256
MAX_DELIVERY_IDS = (MAX_MEMO_CHARS - len(DELIVERY_PREFIX) + 1) // 65  # 3 ids of 64 hex chars, comma-joined


def native_home_token(denom: str) -> bytes:
    """The ``homeToken`` of a denom whose home is this Cosmos chain: ``sha256(denom)``."""
    return hashlib.sha256(denom.encode()).digest()


def decode_dispatch_memo(memo: str) -> DispatchMemo | None:
    """The dispatch a memo asks for, or ``None`` when the memo is not a well-formed dispatch."""
    try:
        return bridge_memo.decode_dispatch_memo(memo)
    except MemoFormatError:
        return None


def decode_token_body(body: bytes) -> TokenBody | None:
    """The TokenBridge body, or ``None`` if ``body`` is not one (wrong length, homeDomain over u32)."""
    try:
        return TokenBody.decode(body)
    except MemoFormatError:
        return None


def encode_delivery_memo(ids: list[MessageId] | tuple[MessageId, ...]) -> str:
    if len(ids) > MAX_DELIVERY_IDS:
        raise ValueError(f"a delivery memo holds at most {MAX_DELIVERY_IDS} ids, got {len(ids)}")
    return bridge_memo.encode_delivery_memo(ids)


def decode_delivery_memo(memo: str) -> list[MessageId]:
    """The ids a delivery memo names; empty for any other memo (or a malformed one)."""
    try:
        return bridge_memo.decode_delivery_memo(memo)
    except MemoFormatError:
        return []
