"""Merkle-Patricia trie (MPT): build a root from key/value pairs, make proofs, verify proofs.

Nodes, as in the yellow paper, appendix D:

* leaf ``[hex_prefix(rest_of_path, leaf=True), value]``
* extension ``[hex_prefix(shared_path, leaf=False), child_ref]``
* branch ``[child_ref x 16, value]``

A child is referenced by ``keccak256(rlp(child))`` when its encoding is 32 bytes or longer, and embedded
as the RLP list itself otherwise. The root hash is always ``keccak256(rlp(root))``.

A proof is the list of RLP-encoded nodes on the path from the root (as ``eth_getProof`` returns them):
embedded nodes are not listed separately. ``verify_proof`` checks every hash link from the trusted root,
walks the key's nibbles, and returns the value, or ``None`` when the proof shows the key is absent. It
raises ``ProofError`` when a link does not match, a node is malformed, the proof ends early or has nodes
it did not use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.errors import ProofError, RlpError
from light_clients.ethereum.execution.keccak import EMPTY_TRIE_ROOT, keccak256
from light_clients.ethereum.execution.rlp import RlpItem

Nibbles = tuple[int, ...]


def to_nibbles(key: bytes) -> Nibbles:
    """The key as a sequence of 4-bit nibbles, high nibble first."""
    out: list[int] = []
    for byte in key:
        out.append(byte >> 4)
        out.append(byte & 0x0F)
    return tuple(out)


def hex_prefix(path: Nibbles, is_leaf: bool) -> bytes:
    """Hex-prefix encoding of a nibble path with the leaf/extension flag."""
    flag = 2 if is_leaf else 0
    if len(path) % 2:
        nibbles: Nibbles = (flag + 1, *path)
    else:
        nibbles = (flag, 0, *path)
    return bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))


def decode_hex_prefix(encoded: bytes) -> tuple[Nibbles, bool]:
    """Inverse of ``hex_prefix``; ``ProofError`` on a bad flag nibble or non-zero padding."""
    if not encoded:
        raise ProofError("bad node: empty hex-prefix path")
    flag = encoded[0] >> 4
    if flag > 3:
        raise ProofError(f"bad node: hex-prefix flag {flag}")
    is_leaf = flag >= 2
    nibbles = to_nibbles(encoded)
    if flag % 2:
        return nibbles[1:], is_leaf
    if nibbles[1] != 0:
        raise ProofError("bad node: non-zero padding nibble in an even hex-prefix path")
    return nibbles[2:], is_leaf


@dataclass
class _Leaf:
    path: Nibbles
    value: bytes


@dataclass
class _Extension:
    path: Nibbles
    child: _Node


@dataclass
class _Branch:
    children: list[_Node | None]
    value: bytes


_Node = _Leaf | _Extension | _Branch


@dataclass
class _Encoded:
    """A node's RLP structure and its encoding, computed once."""

    item: RlpItem
    encoding: bytes


def _common_prefix_length(keys: Sequence[Nibbles], depth: int) -> int:
    first, last = keys[0], keys[-1]  # keys are sorted: the first and last bound everything between
    limit = min(len(first), len(last))
    n = depth
    while n < limit and first[n] == last[n]:
        n += 1
    return n - depth


def _build(items: Sequence[tuple[Nibbles, bytes]], depth: int) -> _Node:
    if len(items) == 1:
        key, value = items[0]
        return _Leaf(key[depth:], value)
    shared = _common_prefix_length([k for k, _ in items], depth)
    if shared:
        return _Extension(items[0][0][depth:depth + shared], _build(items, depth + shared))
    children: list[_Node | None] = [None] * 16
    value = b""
    start = 0
    if len(items[0][0]) == depth:  # sorted: a key ending here comes first
        value = items[0][1]
        start = 1
    groups: dict[int, list[tuple[Nibbles, bytes]]] = {}
    for key, val in items[start:]:
        groups.setdefault(key[depth], []).append((key, val))
    for nibble, group in groups.items():
        children[nibble] = _build(group, depth + 1)
    return _Branch(children, value)


@dataclass
class Trie:
    """An immutable MPT over a fixed set of key/value pairs (empty values are absent keys)."""

    _root: _Node | None
    _cache: dict[int, _Encoded] = field(default_factory=dict, repr=False)

    @classmethod
    def from_items(cls, items: Iterable[tuple[bytes, bytes]]) -> Trie:
        """Build from pairs applied in order: a later pair overwrites, an empty value deletes."""
        table: dict[bytes, bytes] = {}
        for key, value in items:
            if value:
                table[bytes(key)] = bytes(value)
            else:
                table.pop(bytes(key), None)
        pairs = sorted((to_nibbles(k), v) for k, v in table.items())
        return cls(_build(pairs, 0) if pairs else None)

    @classmethod
    def from_mapping(cls, mapping: Mapping[bytes, bytes]) -> Trie:
        """Build from a mapping of keys to values."""
        return cls.from_items(mapping.items())

    def _encode(self, node: _Node) -> _Encoded:
        cached = self._cache.get(id(node))
        if cached is not None:
            return cached
        item: RlpItem
        if isinstance(node, _Leaf):
            item = [hex_prefix(node.path, True), node.value]
        elif isinstance(node, _Extension):
            item = [hex_prefix(node.path, False), self._reference(node.child)]
        else:
            item = [self._reference(c) if c is not None else b"" for c in node.children] + [node.value]
        encoded = _Encoded(item, rlp.encode(item))
        self._cache[id(node)] = encoded
        return encoded

    def _reference(self, node: _Node) -> RlpItem:
        encoded = self._encode(node)
        return encoded.item if len(encoded.encoding) < 32 else keccak256(encoded.encoding)

    def root(self) -> bytes:
        """The 32-byte root hash."""
        if self._root is None:
            return EMPTY_TRIE_ROOT
        return keccak256(self._encode(self._root).encoding)

    def prove(self, key: bytes) -> list[bytes]:
        """RLP-encoded nodes from the root along ``key``'s path (a proof of presence or absence)."""
        if self._root is None:
            return [b"\x80"]
        path = to_nibbles(key)
        proof: list[bytes] = []
        node: _Node | None = self._root
        depth = 0
        is_root = True
        while node is not None:
            encoding = self._encode(node).encoding
            if is_root or len(encoding) >= 32:
                proof.append(encoding)
            is_root = False
            if isinstance(node, _Leaf):
                break
            if isinstance(node, _Extension):
                if path[depth:depth + len(node.path)] != node.path:
                    break
                depth += len(node.path)
                node = node.child
            else:
                if depth == len(path):
                    break
                node = node.children[path[depth]]
                depth += 1
        return proof


def trie_root(items: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Root hash of the MPT holding ``items`` (applied in order; an empty value deletes)."""
    return Trie.from_items(items).root()


def ordered_trie_root(values: Sequence[bytes]) -> bytes:
    """Root of the trie keyed by ``rlp(index)``, as for transactions, receipts and withdrawals."""
    return trie_root((rlp.encode(i), v) for i, v in enumerate(values))


def _decode_node(encoding_or_item: RlpItem, where: str) -> list[RlpItem]:
    node = encoding_or_item
    if not isinstance(node, list) or len(node) not in (2, 17):
        raise ProofError(f"bad node {where}: not a 2- or 17-item list")
    return node


def _check_reference(ref: RlpItem, where: str) -> None:
    if isinstance(ref, list):
        if len(rlp.encode(ref)) >= 32:
            raise ProofError(f"bad node {where}: embedded child of 32 bytes or more")
    elif len(ref) not in (0, 32):
        raise ProofError(f"bad node {where}: child reference of {len(ref)} bytes")


def verify_proof(root: bytes, key: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The value ``proof`` proves for ``key`` under ``root``; ``None`` if it proves the key absent.

    Raises ``ProofError`` (with the reason) on a hash-link mismatch, a malformed node, a proof that ends
    before the path does, or nodes left over after the path ended.
    """
    if len(root) != 32:
        raise ProofError(f"root must be 32 bytes, got {len(root)}")
    if not proof:
        if root == EMPTY_TRIE_ROOT:
            return None
        raise ProofError("truncated: empty proof for a non-empty trie")
    path = to_nibbles(key)
    depth = 0
    used = 0
    expected: bytes = root

    def next_node() -> RlpItem:
        nonlocal used
        if used >= len(proof):
            raise ProofError(f"truncated: proof ends after {used} nodes, the path needs node {used}")
        encoding = bytes(proof[used])
        if keccak256(encoding) != expected:
            raise ProofError(f"hash link mismatch at proof node {used}: expected 0x{expected.hex()}")
        try:
            item = rlp.decode(encoding)
        except RlpError as exc:
            raise ProofError(f"bad node {used}: {exc}") from exc
        used += 1
        return item

    def follow(ref: RlpItem) -> RlpItem | None:
        """The child node a reference points at (embedded or next in the proof); None if empty."""
        nonlocal expected
        if isinstance(ref, list):
            return ref
        if ref == b"":
            return None
        expected = ref
        return next_node()

    current: RlpItem | None = next_node()
    if current == b"" and used == 1:  # rlp(b'') is the empty trie's root node
        current = None
    value: bytes | None = None
    while current is not None:
        where = f"at depth {depth}"
        node = _decode_node(current, where)
        if len(node) == 17:
            for ref in node[:16]:
                _check_reference(ref, where)
            if not isinstance(node[16], bytes):
                raise ProofError(f"bad node {where}: branch value is a list")
            if depth == len(path):
                value = node[16] or None
                break
            current = follow(node[path[depth]])
            depth += 1
            continue
        encoded_path = node[0]
        if not isinstance(encoded_path, bytes):
            raise ProofError(f"bad node {where}: path is a list")
        segment, is_leaf = decode_hex_prefix(encoded_path)
        if is_leaf:
            leaf_value = node[1]
            if not isinstance(leaf_value, bytes) or not leaf_value:
                raise ProofError(f"bad node {where}: leaf value is empty or a list")
            if path[depth:] == segment:
                value = leaf_value
            break
        if not segment:
            raise ProofError(f"bad node {where}: extension with an empty path")
        _check_reference(node[1], where)
        if node[1] == b"":
            raise ProofError(f"bad node {where}: extension without a child")
        if path[depth:depth + len(segment)] != segment:
            break
        depth += len(segment)
        current = follow(node[1])
    if used != len(proof):
        raise ProofError(f"proof has {len(proof) - used} unused nodes after the path ended")
    return value
