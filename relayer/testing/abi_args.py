"""ABI encoding of constructor arguments for ``XChain.deploy`` (the Solidity ABI's head/tail layout), without a chain
SDK (``relayer/`` imports none: tests/unit/test_architecture.py). Elementary types (``address``, ``bool``,
``uintN``, ``intN``, ``bytesN``, ``bytes``, ``string``) and arrays of them (``T[]``, ``T[k]``, nested); a tuple
(struct) argument is refused with a clear error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from relayer.testing.chains import XChainError


def encode_args(types: Sequence[str], values: Sequence[Any]) -> bytes:
    if len(types) != len(values):
        raise XChainError(f"{len(types)} arguments expected ({', '.join(types)}), got {len(values)}")
    return _tuple(list(types), list(values))


def _tuple(types: list[str], values: list[Any]) -> bytes:
    heads: list[bytes] = []
    tails: list[bytes] = []
    head_size = sum(32 if _dynamic(t) else _static_size(t) for t in types)
    for kind, value in zip(types, values, strict=True):
        encoded = _one(kind, value)
        if _dynamic(kind):
            heads.append(_word(head_size + sum(len(t) for t in tails)))
            tails.append(encoded)
        else:
            heads.append(encoded)
    return b"".join(heads + tails)


def _array(kind: str) -> tuple[str, int | None] | None:
    """(element type, length or None for ``T[]``) of an array type; None for another type."""
    if not kind.endswith("]"):
        return None
    element, _, size = kind[:-1].rpartition("[")
    return element, int(size) if size else None


def _dynamic(kind: str) -> bool:
    array = _array(kind)
    if array is None:
        return kind in ("bytes", "string")
    return array[1] is None or _dynamic(array[0])


def _static_size(kind: str) -> int:
    array = _array(kind)
    return 32 if array is None else (array[1] or 0) * _static_size(array[0])


def _one(kind: str, value: Any) -> bytes:
    array = _array(kind)
    if array is not None:
        element, size = array
        items = list(value)
        if size is not None and len(items) != size:
            raise XChainError(f"{kind} takes {size} items, got {len(items)}")
        body = _tuple([element] * len(items), items)
        return body if size is not None else _word(len(items)) + body
    if kind in ("bytes", "string"):
        raw = value.encode() if kind == "string" and isinstance(value, str) else _raw(value)
        return _word(len(raw)) + raw.ljust(-(-len(raw) // 32) * 32, b"\0")
    return _elementary(kind, value)


def _elementary(kind: str, value: Any) -> bytes:
    if kind == "address":
        raw = _raw(value)
        if len(raw) != 20:
            raise XChainError(f"{value!r} is not a 20-byte address")
        return raw.rjust(32, b"\0")
    if kind == "bool":
        return _word(int(bool(value)))
    if kind.startswith("uint"):
        return _word(_in_range(kind, int(value), 0, 2 ** int(kind[4:] or 256)))
    if kind.startswith("int"):
        bits = int(kind[3:] or 256)
        return _word(_in_range(kind, int(value), -(2 ** (bits - 1)), 2 ** (bits - 1)) % 2**256)
    if kind.startswith("bytes"):
        raw = _raw(value)
        if len(raw) != int(kind[5:]):
            raise XChainError(f"{kind} takes {kind[5:]} bytes, got {len(raw)}")
        return raw.ljust(32, b"\0")
    raise XChainError(f"constructor arguments of type {kind} are not supported (elementary types and arrays only)")


def _in_range(kind: str, value: int, low: int, high: int) -> int:
    if not low <= value < high:
        raise XChainError(f"{value} does not fit {kind}")
    return value


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    try:
        return bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        raise XChainError(f"{value!r} is not hex bytes") from None


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")
