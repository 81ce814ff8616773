"""Incremental Merkle tree of message ids (depth 32), the same tree the origin Mailbox keeps on chain.

Leaves are appended in nonce order. Only complete subtrees are cached, so appending is O(1) amortised
and a proof or root *as of any earlier count* is cheap: a sibling subtree is either complete inside the
prefix (cached), wholly outside it (the zero hash of its level), or the one partial subtree on the
prefix's right edge (computed recursively along one path).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from adapters.message import MessageFormatError, keccak256

TREE_DEPTH = 32
MAX_LEAVES = 2**TREE_DEPTH - 1


def _zero_hashes() -> list[bytes]:
    zeros = [b"\0" * 32]
    for _ in range(TREE_DEPTH):
        zeros.append(keccak256(zeros[-1] + zeros[-1]))
    return zeros


ZERO_HASHES = _zero_hashes()


class MerkleTree:
    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        # _levels[l][k] = root of the complete subtree of height l holding leaves [k*2^l, (k+1)*2^l)
        self._levels: list[list[bytes]] = [[] for _ in range(TREE_DEPTH + 1)]
        for leaf in leaves:
            self.append(leaf)

    @property
    def count(self) -> int:
        return len(self._levels[0])

    def append(self, leaf: bytes) -> None:
        if len(leaf) != 32:
            raise MessageFormatError(f"a leaf is 32 bytes, got {len(leaf)}")
        if self.count >= MAX_LEAVES:
            raise MessageFormatError("merkle tree is full")
        levels = self._levels
        levels[0].append(leaf)
        level = 0
        while len(levels[level]) % 2 == 0:
            pair = levels[level][-2:]
            levels[level + 1].append(keccak256(pair[0] + pair[1]))
            level += 1

    def _node(self, level: int, index: int, count: int) -> bytes:
        first, end = index << level, (index + 1) << level
        if end <= count:
            return self._levels[level][index]
        if first >= count:
            return ZERO_HASHES[level]
        return keccak256(self._node(level - 1, 2 * index, count) + self._node(level - 1, 2 * index + 1, count))

    def root(self, count: int | None = None) -> bytes:
        count = self.count if count is None else count
        self._check_count(count)
        return self._node(TREE_DEPTH, 0, count)

    def proof(self, leaf_index: int, count: int | None = None) -> list[bytes]:
        """Siblings from the leaf up, for the tree as it was when it held ``count`` leaves."""
        count = self.count if count is None else count
        self._check_count(count)
        if not 0 <= leaf_index < count:
            raise MessageFormatError(f"leaf {leaf_index} is not among the first {count} leaves")
        return [self._node(level, (leaf_index >> level) ^ 1, count) for level in range(TREE_DEPTH)]

    def _check_count(self, count: int) -> None:
        if not 0 <= count <= self.count:
            raise MessageFormatError(f"the tree holds {self.count} leaves, cannot give it as of {count}")


def branch_root(leaf: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """The root a proof leads to; what the destination's security module computes on chain."""
    if len(proof) != TREE_DEPTH:
        raise MessageFormatError(f"a proof has {TREE_DEPTH} siblings, got {len(proof)}")
    node = leaf
    for level, sibling in enumerate(proof):
        node = keccak256(sibling + node) if (index >> level) & 1 else keccak256(node + sibling)
    return node


def _check_positions(indices: Sequence[int], count: int) -> None:
    if not indices:
        raise MessageFormatError("a multiproof needs at least one leaf")
    for a, b in itertools.pairwise(indices):
        if b <= a:
            raise MessageFormatError(f"multiproof leaf indices must be strictly increasing ({a} then {b})")
    if indices[0] < 0 or indices[-1] >= count:
        raise MessageFormatError(f"multiproof leaves must lie among the first {count} leaves")


class _Multiproof:
    """The walk shared by prover and verifier (and by ``MultisigIsm.verifyBatch`` on chain).

    Level by level from the leaves up, known nodes left to right: a left child whose right neighbour is
    also known pairs with it; otherwise its missing sibling is the next proof hash, except a right
    sibling whose subtree lies wholly at or past ``count``, which is that level's zero hash and is not in
    the proof. After ``TREE_DEPTH`` levels one node is left: the root.
    """

    @staticmethod
    def walk(positions: list[int], count: int, sibling: Callable[[int, int], bytes],
             combine: Callable[[int, int, int, bytes | None], None]) -> list[int]:
        for level in range(TREE_DEPTH):
            nxt: list[int] = []
            i = 0
            while i < len(positions):
                pos = positions[i]
                if pos & 1 == 0:
                    if i + 1 < len(positions) and positions[i + 1] == pos + 1:
                        combine(level, i, i + 1, None)
                        i += 2
                    else:
                        sib = pos + 1
                        combine(level, i, -1, sibling(level, sib) if (sib << level) < count else ZERO_HASHES[level])
                        i += 1
                else:
                    combine(level, i, -2, sibling(level, pos - 1))
                    i += 1
                nxt.append(pos >> 1)
            positions = nxt
        return positions


def multiproof(tree: MerkleTree, indices: Sequence[int], count: int) -> list[bytes]:
    """Sibling hashes that, with the leaves at ``indices`` (strictly increasing), give ``tree.root(count)``."""
    tree._check_count(count)
    _check_positions(indices, count)
    proof: list[bytes] = []

    def sibling(level: int, index: int) -> bytes:
        node = tree._node(level, index, count)
        proof.append(node)
        return node

    _Multiproof.walk(list(indices), count, sibling, lambda *_: None)
    return proof


def multiproof_root(leaves: Sequence[tuple[int, bytes]], proof: Sequence[bytes], count: int) -> bytes:
    """The root that ``leaves`` ((index, leaf) by increasing index) and ``proof`` lead to; what the ISM computes."""
    _check_positions([i for i, _ in leaves], count)
    nodes = [leaf for _, leaf in leaves]
    consumed = iter(proof)
    out: list[bytes] = []

    def sibling(_level: int, _index: int) -> bytes:
        try:
            return next(consumed)
        except StopIteration:
            raise MessageFormatError("multiproof is too short") from None

    def combine(_level: int, i: int, j: int, sib: bytes | None) -> None:
        if j >= 0:
            out.append(keccak256(nodes[i] + nodes[j]))
        elif j == -1:
            out.append(keccak256(nodes[i] + sib))  # type: ignore[operator]
        else:
            out.append(keccak256(sib + nodes[i]))  # type: ignore[operator]
        if i == len(nodes) - 1 or (j >= 0 and j == len(nodes) - 1):
            nodes[:] = out
            out.clear()

    _Multiproof.walk([i for i, _ in leaves], count, sibling, combine)
    if next(consumed, None) is not None:
        raise MessageFormatError("multiproof has hashes left over")
    return nodes[0]
