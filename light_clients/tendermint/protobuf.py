"""A minimal proto3 encoder: just the wire types CometBFT's hashed and signed messages need.

Proto3 leaves out scalar fields holding their zero value; ``message`` fields are emitted whenever present
(gogoproto's non-nullable fields are always present, even when empty).
"""

from __future__ import annotations

import struct

_VARINT = 0
_FIXED64 = 1
_LENGTH_DELIMITED = 2
_UINT64_MASK = (1 << 64) - 1


def varint(value: int) -> bytes:
    """Base-128 varint; negative numbers as their 64-bit two's complement (int64 semantics)."""
    value &= _UINT64_MASK
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return varint((field << 3) | wire_type)


def varint_field(field: int, value: int) -> bytes:
    """An int32/int64/uint32/uint64/enum field; omitted when zero."""
    return _key(field, _VARINT) + varint(value) if value else b""


def sfixed64_field(field: int, value: int) -> bytes:
    """An sfixed64 field (little-endian, signed); omitted when zero."""
    return _key(field, _FIXED64) + struct.pack("<q", value) if value else b""


def bytes_field(field: int, value: bytes) -> bytes:
    """A bytes field; omitted when empty."""
    return _key(field, _LENGTH_DELIMITED) + varint(len(value)) + value if value else b""


def string_field(field: int, value: str) -> bytes:
    """A string field (UTF-8); omitted when empty."""
    return bytes_field(field, value.encode())


def message_field(field: int, encoded: bytes) -> bytes:
    """An embedded message; always emitted, even when its encoding is empty."""
    return _key(field, _LENGTH_DELIMITED) + varint(len(encoded)) + encoded


def length_prefixed(encoded: bytes) -> bytes:
    """A message as written by ``protoio.MarshalDelimited``: uvarint length, then the bytes."""
    return varint(len(encoded)) + encoded
