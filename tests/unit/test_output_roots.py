"""Output roots (light_clients/ethereum/output_roots.py) against genuine Merkle-Patricia proofs.

Every proof here is made by ``Trie.prove`` over a real state trie (an oracle account whose storage trie holds
``outputs``, laid out as contracts/src/OutputOracle.sol lays it out) and handed over in ``eth_getProof``'s JSON
shape, so what is accepted and refused is exactly what a node's answer would be.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from adapters.evm.settlement import OUTPUT_VERSION_V0, output_root_v0
from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.errors import LightClientError
from light_clients.ethereum.execution.header import BlockHeader
from light_clients.ethereum.execution.keccak import EMPTY_CODE_HASH, EMPTY_TRIE_ROOT, keccak256
from light_clients.ethereum.execution.state import Account, slot_key
from light_clients.ethereum.execution.trie import Trie
from light_clients.ethereum.output_roots import (
    REASON_HEADER,
    REASON_LINK,
    REASON_MISMATCH,
    REASON_NO_OUTPUT,
    REASON_ORACLE_PROOF,
    REASON_PASSER_PROOF,
    OutputRootRefused,
    PostedOutput,
    count_slot,
    link_down,
    output_slots,
    verify_output_preimage,
    verify_posted_output,
)

ORACLE = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
OTHER = bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512")
PASSER = bytes.fromhex("4200000000000000000000000000000000000016")
BASE = 0x290DECD9548B62A8D60345A988386FC84BA6BC95484008F6362F93160EF3E563  # keccak256(uint256(0))


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _storage(slots: dict[int, int]) -> Trie:
    return Trie.from_items((keccak256(slot_key(s)), rlp.encode(v)) for s, v in slots.items() if v)


def _state(accounts: dict[bytes, Account]) -> Trie:
    return Trie.from_items((keccak256(a), acct.rlp()) for a, acct in accounts.items())


def _get_proof(state: Trie, address: bytes, account: Account, storage: Trie, slots: dict[int, int],
               keys: list[int]) -> dict[str, Any]:
    """What ``eth_getProof(address, keys)`` answers for this state."""
    return {
        "address": _hex(address), "nonce": hex(account.nonce), "balance": hex(account.balance),
        "storageHash": _hex(account.storage_root), "codeHash": _hex(account.code_hash),
        "accountProof": [_hex(n) for n in state.prove(keccak256(address))],
        "storageProof": [{"key": _hex(slot_key(k)), "value": hex(slots.get(k, 0)),
                          "proof": [_hex(n) for n in storage.prove(keccak256(slot_key(k)))]} for k in keys],
    }


OUTPUTS = [(b"\xa1" * 32, 1_700_000_000, 100), (b"\xa2" * 32, 1_700_000_120, 200)]


def _oracle_slots(outputs: list[tuple[bytes, int, int]], count: int | None = None) -> dict[int, int]:
    slots = {count_slot(): len(outputs) if count is None else count}
    for i, (root, timestamp, number) in enumerate(outputs):
        root_slot, meta_slot = output_slots(i)
        slots[root_slot] = int.from_bytes(root, "big")
        slots[meta_slot] = (number << 128) | timestamp
    return slots


class L1:
    """An L1 state holding the oracle (with ``outputs``) and an unrelated account."""

    def __init__(self, slots: dict[int, int]) -> None:
        self.slots = slots
        self.storage = _storage(slots)
        self.oracle = Account(nonce=1, balance=0, storage_root=self.storage.root(), code_hash=keccak256(b"oracle"))
        self.other = Account(nonce=7, balance=10**18, storage_root=EMPTY_TRIE_ROOT, code_hash=EMPTY_CODE_HASH)
        self.state = _state({ORACLE: self.oracle, OTHER: self.other})
        self.root = self.state.root()

    def proof(self, index: int, keys: list[int] | None = None) -> dict[str, Any]:
        keys = [count_slot(), *output_slots(index)] if keys is None else keys
        return _get_proof(self.state, ORACLE, self.oracle, self.storage, self.slots, keys)


def _refused(reason: str, fn: Any, *args: Any) -> OutputRootRefused:
    with pytest.raises(OutputRootRefused) as info:
        fn(*args)
    assert info.value.reason == reason, str(info.value)
    return info.value


# ------------------------------------------------------------------------------------------ slots and root


def test_slot_arithmetic_matches_solidity_layout() -> None:
    assert count_slot() == 0
    assert int.from_bytes(keccak256(bytes(32)), "big") == BASE
    assert output_slots(0) == (BASE, BASE + 1)
    assert output_slots(3) == (BASE + 6, BASE + 7)
    assert all(0 <= s < 1 << 256 for s in output_slots(2**255))
    with pytest.raises(ValueError):
        output_slots(-1)


def test_output_root_v0_is_the_hand_computed_keccak() -> None:
    assert OUTPUT_VERSION_V0 == b"\x00" * 32
    # a fixed vector: keccak256(0x00*32 | 0x11*32 | 0x22*32 | 0x33*32); the integration test checks the same
    # concatenation against anvil's own keccak (web3_sha3)
    expected = bytes.fromhex("d50bf2ff34ced71be0d2f0be7c2433c6b39d9c3b16c95daf1ed6f24b7578a3b2")
    assert output_root_v0(b"\x11" * 32, b"\x22" * 32, b"\x33" * 32) == expected
    assert output_root_v0(b"\x22" * 32, b"\x11" * 32, b"\x33" * 32) != expected
    with pytest.raises(ValueError):
        output_root_v0(b"\x11" * 31, b"\x22" * 32, b"\x33" * 32)


def test_refusal_is_a_light_client_error_with_a_reason() -> None:
    exc = OutputRootRefused("detail", REASON_LINK)
    assert isinstance(exc, LightClientError)
    assert exc.reason == REASON_LINK and "detail" in str(exc)


# ------------------------------------------------------------------------------------------ posted output


def test_a_genuine_proof_decodes_the_output() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    for index, (root, timestamp, number) in enumerate(OUTPUTS):
        posted = verify_posted_output(l1.root, ORACLE, index, l1.proof(index))
        assert posted == PostedOutput(index=index, output_root=root, timestamp=timestamp, l2_block_number=number,
                                      count=2)


def test_slot_order_does_not_matter_but_the_set_does() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    root_slot, meta_slot = output_slots(1)
    assert verify_posted_output(l1.root, ORACLE, 1, l1.proof(1, [meta_slot, 0, root_slot])).index == 1
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 1, l1.proof(1, [0, root_slot]))
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 1,
             l1.proof(1, [0, root_slot, meta_slot, meta_slot]))


def test_a_proof_of_another_output_slot_is_refused() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    # genuine proofs, but of output 0's slots: they cannot stand for output 1
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 1, l1.proof(0))
    wrong = l1.proof(1)
    wrong["storageProof"][1] = l1.proof(0)["storageProof"][1]
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 1, wrong)


def test_a_tampered_value_is_refused() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    for position, value in ((0, "0x5"), (1, _hex(b"\xbb" * 32)), (2, hex((201 << 128) | 1_700_000_120))):
        tampered = l1.proof(1)
        tampered["storageProof"][position]["value"] = value
        _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 1, tampered)
    tampered = l1.proof(1)
    tampered["storageHash"] = _hex(b"\x01" * 32)
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 1, tampered)
    tampered = l1.proof(1)
    node = bytearray(bytes.fromhex(tampered["storageProof"][1]["proof"][-1][2:]))
    node[-1] ^= 1
    tampered["storageProof"][1]["proof"][-1] = _hex(bytes(node))
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 1, tampered)


def test_a_wrong_state_root_is_refused() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    _refused(REASON_ORACLE_PROOF, verify_posted_output, b"\x42" * 32, ORACLE, 0, l1.proof(0))
    earlier = L1(_oracle_slots(OUTPUTS[:1]))  # a real, other L1 state: the oracle before output 1
    _refused(REASON_ORACLE_PROOF, verify_posted_output, earlier.root, ORACLE, 0, l1.proof(0))


def test_index_at_or_above_the_count_is_no_output() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    refusal = _refused(REASON_NO_OUTPUT, verify_posted_output, l1.root, ORACLE, 2, l1.proof(2))
    assert "holds 2 outputs" in str(refusal)
    # stale words above the count (left by a deletion that only shortened the array) are not outputs
    stale = L1(_oracle_slots(OUTPUTS, count=1))
    _refused(REASON_NO_OUTPUT, verify_posted_output, stale.root, ORACLE, 1, stale.proof(1))
    _refused(REASON_NO_OUTPUT, verify_posted_output, l1.root, ORACLE, -1, l1.proof(0))


def test_an_empty_root_word_is_no_output() -> None:
    slots = _oracle_slots(OUTPUTS)
    del slots[output_slots(1)[0]]
    l1 = L1(slots)
    _refused(REASON_NO_OUTPUT, verify_posted_output, l1.root, ORACLE, 1, l1.proof(1))


def test_an_absent_oracle_has_no_output() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    empty = Account(nonce=0, balance=0, storage_root=EMPTY_TRIE_ROOT, code_hash=EMPTY_CODE_HASH)
    absent = bytes.fromhex("00000000000000000000000000000000000000aa")
    proof = _get_proof(l1.state, absent, empty, _storage({}), {}, [0, *output_slots(0)])
    _refused(REASON_NO_OUTPUT, verify_posted_output, l1.root, absent, 0, proof)


def test_another_account_is_refused() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    # the oracle's genuine proof presented for another address
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, OTHER, 0, l1.proof(0))
    # the oracle's proof nodes relabelled with another address: the state trie path differs
    relabelled = {**l1.proof(0), "address": _hex(OTHER)}
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, OTHER, 0, relabelled)
    # a genuine proof of the other account
    other = _get_proof(l1.state, OTHER, l1.other, _storage({}), {}, [0, *output_slots(0)])
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 0, other)


def test_a_malformed_answer_is_an_oracle_proof_refusal() -> None:
    l1 = L1(_oracle_slots(OUTPUTS))
    missing = l1.proof(0)
    del missing["accountProof"]
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 0, missing)
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 0, {**l1.proof(0), "nonce": "1"})
    _refused(REASON_ORACLE_PROOF, verify_posted_output, l1.root, ORACLE, 0, {**l1.proof(0), "storageProof": [7]})


# ------------------------------------------------------------------------------------------ preimage


def _header(number: int, parent: bytes = b"\x01" * 32, state_root: bytes = b"\x04" * 32) -> BlockHeader:
    return BlockHeader(
        parent_hash=parent, ommers_hash=b"\x02" * 32, beneficiary=b"\x03" * 20, state_root=state_root,
        transactions_root=EMPTY_TRIE_ROOT, receipts_root=EMPTY_TRIE_ROOT, logs_bloom=b"\x00" * 256,
        difficulty=0, number=number, gas_limit=30_000_000, gas_used=0, timestamp=1000 + number,
        extra_data=b"", mix_hash=b"\x05" * 32, nonce=b"\x00" * 8, base_fee_per_gas=7,
    )


class L2:
    """A rollup block whose state holds the message passer (with a few sent-message slots)."""

    def __init__(self, number: int) -> None:
        self.slots = {int.from_bytes(keccak256(b"withdrawal %d" % i), "big"): 1 for i in range(3)}
        self.storage = _storage(self.slots)
        self.passer = Account(nonce=1, balance=5, storage_root=self.storage.root(), code_hash=keccak256(b"passer"))
        self.state = _state({PASSER: self.passer, OTHER: Account(3, 4, EMPTY_TRIE_ROOT, EMPTY_CODE_HASH)})
        self.header = _header(number, state_root=self.state.root())
        self.output_root = output_root_v0(self.header.state_root, self.passer.storage_root, self.header.hash())

    def passer_proof(self) -> dict[str, Any]:
        return _get_proof(self.state, PASSER, self.passer, self.storage, self.slots, [])

    def posted(self, root: bytes | None = None, number: int | None = None) -> PostedOutput:
        return PostedOutput(index=4, output_root=self.output_root if root is None else root, timestamp=1,
                            l2_block_number=self.header.number if number is None else number, count=5)


def test_the_preimage_of_a_posted_root_is_accepted() -> None:
    l2 = L2(300)
    verify_output_preimage(l2.posted(), l2.header, PASSER, l2.passer_proof())


def test_another_root_is_a_mismatch_naming_both_roots() -> None:
    l2 = L2(300)
    refusal = _refused(REASON_MISMATCH, verify_output_preimage, l2.posted(root=b"\xee" * 32), l2.header, PASSER,
                       l2.passer_proof())
    assert _hex(l2.output_root) in str(refusal) and _hex(b"\xee" * 32) in str(refusal)
    # a header differing in any field hashes differently, so it does not recompute the root either
    other = replace(l2.header, extra_data=b"forged")
    _refused(REASON_MISMATCH, verify_output_preimage, l2.posted(), other, PASSER, l2.passer_proof())


def test_a_header_of_another_height_is_refused() -> None:
    l2 = L2(300)
    _refused(REASON_HEADER, verify_output_preimage, l2.posted(number=301), l2.header, PASSER, l2.passer_proof())


def test_a_bad_passer_proof_is_refused() -> None:
    l2 = L2(300)
    tampered = {**l2.passer_proof(), "storageHash": _hex(b"\x09" * 32)}
    _refused(REASON_PASSER_PROOF, verify_output_preimage, l2.posted(), l2.header, PASSER, tampered)
    _refused(REASON_PASSER_PROOF, verify_output_preimage, l2.posted(), l2.header, OTHER, l2.passer_proof())
    elsewhere = replace(l2.header, state_root=b"\x08" * 32)
    _refused(REASON_PASSER_PROOF, verify_output_preimage, l2.posted(), elsewhere, PASSER, l2.passer_proof())
    missing = l2.passer_proof()
    del missing["storageHash"]
    _refused(REASON_PASSER_PROOF, verify_output_preimage, l2.posted(), l2.header, PASSER, missing)


# ------------------------------------------------------------------------------------------ link down


def _chain(first: int, n: int) -> list[BlockHeader]:
    headers = [_header(first, parent=b"\x07" * 32)]
    for _ in range(n - 1):
        headers.append(_header(headers[-1].number + 1, parent=headers[-1].hash()))
    return headers


def test_link_down_accepts_a_linked_run_ending_at_the_top() -> None:
    headers = _chain(290, 11)
    link_down(headers, headers[-1].hash())
    link_down(headers[-1:], headers[-1].hash())
    link_down(headers[3:7], headers[6].hash())


def test_link_down_refuses_a_broken_parent_naming_the_height() -> None:
    headers = _chain(290, 11)
    broken = [*headers[:5], replace(headers[5], parent_hash=b"\x09" * 32), *headers[6:]]
    # relink above the break so only height 295 fails
    for i in range(6, len(broken)):
        broken[i] = replace(broken[i], parent_hash=broken[i - 1].hash())
    refusal = _refused(REASON_LINK, link_down, broken, broken[-1].hash())
    assert "header 295" in str(refusal)
    forged = [*headers[:4], replace(headers[4], gas_used=1), *headers[5:]]
    refusal = _refused(REASON_LINK, link_down, forged, headers[-1].hash())
    assert "header 295" in str(refusal)


def test_link_down_refuses_a_wrong_top_hash_and_gaps() -> None:
    headers = _chain(290, 5)
    refusal = _refused(REASON_LINK, link_down, headers, headers[-2].hash())
    assert "header 294" in str(refusal)
    _refused(REASON_LINK, link_down, [headers[0], headers[2]], headers[2].hash())
    _refused(REASON_LINK, link_down, [], headers[-1].hash())
