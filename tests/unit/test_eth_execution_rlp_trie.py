"""Strict RLP and the Merkle-Patricia trie: edge cases and properties beyond the public vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.errors import ProofError, RlpError
from light_clients.ethereum.execution.keccak import EMPTY_TRIE_ROOT, keccak256
from light_clients.ethereum.execution.trie import (
    Trie,
    decode_hex_prefix,
    hex_prefix,
    ordered_trie_root,
    verify_proof,
)

rlp_items = st.recursive(st.binary(max_size=80), lambda children: st.lists(children, max_size=6), max_leaves=30)


@given(rlp_items)
def test_rlp_round_trip(item: rlp.RlpItem) -> None:
    assert rlp.decode(rlp.encode(item)) == item


@given(st.integers(min_value=0, max_value=2**300))
def test_rlp_int_round_trip(value: int) -> None:
    assert rlp.as_int(rlp.decode(rlp.encode(value)), "n") == value


@pytest.mark.parametrize("data,reason", [
    (b"\xc1\x81\x80", "runs past"),           # a list's item runs past the list's declared length
    (b"\xc2\x01", "truncated"),
    (b"\x01\x02", "trailing"),
    (b"\xc0\x00", "trailing"),
    (b"\xb8\x38" + b"a" * 55, "truncated"),
    (b"\xb8\x37" + b"a" * 55, "long form"),
    (b"\xb9\x00\x38" + b"a" * 56, "leading zero"),
    (b"\x81\x05", "single byte"),
])
def test_rlp_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(RlpError, match=reason):
        rlp.decode(data)


def test_rlp_encode_rejects_what_is_not_rlp() -> None:
    for bad in (-1, True, "text", 1.5, None):
        with pytest.raises(RlpError):
            rlp.encode(bad)  # type: ignore[arg-type]


def test_rlp_shape_helpers() -> None:
    with pytest.raises(RlpError, match="leading zero"):
        rlp.as_int(b"\x00\x01", "nonce")
    with pytest.raises(RlpError, match="list"):
        rlp.as_int([], "nonce")
    with pytest.raises(RlpError, match="byte string"):
        rlp.as_list(b"", "logs")
    with pytest.raises(RlpError, match="32 bytes"):
        rlp.as_fixed(b"\x01" * 31, 32, "root")
    assert rlp.encode(55 * b"a")[0] == 0xB7 and rlp.encode(56 * b"a")[:2] == b"\xb8\x38"


@pytest.mark.parametrize("path,is_leaf", [((), True), ((), False), ((1,), True), ((0xF, 0), False), ((1, 2, 3), True)])
def test_hex_prefix_round_trip(path: tuple[int, ...], is_leaf: bool) -> None:
    assert decode_hex_prefix(hex_prefix(path, is_leaf)) == (path, is_leaf)


def test_hex_prefix_rejects_bad_flags() -> None:
    with pytest.raises(ProofError):
        decode_hex_prefix(b"\x40")
    with pytest.raises(ProofError):
        decode_hex_prefix(b"\x01")  # even path with non-zero padding nibble
    with pytest.raises(ProofError):
        decode_hex_prefix(b"")


def test_empty_trie() -> None:
    trie = Trie.from_items([])
    assert trie.root() == EMPTY_TRIE_ROOT == ordered_trie_root([])
    assert verify_proof(EMPTY_TRIE_ROOT, b"any", trie.prove(b"any")) is None
    assert verify_proof(EMPTY_TRIE_ROOT, b"any", []) is None
    with pytest.raises(ProofError, match="truncated"):
        verify_proof(keccak256(b"x"), b"any", [])


def test_deleting_everything_gives_the_empty_root() -> None:
    assert Trie.from_items([(b"a", b"1"), (b"b", b"2"), (b"a", b""), (b"b", b"")]).root() == EMPTY_TRIE_ROOT


DOGS = {b"do": b"verb", b"dog": b"puppy", b"doge": b"coin", b"horse": b"stallion"}


@pytest.mark.parametrize("absent", [b"d", b"cat", b"dogs", b"dogf", b"horses", b"hor", b"", b"\xff" * 40])
def test_absent_keys_are_proven_absent(absent: bytes) -> None:
    trie = Trie.from_mapping(DOGS)
    assert verify_proof(trie.root(), absent, trie.prove(absent)) is None


def test_branch_value_and_prefix_keys() -> None:
    trie = Trie.from_mapping(DOGS)
    for key, value in DOGS.items():
        assert verify_proof(trie.root(), key, trie.prove(key)) == value


def test_absence_proof_cannot_be_used_for_another_key() -> None:
    items = {keccak256(bytes([i])): b"v" * (i + 1) for i in range(50)}
    trie = Trie.from_mapping(items)
    present = next(iter(items))
    with pytest.raises(ProofError):
        verify_proof(trie.root(), present, trie.prove(keccak256(b"absent")))


def test_unused_and_malformed_nodes_rejected() -> None:
    items = {keccak256(bytes([i])): b"value-%d" % i for i in range(40)}
    trie = Trie.from_mapping(items)
    key = next(iter(items))
    proof = trie.prove(key)
    with pytest.raises(ProofError, match="unused"):
        verify_proof(trie.root(), key, [*proof, proof[0]])
    three_items = rlp.encode([b"a", b"b", b"c"])
    with pytest.raises(ProofError, match="bad node"):
        verify_proof(keccak256(three_items), key, [three_items])
    not_rlp = b"\xc2\x01"
    with pytest.raises(ProofError, match="bad node"):
        verify_proof(keccak256(not_rlp), key, [not_rlp])
    short_child = rlp.encode([b"\x01" * 5] + [b""] * 16)
    with pytest.raises(ProofError, match="child reference"):
        verify_proof(keccak256(short_child), key, [short_child])
    with pytest.raises(ProofError, match="32 bytes"):
        verify_proof(b"\x00" * 31, key, proof)


def test_small_trie_embeds_nodes_in_the_root() -> None:
    trie = Trie.from_mapping({b"\x01": b"a", b"\x02": b"b"})
    proof = trie.prove(b"\x01")
    assert len(proof) == 1 and len(proof[0]) < 32
    assert verify_proof(trie.root(), b"\x01", proof) == b"a"
    assert verify_proof(trie.root(), b"\x03", proof) is None


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.binary(min_size=0, max_size=6), st.binary(min_size=1, max_size=40), max_size=40),
       st.lists(st.binary(max_size=6), max_size=5))
def test_every_key_proves_and_absent_keys_prove_absent(items: dict[bytes, bytes], probes: list[bytes]) -> None:
    trie = Trie.from_mapping(items)
    root = trie.root()
    for key, value in items.items():
        assert verify_proof(root, key, trie.prove(key)) == value
    for probe in probes:
        assert verify_proof(root, probe, trie.prove(probe)) == items.get(probe)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=4), st.binary(max_size=8)), max_size=30))
def test_root_depends_only_on_final_contents(ops: list[tuple[bytes, bytes]]) -> None:
    final: dict[bytes, bytes] = {}
    for key, value in ops:
        if value:
            final[key] = value
        else:
            final.pop(key, None)
    assert Trie.from_items(ops).root() == Trie.from_items(sorted(final.items(), reverse=True)).root()
