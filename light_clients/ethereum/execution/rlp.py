"""Strict Recursive Length Prefix (RLP) encoding, as in the Ethereum yellow paper, appendix B.

The decoder accepts only the canonical encoding of an item: a single byte below 0x80 is never wrapped
as a one-byte string, lengths up to 55 always use the short form, long-form lengths have no leading zero
bytes, the payload fits in the input exactly and nothing trails it. Anything else raises ``RlpError``;
a light client must not accept two encodings of one value, because hashes are taken over the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from light_clients.ethereum.execution.errors import RlpError

RlpItem: TypeAlias = bytes | list["RlpItem"]
Encodable: TypeAlias = bytes | bytearray | int | Sequence["Encodable"]


def _length_prefix(length: int, short_base: int) -> bytes:
    if length <= 55:
        return bytes([short_base + length])
    length_bytes = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([short_base + 55 + len(length_bytes)]) + length_bytes


def int_to_bytes(value: int) -> bytes:
    """Minimal big-endian bytes of a non-negative integer; 0 is the empty string."""
    if value < 0:
        raise RlpError(f"cannot encode negative integer {value}")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def encode(item: Encodable) -> bytes:
    """RLP-encode bytes, a non-negative int (minimal big-endian) or a (nested) sequence of those."""
    if isinstance(item, (bytes, bytearray)):
        data = bytes(item)
        if len(data) == 1 and data[0] < 0x80:
            return data
        return _length_prefix(len(data), 0x80) + data
    if isinstance(item, bool):
        raise RlpError("booleans are not RLP items")
    if isinstance(item, int):
        return encode(int_to_bytes(item))
    if isinstance(item, (list, tuple)):
        payload = b"".join(encode(child) for child in item)
        return _length_prefix(len(payload), 0xC0) + payload
    raise RlpError(f"cannot RLP-encode {type(item).__name__}")


def _read_length(data: bytes, pos: int, length_of_length: int) -> int:
    end = pos + length_of_length
    if end > len(data):
        raise RlpError(f"truncated: long-form length needs {length_of_length} bytes at offset {pos}")
    length_bytes = data[pos:end]
    if length_bytes[0] == 0:
        raise RlpError(f"non-canonical: leading zero in long-form length at offset {pos}")
    length = int.from_bytes(length_bytes, "big")
    if length <= 55:
        raise RlpError(f"non-canonical: long form used for length {length} at offset {pos}")
    return length


def _decode_at(data: bytes, pos: int) -> tuple[RlpItem, int]:
    """Decode the item starting at ``pos``; return it and the offset just after it."""
    if pos >= len(data):
        raise RlpError(f"truncated: expected an item at offset {pos}")
    prefix = data[pos]
    if prefix < 0x80:
        return data[pos:pos + 1], pos + 1
    if prefix < 0xC0:
        if prefix <= 0xB7:
            length, start = prefix - 0x80, pos + 1
        else:
            length_of_length = prefix - 0xB7
            length, start = _read_length(data, pos + 1, length_of_length), pos + 1 + length_of_length
        end = start + length
        if end > len(data):
            raise RlpError(f"truncated: string of {length} bytes at offset {pos} runs past the input")
        if length == 1 and data[start] < 0x80:
            raise RlpError(f"non-canonical: single byte 0x{data[start]:02x} encoded as a string at offset {pos}")
        return data[start:end], end
    if prefix <= 0xF7:
        length, start = prefix - 0xC0, pos + 1
    else:
        length_of_length = prefix - 0xF7
        length, start = _read_length(data, pos + 1, length_of_length), pos + 1 + length_of_length
    end = start + length
    if end > len(data):
        raise RlpError(f"truncated: list of {length} bytes at offset {pos} runs past the input")
    items: list[RlpItem] = []
    cursor = start
    while cursor < end:
        child, cursor = _decode_at(data, cursor)
        if cursor > end:
            raise RlpError(f"list at offset {pos}: an item runs past the list's declared length")
        items.append(child)
    return items, end


def decode(data: bytes) -> RlpItem:
    """Decode exactly one canonical RLP item filling all of ``data``."""
    item, end = _decode_at(bytes(data), 0)
    if end != len(data):
        raise RlpError(f"{len(data) - end} trailing bytes after the item")
    return item


def as_bytes(item: RlpItem, what: str) -> bytes:
    """The item as a byte string, or ``RlpError`` naming ``what`` if it is a list."""
    if not isinstance(item, bytes):
        raise RlpError(f"{what}: expected a byte string, got a list")
    return item


def as_list(item: RlpItem, what: str) -> list[RlpItem]:
    """The item as a list, or ``RlpError`` naming ``what`` if it is a byte string."""
    if not isinstance(item, list):
        raise RlpError(f"{what}: expected a list, got a byte string")
    return item


def as_int(item: RlpItem, what: str) -> int:
    """A canonical RLP integer: a byte string without leading zero bytes (0 is empty)."""
    raw = as_bytes(item, what)
    if raw[:1] == b"\x00":
        raise RlpError(f"{what}: integer with a leading zero byte")
    return int.from_bytes(raw, "big")


def as_fixed(item: RlpItem, size: int, what: str) -> bytes:
    """A byte string of exactly ``size`` bytes (hashes, addresses, blooms)."""
    raw = as_bytes(item, what)
    if len(raw) != size:
        raise RlpError(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw
