"""The memos of chains without our contracts (Solana, Cosmos): a dispatch (origin side) or a delivery.

Dispatch memo (UTF-8)::

    xchain:v1:<base64(destination u32 big-endian | recipient bytes32 | body)>

For a token dispatch (tokens locked in, or burned from, the bridge in the same transaction) the recipient is
the destination's TokenBridge and the body is the TokenBridge body (contracts/src/TokenBridge.sol)::

    abi.encode(uint32 homeDomain, bytes32 homeToken, bytes32 recipient, uint256 amount)   # 4 x 32 bytes

The memo carries only what the sender chooses; version, nonce, origin and sender of the canonical message are
set by the chain's adapter. Delivery memo, on co-signed delivery transactions:
``xchain-delivery:<id hex>[,<id hex>...]``.

Gas top-up memo, on a transaction that moves native tokens to the relayer's fee account for a message already
dispatched (``relayer messages add-gas``; ``adapters.fee_account``)::

    xchain-gas:v1:<destination domain, decimal>:<message id, 64 hex digits>

Chain-neutral: each adapter adds its own rules (which account a
dispatch pays, how many ids fit its memo).
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from adapters.message import Domain, MessageFormatError, MessageId

DISPATCH_PREFIX = "xchain:v1:"
DELIVERY_PREFIX = "xchain-delivery:"
GAS_PREFIX = "xchain-gas:v1:"
TOKEN_BODY_LEN = 4 * 32
_DEST = struct.Struct(">I")


class MemoFormatError(MessageFormatError):
    """A memo that is not in the relayer's format (a ``MessageFormatError``, so a ``ValueError`` too)."""


@dataclass(frozen=True, slots=True)
class DispatchMemo:
    destination: Domain
    recipient: bytes  # bytes32
    body: bytes


@dataclass(frozen=True, slots=True)
class TokenBody:
    """The TokenBridge body: which token (by its home), to whom, how much (smallest units at home)."""

    home_domain: int
    home_token: bytes
    recipient: bytes
    amount: int

    def encode(self) -> bytes:
        return (self.home_domain.to_bytes(32, "big") + self.home_token + self.recipient
                + self.amount.to_bytes(32, "big"))

    @classmethod
    def decode(cls, body: bytes) -> TokenBody:
        if len(body) != TOKEN_BODY_LEN:
            raise MemoFormatError(f"token body is {len(body)} bytes, expected {TOKEN_BODY_LEN}")
        home_domain = int.from_bytes(body[:32], "big")
        if home_domain >= 2**32:
            raise MemoFormatError("homeDomain does not fit a uint32")
        return cls(home_domain, body[32:64], body[64:96], int.from_bytes(body[96:128], "big"))


def encode_dispatch_memo(destination: int, recipient: bytes, body: bytes) -> str:
    if len(recipient) != 32:
        raise MemoFormatError(f"recipient is {len(recipient)} bytes, expected 32")
    return DISPATCH_PREFIX + base64.b64encode(_DEST.pack(destination) + recipient + body).decode()


def decode_dispatch_memo(text: str) -> DispatchMemo:
    if not text.startswith(DISPATCH_PREFIX):
        raise MemoFormatError("not a dispatch memo")
    try:
        raw = base64.b64decode(text[len(DISPATCH_PREFIX):], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MemoFormatError(f"dispatch memo is not base64: {exc}") from exc
    if len(raw) < 36:
        raise MemoFormatError(f"dispatch memo holds {len(raw)} bytes, at least 36 expected")
    (destination,) = _DEST.unpack_from(raw)
    return DispatchMemo(Domain(destination), raw[4:36], raw[36:])


def encode_delivery_memo(ids: list[MessageId] | tuple[MessageId, ...]) -> str:
    return DELIVERY_PREFIX + ",".join(bytes(i).hex() for i in ids)


def decode_delivery_memo(text: str) -> list[MessageId]:
    if not text.startswith(DELIVERY_PREFIX):
        raise MemoFormatError("not a delivery memo")
    try:
        ids = [MessageId(bytes.fromhex(part)) for part in text[len(DELIVERY_PREFIX):].split(",") if part]
    except ValueError as exc:
        raise MemoFormatError(f"delivery memo: {exc}") from exc
    if any(len(i) != 32 for i in ids):
        raise MemoFormatError("delivery memo holds an id that is not 32 bytes")
    return ids


@dataclass(frozen=True, slots=True)
class GasMemo:
    """A top-up's memo: the message it pays for, and that message's destination (a payment counts only for its own
    route, as the EVM paymaster's ``GasPayment`` log names its destination)."""

    destination: Domain
    message_id: MessageId


def encode_gas_memo(destination: int, message_id: bytes) -> str:
    if len(message_id) != 32:
        raise MemoFormatError(f"message id is {len(message_id)} bytes, expected 32")
    if not 0 <= destination < 2**32:
        raise MemoFormatError(f"destination {destination} does not fit a uint32")
    return f"{GAS_PREFIX}{destination}:{message_id.hex()}"


def decode_gas_memo(text: str) -> GasMemo:
    if not text.startswith(GAS_PREFIX):
        raise MemoFormatError("not a gas top-up memo")
    destination, _, id_hex = text[len(GAS_PREFIX):].partition(":")
    if not destination.isdigit() or int(destination) >= 2**32:
        raise MemoFormatError(f"gas memo: destination {destination[:12]!r} is not a uint32")
    if len(id_hex) != 64:
        raise MemoFormatError(f"gas memo: message id is {len(id_hex)} hex digits, expected 64")
    try:
        message_id = bytes.fromhex(id_hex)
    except ValueError as exc:
        raise MemoFormatError(f"gas memo: message id is not hex: {exc}") from exc
    return GasMemo(Domain(int(destination)), MessageId(message_id))
