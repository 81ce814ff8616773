"""Ethereum execution-layer light client against public vectors (tests/vectors/eth_execution/SOURCE.md).

Every vector must verify, every invalid one must be rejected, and mutations of valid proofs (the
upstream suites have no invalid-proof vectors) must be rejected with a typed error.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.blocks import (
    decode_block,
    decode_blocks,
    validate_block,
    validate_chain,
)
from light_clients.ethereum.execution.errors import (
    HeaderChainError,
    HeaderError,
    InvalidBlock,
    InvalidBlockReason,
    LightClientError,
    LogMismatch,
    ProofError,
    RlpError,
)
from light_clients.ethereum.execution.header import BlockHeader, header_from_rpc_checked, verify_header_chain
from light_clients.ethereum.execution.keccak import keccak256
from light_clients.ethereum.execution.receipts import (
    Log,
    Receipt,
    decode_receipt,
    encode_receipt,
    receipt_proof,
    receipts_root,
    verify_log_inclusion,
    verify_receipt_proof,
)
from light_clients.ethereum.execution.state import AccountProof, verify_account_proof, verify_storage_proof
from light_clients.ethereum.execution.trie import Trie, verify_proof

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "eth_execution"
APIS = VECTORS / "execution-apis"
ETH_TESTS = VECTORS / "ethereum-tests"


def rpc_result(path: Path) -> Any:
    """The ``result`` of the one ``<< `` response line in an ``.io`` file (``//`` comments, ``>> `` request)."""
    responses = [json.loads(line[3:]) for line in path.read_text().splitlines() if line.startswith("<< ")]
    assert len(responses) == 1, path
    return responses[0]["result"]


def unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


@pytest.fixture(scope="module")
def chain() -> list:
    return decode_blocks((APIS / "chain.rlp").read_bytes())


@pytest.fixture(scope="module")
def genesis() -> BlockHeader:
    return BlockHeader.from_rlp(unhex(rpc_result(APIS / "debug_getRawHeader" / "get-genesis.io")))


@pytest.fixture(scope="module")
def head() -> BlockHeader:
    return header_from_rpc_checked(rpc_result(APIS / "eth_getBlockByNumber" / "get-latest.io"))


# ---- headers -------------------------------------------------------------------------------------------

HEADER_FILES = (sorted((APIS / "eth_getBlockByNumber").glob("*.io"))
                + [APIS / "eth_getBlockByHash" / "get-block-by-hash.io"])


@pytest.mark.parametrize("path", HEADER_FILES, ids=lambda p: p.stem)
def test_rpc_header_hash_recomputes(path: Path) -> None:
    block = rpc_result(path)
    header = header_from_rpc_checked(block)
    assert header.hash() == unhex(block["hash"])
    assert BlockHeader.from_rlp(header.rlp()) == header


def test_header_files_cover_every_fork() -> None:
    numbers = {header_from_rpc_checked(rpc_result(p)).number for p in HEADER_FILES}
    assert numbers == {0, 1, 27, 36, 39, 42, 45, 54}
    prague = header_from_rpc_checked(rpc_result(APIS / "eth_getBlockByNumber" / "get-block-prague-fork.io"))
    assert prague.requests_hash is not None
    london = header_from_rpc_checked(rpc_result(APIS / "eth_getBlockByNumber" / "get-block-london-fork.io"))
    assert london.base_fee_per_gas is not None and london.withdrawals_root is None


@pytest.mark.parametrize("field", ["stateRoot", "receiptsRoot", "gasUsed", "timestamp", "requestsHash"])
def test_rpc_lying_about_a_header_field_is_rejected(field: str) -> None:
    block = dict(rpc_result(APIS / "eth_getBlockByNumber" / "get-latest.io"))
    value = block[field]
    block[field] = value[:-1] + ("1" if value[-1] != "1" else "2")
    with pytest.raises(HeaderError, match="hash"):
        header_from_rpc_checked(block)


def test_raw_genesis_header_matches_rpc_genesis(genesis: BlockHeader) -> None:
    rpc_genesis = header_from_rpc_checked(rpc_result(APIS / "eth_getBlockByNumber" / "get-genesis.io"))
    assert genesis == rpc_genesis


def test_chain_rlp_links_from_genesis_to_forkchoice_head(chain: list, genesis: BlockHeader, head: BlockHeader) -> None:
    headers = [block.header for block in chain]
    assert [h.number for h in headers] == list(range(1, 55))
    verify_header_chain(genesis, headers)
    verify_header_chain(genesis.hash(), headers)
    fcu = json.loads((APIS / "headfcu.json").read_text())
    assert headers[-1].hash() == unhex(fcu["params"][0]["headBlockHash"])
    assert headers[-1] == head
    for path in HEADER_FILES:
        rpc_header = header_from_rpc_checked(rpc_result(path))
        if rpc_header.number:
            assert headers[rpc_header.number - 1] == rpc_header


def test_chain_rlp_bodies_match_their_headers(chain: list, genesis: BlockHeader) -> None:
    validate_chain(chain, genesis.hash())


def test_broken_header_chain_names_height(chain: list, genesis: BlockHeader) -> None:
    headers = [block.header for block in chain]
    with pytest.raises(HeaderChainError) as info:
        verify_header_chain(genesis, headers[:9] + headers[10:])
    assert info.value.height == 11 and info.value.what == "number"
    forged = replace(headers[20], parent_hash=b"\x00" * 32)
    with pytest.raises(HeaderChainError) as info:
        verify_header_chain(genesis, headers[:20] + [forged] + headers[21:])
    assert info.value.height == 21 and info.value.what == "parent_hash"
    assert info.value.expected == "0x" + headers[19].hash().hex()
    with pytest.raises(HeaderChainError):  # the next header no longer links to the forged one either
        verify_header_chain(headers[19], [replace(headers[20], extra_data=b"x"), headers[21]])
    with pytest.raises(HeaderChainError):
        verify_header_chain(keccak256(b"not genesis"), headers)


# ---- receipts ------------------------------------------------------------------------------------------


def test_receipts_root_block_1_pre_byzantium(chain: list) -> None:
    receipts = [Receipt.from_rpc(r) for r in rpc_result(APIS / "eth_getBlockReceipts" / "get-block-receipts-n.io")]
    assert all(r.post_state is not None and r.status is None for r in receipts)
    assert receipts_root(receipts) == chain[0].header.receipts_root


def test_receipts_root_block_54_and_every_proof(head: BlockHeader) -> None:
    rpc_receipts = rpc_result(APIS / "eth_getBlockReceipts" / "get-block-receipts-latest.io")
    receipts = [Receipt.from_rpc(r) for r in rpc_receipts]
    assert receipts_root(receipts) == head.receipts_root == unhex("0x1a7a488c") + head.receipts_root[4:]
    for index, receipt in enumerate(receipts):
        assert decode_receipt(encode_receipt(receipt)) == receipt
        proof = receipt_proof(receipts, index)
        assert verify_receipt_proof(head.receipts_root, index, proof) == receipt
        for log_index, rpc_log in enumerate(rpc_receipts[index]["logs"]):
            verify_log_inclusion(head, index, log_index, proof, Log.from_rpc(rpc_log))


@pytest.fixture(scope="module")
def receipts_54() -> tuple[list[Receipt], list[dict]]:
    rpc_receipts = rpc_result(APIS / "eth_getBlockReceipts" / "get-block-receipts-latest.io")
    return [Receipt.from_rpc(r) for r in rpc_receipts], rpc_receipts


def test_receipt_proof_wrong_index_rejected(head: BlockHeader, receipts_54) -> None:
    receipts, _ = receipts_54
    proof = receipt_proof(receipts, 1)
    for wrong in (0, 2, 3, 4, 200):
        with pytest.raises(ProofError):
            verify_receipt_proof(head.receipts_root, wrong, proof)


def test_receipt_proof_flipped_byte_and_dropped_node_rejected(head: BlockHeader, receipts_54) -> None:
    receipts, _ = receipts_54
    proof = receipt_proof(receipts, 1)
    for node_index in range(len(proof)):
        for offset in (0, len(proof[node_index]) // 2, len(proof[node_index]) - 1):
            tampered = list(proof)
            node = bytearray(tampered[node_index])
            node[offset] ^= 0x01
            tampered[node_index] = bytes(node)
            with pytest.raises(ProofError):
                verify_receipt_proof(head.receipts_root, 1, tampered)
    with pytest.raises(ProofError, match="truncated"):
        verify_receipt_proof(head.receipts_root, 1, proof[:-1])
    with pytest.raises(ProofError):
        verify_receipt_proof(head.state_root, 1, proof)


def test_tampered_log_rejected(head: BlockHeader, receipts_54) -> None:
    receipts, rpc_receipts = receipts_54
    index = next(i for i, r in enumerate(receipts) if r.logs)
    proof = receipt_proof(receipts, index)
    genuine = Log.from_rpc(rpc_receipts[index]["logs"][0])
    verify_log_inclusion(head, index, 0, proof, genuine)
    tampered = [
        replace(genuine, data=genuine.data[:-1] + bytes([genuine.data[-1] ^ 1])),
        replace(genuine, address=b"\x00" * 20),
        replace(genuine, topics=[keccak256(b"other event")]),
        replace(genuine, topics=[]),
    ]
    for log in tampered:
        with pytest.raises(LogMismatch):
            verify_log_inclusion(head, index, 0, proof, log)
    with pytest.raises(LogMismatch):
        verify_log_inclusion(head, index, len(receipts[index].logs), proof, genuine)
    other_block = replace(head, receipts_root=keccak256(b"another block"))
    with pytest.raises(ProofError):
        verify_log_inclusion(other_block, index, 0, proof, genuine)


# ---- state proofs --------------------------------------------------------------------------------------

PROOF_FILES = sorted((APIS / "eth_getProof").glob("*.io"))


@pytest.mark.parametrize("path", PROOF_FILES, ids=lambda p: p.stem)
def test_get_proof_verifies_against_block_54(path: Path, head: BlockHeader) -> None:
    assert head.state_root.hex().startswith("6da8f636")
    proof = AccountProof.from_rpc(rpc_result(path))
    proof.verify(head.state_root)


def test_storage_slot_zero_is_0x38(head: BlockHeader) -> None:
    proof = AccountProof.from_rpc(rpc_result(APIS / "eth_getProof" / "get-account-proof-with-storage.io"))
    assert [(int.from_bytes(s.key, "big"), s.value) for s in proof.storage_proofs] == [(0, 0x38)]
    slot = proof.storage_proofs[0]
    verify_storage_proof(proof.account.storage_root, 0, slot.proof, 0x38)
    verify_storage_proof(proof.account.storage_root, b"\x00", slot.proof, 0x38)
    for wrong in (0, 0x37, 0x39):
        with pytest.raises(ProofError):
            verify_storage_proof(proof.account.storage_root, 0, slot.proof, wrong)
    with pytest.raises(ProofError):
        verify_storage_proof(proof.account.storage_root, 1, slot.proof, 0x38)


@pytest.fixture(scope="module")
def account_proof() -> AccountProof:
    return AccountProof.from_rpc(rpc_result(APIS / "eth_getProof" / "get-account-proof-with-storage.io"))


@pytest.mark.parametrize("change", [
    {"balance": 119}, {"balance": 0}, {"nonce": 1}, {"storage_root": b"\x01" * 32}, {"code_hash": b"\x02" * 32},
])
def test_changed_account_claim_rejected(change: dict, account_proof: AccountProof, head: BlockHeader) -> None:
    claimed = replace(account_proof.account, **change)
    with pytest.raises(ProofError, match="differ"):
        verify_account_proof(head.state_root, account_proof.address, account_proof.account_proof, claimed)


def test_account_proof_mutations_rejected(account_proof: AccountProof, head: BlockHeader, chain: list) -> None:
    nodes = account_proof.account_proof
    args = (account_proof.address,)
    for node_index in range(len(nodes)):
        tampered = list(nodes)
        node = bytearray(tampered[node_index])
        node[len(node) // 2] ^= 0x80
        tampered[node_index] = bytes(node)
        with pytest.raises(ProofError):
            verify_account_proof(head.state_root, *args, tampered, account_proof.account)
    with pytest.raises(ProofError, match="truncated"):
        verify_account_proof(head.state_root, *args, nodes[:-1], account_proof.account)
    with pytest.raises(ProofError, match="unused"):
        verify_account_proof(head.state_root, *args, [*nodes, nodes[-1]], account_proof.account)
    earlier_state_root = chain[52].header.state_root
    assert earlier_state_root != head.state_root
    with pytest.raises(ProofError, match="hash link"):
        verify_account_proof(earlier_state_root, *args, nodes, account_proof.account)
    with pytest.raises(ProofError):
        verify_account_proof(head.state_root, b"\x12" * 20, nodes, account_proof.account)
    storage = account_proof.storage_proofs[0]
    with pytest.raises(ProofError):
        verify_storage_proof(account_proof.account.storage_root, 0, storage.proof[:-1], storage.value)
    flipped = bytearray(storage.proof[0])
    flipped[5] ^= 1
    with pytest.raises(ProofError):
        verify_storage_proof(account_proof.account.storage_root, 0, [bytes(flipped), *storage.proof[1:]], storage.value)


# ---- TrieTests -----------------------------------------------------------------------------------------


def _trie_bytes(value: str | None) -> bytes:
    if value is None:
        return b""
    return unhex(value) if value.startswith("0x") else value.encode()


TRIE_CASES = [
    (path.stem, name, case)
    for path in sorted((ETH_TESTS / "TrieTests").glob("*.json"))
    for name, case in json.loads(path.read_text()).items()
]


@pytest.mark.parametrize("file,name,case", TRIE_CASES, ids=[f"{f}-{n}" for f, n, _ in TRIE_CASES])
def test_trie_tests(file: str, name: str, case: dict) -> None:
    secure = file.endswith("secureTrie") or file == "hex_encoded_securetrie_test"
    items = case["in"] if isinstance(case["in"], list) else list(case["in"].items())
    pairs = [(_trie_bytes(k), _trie_bytes(v)) for k, v in items]
    if secure:
        pairs = [(keccak256(k), v) for k, v in pairs]
    trie = Trie.from_items(pairs)
    assert trie.root() == unhex(case["root"])
    final = {}
    for key, value in pairs:
        final[key] = value
    for key, value in final.items():
        assert verify_proof(trie.root(), key, trie.prove(key)) == (value or None)


def test_trie_test_counts() -> None:
    counts = {}
    for file, _, _ in TRIE_CASES:
        counts[file] = counts.get(file, 0) + 1
    assert sorted(counts.values()) == sorted([5, 7, 3, 7, 3])


# ---- RLPTests ------------------------------------------------------------------------------------------


def _rlp_input(value: Any) -> Any:
    if isinstance(value, list):
        return [_rlp_input(v) for v in value]
    if isinstance(value, str) and value.startswith("#"):
        return int(value[1:])
    if isinstance(value, str):
        return value.encode()
    return value


def _as_decoded(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_decoded(v) for v in value]
    if isinstance(value, int):
        return rlp.int_to_bytes(value)
    return value


VALID_RLP = json.loads((ETH_TESTS / "RLPTests" / "rlptest.json").read_text())
INVALID_RLP = json.loads((ETH_TESTS / "RLPTests" / "invalidRLPTest.json").read_text())


@pytest.mark.parametrize("name", sorted(VALID_RLP))
def test_rlp_valid(name: str) -> None:
    case = VALID_RLP[name]
    value = _rlp_input(case["in"])
    encoded = unhex(case["out"])
    assert rlp.encode(value) == encoded
    assert rlp.decode(encoded) == _as_decoded(value)


@pytest.mark.parametrize("name", sorted(INVALID_RLP))
def test_rlp_invalid_rejected(name: str) -> None:
    case = INVALID_RLP[name]
    assert case["in"] == "INVALID"
    with pytest.raises(RlpError):
        rlp.decode(unhex(case["out"]))


# ---- BlockchainTests -----------------------------------------------------------------------------------


def _blockchain_tests(folder: str) -> list[tuple[str, dict]]:
    return [
        (name, case)
        for path in sorted((ETH_TESTS / "BlockchainTests" / folder).rglob("*.json"))
        for name, case in json.loads(path.read_text()).items()
    ]


@pytest.mark.parametrize("name,case", _blockchain_tests("ValidBlocks"), ids=lambda v: v if isinstance(v, str) else "")
def test_valid_blocks_pass(name: str, case: dict) -> None:
    genesis = decode_block(unhex(case["genesisRLP"]))
    assert genesis.hash() == unhex(case["genesisBlockHeader"]["hash"])
    parent = genesis.hash()
    for entry in case["blocks"]:
        block = decode_block(unhex(entry["rlp"]))
        validate_block(block, parent_hash=parent, expected_hash=unhex(entry["blockHeader"]["hash"]))
        assert block.header.transactions_root == unhex(entry["blockHeader"]["transactionsTrie"])
        assert len(block.transactions) == len(entry["transactions"])
        parent = block.hash()
    assert parent == unhex(case["lastblockhash"])


EXPECTED_REASONS = {
    "BlockException.INVALID_TRANSACTIONS_ROOT": {InvalidBlockReason.TRANSACTIONS_ROOT},
    "BlockException.UNKNOWN_PARENT_ZERO": {InvalidBlockReason.UNKNOWN_PARENT},
    "BlockException.IMPORT_IMPOSSIBLE_UNCLES_OVER_PARIS": {InvalidBlockReason.UNCLES_HASH,
                                                          InvalidBlockReason.UNCLES_AFTER_MERGE},
}


@pytest.mark.parametrize("name,case", _blockchain_tests("InvalidBlocks"), ids=lambda v: v if isinstance(v, str) else "")
def test_invalid_blocks_rejected(name: str, case: dict) -> None:
    genesis = decode_block(unhex(case["genesisRLP"]))
    (entry,) = case["blocks"]
    with pytest.raises(InvalidBlock) as info:
        validate_block(decode_block(unhex(entry["rlp"])), parent_hash=genesis.hash())
    assert info.value.reason in EXPECTED_REASONS[entry["expectException"]]


def test_invalid_block_names_cover_the_three() -> None:
    names = {name for name, _ in _blockchain_tests("InvalidBlocks")}
    assert names == {"wrongTransactionsTrie_Cancun", "wrongParentHash_Cancun", "wrongUncleHash_Cancun"}


def test_every_error_is_a_light_client_error() -> None:
    for error in (RlpError, ProofError, LogMismatch, HeaderError, HeaderChainError, InvalidBlock):
        assert issubclass(error, LightClientError)
