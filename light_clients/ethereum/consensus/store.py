"""The light-client store and its initialisation from a trusted block root and a bootstrap.

Security: the only trust input is ``trusted_block_root`` (obtained out of band, e.g. a recent
finalized checkpoint). The bootstrap must hash to it, its execution header must be proved against
the body root, and its sync committee must be proved against the header's state root; from then on
every header is accepted only with a valid sync-committee signature (see ``sync.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from light_clients.ethereum.consensus.containers import (
    LightClientBootstrap,
    LightClientHeader,
    LightClientUpdate,
    SyncCommittee,
)
from light_clients.ethereum.consensus.errors import InvalidBootstrap, RejectReason
from light_clients.ethereum.consensus.preset import LightClientFork, Preset
from light_clients.ethereum.consensus.signing import CommitteeKeyCache
from light_clients.ethereum.consensus.ssz import is_valid_merkle_branch


@dataclass
class LightClientStore:
    """The spec's ``LightClientStore``, plus the preset and fork it runs under and a BLS key cache.

    ``next_sync_committee`` is ``None`` while unknown. Processing replaces attributes and never
    mutates a value in place, so a shallow copy is a faithful snapshot.
    """

    finalized_header: LightClientHeader
    current_sync_committee: SyncCommittee
    next_sync_committee: SyncCommittee | None
    best_valid_update: LightClientUpdate | None
    optimistic_header: LightClientHeader
    previous_max_active_participants: int
    current_max_active_participants: int
    preset: Preset
    fork: LightClientFork
    key_cache: CommitteeKeyCache = field(default_factory=CommitteeKeyCache, compare=False, repr=False)

    def is_next_sync_committee_known(self) -> bool:
        return self.next_sync_committee is not None

    @property
    def finalized_period(self) -> int:
        return self.preset.period_at_slot(self.finalized_header.beacon.slot)

    def safety_threshold(self) -> int:
        """Participation an update needs to move the optimistic header: half the recent maximum."""
        return max(self.previous_max_active_participants, self.current_max_active_participants) // 2


def is_valid_light_client_header(header: LightClientHeader, fork: LightClientFork) -> bool:
    """Whether the execution payload header is proved against ``beacon.body_root``."""
    gindex = fork.execution_payload_gindex
    return is_valid_merkle_branch(
        header.execution.hash_tree_root(),
        header.execution_branch,
        gindex.depth,
        gindex.subtree_index,
        header.beacon.body_root,
    )


def initialize_light_client_store(
    trusted_block_root: bytes,
    bootstrap: LightClientBootstrap,
    preset: Preset,
    fork: LightClientFork,
    key_cache: CommitteeKeyCache | None = None,
) -> LightClientStore:
    """Check ``bootstrap`` against ``trusted_block_root`` and start a store at its header.

    Raises ``InvalidBootstrap`` if the header is not the trusted one or a branch does not verify.
    """
    preset.check_committee_size(len(bootstrap.current_sync_committee.pubkeys))
    if not is_valid_light_client_header(bootstrap.header, fork):
        raise InvalidBootstrap(RejectReason.BAD_EXECUTION_BRANCH, "bootstrap header")
    if bootstrap.header.beacon.hash_tree_root() != trusted_block_root:
        raise InvalidBootstrap(RejectReason.BOOTSTRAP_ROOT_MISMATCH, f"expected 0x{trusted_block_root.hex()}")
    gindex = fork.current_sync_committee_gindex
    if not is_valid_merkle_branch(
        bootstrap.current_sync_committee.root,
        bootstrap.current_sync_committee_branch,
        gindex.depth,
        gindex.subtree_index,
        bootstrap.header.beacon.state_root,
    ):
        raise InvalidBootstrap(RejectReason.BAD_CURRENT_SYNC_COMMITTEE_BRANCH)
    return LightClientStore(
        finalized_header=bootstrap.header,
        current_sync_committee=bootstrap.current_sync_committee,
        next_sync_committee=None,
        best_valid_update=None,
        optimistic_header=bootstrap.header,
        previous_max_active_participants=0,
        current_max_active_participants=0,
        preset=preset,
        fork=fork,
        key_cache=key_cache if key_cache is not None else CommitteeKeyCache(),
    )
