"""Throughput of receipt-proof verification on a realistic block (what a validator pays per message).

The block has ~200 typed receipts with a few logs each (an ERC-20-transfer-like mix: 3 topics and a
32-byte word of data); one receipt in the middle is proven, and each timed operation is one
``verify_log_inclusion`` (the MPT proof under the header's receipts root, then the log comparison).
The figure is the median over repeated timing rounds.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from light_clients.ethereum.execution.header import BlockHeader
from light_clients.ethereum.execution.keccak import EMPTY_LIST_HASH, EMPTY_TRIE_ROOT, keccak256
from light_clients.ethereum.execution.receipts import (
    Log,
    Receipt,
    receipt_proof,
    receipts_root,
    verify_log_inclusion,
)


def synthetic_receipts(count: int = 200, seed: int = 7) -> list[Receipt]:
    """``count`` EIP-1559 receipts with 1 to 4 logs each and growing cumulative gas (deterministic)."""
    rng = random.Random(seed)
    receipts: list[Receipt] = []
    cumulative = 0
    for _ in range(count):
        cumulative += rng.randint(21_000, 180_000)
        logs = [
            Log(address=rng.randbytes(20),
                topics=[keccak256(b"Transfer(address,address,uint256)"), rng.randbytes(32), rng.randbytes(32)],
                data=rng.randbytes(32))
            for _ in range(rng.randint(1, 4))
        ]
        receipts.append(Receipt(tx_type=2, status=1, post_state=None, cumulative_gas_used=cumulative,
                                logs_bloom=rng.randbytes(256), logs=logs))
    return receipts


def _header_for(receipts_root_hash: bytes) -> BlockHeader:
    return BlockHeader(
        parent_hash=b"\x11" * 32, ommers_hash=EMPTY_LIST_HASH, beneficiary=b"\x22" * 20, state_root=b"\x33" * 32,
        transactions_root=EMPTY_TRIE_ROOT, receipts_root=receipts_root_hash, logs_bloom=b"\x00" * 256,
        difficulty=0, number=1_000_000, gas_limit=30_000_000, gas_used=15_000_000, timestamp=1_700_000_000,
        extra_data=b"", mix_hash=b"\x44" * 32, nonce=b"\x00" * 8, base_fee_per_gas=7,
        withdrawals_root=EMPTY_TRIE_ROOT, blob_gas_used=0, excess_blob_gas=0,
        parent_beacon_block_root=b"\x55" * 32, requests_hash=keccak256(b""),
    )


def bench_receipt_proofs(seconds: float = 3.0) -> dict[str, Any]:
    """Verify one receipt proof plus log check repeatedly for about ``seconds``; median rate per round."""
    receipts = synthetic_receipts()
    index = len(receipts) // 2
    started = time.perf_counter()
    root = receipts_root(receipts)
    build_s = time.perf_counter() - started
    header = _header_for(root)
    proof = receipt_proof(receipts, index)
    expected = receipts[index].logs[-1]
    log_index = len(receipts[index].logs) - 1
    rounds = 7
    per_round = max(seconds / rounds, 0.01)
    rates: list[float] = []
    for _ in range(rounds):
        done = 0
        begin = time.perf_counter()
        while True:
            verify_log_inclusion(header, index, log_index, proof, expected)
            done += 1
            elapsed = time.perf_counter() - begin
            if elapsed >= per_round:
                break
        rates.append(done / elapsed)
    return {
        "receipt_proofs_verified_per_s": statistics.median(rates),
        "receipts_in_block": len(receipts),
        "proof_nodes": len(proof),
        "proof_bytes": sum(len(node) for node in proof),
        "receipts_root_build_ms": build_s * 1000,
        "rounds": rounds,
    }


if __name__ == "__main__":
    print(bench_receipt_proofs())
