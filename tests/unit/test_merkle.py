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


def test_multiproof_matches_root_for_random_subsets():
    import random

    from adapters.merkle import multiproof, multiproof_root

    rng = random.Random(7)
    leaves = [leaf(i) for i in range(130)]
    tree = MerkleTree(leaves)
    for _ in range(200):
        count = rng.randint(1, len(leaves))
        picked = sorted(rng.sample(range(count), rng.randint(1, min(count, 30))))
        proof = multiproof(tree, picked, count)
        assert multiproof_root([(i, leaves[i]) for i in picked], proof, count) == tree.root(count)


def test_multiproof_shares_siblings_and_rejects_tampering():
    from adapters.merkle import multiproof, multiproof_root

    leaves = [leaf(i) for i in range(300)]
    tree = MerkleTree(leaves)
    run = list(range(100, 300))
    proof = multiproof(tree, run, 300)
    assert len(proof) < 10  # 200 consecutive leaves: a few hashes, not 200 x 32
    good = [(i, leaves[i]) for i in run]
    assert multiproof_root(good, proof, 300) == tree.root()
    forged = [(i, leaf(i + 1000) if i == 150 else h) for i, h in good]
    assert multiproof_root(forged, proof, 300) != tree.root()
    with pytest.raises(MessageFormatError, match="left over"):
        multiproof_root(good, proof + [b"\0" * 32], 300)
    with pytest.raises(MessageFormatError, match="strictly increasing"):
        multiproof(tree, [5, 5], 300)
