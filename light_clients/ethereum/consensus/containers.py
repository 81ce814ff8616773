"""Light-client SSZ containers (Capella+ headers; Deneb and Electra layouts): decoding and hash_tree_root.

Each container is a frozen dataclass with ``decode(data, ...)`` and ``hash_tree_root()``. Sizes that
depend on the preset (committee size) or on the fork (branch depths) are parameters, never globals.
An absent part of an update (no next committee, no finality) is the all-zero default of its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from light_clients.ethereum.consensus.errors import MalformedSsz
from light_clients.ethereum.consensus.preset import LightClientFork, Preset
from light_clients.ethereum.consensus.ssz import (
    BYTES_PER_CHUNK,
    ZERO_CHUNK,
    merkleize,
    read_uint,
    root_of_bitvector,
    root_of_byte_list,
    root_of_bytes_vector,
    root_of_uint,
    split_fields,
    split_vector,
)

Root = bytes
BLS_PUBKEY_SIZE = 48
BLS_SIGNATURE_SIZE = 96
MAX_EXTRA_DATA_BYTES = 32
EXECUTION_BRANCH_DEPTH = 4
_EXECUTION_PAYLOAD_HEADER_SIZES = (32, 20, 32, 32, 256, 32, 8, 8, 8, 8, None, 32, 32, 32, 32, 8, 8)


def _branch(data: bytes, depth: int, what: str) -> tuple[bytes, ...]:
    return split_vector(data, BYTES_PER_CHUNK, depth, what)


def _zero_branch(depth: int) -> tuple[bytes, ...]:
    return (ZERO_CHUNK,) * depth


def is_zero_branch(branch: tuple[bytes, ...]) -> bool:
    return all(node == ZERO_CHUNK for node in branch)


@dataclass(frozen=True)
class BeaconBlockHeader:
    slot: int = 0
    proposer_index: int = 0
    parent_root: Root = ZERO_CHUNK
    state_root: Root = ZERO_CHUNK
    body_root: Root = ZERO_CHUNK

    SIZE = 8 + 8 + 32 * 3

    @classmethod
    def decode(cls, data: bytes) -> BeaconBlockHeader:
        slot, proposer, parent, state, body = split_fields(data, (8, 8, 32, 32, 32), "BeaconBlockHeader")
        return cls(read_uint(slot, 8), read_uint(proposer, 8), parent, state, body)

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                root_of_uint(self.slot, 8),
                root_of_uint(self.proposer_index, 8),
                self.parent_root,
                self.state_root,
                self.body_root,
            ]
        )


@dataclass(frozen=True)
class ExecutionPayloadHeader:
    """Deneb's execution payload header; Electra kept it unchanged."""

    parent_hash: Root = ZERO_CHUNK
    fee_recipient: bytes = b"\x00" * 20
    state_root: Root = ZERO_CHUNK
    receipts_root: Root = ZERO_CHUNK
    logs_bloom: bytes = b"\x00" * 256
    prev_randao: Root = ZERO_CHUNK
    block_number: int = 0
    gas_limit: int = 0
    gas_used: int = 0
    timestamp: int = 0
    extra_data: bytes = b""
    base_fee_per_gas: int = 0
    block_hash: Root = ZERO_CHUNK
    transactions_root: Root = ZERO_CHUNK
    withdrawals_root: Root = ZERO_CHUNK
    blob_gas_used: int = 0
    excess_blob_gas: int = 0

    @classmethod
    def decode(cls, data: bytes) -> ExecutionPayloadHeader:
        f = split_fields(data, _EXECUTION_PAYLOAD_HEADER_SIZES, "ExecutionPayloadHeader")
        if len(f[10]) > MAX_EXTRA_DATA_BYTES:
            raise MalformedSsz(f"ExecutionPayloadHeader: extra_data of {len(f[10])} bytes")
        return cls(
            parent_hash=f[0],
            fee_recipient=f[1],
            state_root=f[2],
            receipts_root=f[3],
            logs_bloom=f[4],
            prev_randao=f[5],
            block_number=read_uint(f[6], 8),
            gas_limit=read_uint(f[7], 8),
            gas_used=read_uint(f[8], 8),
            timestamp=read_uint(f[9], 8),
            extra_data=f[10],
            base_fee_per_gas=read_uint(f[11], 32),
            block_hash=f[12],
            transactions_root=f[13],
            withdrawals_root=f[14],
            blob_gas_used=read_uint(f[15], 8),
            excess_blob_gas=read_uint(f[16], 8),
        )

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                self.parent_hash,
                root_of_bytes_vector(self.fee_recipient),
                self.state_root,
                self.receipts_root,
                root_of_bytes_vector(self.logs_bloom),
                self.prev_randao,
                root_of_uint(self.block_number, 8),
                root_of_uint(self.gas_limit, 8),
                root_of_uint(self.gas_used, 8),
                root_of_uint(self.timestamp, 8),
                root_of_byte_list(self.extra_data, MAX_EXTRA_DATA_BYTES),
                root_of_uint(self.base_fee_per_gas, 32),
                self.block_hash,
                self.transactions_root,
                self.withdrawals_root,
                root_of_uint(self.blob_gas_used, 8),
                root_of_uint(self.excess_blob_gas, 8),
            ]
        )


@dataclass(frozen=True)
class LightClientHeader:
    """A beacon header with its execution payload header, proved against ``beacon.body_root``."""

    beacon: BeaconBlockHeader = BeaconBlockHeader()
    execution: ExecutionPayloadHeader = ExecutionPayloadHeader()
    execution_branch: tuple[bytes, ...] = _zero_branch(EXECUTION_BRANCH_DEPTH)

    @classmethod
    def decode(cls, data: bytes) -> LightClientHeader:
        beacon, execution, branch = split_fields(
            data, (BeaconBlockHeader.SIZE, None, 32 * EXECUTION_BRANCH_DEPTH), "LightClientHeader"
        )
        return cls(
            BeaconBlockHeader.decode(beacon),
            ExecutionPayloadHeader.decode(execution),
            _branch(branch, EXECUTION_BRANCH_DEPTH, "execution_branch"),
        )

    def hash_tree_root(self) -> Root:
        return merkleize(
            [self.beacon.hash_tree_root(), self.execution.hash_tree_root(), merkleize(self.execution_branch)]
        )


@dataclass(frozen=True)
class SyncCommittee:
    pubkeys: tuple[bytes, ...]
    aggregate_pubkey: bytes

    @classmethod
    def empty(cls, preset: Preset) -> SyncCommittee:
        zero_key = b"\x00" * BLS_PUBKEY_SIZE
        return cls((zero_key,) * preset.sync_committee_size, zero_key)

    @classmethod
    def decode(cls, data: bytes, preset: Preset) -> SyncCommittee:
        size = preset.sync_committee_size
        keys, aggregate = split_fields(data, (BLS_PUBKEY_SIZE * size, BLS_PUBKEY_SIZE), "SyncCommittee")
        return cls(split_vector(keys, BLS_PUBKEY_SIZE, size, "SyncCommittee.pubkeys"), aggregate)

    @staticmethod
    def encoded_size(preset: Preset) -> int:
        return BLS_PUBKEY_SIZE * (preset.sync_committee_size + 1)

    @cached_property
    def root(self) -> Root:
        return self.hash_tree_root()

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                merkleize([root_of_bytes_vector(key) for key in self.pubkeys]),
                root_of_bytes_vector(self.aggregate_pubkey),
            ]
        )


@dataclass(frozen=True)
class SyncAggregate:
    """Participation bits (little-endian bit order within bytes) and the aggregate BLS signature."""

    sync_committee_bits: bytes
    sync_committee_signature: bytes

    @classmethod
    def decode(cls, data: bytes, preset: Preset) -> SyncAggregate:
        bits, signature = split_fields(
            data, (preset.sync_committee_size // 8, BLS_SIGNATURE_SIZE), "SyncAggregate"
        )
        return cls(bits, signature)

    @staticmethod
    def encoded_size(preset: Preset) -> int:
        return preset.sync_committee_size // 8 + BLS_SIGNATURE_SIZE

    @property
    def committee_size(self) -> int:
        return len(self.sync_committee_bits) * 8

    def participant_indices(self) -> list[int]:
        bits = self.sync_committee_bits
        return [i for i in range(len(bits) * 8) if bits[i // 8] >> (i % 8) & 1]

    def participant_count(self) -> int:
        return int.from_bytes(self.sync_committee_bits, "little").bit_count()

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                root_of_bitvector(self.sync_committee_bits, self.committee_size),
                root_of_bytes_vector(self.sync_committee_signature),
            ]
        )


@dataclass(frozen=True)
class LightClientBootstrap:
    header: LightClientHeader
    current_sync_committee: SyncCommittee
    current_sync_committee_branch: tuple[bytes, ...]

    @classmethod
    def decode(cls, data: bytes, preset: Preset, fork: LightClientFork) -> LightClientBootstrap:
        depth = fork.current_sync_committee_gindex.depth
        header, committee, branch = split_fields(
            data, (None, SyncCommittee.encoded_size(preset), 32 * depth), "LightClientBootstrap"
        )
        return cls(
            LightClientHeader.decode(header),
            SyncCommittee.decode(committee, preset),
            _branch(branch, depth, "current_sync_committee_branch"),
        )

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                self.header.hash_tree_root(),
                self.current_sync_committee.root,
                merkleize(self.current_sync_committee_branch),
            ]
        )


@dataclass(frozen=True)
class LightClientUpdate:
    """A signed attested header, optionally with the next sync committee and/or a finalized header.

    Finality and optimistic updates are this with the absent parts zeroed (see ``from_finality_update``
    and ``from_optimistic_update``), exactly as the sync-protocol spec processes them.
    """

    attested_header: LightClientHeader
    next_sync_committee: SyncCommittee
    next_sync_committee_branch: tuple[bytes, ...]
    finalized_header: LightClientHeader
    finality_branch: tuple[bytes, ...]
    sync_aggregate: SyncAggregate
    signature_slot: int

    @classmethod
    def decode(cls, data: bytes, preset: Preset, fork: LightClientFork) -> LightClientUpdate:
        committee_depth = fork.next_sync_committee_gindex.depth
        finality_depth = fork.finalized_root_gindex.depth
        f = split_fields(
            data,
            (
                None,
                SyncCommittee.encoded_size(preset),
                32 * committee_depth,
                None,
                32 * finality_depth,
                SyncAggregate.encoded_size(preset),
                8,
            ),
            "LightClientUpdate",
        )
        return cls(
            attested_header=LightClientHeader.decode(f[0]),
            next_sync_committee=SyncCommittee.decode(f[1], preset),
            next_sync_committee_branch=_branch(f[2], committee_depth, "next_sync_committee_branch"),
            finalized_header=LightClientHeader.decode(f[3]),
            finality_branch=_branch(f[4], finality_depth, "finality_branch"),
            sync_aggregate=SyncAggregate.decode(f[5], preset),
            signature_slot=read_uint(f[6], 8),
        )

    @classmethod
    def from_finality_update(
        cls, update: LightClientFinalityUpdate, preset: Preset, fork: LightClientFork
    ) -> LightClientUpdate:
        return cls(
            attested_header=update.attested_header,
            next_sync_committee=SyncCommittee.empty(preset),
            next_sync_committee_branch=_zero_branch(fork.next_sync_committee_gindex.depth),
            finalized_header=update.finalized_header,
            finality_branch=update.finality_branch,
            sync_aggregate=update.sync_aggregate,
            signature_slot=update.signature_slot,
        )

    @classmethod
    def from_optimistic_update(
        cls, update: LightClientOptimisticUpdate, preset: Preset, fork: LightClientFork
    ) -> LightClientUpdate:
        return cls(
            attested_header=update.attested_header,
            next_sync_committee=SyncCommittee.empty(preset),
            next_sync_committee_branch=_zero_branch(fork.next_sync_committee_gindex.depth),
            finalized_header=LightClientHeader(),
            finality_branch=_zero_branch(fork.finalized_root_gindex.depth),
            sync_aggregate=update.sync_aggregate,
            signature_slot=update.signature_slot,
        )

    def is_sync_committee_update(self) -> bool:
        return not is_zero_branch(self.next_sync_committee_branch)

    def is_finality_update(self) -> bool:
        return not is_zero_branch(self.finality_branch)

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                self.attested_header.hash_tree_root(),
                self.next_sync_committee.root,
                merkleize(self.next_sync_committee_branch),
                self.finalized_header.hash_tree_root(),
                merkleize(self.finality_branch),
                self.sync_aggregate.hash_tree_root(),
                root_of_uint(self.signature_slot, 8),
            ]
        )


@dataclass(frozen=True)
class LightClientFinalityUpdate:
    attested_header: LightClientHeader
    finalized_header: LightClientHeader
    finality_branch: tuple[bytes, ...]
    sync_aggregate: SyncAggregate
    signature_slot: int

    @classmethod
    def decode(cls, data: bytes, preset: Preset, fork: LightClientFork) -> LightClientFinalityUpdate:
        depth = fork.finalized_root_gindex.depth
        attested, finalized, branch, aggregate, slot = split_fields(
            data, (None, None, 32 * depth, SyncAggregate.encoded_size(preset), 8), "LightClientFinalityUpdate"
        )
        return cls(
            LightClientHeader.decode(attested),
            LightClientHeader.decode(finalized),
            _branch(branch, depth, "finality_branch"),
            SyncAggregate.decode(aggregate, preset),
            read_uint(slot, 8),
        )

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                self.attested_header.hash_tree_root(),
                self.finalized_header.hash_tree_root(),
                merkleize(self.finality_branch),
                self.sync_aggregate.hash_tree_root(),
                root_of_uint(self.signature_slot, 8),
            ]
        )


@dataclass(frozen=True)
class LightClientOptimisticUpdate:
    attested_header: LightClientHeader
    sync_aggregate: SyncAggregate
    signature_slot: int

    @classmethod
    def decode(cls, data: bytes, preset: Preset) -> LightClientOptimisticUpdate:
        attested, aggregate, slot = split_fields(
            data, (None, SyncAggregate.encoded_size(preset), 8), "LightClientOptimisticUpdate"
        )
        return cls(
            LightClientHeader.decode(attested), SyncAggregate.decode(aggregate, preset), read_uint(slot, 8)
        )

    def hash_tree_root(self) -> Root:
        return merkleize(
            [
                self.attested_header.hash_tree_root(),
                self.sync_aggregate.hash_tree_root(),
                root_of_uint(self.signature_slot, 8),
            ]
        )
