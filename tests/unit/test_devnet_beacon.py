"""The devnet beacon chain's light-client objects are accepted by the spec store, end to end and unchanged:
bootstrap from a trusted block root, period updates across committee rotations, finality and optimistic updates
(Electra and Deneb layouts); the JSON form round-trips; and the store refuses them once altered."""

from __future__ import annotations

import dataclasses
import json

import pytest

from devnets.beacon.chain import BeaconChainError, DevnetBeaconChain
from light_clients.ethereum.consensus import beacon_json
from light_clients.ethereum.consensus.errors import InvalidBootstrap, InvalidUpdate, RejectReason
from light_clients.ethereum.consensus.preset import LightClientFork
from light_clients.ethereum.consensus.store import LightClientStore, initialize_light_client_store
from light_clients.ethereum.consensus.sync import (
    process_light_client_finality_update,
    process_light_client_optimistic_update,
    process_light_client_update,
)
from light_clients.ethereum.execution import BlockHeader

GENESIS_TIME = 1_700_000_000
CHAIN_ID = 31337
SECRET = b"\x5e" * 32  # the committees' secret of these tests (relayer devnet up makes a random one)


def block(number: int, parent: bytes) -> BlockHeader:
    """A Prague-shaped execution header (what anvil serves), distinct per number."""
    filler = number.to_bytes(32, "big")
    return BlockHeader(
        parent_hash=parent, ommers_hash=b"\x1d" * 32, beneficiary=b"\x00" * 20, state_root=filler,
        transactions_root=b"\x56" * 32, receipts_root=filler[::-1], logs_bloom=b"\x00" * 256, difficulty=0,
        number=number, gas_limit=30_000_000, gas_used=21_000 * (number % 3), timestamp=GENESIS_TIME + number,
        extra_data=b"", mix_hash=b"\x00" * 32, nonce=b"\x00" * 8, base_fee_per_gas=1_000_000_000,
        withdrawals_root=b"\x56" * 32, blob_gas_used=0, excess_blob_gas=0, parent_beacon_block_root=b"\x00" * 32,
        requests_hash=b"\xe3" * 32,
    )


def build(length: int, fork: LightClientFork = LightClientFork.ELECTRA, depth: int = 2,
          secret: bytes = SECRET) -> DevnetBeaconChain:
    chain = DevnetBeaconChain(CHAIN_ID, depth, GENESIS_TIME, secret, fork=fork)
    parent = b"\x00" * 32
    for number in range(length):
        header = block(number, parent)
        chain.append(header)
        parent = header.hash()
    return chain


def store_at(chain: DevnetBeaconChain, slot: int) -> LightClientStore:
    return initialize_light_client_store(chain.block_root(slot), chain.bootstrap(slot), chain.preset, chain.fork)


def process(chain: DevnetBeaconChain, store: LightClientStore, update, current_slot: int | None = None) -> None:
    net = chain.network
    current = update.signature_slot if current_slot is None else current_slot
    process_light_client_update(store, update, current, net.genesis_validators_root, net.fork_schedule)


@pytest.mark.parametrize("fork", [LightClientFork.ELECTRA, LightClientFork.DENEB])
def test_bootstrap_period_updates_and_finality_follow_the_execution_chain(fork: LightClientFork) -> None:
    per = 64  # minimal preset: 8 slots x 8 epochs
    head = 3 * per + 20  # periods 0..3, the last one in progress
    chain = build(head + 1, fork)
    store = store_at(chain, 5)
    assert store.finalized_header.execution.block_number == 5
    for period in range(4):
        signature_slot = chain.period_update_signature_slot(period, head)
        assert signature_slot is not None
        process(chain, store, chain.update(signature_slot))
        assert store.finalized_period == period and store.next_sync_committee == chain.committee(period + 1)
        assert store.current_sync_committee == chain.committee(period)  # rotated at each boundary
        finalized = store.finalized_header
        assert finalized.execution.block_number == signature_slot - 1 - chain.finality_depth
        assert finalized.execution.block_hash == chain.execution_hash(finalized.beacon.slot)
    net = chain.network
    process_light_client_finality_update(store, chain.finality_update(head), head, net.genesis_validators_root,
                                         net.fork_schedule)
    assert store.finalized_header.execution.block_number == head - 1 - 2
    assert store.finalized_header.beacon.hash_tree_root() == chain.block_root(head - 3)
    process_light_client_optimistic_update(store, chain.optimistic_update(head), head, net.genesis_validators_root,
                                           net.fork_schedule)
    assert store.optimistic_header.execution.block_number == head - 1


def test_finality_crosses_a_period_boundary_with_the_next_committee_known() -> None:
    chain = build(64 + 3)
    store = store_at(chain, 10)
    process(chain, store, chain.update(chain.period_update_signature_slot(0, 66) or 0))
    # signed at slot 65 (period 1) by period 1's committee, attested 64, finalizing slot 62 (period 0)
    net = chain.network
    process_light_client_finality_update(store, chain.finality_update(65), 65, net.genesis_validators_root,
                                         net.fork_schedule)
    assert store.finalized_header.beacon.slot == 62
    process_light_client_finality_update(store, chain.finality_update(66), 66, net.genesis_validators_root,
                                         net.fork_schedule)
    assert store.finalized_header.beacon.slot == 63 and store.finalized_period == 0
    assert store.next_sync_committee == chain.committee(1)


def test_a_period_update_waits_until_its_finality_is_in_the_period() -> None:
    chain = build(64 + 4)
    assert chain.period_update_signature_slot(1, 64) is None  # no attested slot in period 1 yet
    assert chain.period_update_signature_slot(1, 65) is None  # attested 64 finalizes 62: still period 0
    assert chain.period_update_signature_slot(1, 66) is None  # attested 65 finalizes 63
    assert chain.period_update_signature_slot(1, 67) == 67    # attested 66 finalizes 64
    assert chain.period_update_signature_slot(0, 67) == 63    # a past period: its last slot
    store = store_at(chain, 3)
    process(chain, store, chain.update(63))
    process(chain, store, chain.update(67))
    assert store.finalized_header.beacon.slot == 64 and store.current_sync_committee == chain.committee(1)


def test_the_json_form_round_trips_and_decodes_strictly() -> None:
    chain = build(80)
    preset, fork = chain.preset, chain.fork
    update = chain.update(70)
    text = json.dumps([beacon_json.envelope(fork, beacon_json.update_json(update))])
    assert beacon_json.decode_updates(json.loads(text), preset, fork, 1) == [update]
    bootstrap = chain.bootstrap(7)
    doc = beacon_json.envelope(fork, beacon_json.bootstrap_json(bootstrap))
    assert beacon_json.decode_bootstrap(beacon_json.unwrap(doc, fork), preset, fork) == bootstrap
    finality = chain.finality_update(75)
    doc = beacon_json.finality_update_json(finality)
    assert beacon_json.decode_finality_update(doc, preset, fork) == finality
    optimistic = chain.optimistic_update(75)
    assert beacon_json.decode_optimistic_update(beacon_json.optimistic_update_json(optimistic), preset) == optimistic
    bad = json.loads(json.dumps(doc))
    bad["finality_branch"] = bad["finality_branch"][:-1]
    with pytest.raises(beacon_json.MalformedJson, match="data.finality_branch: expected 7 roots, got 6"):
        beacon_json.decode_finality_update(bad, preset, fork)
    bad = json.loads(json.dumps(doc))
    bad["attested_header"]["execution"]["block_number"] = "-1"
    with pytest.raises(beacon_json.MalformedJson, match="attested_header.execution.block_number"):
        beacon_json.decode_finality_update(bad, preset, fork)
    with pytest.raises(beacon_json.MalformedJson, match="this client reads 'electra'"):
        beacon_json.unwrap({"version": "deneb", "data": {}}, fork)
    with pytest.raises(beacon_json.MalformedJson, match="unexpected"):
        beacon_json.decode_optimistic_update({**beacon_json.optimistic_update_json(optimistic), "x": 1}, preset)


def test_altered_updates_are_refused_and_leave_the_store_unchanged() -> None:
    chain = build(100)
    store = store_at(chain, 70)
    good = chain.finality_update(99)
    net = chain.network

    def attempt(update) -> RejectReason:
        before = (store.finalized_header, store.optimistic_header, store.best_valid_update)
        with pytest.raises(InvalidUpdate) as raised:
            process_light_client_finality_update(store, update, 99, net.genesis_validators_root, net.fork_schedule)
        assert (store.finalized_header, store.optimistic_header, store.best_valid_update) == before
        return raised.value.reason

    other = build(100, depth=3)  # another history: its slot 97 differs
    forged_final = dataclasses.replace(good, finalized_header=other.finality_update(99).finalized_header)
    assert attempt(forged_final) is RejectReason.BAD_FINALITY_BRANCH
    forged_exec = dataclasses.replace(good.finalized_header.execution, block_hash=b"\xee" * 32)
    forged = dataclasses.replace(good,
                                 finalized_header=dataclasses.replace(good.finalized_header, execution=forged_exec))
    assert attempt(forged) is RejectReason.BAD_EXECUTION_BRANCH
    sig = bytearray(good.sync_aggregate.sync_committee_signature)
    bad_sig = dataclasses.replace(good, sync_aggregate=dataclasses.replace(good.sync_aggregate,
                                                                           sync_committee_signature=bytes(sig[::-1])))
    assert attempt(bad_sig) is RejectReason.BAD_SIGNATURE
    foreign = DevnetBeaconChain(CHAIN_ID + 1, 2, GENESIS_TIME, SECRET)  # another chain's committee and domain
    assert attempt(dataclasses.replace(good, sync_aggregate=foreign.sync_aggregate(99, good.attested_header.beacon))) \
        is RejectReason.BAD_SIGNATURE
    guessed = build(100, secret=b"\x00" * 32)  # whoever lacks the secret: the same blocks, its own committee
    assert guessed.block_root(70) != chain.block_root(70)  # the committees are in the state: other roots
    assert attempt(dataclasses.replace(good, sync_aggregate=guessed.sync_aggregate(99, good.attested_header.beacon))) \
        is RejectReason.BAD_SIGNATURE
    with pytest.raises(InvalidUpdate) as raised:  # a slot the client's clock has not reached
        process_light_client_finality_update(store, good, 98, net.genesis_validators_root, net.fork_schedule)
    assert raised.value.reason is RejectReason.SIGNATURE_SLOT_IN_FUTURE
    process_light_client_finality_update(store, good, 99, net.genesis_validators_root, net.fork_schedule)
    assert store.finalized_header.beacon.slot == 96


def test_bootstrap_must_match_the_trusted_root() -> None:
    chain = build(20)
    with pytest.raises(InvalidBootstrap) as raised:
        initialize_light_client_store(chain.block_root(6), chain.bootstrap(7), chain.preset, chain.fork)
    assert raised.value.reason is RejectReason.BOOTSTRAP_ROOT_MISMATCH


def test_chain_refuses_a_block_that_does_not_extend_it_and_rebuilds_after_truncation() -> None:
    chain = build(10)
    root_7 = chain.block_root(7)
    with pytest.raises(BeaconChainError, match="does not extend"):
        chain.append(block(10, b"\x01" * 32))
    chain.truncate(7)
    assert chain.length == 7 and chain.slot_of_root(root_7) is None
    chain.append(block(7, chain.execution_hash(6)))
    assert chain.block_root(7) == root_7 and chain.slot_of_root(root_7) == 7  # a pure function of the blocks
