"""Sync-committee signature verification: domain, signing root and BLS FastAggregateVerify (blspy, POP).

Parsing a compressed G1 public key includes a subgroup check and costs about 0.1 ms; a mainnet committee
has 512 of them and signs a whole period (~27 h), so parsed keys are cached per committee.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import blspy

from light_clients.ethereum.consensus.containers import BeaconBlockHeader, SyncAggregate, SyncCommittee
from light_clients.ethereum.consensus.ssz import merkleize

DOMAIN_SYNC_COMMITTEE = bytes.fromhex("07000000")


def compute_fork_data_root(fork_version: bytes, genesis_validators_root: bytes) -> bytes:
    return merkleize([fork_version.ljust(32, b"\x00"), genesis_validators_root])


def compute_domain(domain_type: bytes, fork_version: bytes, genesis_validators_root: bytes) -> bytes:
    return domain_type + compute_fork_data_root(fork_version, genesis_validators_root)[:28]


def compute_signing_root(header: BeaconBlockHeader, domain: bytes) -> bytes:
    return merkleize([header.hash_tree_root(), domain])


class CommitteeKeyCache:
    """Parsed G1 public keys of the most recently used committees (at most ``capacity``)."""

    def __init__(self, capacity: int = 4) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[tuple[bytes, ...], list[blspy.G1Element] | None] = OrderedDict()

    def keys_of(self, committee: SyncCommittee) -> list[blspy.G1Element] | None:
        """The committee's parsed keys, or ``None`` if any key is not a valid G1 point."""
        if committee.pubkeys in self._keys:
            self._keys.move_to_end(committee.pubkeys)
            return self._keys[committee.pubkeys]
        parsed: list[blspy.G1Element] | None
        try:
            parsed = [blspy.G1Element.from_bytes(key) for key in committee.pubkeys]
        except (ValueError, RuntimeError):
            parsed = None
        self._keys[committee.pubkeys] = parsed
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return parsed

    def __len__(self) -> int:
        return len(self._keys)


def fast_aggregate_verify(pubkeys: Sequence[blspy.G1Element], message: bytes, signature: bytes) -> bool:
    """BLS FastAggregateVerify (proof-of-possession ciphersuite); malformed signatures just fail."""
    if not pubkeys:
        return False
    try:
        parsed_signature = blspy.G2Element.from_bytes(signature)
    except (ValueError, RuntimeError):
        return False
    return bool(blspy.PopSchemeMPL.fast_aggregate_verify(list(pubkeys), message, parsed_signature))


def verify_sync_aggregate(
    committee: SyncCommittee,
    aggregate: SyncAggregate,
    attested: BeaconBlockHeader,
    fork_version: bytes,
    genesis_validators_root: bytes,
    key_cache: CommitteeKeyCache,
) -> bool:
    """Whether the committee members named by the bits signed ``attested`` in the fork's sync domain."""
    keys = key_cache.keys_of(committee)
    if keys is None:
        return False
    participants = [keys[index] for index in aggregate.participant_indices()]
    domain = compute_domain(DOMAIN_SYNC_COMMITTEE, fork_version, genesis_validators_root)
    return fast_aggregate_verify(
        participants, compute_signing_root(attested, domain), aggregate.sync_committee_signature
    )
