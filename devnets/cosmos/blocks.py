"""CometBFT block data of the devnet: headers, commits and hashes exactly as CometBFT computes them.

* ``data_hash``: the RFC 6962 Merkle root over ``sha256(tx)`` of each tx (CometBFT's ``Txs.Hash``).
* ``last_results_hash``: the root over the deterministic ``ExecTxResult{code, data, gas_wanted, gas_used}``
  of the previous block's txs.
* ``last_commit_hash``: the root over the previous commit's ``CommitSig`` protobufs.
* ``consensus_hash``: sha256 of ``HashedParams{block_max_bytes, block_max_gas}``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from devnets.cosmos.transactions import TxResult
from light_clients.tendermint import protobuf as pb
from light_clients.tendermint.blocks import BlockId, BlockIdFlag, Commit, CommitSig, Header
from light_clients.tendermint.hashing import encode_timestamp, merkle_root

BLOCK_MAX_BYTES = 22_020_096
BLOCK_MAX_GAS = -1
GO_ZERO_TIME_SECONDS = -62_135_596_800


def data_hash(txs: Sequence[bytes]) -> bytes:
    return merkle_root([hashlib.sha256(tx).digest() for tx in txs])


def results_hash(results: Sequence[TxResult]) -> bytes:
    return merkle_root([result.deterministic_bytes() for result in results])


def _encode_commit_sig(sig: CommitSig) -> bytes:
    if sig.block_id_flag == BlockIdFlag.ABSENT:
        timestamp = pb.varint_field(1, GO_ZERO_TIME_SECONDS)
    else:
        timestamp = encode_timestamp(sig.timestamp)
    return (
        pb.varint_field(1, int(sig.block_id_flag))
        + pb.bytes_field(2, sig.validator_address)
        + pb.message_field(3, timestamp)
        + pb.bytes_field(4, sig.signature)
    )


def commit_hash(commit: Commit | None) -> bytes:
    """``Commit.Hash()``; the empty-tree hash before the first block."""
    return merkle_root([_encode_commit_sig(sig) for sig in commit.signatures] if commit else [])


def consensus_params_hash() -> bytes:
    return hashlib.sha256(pb.varint_field(1, BLOCK_MAX_BYTES) + pb.varint_field(2, BLOCK_MAX_GAS)).digest()


@dataclass(frozen=True)
class StoredBlock:
    """One block: its header, id, txs, their results, the commit for it and the commit it carries."""

    header: Header
    block_id: BlockId
    txs: tuple[bytes, ...]
    results: tuple[TxResult, ...]
    commit: Commit
    last_commit: Commit | None

    @property
    def height(self) -> int:
        return self.header.height
