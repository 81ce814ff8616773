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

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from adapters.message import Domain, MessageId

DISPATCH_PREFIX = "xchain:v1:"
DELIVERY_PREFIX = "xchain-delivery:"
MAX_MEMO_CHARS = 256
MAX_DELIVERY_IDS = (MAX_MEMO_CHARS - len(DELIVERY_PREFIX) + 1) // 65  # 3 ids of 64 hex chars, comma-joined
TOKEN_BODY_LEN = 4 * 32
_DEST = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class DispatchMemo:
    destination: Domain
    recipient: bytes  # bytes32
    body: bytes


@dataclass(frozen=True, slots=True)
class TokenBody:
    """The TokenBridge body: which token (by its home), to whom, how much (smallest units)."""

    home_domain: int
    home_token: bytes
    recipient: bytes
    amount: int

    def encode(self) -> bytes:
        return (
            self.home_domain.to_bytes(32, "big") + self.home_token + self.recipient + self.amount.to_bytes(32, "big")
        )


def native_home_token(denom: str) -> bytes:
    """The ``homeToken`` of a denom whose home is this Cosmos chain: ``sha256(denom)``."""
    return hashlib.sha256(denom.encode()).digest()


def encode_dispatch_memo(destination: int, recipient: bytes, body: bytes) -> str:
    if len(recipient) != 32:
        raise ValueError(f"recipient must be 32 bytes, got {len(recipient)}")
    return DISPATCH_PREFIX + base64.b64encode(_DEST.pack(destination) + recipient + body).decode()


def decode_dispatch_memo(memo: str) -> DispatchMemo | None:
    """The dispatch a memo asks for, or ``None`` when the memo is not a well-formed dispatch."""
    if not memo.startswith(DISPATCH_PREFIX):
        return None
    try:
        raw = base64.b64decode(memo[len(DISPATCH_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 4 + 32:
        return None
    (destination,) = _DEST.unpack_from(raw)
    return DispatchMemo(Domain(destination), raw[4:36], raw[36:])


def decode_token_body(body: bytes) -> TokenBody | None:
    """The TokenBridge body, or ``None`` if ``body`` is not one (wrong length, homeDomain over u32)."""
    if len(body) != TOKEN_BODY_LEN:
        return None
    home_domain = int.from_bytes(body[0:32], "big")
    if home_domain >= 2**32:
        return None
    return TokenBody(home_domain, body[32:64], body[64:96], int.from_bytes(body[96:128], "big"))


def encode_delivery_memo(ids: list[MessageId] | tuple[MessageId, ...]) -> str:
    if len(ids) > MAX_DELIVERY_IDS:
        raise ValueError(f"a delivery memo holds at most {MAX_DELIVERY_IDS} ids, got {len(ids)}")
    return DELIVERY_PREFIX + ",".join(bytes(i).hex() for i in ids)


def decode_delivery_memo(memo: str) -> list[MessageId]:
    """The ids a delivery memo names; empty for any other memo (or a malformed one)."""
    if not memo.startswith(DELIVERY_PREFIX):
        return []
    out = []
    for part in memo[len(DELIVERY_PREFIX):].split(","):
        try:
            raw = bytes.fromhex(part)
        except ValueError:
            return []
        if len(raw) != 32:
            return []
        out.append(MessageId(raw))
    return out
