"""The chain-neutral message (DESIGN.md):

    version u8 | nonce u64 | origin_domain u32 | sender bytes32 | destination_domain u32 | recipient bytes32 | body
    id = keccak256(message bytes)

The same bytes on every chain family; addresses are left-padded to 32 bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NewType

from Crypto.Hash import keccak as _keccak

from config.errors import RelayerError

Domain = NewType("Domain", int)
MessageId = NewType("MessageId", bytes)

MESSAGE_VERSION = 1
HEADER_LEN = 1 + 8 + 4 + 32 + 4 + 32  # 81 bytes
MAX_BODY_LEN = 64 * 1024
_HEADER = struct.Struct(">BQI32sI32s")


class MessageFormatError(RelayerError, ValueError):
    """Message or metadata bytes that do not parse; says which field and at which offset."""


def keccak256(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()


def address_to_bytes32(address: str | bytes) -> bytes:
    """Left-pad a 20-byte EVM address (hex string or bytes) to 32 bytes."""
    raw = bytes.fromhex(address.removeprefix("0x")) if isinstance(address, str) else address
    if len(raw) > 32:
        raise MessageFormatError(f"address is {len(raw)} bytes, at most 32 fit in bytes32")
    return raw.rjust(32, b"\0")


@dataclass(frozen=True, slots=True)
class Message:
    version: int
    nonce: int
    origin: Domain
    sender: bytes
    destination: Domain
    recipient: bytes
    body: bytes

    def encode(self) -> bytes:
        return _HEADER.pack(self.version, self.nonce, self.origin, self.sender, self.destination,
                            self.recipient) + self.body

    @property
    def id(self) -> MessageId:
        return MessageId(keccak256(self.encode()))

    @classmethod
    def decode(cls, data: bytes) -> Message:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise MessageFormatError(f"message must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) < HEADER_LEN:
            raise MessageFormatError(
                f"message is {len(data)} bytes; the header alone is {HEADER_LEN} "
                "(version u8, nonce u64, origin u32, sender bytes32, destination u32, recipient bytes32)"
            )
        version, nonce, origin, sender, destination, recipient = _HEADER.unpack_from(data)
        if version != MESSAGE_VERSION:
            raise MessageFormatError(f"byte 0 (version) is {version}; this relayer speaks version {MESSAGE_VERSION}")
        body = data[HEADER_LEN:]
        if len(body) > MAX_BODY_LEN:
            raise MessageFormatError(f"body is {len(body)} bytes, over the {MAX_BODY_LEN}-byte limit")
        return cls(version, nonce, Domain(origin), sender, Domain(destination), recipient, body)


def message_id(data: bytes) -> MessageId:
    return MessageId(keccak256(data))


def id_hex(mid: MessageId) -> str:
    """A message id as logs, JSON and the store write it: 0x, then lowercase hex."""
    return "0x" + mid.hex()
