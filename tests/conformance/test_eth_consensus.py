"""Ethereum consensus light client against the consensus-spec light-client sync tests (minimal preset, Deneb
and Electra) and real mainnet data from portal-spec-tests (512-member committees, a committee rotation),
plus must-reject mutations that leave the store unchanged."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cramjam  # type: ignore[import-untyped]
import pytest

from light_clients.ethereum.consensus.config import MAINNET, NetworkConfig, minimal_network
from light_clients.ethereum.consensus.containers import (
    LightClientBootstrap,
    LightClientHeader,
    LightClientUpdate,
)
from light_clients.ethereum.consensus.errors import InvalidBootstrap, InvalidUpdate, RejectReason
from light_clients.ethereum.consensus.portal import PortalContent, compute_fork_digest
from light_clients.ethereum.consensus.preset import MINIMAL, LightClientFork
from light_clients.ethereum.consensus.store import LightClientStore, initialize_light_client_store
from light_clients.ethereum.consensus.sync import (
    process_light_client_finality_update,
    process_light_client_optimistic_update,
    process_light_client_store_force_update,
    process_light_client_update,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "eth_consensus"
MINIMAL_DIR = VECTORS / "spec-tests-minimal"
PORTAL_DIR = VECTORS / "portal-mainnet-deneb"
CASES = sorted(f"{path.parent.name}/{path.name}" for path in MINIMAL_DIR.glob("*/*") if path.is_dir())


# --- minimal spec tests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeaderCheck:
    slot: int
    beacon_root: bytes
    execution_root: bytes


@dataclass(frozen=True)
class Step:
    kind: str
    current_slot: int
    update_file: str | None
    finalized: HeaderCheck
    optimistic: HeaderCheck


def _header_check(block: str, name: str) -> HeaderCheck:
    root = r"'0x([0-9a-f]{64})'"
    pattern = rf":\s*\{{?\s*slot:\s*(\d+),?\s*beacon_root:\s*{root},?\s*execution_root:\s*{root}"
    match = re.search(name + pattern, block)
    assert match is not None, f"no {name} in step"
    return HeaderCheck(int(match.group(1)), bytes.fromhex(match.group(2)), bytes.fromhex(match.group(3)))


def read_steps(text: str) -> list[Step]:
    steps = []
    for kind, block in re.findall(
        r"^- (process_update|force_update):(.*?)(?=^- |\Z)", text, re.DOTALL | re.MULTILINE
    ):
        update = re.search(r"update:\s*(update_\S+)", block)
        slot = re.search(r"current_slot:\s*(\d+)", block)
        assert slot is not None
        steps.append(
            Step(
                kind,
                int(slot.group(1)),
                update.group(1) if update else None,
                _header_check(block, "finalized_header"),
                _header_check(block, "optimistic_header"),
            )
        )
    return steps


def _meta_root(text: str, name: str) -> bytes:
    match = re.search(name + r":\s*'0x([0-9a-f]{64})'", text)
    assert match is not None
    return bytes.fromhex(match.group(1))


@dataclass(frozen=True)
class MinimalCase:
    directory: Path
    fork: LightClientFork
    network: NetworkConfig
    trusted_block_root: bytes

    @classmethod
    def load(cls, case: str) -> MinimalCase:
        directory = MINIMAL_DIR / case
        meta = (directory / "meta.yaml").read_text()
        network = minimal_network(
            (directory / "config.yaml").read_text(), _meta_root(meta, "genesis_validators_root")
        )
        return cls(
            directory, LightClientFork(directory.parent.name), network, _meta_root(meta, "trusted_block_root")
        )

    def _ssz(self, stem: str) -> bytes:
        return bytes(cramjam.snappy.decompress_raw((self.directory / f"{stem}.ssz_snappy").read_bytes()))

    def bootstrap(self) -> LightClientBootstrap:
        return LightClientBootstrap.decode(self._ssz("bootstrap"), MINIMAL, self.fork)

    def update(self, stem: str) -> LightClientUpdate:
        return LightClientUpdate.decode(self._ssz(stem), MINIMAL, self.fork)

    def steps(self) -> list[Step]:
        return read_steps((self.directory / "steps.yaml").read_text())

    def new_store(self) -> LightClientStore:
        return initialize_light_client_store(self.trusted_block_root, self.bootstrap(), MINIMAL, self.fork)

    def process(self, store: LightClientStore, update: LightClientUpdate, current_slot: int) -> None:
        net = self.network
        process_light_client_update(
            store, update, current_slot, net.genesis_validators_root, net.fork_schedule
        )


def _assert_header(header: LightClientHeader, check: HeaderCheck, what: str) -> None:
    assert header.beacon.slot == check.slot, what
    assert header.beacon.hash_tree_root() == check.beacon_root, what
    assert header.execution.hash_tree_root() == check.execution_root, what


def test_every_minimal_case_is_present() -> None:
    assert len(CASES) == 6
    assert {case.split("/")[0] for case in CASES} == {"deneb", "electra"}


@pytest.mark.parametrize("case", CASES)
def test_minimal_spec_case(case: str) -> None:
    vectors = MinimalCase.load(case)
    store = vectors.new_store()
    steps = vectors.steps()
    assert steps
    for number, step in enumerate(steps):
        if step.kind == "process_update":
            assert step.update_file is not None
            vectors.process(store, vectors.update(step.update_file), step.current_slot)
        else:
            process_light_client_store_force_update(store, step.current_slot)
        _assert_header(store.finalized_header, step.finalized, f"step {number} finalized")
        _assert_header(store.optimistic_header, step.optimistic, f"step {number} optimistic")


# --- portal mainnet -----------------------------------------------------------------------------------


def _portal(name: str) -> PortalContent:
    return PortalContent.from_test_yaml((PORTAL_DIR / f"{name}.yaml").read_text())


@pytest.fixture(scope="module")
def portal() -> dict[str, PortalContent]:
    return {name: _portal(name) for name in ("bootstrap", "updates", "finality_update", "optimistic_update")}


def _mainnet_store(portal: dict[str, PortalContent]) -> LightClientStore:
    content = portal["bootstrap"]
    bootstrap = content.bootstrap(MAINNET.preset, LightClientFork.DENEB)
    return initialize_light_client_store(
        content.bootstrap_block_root(), bootstrap, MAINNET.preset, LightClientFork.DENEB
    )


def _mainnet_updates(portal: dict[str, PortalContent]) -> list[LightClientUpdate]:
    return [update for _, update in portal["updates"].updates_by_range(MAINNET.preset, LightClientFork.DENEB)]


def _process_mainnet(
    store: LightClientStore, update: LightClientUpdate, current_slot: int | None = None
) -> None:
    slot = update.signature_slot if current_slot is None else current_slot
    process_light_client_update(store, update, slot, MAINNET.genesis_validators_root, MAINNET.fork_schedule)


def test_portal_fork_digests_are_mainnet_deneb(portal: dict[str, PortalContent]) -> None:
    deneb = compute_fork_digest(
        MAINNET.fork_schedule.version_at_epoch(269568), MAINNET.genesis_validators_root
    )
    assert deneb == bytes.fromhex("6a95a1a9")
    for name in ("bootstrap", "finality_update", "optimistic_update"):
        assert portal[name].fork_digest == deneb
    assert [
        digest for digest, _ in portal["updates"].updates_by_range(MAINNET.preset, LightClientFork.DENEB)
    ] == [
        deneb,
        deneb,
    ]


def test_portal_mainnet_sync_across_committee_rotation(portal: dict[str, PortalContent]) -> None:
    store = _mainnet_store(portal)
    bootstrap_header = store.finalized_header
    assert bootstrap_header.beacon.slot == 10248000
    assert store.finalized_period == 1250
    bootstrap_committee = store.current_sync_committee
    assert len(bootstrap_committee.pubkeys) == 512

    update_0, update_1 = _mainnet_updates(portal)
    assert update_0.sync_aggregate.participant_count() == 511
    # Update 0 (period 1250) is older than the bootstrap but brings the unknown next committee.
    _process_mainnet(store, update_0)
    assert store.next_sync_committee == update_0.next_sync_committee
    assert store.current_sync_committee == bootstrap_committee
    assert store.finalized_header == bootstrap_header

    # Update 1 is signed in period 1251 by update 0's next committee and finalizes into 1251: rotation.
    _process_mainnet(store, update_1)
    assert store.current_sync_committee == update_0.next_sync_committee
    assert store.next_sync_committee == update_1.next_sync_committee
    assert store.finalized_header == update_1.finalized_header
    assert store.finalized_period == 1251
    assert store.optimistic_header == update_1.attested_header
    assert store.best_valid_update is None

    finality = portal["finality_update"].finality_update(MAINNET.preset, LightClientFork.DENEB)
    assert portal["finality_update"].key == bytes([0x12]) + finality.finalized_header.beacon.slot.to_bytes(
        8, "little"
    )
    process_light_client_finality_update(
        store, finality, finality.signature_slot, MAINNET.genesis_validators_root, MAINNET.fork_schedule
    )
    assert store.finalized_header == finality.finalized_header
    assert store.optimistic_header == finality.attested_header
    assert store.next_sync_committee == update_1.next_sync_committee

    optimistic = portal["optimistic_update"].optimistic_update(MAINNET.preset)
    assert portal["optimistic_update"].key == bytes([0x13]) + optimistic.signature_slot.to_bytes(8, "little")
    process_light_client_optimistic_update(
        store, optimistic, optimistic.signature_slot, MAINNET.genesis_validators_root, MAINNET.fork_schedule
    )
    assert store.optimistic_header == optimistic.attested_header
    assert store.finalized_header == finality.finalized_header
    assert store.best_valid_update is not None  # kept, not applied: it finalizes nothing


def test_portal_update_1_before_rotation_is_wrong_committee(portal: dict[str, PortalContent]) -> None:
    store = _mainnet_store(portal)
    _, update_1 = _mainnet_updates(portal)
    before = copy.copy(store)
    with pytest.raises(InvalidUpdate) as raised:
        _process_mainnet(store, update_1)
    assert raised.value.reason is RejectReason.WRONG_SYNC_COMMITTEE
    assert store == before


def test_portal_update_verified_with_wrong_committee_is_rejected(portal: dict[str, PortalContent]) -> None:
    store = _mainnet_store(portal)
    update_0, _ = _mainnet_updates(portal)
    store.current_sync_committee = update_0.next_sync_committee  # period 1251's committee, not 1250's
    before = copy.copy(store)
    with pytest.raises(InvalidUpdate) as raised:
        _process_mainnet(store, update_0)
    assert raised.value.reason is RejectReason.BAD_SIGNATURE
    assert store == before


def test_portal_bootstrap_against_wrong_trusted_root(portal: dict[str, PortalContent]) -> None:
    content = portal["bootstrap"]
    bootstrap = content.bootstrap(MAINNET.preset, LightClientFork.DENEB)
    wrong_root = bytes([content.bootstrap_block_root()[0] ^ 1]) + content.bootstrap_block_root()[1:]
    with pytest.raises(InvalidBootstrap) as raised:
        initialize_light_client_store(wrong_root, bootstrap, MAINNET.preset, LightClientFork.DENEB)
    assert raised.value.reason is RejectReason.BOOTSTRAP_ROOT_MISMATCH
    assert isinstance(raised.value, InvalidUpdate)


# --- must-reject mutations ----------------------------------------------------------------------------


def _flip_byte(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _flip_participation_bit(update: LightClientUpdate) -> LightClientUpdate:
    aggregate = update.sync_aggregate
    signer = aggregate.participant_indices()[0]
    bits = bytearray(aggregate.sync_committee_bits)
    bits[signer // 8] ^= 1 << (signer % 8)
    return dataclasses.replace(
        update, sync_aggregate=dataclasses.replace(aggregate, sync_committee_bits=bytes(bits))
    )


def _corrupt_signature(update: LightClientUpdate) -> LightClientUpdate:
    aggregate = update.sync_aggregate
    signature = _flip_byte(aggregate.sync_committee_signature, 50)
    return dataclasses.replace(
        update, sync_aggregate=dataclasses.replace(aggregate, sync_committee_signature=signature)
    )


def _corrupt_finality_branch(update: LightClientUpdate) -> LightClientUpdate:
    branch = list(update.finality_branch)
    branch[2] = _flip_byte(branch[2], 7)
    return dataclasses.replace(update, finality_branch=tuple(branch))


def _corrupt_next_committee_branch(update: LightClientUpdate) -> LightClientUpdate:
    branch = list(update.next_sync_committee_branch)
    branch[1] = _flip_byte(branch[1], 3)
    return dataclasses.replace(update, next_sync_committee_branch=tuple(branch))


def _signature_slot_at_attested(update: LightClientUpdate) -> LightClientUpdate:
    return dataclasses.replace(update, signature_slot=update.attested_header.beacon.slot)


def _signature_slot_before_attested(update: LightClientUpdate) -> LightClientUpdate:
    return dataclasses.replace(update, signature_slot=update.attested_header.beacon.slot - 1)


def _no_participants(update: LightClientUpdate) -> LightClientUpdate:
    aggregate = update.sync_aggregate
    bits = bytes(len(aggregate.sync_committee_bits))
    return dataclasses.replace(
        update, sync_aggregate=dataclasses.replace(aggregate, sync_committee_bits=bits)
    )


def _corrupt_execution_branch(update: LightClientUpdate) -> LightClientUpdate:
    header = update.attested_header
    branch = list(header.execution_branch)
    branch[0] = _flip_byte(branch[0], 0)
    return dataclasses.replace(
        update, attested_header=dataclasses.replace(header, execution_branch=tuple(branch))
    )


MUTATIONS: dict[str, tuple[Callable[[LightClientUpdate], LightClientUpdate], RejectReason]] = {
    "flipped_participation_bit": (_flip_participation_bit, RejectReason.BAD_SIGNATURE),
    "corrupted_signature_byte": (_corrupt_signature, RejectReason.BAD_SIGNATURE),
    "corrupted_finality_branch": (_corrupt_finality_branch, RejectReason.BAD_FINALITY_BRANCH),
    "corrupted_next_committee_branch": (
        _corrupt_next_committee_branch,
        RejectReason.BAD_NEXT_SYNC_COMMITTEE_BRANCH,
    ),
    "signature_slot_at_attested": (
        _signature_slot_at_attested,
        RejectReason.SIGNATURE_SLOT_NOT_AFTER_ATTESTED,
    ),
    "signature_slot_before_attested": (
        _signature_slot_before_attested,
        RejectReason.SIGNATURE_SLOT_NOT_AFTER_ATTESTED,
    ),
    "no_participants": (_no_participants, RejectReason.PARTICIPATION_BELOW_MINIMUM),
    "corrupted_execution_branch": (_corrupt_execution_branch, RejectReason.BAD_EXECUTION_BRANCH),
}


def _first_minimal_update(fork: str) -> tuple[MinimalCase, LightClientUpdate, int]:
    vectors = MinimalCase.load(f"{fork}/light_client_sync")
    step = vectors.steps()[0]
    assert step.update_file is not None and step.update_file.endswith("_sf")
    return vectors, vectors.update(step.update_file), step.current_slot


@pytest.mark.parametrize("fork", ["deneb", "electra"])
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_minimal_mutation_is_rejected_and_store_unchanged(fork: str, mutation: str) -> None:
    vectors, update, current_slot = _first_minimal_update(fork)
    mutate, reason = MUTATIONS[mutation]
    store = vectors.new_store()
    vectors.process(copy.copy(store), update, current_slot)  # the unmutated update is accepted
    before = copy.copy(store)
    with pytest.raises(InvalidUpdate) as raised:
        vectors.process(store, mutate(update), current_slot)
    assert raised.value.reason is reason
    assert store == before


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_mainnet_mutation_is_rejected_and_store_unchanged(
    portal: dict[str, PortalContent], mutation: str
) -> None:
    store = _mainnet_store(portal)
    update_0, _ = _mainnet_updates(portal)
    mutate, reason = MUTATIONS[mutation]
    before = copy.copy(store)
    with pytest.raises(InvalidUpdate) as raised:
        _process_mainnet(store, mutate(update_0))
    assert raised.value.reason is reason
    assert store == before


@pytest.mark.parametrize("fork", ["deneb", "electra"])
def test_minimal_bootstrap_against_wrong_trusted_root(fork: str) -> None:
    vectors = MinimalCase.load(f"{fork}/light_client_sync")
    with pytest.raises(InvalidBootstrap) as raised:
        initialize_light_client_store(b"\x11" * 32, vectors.bootstrap(), MINIMAL, vectors.fork)
    assert raised.value.reason is RejectReason.BOOTSTRAP_ROOT_MISMATCH


@pytest.mark.parametrize("fork", ["deneb", "electra"])
def test_minimal_bootstrap_with_corrupted_committee_branch(fork: str) -> None:
    vectors = MinimalCase.load(f"{fork}/light_client_sync")
    bootstrap = vectors.bootstrap()
    branch = list(bootstrap.current_sync_committee_branch)
    branch[0] = _flip_byte(branch[0], 0)
    corrupted = dataclasses.replace(bootstrap, current_sync_committee_branch=tuple(branch))
    with pytest.raises(InvalidBootstrap) as raised:
        initialize_light_client_store(vectors.trusted_block_root, corrupted, MINIMAL, vectors.fork)
    assert raised.value.reason is RejectReason.BAD_CURRENT_SYNC_COMMITTEE_BRANCH


def test_minimal_update_signed_in_the_future_is_rejected() -> None:
    vectors, update, _ = _first_minimal_update("deneb")
    store = vectors.new_store()
    before = copy.copy(store)
    with pytest.raises(InvalidUpdate) as raised:
        vectors.process(store, update, update.signature_slot - 1)
    assert raised.value.reason is RejectReason.SIGNATURE_SLOT_IN_FUTURE
    assert store == before


def test_minimal_update_under_another_network_fails_signature() -> None:
    vectors, update, current_slot = _first_minimal_update("electra")
    store = vectors.new_store()
    with pytest.raises(InvalidUpdate) as raised:
        process_light_client_update(
            store, update, current_slot, vectors.network.genesis_validators_root, MAINNET.fork_schedule
        )
    assert raised.value.reason is RejectReason.BAD_SIGNATURE
