"""SSZ primitives: merkleization (sha256), Merkle branch checks and offset-table decoding.

Only what the light-client containers need: fixed-size byte vectors, uint64/uint256, bitvectors,
one ``ByteList`` and containers with variable-size fields. Containers live in ``containers.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from light_clients.ethereum.consensus.errors import MalformedSsz

BYTES_PER_CHUNK = 32
OFFSET_SIZE = 4
ZERO_CHUNK = b"\x00" * BYTES_PER_CHUNK


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _zero_hashes(depth: int) -> list[bytes]:
    hashes = [ZERO_CHUNK]
    for _ in range(depth):
        hashes.append(sha256(hashes[-1] + hashes[-1]))
    return hashes


ZERO_HASHES = _zero_hashes(64)


def merkleize(chunks: Sequence[bytes], limit: int | None = None) -> bytes:
    """Root of ``chunks`` zero-padded to the next power of two of ``limit`` (or of their count)."""
    count = len(chunks)
    width = count if limit is None else limit
    if count > width:
        raise MalformedSsz(f"{count} chunks exceed the limit {width}")
    depth = max(width - 1, 0).bit_length()
    if count == 0:
        return ZERO_HASHES[depth]
    layer = list(chunks)
    for level in range(depth):
        if len(layer) % 2:
            layer.append(ZERO_HASHES[level])
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]


def mix_in_length(root: bytes, length: int) -> bytes:
    return sha256(root + length.to_bytes(BYTES_PER_CHUNK, "little"))


def pack_bytes(data: bytes) -> list[bytes]:
    """Split into 32-byte chunks, the last one right-padded with zeros."""
    if not data:
        return []
    padded = data + b"\x00" * (-len(data) % BYTES_PER_CHUNK)
    return [padded[i : i + BYTES_PER_CHUNK] for i in range(0, len(padded), BYTES_PER_CHUNK)]


def root_of_bytes_vector(data: bytes) -> bytes:
    """hash_tree_root of a ``ByteVector[N]`` (also of a ``Bitvector`` given its packed bytes)."""
    if len(data) <= BYTES_PER_CHUNK:
        return data.ljust(BYTES_PER_CHUNK, b"\x00")
    if len(data) <= 2 * BYTES_PER_CHUNK:  # BLS public keys: one hash, the common case
        return hashlib.sha256(data.ljust(2 * BYTES_PER_CHUNK, b"\x00")).digest()
    return merkleize(pack_bytes(data), limit=(len(data) + BYTES_PER_CHUNK - 1) // BYTES_PER_CHUNK)


def root_of_byte_list(data: bytes, max_length: int) -> bytes:
    return mix_in_length(merkleize(pack_bytes(data), limit=(max_length + 31) // 32), len(data))


def root_of_bitvector(packed: bytes, bit_length: int) -> bytes:
    return merkleize(pack_bytes(packed), limit=(bit_length + 255) // 256)


def root_of_uint(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little").ljust(BYTES_PER_CHUNK, b"\x00")


def is_valid_merkle_branch(leaf: bytes, branch: Sequence[bytes], depth: int, index: int, root: bytes) -> bool:
    """Whether ``branch`` proves ``leaf`` at ``index`` of a tree of ``depth`` whose root is ``root``."""
    if len(branch) != depth:
        return False
    value = leaf
    for level in range(depth):
        if (index >> level) & 1:
            value = sha256(branch[level] + value)
        else:
            value = sha256(value + branch[level])
    return value == root


def read_uint(data: bytes, size: int) -> int:
    if len(data) != size:
        raise MalformedSsz(f"uint{size * 8} needs {size} bytes, got {len(data)}")
    return int.from_bytes(data, "little")


def split_fields(data: bytes, sizes: Sequence[int | None], container: str) -> list[bytes]:
    """Cut a container's encoding into its fields. ``None`` marks a variable-size field (4-byte offset)."""
    fixed_length = sum(OFFSET_SIZE if size is None else size for size in sizes)
    if len(data) < fixed_length:
        raise MalformedSsz(f"{container}: {len(data)} bytes, fixed part alone is {fixed_length}")
    parts: list[bytes | None] = []
    offsets: list[int] = []
    position = 0
    for size in sizes:
        if size is None:
            offsets.append(int.from_bytes(data[position : position + OFFSET_SIZE], "little"))
            parts.append(None)
            position += OFFSET_SIZE
        else:
            parts.append(data[position : position + size])
            position += size
    if not offsets:
        if len(data) != fixed_length:
            raise MalformedSsz(f"{container}: {len(data)} bytes, expected {fixed_length}")
        return [part for part in parts if part is not None]
    if offsets[0] != fixed_length:
        raise MalformedSsz(f"{container}: first offset {offsets[0]}, expected {fixed_length}")
    ends = offsets[1:] + [len(data)]
    variable = []
    for start, end in zip(offsets, ends, strict=True):
        if not start <= end <= len(data):
            raise MalformedSsz(f"{container}: offsets out of order or out of bounds")
        variable.append(data[start:end])
    variable_iter = iter(variable)
    return [next(variable_iter) if part is None else part for part in parts]


def split_variable_list(data: bytes, container: str = "list") -> list[bytes]:
    """Items of an SSZ list of variable-size elements (an offset table, then the items)."""
    if not data:
        return []
    first = int.from_bytes(data[:OFFSET_SIZE], "little")
    if first % OFFSET_SIZE or first == 0 or first > len(data):
        raise MalformedSsz(f"{container}: bad first offset {first}")
    offsets = [int.from_bytes(data[i : i + OFFSET_SIZE], "little") for i in range(0, first, OFFSET_SIZE)]
    ends = offsets[1:] + [len(data)]
    items = []
    for start, end in zip(offsets, ends, strict=True):
        if not first <= start <= end <= len(data):
            raise MalformedSsz(f"{container}: offsets out of order or out of bounds")
        items.append(data[start:end])
    return items


def split_vector(data: bytes, item_size: int, count: int, what: str) -> tuple[bytes, ...]:
    if len(data) != item_size * count:
        raise MalformedSsz(f"{what}: {len(data)} bytes, expected {count} x {item_size}")
    return tuple(data[i : i + item_size] for i in range(0, len(data), item_size))
