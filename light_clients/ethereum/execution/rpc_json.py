"""Parsing of JSON-RPC values: ``0x``-hex data and quantities, with the field named in every error."""

from __future__ import annotations

from light_clients.ethereum.execution.errors import RpcDataError


def hex_to_bytes(value: str, what: str) -> bytes:
    """``0x``-prefixed hex data as bytes; ``RpcDataError`` naming ``what`` if it is not hex."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise RpcDataError(f"{what}: expected 0x-prefixed hex, got {value!r}")
    digits = value[2:]
    if len(digits) % 2:
        digits = "0" + digits
    try:
        return bytes.fromhex(digits)
    except ValueError as exc:
        raise RpcDataError(f"{what}: not hex: {value!r}") from exc


def hex_to_int(value: str | int, what: str) -> int:
    """A JSON-RPC quantity (``0x``-hex, or already an int) as an int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise RpcDataError(f"{what}: expected a 0x-hex quantity, got {value!r}")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise RpcDataError(f"{what}: not a hex quantity: {value!r}") from exc


def hex_to_fixed(value: str, size: int, what: str) -> bytes:
    """Hex data of exactly ``size`` bytes (hash, address, bloom, nonce)."""
    raw = hex_to_bytes(value, what)
    if len(raw) != size:
        raise RpcDataError(f"{what}: expected {size} bytes, got {len(raw)}")
    return raw
