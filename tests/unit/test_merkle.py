import pytest

from adapters.merkle import TREE_DEPTH, ZERO_HASHES, MerkleTree, branch_root
from adapters.message import MessageFormatError, keccak256


def naive_root(leaves: list[bytes]) -> bytes:
    level = list(leaves)
    for depth in range(TREE_DEPTH):
        if len(level) % 2:
            level.append(ZERO_HASHES[depth])
        level = [keccak256(level[i] + level[i + 1]) for i in range(0, len(level), 2)] or [ZERO_HASHES[depth + 1]]
    return level[0]


def leaf(i: int) -> bytes:
    return keccak256(i.to_bytes(4, "big"))


def test_empty_root_is_zero_hash_of_depth():
    assert MerkleTree().root() == ZERO_HASHES[TREE_DEPTH]


def test_roots_and_proofs_for_every_prefix():
    leaves = [leaf(i) for i in range(37)]
    tree = MerkleTree(leaves)
    for count in range(1, len(leaves) + 1):
        root = tree.root(count)
        assert root == naive_root(leaves[:count])
        for i in range(count):
            assert branch_root(leaves[i], tree.proof(i, count), i) == root


def test_wrong_proof_or_index_does_not_reach_root():
    tree = MerkleTree([leaf(i) for i in range(10)])
    proof = tree.proof(3)
    assert branch_root(leaf(3), proof, 4) != tree.root()
    assert branch_root(leaf(4), proof, 3) != tree.root()


def test_bad_requests_are_errors():
    tree = MerkleTree([leaf(0)])
    with pytest.raises(MessageFormatError):
        tree.proof(1)
    with pytest.raises(MessageFormatError):
        tree.root(2)
    with pytest.raises(MessageFormatError):
        tree.append(b"short")
