"""Consensus light client: SSZ merkleization, Merkle branches, offset decoding, gindices, fork schedules."""

from __future__ import annotations

import hashlib

import pytest

from light_clients.ethereum.consensus.config import MAINNET, ForkSchedule, ForkScheduleError, ScheduledFork
from light_clients.ethereum.consensus.containers import (
    BeaconBlockHeader,
    ExecutionPayloadHeader,
    LightClientHeader,
    LightClientUpdate,
    SyncAggregate,
    SyncCommittee,
)
from light_clients.ethereum.consensus.errors import LightClientError, MalformedSsz
from light_clients.ethereum.consensus.preset import MAINNET as MAINNET_PRESET
from light_clients.ethereum.consensus.preset import MINIMAL, Gindex, LightClientFork
from light_clients.ethereum.consensus.ssz import (
    ZERO_CHUNK,
    ZERO_HASHES,
    is_valid_merkle_branch,
    merkleize,
    mix_in_length,
    root_of_byte_list,
    root_of_bytes_vector,
    root_of_uint,
    split_fields,
    split_variable_list,
)


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def chunk(n: int) -> bytes:
    return bytes([n]) * 32


def test_merkleize_pads_to_a_power_of_two() -> None:
    assert merkleize([chunk(1)]) == chunk(1)
    assert merkleize([chunk(1), chunk(2)]) == h(chunk(1) + chunk(2))
    assert merkleize([chunk(1), chunk(2), chunk(3)]) == h(h(chunk(1) + chunk(2)) + h(chunk(3) + ZERO_CHUNK))
    assert merkleize([chunk(1)], limit=4) == h(h(chunk(1) + ZERO_CHUNK) + ZERO_HASHES[1])
    assert merkleize([], limit=8) == ZERO_HASHES[3]
    with pytest.raises(MalformedSsz):
        merkleize([chunk(1), chunk(2)], limit=1)


def test_basic_type_roots() -> None:
    assert root_of_uint(0x0102, 8) == b"\x02\x01" + b"\x00" * 30
    assert root_of_bytes_vector(b"\xaa" * 48) == h(b"\xaa" * 48 + b"\x00" * 16)
    assert root_of_byte_list(b"", 32) == mix_in_length(ZERO_CHUNK, 0) == h(ZERO_CHUNK + ZERO_CHUNK)
    assert root_of_byte_list(b"\x01\x02", 32) == h(
        b"\x01\x02".ljust(32, b"\x00") + (2).to_bytes(32, "little")
    )


def test_beacon_block_header_root_is_a_five_field_container() -> None:
    header = BeaconBlockHeader(7, 3, chunk(1), chunk(2), chunk(3))
    leaves = [root_of_uint(7, 8), root_of_uint(3, 8), chunk(1), chunk(2), chunk(3)]
    assert header.hash_tree_root() == merkleize(leaves)
    encoded = (7).to_bytes(8, "little") + (3).to_bytes(8, "little") + chunk(1) + chunk(2) + chunk(3)
    assert BeaconBlockHeader.decode(encoded) == header
    with pytest.raises(MalformedSsz):
        BeaconBlockHeader.decode(encoded + b"\x00")


def test_merkle_branch_round_trip_and_gindex() -> None:
    leaves = [chunk(i) for i in range(8)]
    root = merkleize(leaves)
    index = 5
    branch = [leaves[4], h(leaves[6] + leaves[7]), h(h(leaves[0] + leaves[1]) + h(leaves[2] + leaves[3]))]
    assert is_valid_merkle_branch(leaves[index], branch, 3, index, root)
    assert not is_valid_merkle_branch(leaves[index], branch, 3, index - 1, root)
    assert not is_valid_merkle_branch(leaves[index], branch[:2], 3, index, root)
    assert Gindex(8 + index).depth == 3 and Gindex(8 + index).subtree_index == index


@pytest.mark.parametrize(
    ("fork", "depths"),
    [(LightClientFork.DENEB, (5, 5, 6)), (LightClientFork.ELECTRA, (6, 6, 7))],
)
def test_fork_gindex_depths(fork: LightClientFork, depths: tuple[int, int, int]) -> None:
    got = (fork.current_sync_committee_gindex, fork.next_sync_committee_gindex, fork.finalized_root_gindex)
    assert tuple(g.depth for g in got) == depths
    assert (
        fork.execution_payload_gindex == Gindex(25)
        and Gindex(25).depth == 4
        and Gindex(25).subtree_index == 9
    )


def test_split_fields_checks_offsets() -> None:
    fixed = b"\x01\x02"
    body = fixed + (6).to_bytes(4, "little") + b"xyz"
    assert split_fields(body, (2, None), "T") == [fixed, b"xyz"]
    with pytest.raises(MalformedSsz):
        split_fields(fixed + (7).to_bytes(4, "little") + b"xyz", (2, None), "T")
    with pytest.raises(MalformedSsz):
        split_fields(b"\x01", (2, None), "T")
    two_variable = (8).to_bytes(4, "little") + (7).to_bytes(4, "little") + b"ab"
    with pytest.raises(MalformedSsz):
        split_fields(two_variable, (None, None), "T")


def test_split_variable_list() -> None:
    data = (8).to_bytes(4, "little") + (10).to_bytes(4, "little") + b"ab" + b"cde"
    assert split_variable_list(data) == [b"ab", b"cde"]
    assert split_variable_list(b"") == []
    with pytest.raises(MalformedSsz):
        split_variable_list((3).to_bytes(4, "little") + b"abc")


def test_malformed_ssz_is_a_light_client_value_error() -> None:
    with pytest.raises(LightClientError):
        LightClientUpdate.decode(b"\x00" * 100, MINIMAL, LightClientFork.DENEB)
    with pytest.raises(ValueError):
        LightClientHeader.decode(b"\x00" * 10)


def test_extra_data_longer_than_32_bytes_is_rejected() -> None:
    fixed = 32 + 20 + 32 + 32 + 256 + 32 + 8 * 4
    offset_position = fixed
    total_fixed = fixed + 4 + 32 * 4 + 16
    data = bytearray(total_fixed)
    data[offset_position : offset_position + 4] = total_fixed.to_bytes(4, "little")
    assert ExecutionPayloadHeader.decode(bytes(data) + b"\x01" * 32).extra_data == b"\x01" * 32
    with pytest.raises(MalformedSsz):
        ExecutionPayloadHeader.decode(bytes(data) + b"\x01" * 33)


def test_sync_aggregate_bits_are_little_endian_within_bytes() -> None:
    aggregate = SyncAggregate(b"\x05" + b"\x00" * 2 + b"\x80", b"\x00" * 96)
    assert aggregate.committee_size == 32
    assert aggregate.participant_indices() == [0, 2, 31]
    assert aggregate.participant_count() == 3


def test_empty_committee_sizes_follow_the_preset() -> None:
    assert len(SyncCommittee.empty(MINIMAL).pubkeys) == 32
    assert len(SyncCommittee.empty(MAINNET_PRESET).pubkeys) == 512
    assert SyncCommittee.encoded_size(MAINNET_PRESET) == 513 * 48


def test_mainnet_fork_schedule() -> None:
    schedule = MAINNET.fork_schedule
    assert schedule.version_at_epoch(0) == bytes.fromhex("00000000")
    assert schedule.version_at_epoch(269567) == bytes.fromhex("03000000")
    assert schedule.version_at_epoch(269568) == bytes.fromhex("04000000")
    assert MAINNET_PRESET.period_at_slot(10248000) == 1250


def test_fork_schedule_from_spec_config() -> None:
    text = (
        "PRESET_BASE: 'minimal'\nGENESIS_FORK_VERSION: 0x00000001\nALTAIR_FORK_VERSION: 0x01000001\n"
        "ALTAIR_FORK_EPOCH: 0\nDENEB_FORK_VERSION: 0x04000001\nDENEB_FORK_EPOCH: 5\n"
        "ELECTRA_FORK_VERSION: 0x05000001\nELECTRA_FORK_EPOCH: 18446744073709551615\n"
    )
    schedule = ForkSchedule.from_spec_config(text)
    assert [fork.name for fork in schedule.forks] == ["genesis", "altair", "deneb"]
    assert schedule.version_at_epoch(4) == bytes.fromhex("01000001")
    assert schedule.version_at_epoch(5) == bytes.fromhex("04000001")
    with pytest.raises(ForkScheduleError):
        ForkSchedule((ScheduledFork("late", 3, b"\x00" * 4),))
    with pytest.raises(ForkScheduleError):
        ForkSchedule.from_spec_config("PRESET_BASE: 'minimal'\n")
