"""Processing light-client updates: the Altair sync protocol (``validate_light_client_update`` and friends).

Security checks, in the spec's order, each raising ``InvalidUpdate(reason)`` before the store is touched:

1. at least ``MIN_SYNC_COMMITTEE_PARTICIPANTS`` signers;
2. the attested execution header is proved against the attested ``body_root`` (gindex 25);
3. ``current_slot >= signature_slot > attested slot >= finalized slot``;
4. the signature period is one whose committee the store knows (current, or next once known);
5. the update is news: a newer attested header, or the next committee the store lacks;
6. finality: the finalized header (and its execution header) is proved against the attested state root;
7. next committee: proved against the attested state root, and equal to the one already known if any;
8. BLS FastAggregateVerify of the participants over the attested header root, in the domain of the fork
   in force at ``signature_slot - 1``.

Then the store keeps the best valid update, moves the optimistic header on once participation beats
the safety threshold, and finalizes (rotating committees at period boundaries) on a 2/3 supermajority.
"""

from __future__ import annotations

import dataclasses

from light_clients.ethereum.consensus.config import ForkSchedule
from light_clients.ethereum.consensus.containers import (
    LightClientFinalityUpdate,
    LightClientHeader,
    LightClientOptimisticUpdate,
    LightClientUpdate,
    SyncCommittee,
)
from light_clients.ethereum.consensus.errors import InvalidUpdate, RejectReason
from light_clients.ethereum.consensus.preset import GENESIS_SLOT
from light_clients.ethereum.consensus.signing import verify_sync_aggregate
from light_clients.ethereum.consensus.ssz import ZERO_CHUNK, is_valid_merkle_branch
from light_clients.ethereum.consensus.store import LightClientStore, is_valid_light_client_header


def validate_light_client_update(
    store: LightClientStore,
    update: LightClientUpdate,
    current_slot: int,
    genesis_validators_root: bytes,
    config: ForkSchedule,
) -> None:
    """Raise ``InvalidUpdate`` unless ``update`` passes every sync-protocol check against ``store``."""
    preset, fork = store.preset, store.fork
    aggregate = update.sync_aggregate
    if aggregate.committee_size != preset.sync_committee_size:
        raise InvalidUpdate(
            RejectReason.WRONG_COMMITTEE_SIZE, f"{aggregate.committee_size} participation bits"
        )
    participants = aggregate.participant_count()
    if participants < preset.min_sync_committee_participants:
        raise InvalidUpdate(RejectReason.PARTICIPATION_BELOW_MINIMUM, f"{participants} signers")
    if not is_valid_light_client_header(update.attested_header, fork):
        raise InvalidUpdate(RejectReason.BAD_EXECUTION_BRANCH, "attested header")

    attested_slot = update.attested_header.beacon.slot
    finalized_slot = update.finalized_header.beacon.slot
    if update.signature_slot > current_slot:
        raise InvalidUpdate(
            RejectReason.SIGNATURE_SLOT_IN_FUTURE, f"{update.signature_slot} > {current_slot}"
        )
    if update.signature_slot <= attested_slot:
        raise InvalidUpdate(
            RejectReason.SIGNATURE_SLOT_NOT_AFTER_ATTESTED, f"{update.signature_slot} <= {attested_slot}"
        )
    if finalized_slot > attested_slot:
        raise InvalidUpdate(RejectReason.FINALIZED_AFTER_ATTESTED, f"{finalized_slot} > {attested_slot}")

    store_period = store.finalized_period
    signature_period = preset.period_at_slot(update.signature_slot)
    known_periods = (
        (store_period, store_period + 1) if store.is_next_sync_committee_known() else (store_period,)
    )
    if signature_period not in known_periods:
        raise InvalidUpdate(
            RejectReason.WRONG_SYNC_COMMITTEE,
            f"signed in period {signature_period}, store knows {known_periods}",
        )

    attested_period = preset.period_at_slot(attested_slot)
    brings_next_committee = (
        not store.is_next_sync_committee_known()
        and update.is_sync_committee_update()
        and attested_period == store_period
    )
    if not (attested_slot > store.finalized_header.beacon.slot or brings_next_committee):
        raise InvalidUpdate(RejectReason.NOT_NEWER, f"attested slot {attested_slot}")

    _validate_finality(store, update)
    _validate_next_sync_committee(store, update, attested_period, store_period)

    committee = (
        store.current_sync_committee if signature_period == store_period else store.next_sync_committee
    )
    assert committee is not None  # the period check above guarantees it
    fork_version_slot = max(update.signature_slot, 1) - 1
    fork_version = config.version_at_epoch(preset.epoch_at_slot(fork_version_slot))
    if not verify_sync_aggregate(
        committee,
        aggregate,
        update.attested_header.beacon,
        fork_version,
        genesis_validators_root,
        store.key_cache,
    ):
        raise InvalidUpdate(RejectReason.BAD_SIGNATURE, f"{participants} signers, period {signature_period}")


def _validate_finality(store: LightClientStore, update: LightClientUpdate) -> None:
    if not update.is_finality_update():
        if update.finalized_header != LightClientHeader():
            raise InvalidUpdate(RejectReason.UNEXPECTED_FINALIZED_HEADER)
        return
    if update.finalized_header.beacon.slot == GENESIS_SLOT:
        if update.finalized_header != LightClientHeader():
            raise InvalidUpdate(RejectReason.BAD_FINALITY_BRANCH, "genesis finality with a non-empty header")
        finalized_root = ZERO_CHUNK
    else:
        if not is_valid_light_client_header(update.finalized_header, store.fork):
            raise InvalidUpdate(RejectReason.BAD_EXECUTION_BRANCH, "finalized header")
        finalized_root = update.finalized_header.beacon.hash_tree_root()
    gindex = store.fork.finalized_root_gindex
    if not is_valid_merkle_branch(
        finalized_root,
        update.finality_branch,
        gindex.depth,
        gindex.subtree_index,
        update.attested_header.beacon.state_root,
    ):
        raise InvalidUpdate(RejectReason.BAD_FINALITY_BRANCH)


def _validate_next_sync_committee(
    store: LightClientStore, update: LightClientUpdate, attested_period: int, store_period: int
) -> None:
    if not update.is_sync_committee_update():
        if update.next_sync_committee != SyncCommittee.empty(store.preset):
            raise InvalidUpdate(RejectReason.UNEXPECTED_NEXT_SYNC_COMMITTEE)
        return
    if (
        attested_period == store_period
        and store.next_sync_committee is not None
        and update.next_sync_committee != store.next_sync_committee
    ):
        raise InvalidUpdate(RejectReason.CONFLICTING_NEXT_SYNC_COMMITTEE)
    gindex = store.fork.next_sync_committee_gindex
    if not is_valid_merkle_branch(
        update.next_sync_committee.root,
        update.next_sync_committee_branch,
        gindex.depth,
        gindex.subtree_index,
        update.attested_header.beacon.state_root,
    ):
        raise InvalidUpdate(RejectReason.BAD_NEXT_SYNC_COMMITTEE_BRANCH)


def is_better_update(new: LightClientUpdate, old: LightClientUpdate, store: LightClientStore) -> bool:
    """The spec's ranking of two valid updates (which one to keep as ``best_valid_update``)."""
    period = store.preset.period_at_slot
    max_participants = new.sync_aggregate.committee_size
    new_count = new.sync_aggregate.participant_count()
    old_count = old.sync_aggregate.participant_count()
    new_supermajority = new_count * 3 >= max_participants * 2
    old_supermajority = old_count * 3 >= max_participants * 2
    if new_supermajority != old_supermajority:
        return new_supermajority
    if not new_supermajority and new_count != old_count:
        return new_count > old_count

    def has_relevant_committee(update: LightClientUpdate) -> bool:
        return update.is_sync_committee_update() and period(update.attested_header.beacon.slot) == period(
            update.signature_slot
        )

    if has_relevant_committee(new) != has_relevant_committee(old):
        return has_relevant_committee(new)
    new_finality, old_finality = new.is_finality_update(), old.is_finality_update()
    if new_finality != old_finality:
        return new_finality
    if new_finality:

        def has_committee_finality(update: LightClientUpdate) -> bool:
            return period(update.finalized_header.beacon.slot) == period(update.attested_header.beacon.slot)

        if has_committee_finality(new) != has_committee_finality(old):
            return has_committee_finality(new)
    if new_count != old_count:
        return new_count > old_count
    if new.attested_header.beacon.slot != old.attested_header.beacon.slot:
        return new.attested_header.beacon.slot < old.attested_header.beacon.slot
    return new.signature_slot < old.signature_slot


def apply_light_client_update(store: LightClientStore, update: LightClientUpdate) -> None:
    """Take the update's committees and finalized header (rotating committees at a period boundary)."""
    store_period = store.finalized_period
    finalized_period = store.preset.period_at_slot(update.finalized_header.beacon.slot)
    if not store.is_next_sync_committee_known():
        if finalized_period != store_period:
            raise InvalidUpdate(
                RejectReason.FINALIZED_PERIOD_MISMATCH,
                f"finalized period {finalized_period}, store {store_period}",
            )
        store.next_sync_committee = _next_committee_of(update)
    elif finalized_period == store_period + 1:
        store.current_sync_committee = store.next_sync_committee  # type: ignore[assignment]
        store.next_sync_committee = _next_committee_of(update)
        store.previous_max_active_participants = store.current_max_active_participants
        store.current_max_active_participants = 0
    if update.finalized_header.beacon.slot > store.finalized_header.beacon.slot:
        store.finalized_header = update.finalized_header
        if store.finalized_header.beacon.slot > store.optimistic_header.beacon.slot:
            store.optimistic_header = store.finalized_header


def _next_committee_of(update: LightClientUpdate) -> SyncCommittee | None:
    """The update's next committee, or ``None`` (unknown) when it carries none."""
    return update.next_sync_committee if update.is_sync_committee_update() else None


def process_light_client_update(
    store: LightClientStore,
    update: LightClientUpdate,
    current_slot: int,
    genesis_validators_root: bytes,
    config: ForkSchedule,
) -> None:
    """Validate ``update`` and advance ``store``; raises ``InvalidUpdate`` and leaves the store as it was."""
    validate_light_client_update(store, update, current_slot, genesis_validators_root, config)
    participants = update.sync_aggregate.participant_count()
    committee_size = update.sync_aggregate.committee_size
    finalizes = participants * 3 >= committee_size * 2 and (
        update.finalized_header.beacon.slot > store.finalized_header.beacon.slot
        or _has_finalized_next_sync_committee(store, update)
    )
    if finalizes:
        _check_applicable(store, update)

    if store.best_valid_update is None or is_better_update(update, store.best_valid_update, store):
        store.best_valid_update = update
    store.current_max_active_participants = max(store.current_max_active_participants, participants)
    if (
        participants > store.safety_threshold()
        and update.attested_header.beacon.slot > store.optimistic_header.beacon.slot
    ):
        store.optimistic_header = update.attested_header
    if finalizes:
        apply_light_client_update(store, update)
        store.best_valid_update = None


def _has_finalized_next_sync_committee(store: LightClientStore, update: LightClientUpdate) -> bool:
    period = store.preset.period_at_slot
    return (
        not store.is_next_sync_committee_known()
        and update.is_sync_committee_update()
        and update.is_finality_update()
        and period(update.finalized_header.beacon.slot) == period(update.attested_header.beacon.slot)
    )


def _check_applicable(store: LightClientStore, update: LightClientUpdate) -> None:
    """The one check ``apply_light_client_update`` makes, run before the store is written."""
    finalized_period = store.preset.period_at_slot(update.finalized_header.beacon.slot)
    if not store.is_next_sync_committee_known() and finalized_period != store.finalized_period:
        raise InvalidUpdate(
            RejectReason.FINALIZED_PERIOD_MISMATCH,
            f"finalized period {finalized_period}, store {store.finalized_period}",
        )


def process_light_client_store_force_update(store: LightClientStore, current_slot: int) -> None:
    """After ``UPDATE_TIMEOUT`` slots without finality, apply the best valid update as if finalized."""
    best = store.best_valid_update
    if best is None or current_slot <= store.finalized_header.beacon.slot + store.preset.update_timeout:
        return
    if best.finalized_header.beacon.slot <= store.finalized_header.beacon.slot:
        best = dataclasses.replace(best, finalized_header=best.attested_header)
    apply_light_client_update(store, best)
    store.best_valid_update = None


def process_light_client_finality_update(
    store: LightClientStore,
    finality_update: LightClientFinalityUpdate,
    current_slot: int,
    genesis_validators_root: bytes,
    config: ForkSchedule,
) -> None:
    """A finality update is an update without a next sync committee."""
    update = LightClientUpdate.from_finality_update(finality_update, store.preset, store.fork)
    process_light_client_update(store, update, current_slot, genesis_validators_root, config)


def process_light_client_optimistic_update(
    store: LightClientStore,
    optimistic_update: LightClientOptimisticUpdate,
    current_slot: int,
    genesis_validators_root: bytes,
    config: ForkSchedule,
) -> None:
    """An optimistic update is an update without a next sync committee or finality."""
    update = LightClientUpdate.from_optimistic_update(optimistic_update, store.preset, store.fork)
    process_light_client_update(store, update, current_slot, genesis_validators_root, config)
