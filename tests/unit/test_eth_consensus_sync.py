"""Sync-protocol details of the consensus light client: update ranking, force updates, the BLS key cache,
a py_ecc cross-check of the signing root and the benchmark's shape."""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from pathlib import Path

import cramjam  # type: ignore[import-untyped]
import pytest

from light_clients.ethereum.consensus.bench import bench_sync_committee_updates
from light_clients.ethereum.consensus.config import NetworkConfig, minimal_network
from light_clients.ethereum.consensus.containers import (
    LightClientBootstrap,
    LightClientHeader,
    LightClientUpdate,
    SyncCommittee,
)
from light_clients.ethereum.consensus.errors import InvalidUpdate, RejectReason
from light_clients.ethereum.consensus.preset import MINIMAL, LightClientFork
from light_clients.ethereum.consensus.signing import (
    DOMAIN_SYNC_COMMITTEE,
    CommitteeKeyCache,
    compute_domain,
    compute_signing_root,
)
from light_clients.ethereum.consensus.ssz import ZERO_CHUNK
from light_clients.ethereum.consensus.store import LightClientStore, initialize_light_client_store
from light_clients.ethereum.consensus.sync import (
    is_better_update,
    process_light_client_store_force_update,
    process_light_client_update,
)

CASE = (
    Path(__file__).resolve().parents[1]
    / "vectors"
    / "eth_consensus"
    / "spec-tests-minimal"
    / "deneb"
    / "light_client_sync"
)
FIRST_UPDATE = "update_0xbccdacbfe0f0bfd10367dfc318b479e2830ed7c5119151ad0eb917fc66d51203_sf"
FORK = LightClientFork.DENEB


def _ssz(stem: str) -> bytes:
    return bytes(cramjam.snappy.decompress_raw((CASE / f"{stem}.ssz_snappy").read_bytes()))


def _meta(name: str) -> bytes:
    match = re.search(name + r":\s*'0x([0-9a-f]{64})'", (CASE / "meta.yaml").read_text())
    assert match is not None
    return bytes.fromhex(match.group(1))


@pytest.fixture(scope="module")
def network() -> NetworkConfig:
    return minimal_network((CASE / "config.yaml").read_text(), _meta("genesis_validators_root"))


@pytest.fixture(scope="module")
def bootstrap() -> LightClientBootstrap:
    return LightClientBootstrap.decode(_ssz("bootstrap"), MINIMAL, FORK)


@pytest.fixture(scope="module")
def update() -> LightClientUpdate:
    return LightClientUpdate.decode(_ssz(FIRST_UPDATE), MINIMAL, FORK)


def _store(bootstrap: LightClientBootstrap, cache: CommitteeKeyCache | None = None) -> LightClientStore:
    return initialize_light_client_store(
        _meta("trusted_block_root"), bootstrap, MINIMAL, FORK, key_cache=cache
    )


def _with_participants(update: LightClientUpdate, count: int) -> LightClientUpdate:
    bits = ((1 << count) - 1).to_bytes(4, "little")
    return dataclasses.replace(
        update, sync_aggregate=dataclasses.replace(update.sync_aggregate, sync_committee_bits=bits)
    )


def _without_finality(update: LightClientUpdate) -> LightClientUpdate:
    return dataclasses.replace(
        update,
        finalized_header=LightClientHeader(),
        finality_branch=(ZERO_CHUNK,) * len(update.finality_branch),
    )


def test_update_ranking(bootstrap: LightClientBootstrap, update: LightClientUpdate) -> None:
    store = _store(bootstrap)
    supermajority, minority, fewer = (_with_participants(update, n) for n in (22, 21, 10))
    assert is_better_update(supermajority, minority, store)
    assert not is_better_update(minority, supermajority, store)
    assert is_better_update(minority, fewer, store)
    assert is_better_update(update, _without_finality(update), store)
    assert not is_better_update(_without_finality(update), update, store)
    later = dataclasses.replace(update, signature_slot=update.signature_slot + 1)
    assert is_better_update(update, later, store)
    assert not is_better_update(later, update, store)
    assert not is_better_update(update, update, store)


def test_participation_bits_must_match_the_signature(
    bootstrap: LightClientBootstrap, update: LightClientUpdate, network: NetworkConfig
) -> None:
    store = _store(bootstrap)
    weak = _with_participants(update, 5)
    with pytest.raises(InvalidUpdate) as raised:  # the signature covers all 32 signers, not these 5
        process_light_client_update(store, weak, 41, network.genesis_validators_root, network.fork_schedule)
    assert raised.value.reason is RejectReason.BAD_SIGNATURE


def test_force_update_waits_for_the_timeout(
    bootstrap: LightClientBootstrap, update: LightClientUpdate, network: NetworkConfig
) -> None:
    store = _store(bootstrap)
    process_light_client_store_force_update(store, 10_000)  # nothing to force yet
    assert store.best_valid_update is None
    store.best_valid_update = update
    finalized_slot = store.finalized_header.beacon.slot
    before = copy.copy(store)
    process_light_client_store_force_update(store, finalized_slot + MINIMAL.update_timeout)
    assert store == before
    process_light_client_store_force_update(store, finalized_slot + MINIMAL.update_timeout + 1)
    assert store.best_valid_update is None
    assert store.finalized_header == update.finalized_header
    assert store.next_sync_committee == update.next_sync_committee


def test_key_cache_parses_a_committee_once(bootstrap: LightClientBootstrap) -> None:
    cache = CommitteeKeyCache(capacity=2)
    first = cache.keys_of(bootstrap.current_sync_committee)
    assert first is not None and len(first) == 32
    assert cache.keys_of(bootstrap.current_sync_committee) is first
    other = SyncCommittee(tuple(reversed(bootstrap.current_sync_committee.pubkeys)), b"\x00" * 48)
    third = SyncCommittee(
        bootstrap.current_sync_committee.pubkeys[1:] + bootstrap.current_sync_committee.pubkeys[:1], b""
    )
    cache.keys_of(other)
    cache.keys_of(third)
    assert len(cache) == 2
    assert cache.keys_of(SyncCommittee.empty(MINIMAL)) is None  # zero bytes are not a G1 point


def test_committee_with_invalid_key_fails_signature(
    bootstrap: LightClientBootstrap, update: LightClientUpdate, network: NetworkConfig
) -> None:
    store = _store(bootstrap)
    keys = list(store.current_sync_committee.pubkeys)
    keys[0] = b"\x00" * 48
    store.current_sync_committee = dataclasses.replace(store.current_sync_committee, pubkeys=tuple(keys))
    with pytest.raises(InvalidUpdate) as raised:
        process_light_client_update(store, update, 41, network.genesis_validators_root, network.fork_schedule)
    assert raised.value.reason is RejectReason.BAD_SIGNATURE


def test_signing_root_cross_checked_with_py_ecc(
    bootstrap: LightClientBootstrap, update: LightClientUpdate, network: NetworkConfig
) -> None:
    from py_ecc import bls  # a test dependency (pyproject [test]): the cross-check always runs

    started = time.perf_counter()
    fork_version = network.fork_schedule.version_at_epoch(MINIMAL.epoch_at_slot(update.signature_slot - 1))
    domain = compute_domain(DOMAIN_SYNC_COMMITTEE, fork_version, network.genesis_validators_root)
    signing_root = compute_signing_root(update.attested_header.beacon, domain)
    signers = [
        bootstrap.current_sync_committee.pubkeys[i] for i in update.sync_aggregate.participant_indices()
    ]
    signature = update.sync_aggregate.sync_committee_signature
    assert bls.G2ProofOfPossession.FastAggregateVerify(signers, signing_root, signature)
    assert time.perf_counter() - started < 10


def test_bench_reports_mainnet_committee() -> None:
    result = bench_sync_committee_updates(seconds=0.3)
    assert result["committee_size"] == 512
    assert result["participants"] == 511
    assert result["sync_committee_updates_per_s"] > 0
    assert result["cold_key_cache_updates_per_s"] < result["sync_committee_updates_per_s"]
