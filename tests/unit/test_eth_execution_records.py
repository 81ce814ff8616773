"""Headers, receipts, state proofs and the benchmark: edge cases beyond the public vectors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.bench import bench_receipt_proofs, synthetic_receipts
from light_clients.ethereum.execution.errors import (
    HeaderChainError,
    HeaderError,
    LightClientError,
    ProofError,
    RlpError,
    RpcDataError,
)
from light_clients.ethereum.execution.header import BlockHeader, header_from_rpc_checked, verify_header_chain
from light_clients.ethereum.execution.keccak import EMPTY_CODE_HASH, EMPTY_TRIE_ROOT, keccak256
from light_clients.ethereum.execution.receipts import (
    Log,
    Receipt,
    decode_receipt,
    encode_receipt,
    receipt_proof,
    receipts_root,
    verify_receipt_proof,
)
from light_clients.ethereum.execution.state import (
    EMPTY_ACCOUNT,
    Account,
    slot_key,
    verify_account_proof,
    verify_storage_proof,
)
from light_clients.ethereum.execution.trie import Trie


def _header(number: int = 5, parent: bytes = b"\x01" * 32, **fork: object) -> BlockHeader:
    return BlockHeader(
        parent_hash=parent, ommers_hash=b"\x02" * 32, beneficiary=b"\x03" * 20, state_root=b"\x04" * 32,
        transactions_root=EMPTY_TRIE_ROOT, receipts_root=EMPTY_TRIE_ROOT, logs_bloom=b"\x00" * 256,
        difficulty=0, number=number, gas_limit=30_000_000, gas_used=0, timestamp=1000 + number,
        extra_data=b"", mix_hash=b"\x05" * 32, nonce=b"\x00" * 8, **fork,  # type: ignore[arg-type]
    )


def test_header_round_trips_for_each_fork_shape() -> None:
    shapes = [
        {},
        {"base_fee_per_gas": 7},
        {"base_fee_per_gas": 7, "withdrawals_root": EMPTY_TRIE_ROOT},
        {"base_fee_per_gas": 7, "withdrawals_root": EMPTY_TRIE_ROOT, "blob_gas_used": 0, "excess_blob_gas": 0,
         "parent_beacon_block_root": b"\x06" * 32},
        {"base_fee_per_gas": 7, "withdrawals_root": EMPTY_TRIE_ROOT, "blob_gas_used": 0, "excess_blob_gas": 0,
         "parent_beacon_block_root": b"\x06" * 32, "requests_hash": keccak256(b"")},
    ]
    for fork in shapes:
        header = _header(**fork)
        assert BlockHeader.from_rlp(header.rlp()) == header
        assert len(header.fields()) == 15 + len(fork)


def test_header_rejects_malformed() -> None:
    with pytest.raises(HeaderError, match="out of order"):
        _header(withdrawals_root=EMPTY_TRIE_ROOT)
    with pytest.raises(HeaderError, match="32 bytes"):
        _header(parent=b"\x01" * 31)
    fields = _header().fields()
    with pytest.raises(HeaderError, match="14 fields"):
        BlockHeader.from_rlp(rlp.encode(fields[:14]))
    non_canonical_number = [*fields[:8], b"\x00\x05", *fields[9:]]
    with pytest.raises(HeaderError, match="leading zero"):
        BlockHeader.from_rlp(rlp.encode(non_canonical_number))
    with pytest.raises(HeaderError):
        BlockHeader.from_rlp(_header().rlp() + b"\x00")


def _rpc_block(header: BlockHeader) -> dict[str, str]:
    return {
        "parentHash": "0x" + header.parent_hash.hex(), "sha3Uncles": "0x" + header.ommers_hash.hex(),
        "miner": "0x" + header.beneficiary.hex(), "stateRoot": "0x" + header.state_root.hex(),
        "transactionsRoot": "0x" + header.transactions_root.hex(), "receiptsRoot": "0x" + header.receipts_root.hex(),
        "logsBloom": "0x" + header.logs_bloom.hex(), "difficulty": hex(header.difficulty),
        "number": hex(header.number), "gasLimit": hex(header.gas_limit), "gasUsed": hex(header.gas_used),
        "timestamp": hex(header.timestamp), "extraData": "0x" + header.extra_data.hex(),
        "mixHash": "0x" + header.mix_hash.hex(), "nonce": "0x" + header.nonce.hex(),
        "hash": "0x" + header.hash().hex(),
    }


def test_header_from_rpc_checked() -> None:
    header = _header()
    assert header_from_rpc_checked(_rpc_block(header)) == header
    without_hash = _rpc_block(header)
    del without_hash["hash"]
    with pytest.raises(HeaderError, match="no hash"):
        header_from_rpc_checked(without_hash)
    missing = _rpc_block(header)
    del missing["stateRoot"]
    with pytest.raises(RpcDataError, match="stateRoot"):
        header_from_rpc_checked(missing)
    with pytest.raises(RpcDataError, match="miner"):
        header_from_rpc_checked({**_rpc_block(header), "miner": "0x1234"})
    with pytest.raises(RpcDataError, match="number"):
        header_from_rpc_checked({**_rpc_block(header), "number": "12"})


def test_verify_header_chain_reports_height_and_values() -> None:
    genesis = _header(number=0, parent=b"\x00" * 32)
    first = _header(number=1, parent=genesis.hash())
    second = _header(number=2, parent=first.hash())
    verify_header_chain(genesis, [first, second])
    verify_header_chain(genesis, [])
    with pytest.raises(HeaderChainError) as info:
        verify_header_chain(genesis, [second])
    assert (info.value.height, info.value.what, info.value.expected, info.value.got) == (2, "number", "1", "2")
    with pytest.raises(HeaderChainError) as info:
        verify_header_chain(genesis, [first, replace(second, parent_hash=b"\x09" * 32)])
    assert info.value.what == "parent_hash" and info.value.got == "0x" + "09" * 32
    with pytest.raises(HeaderChainError, match="trusted hash"):
        verify_header_chain(b"\x00" * 20, [first])


def _receipt(**overrides: object) -> Receipt:
    fields: dict[str, object] = {
        "tx_type": 2, "status": 1, "post_state": None, "cumulative_gas_used": 21_000,
        "logs_bloom": b"\x00" * 256, "logs": [Log(b"\x11" * 20, [b"\x22" * 32], b"data")],
    }
    fields.update(overrides)
    return Receipt(**fields)  # type: ignore[arg-type]


def test_receipt_encodings_round_trip() -> None:
    for receipt in (_receipt(), _receipt(tx_type=0), _receipt(tx_type=3, status=0, logs=[]),
                    _receipt(tx_type=0, status=None, post_state=b"\x33" * 32)):
        encoded = encode_receipt(receipt)
        assert decode_receipt(encoded) == receipt
        assert (encoded[0] >= 0xC0) == (receipt.tx_type == 0)


def test_receipt_rejects_malformed() -> None:
    with pytest.raises(RlpError):
        _receipt(status=2)
    with pytest.raises(RlpError):
        _receipt(status=None)
    with pytest.raises(RlpError):
        decode_receipt(b"")
    with pytest.raises(RlpError):
        decode_receipt(b"\x80")
    body = encode_receipt(_receipt(tx_type=0))
    with pytest.raises(RlpError):
        decode_receipt(b"\x02" + body + b"\x00")
    with pytest.raises(RlpError, match="4 fields"):
        decode_receipt(rlp.encode([1, 2, 3]))
    with pytest.raises(RlpError, match="status"):
        decode_receipt(rlp.encode([2, 21_000, b"\x00" * 256, []]))


def test_receipt_from_rpc_missing_field() -> None:
    with pytest.raises(RpcDataError, match="logsBloom"):
        Receipt.from_rpc({"status": "0x1", "cumulativeGasUsed": "0x1", "logs": []})


def test_receipt_proof_bounds() -> None:
    receipts = synthetic_receipts(20)
    root = receipts_root(receipts)
    with pytest.raises(ProofError, match="out of range"):
        receipt_proof(receipts, 20)
    absent = Trie.from_items((rlp.encode(i), encode_receipt(r)) for i, r in enumerate(receipts)).prove(rlp.encode(20))
    with pytest.raises(ProofError, match="no receipt"):
        verify_receipt_proof(root, 20, absent)
    with pytest.raises(ProofError, match="negative"):
        verify_receipt_proof(root, -1, absent)
    not_a_receipt = Trie.from_items([(rlp.encode(0), b"\xff\xff")])
    with pytest.raises(ProofError, match="not a receipt"):
        verify_receipt_proof(not_a_receipt.root(), 0, not_a_receipt.prove(rlp.encode(0)))


def _state(accounts: dict[bytes, Account]) -> Trie:
    return Trie.from_items((keccak256(a), acct.rlp()) for a, acct in accounts.items())


def test_absent_account_is_the_empty_account() -> None:
    present = Account(nonce=3, balance=10**18, storage_root=EMPTY_TRIE_ROOT, code_hash=EMPTY_CODE_HASH)
    state = _state({b"\x01" * 20: present, b"\x02" * 20: present})
    absent = b"\x03" * 20
    proof = state.prove(keccak256(absent))
    verify_account_proof(state.root(), absent, proof, EMPTY_ACCOUNT)
    with pytest.raises(ProofError, match="absent"):
        verify_account_proof(state.root(), absent, proof, replace(EMPTY_ACCOUNT, balance=1))
    verify_account_proof(state.root(), b"\x01" * 20, state.prove(keccak256(b"\x01" * 20)), present)
    with pytest.raises(ProofError, match="20 bytes"):
        verify_account_proof(state.root(), b"\x01" * 19, proof, present)


def test_storage_slots() -> None:
    storage = Trie.from_items([(keccak256(slot_key(1)), rlp.encode(500)),
                               (keccak256(slot_key(2)), rlp.encode(0))])  # rlp(0) is b'\x80': a stored zero
    root = storage.root()
    verify_storage_proof(root, 1, storage.prove(keccak256(slot_key(1))), 500)
    verify_storage_proof(root, 3, storage.prove(keccak256(slot_key(3))), 0)
    with pytest.raises(ProofError, match="zero"):
        verify_storage_proof(root, 2, storage.prove(keccak256(slot_key(2))), 0)
    with pytest.raises(ProofError, match="claimed 1"):
        verify_storage_proof(root, 3, storage.prove(keccak256(slot_key(3))), 1)
    with pytest.raises(ProofError):
        slot_key(b"\x01" * 33)
    with pytest.raises(ProofError):
        slot_key(-1)
    assert slot_key(b"\x01") == slot_key(1)


def test_errors_share_a_root() -> None:
    for error in (ProofError("x"), HeaderError("x"), RlpError("x"), RpcDataError("x")):
        assert isinstance(error, LightClientError)


def test_bench_reports_a_rate() -> None:
    result = bench_receipt_proofs(seconds=0.1)
    assert result["receipt_proofs_verified_per_s"] > 0
    assert result["receipts_in_block"] == 200 and result["proof_nodes"] >= 2
