"""CometBFT's hashes and sign bytes, byte for byte.

* ``merkle_root``: RFC 6962 simple Merkle tree (leaf ``sha256(0x00||x)``, inner ``sha256(0x01||l||r)``,
  split at the largest power of two below n, empty tree ``sha256("")``).
* ``header_hash``: the tree over the header's 14 fields, each protobuf-encoded as CometBFT's ``cdcEncode``.
* ``validator_set_hash``: the tree over ``SimpleValidator{pub_key, voting_power}`` in canonical order
  (voting power descending, then address ascending).
* ``CommitSignBytes``: the length-prefixed ``CanonicalVote`` each commit signature signs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from light_clients.tendermint import protobuf as pb
from light_clients.tendermint.blocks import (
    BlockId,
    BlockIdFlag,
    Commit,
    CommitSig,
    Header,
    Validator,
    ValidatorSet,
)
from light_clients.tendermint.timestamps import split_seconds

PRECOMMIT_TYPE = 2
_LEAF_PREFIX = b"\x00"
_INNER_PREFIX = b"\x01"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def merkle_root(items: Sequence[bytes]) -> bytes:
    """The RFC 6962 root of ``items`` (already encoded leaves, not yet hashed)."""
    if not items:
        return _sha256(b"")
    return _subtree_root([_sha256(_LEAF_PREFIX + item) for item in items])


def _subtree_root(leaf_hashes: Sequence[bytes]) -> bytes:
    count = len(leaf_hashes)
    if count == 1:
        return leaf_hashes[0]
    split = 1 << ((count - 1).bit_length() - 1)
    left = _subtree_root(leaf_hashes[:split])
    right = _subtree_root(leaf_hashes[split:])
    return _sha256(_INNER_PREFIX + left + right)


def encode_timestamp(unix_nanos: int) -> bytes:
    """``google.protobuf.Timestamp{1: seconds, 2: nanos}``."""
    seconds, nanos = split_seconds(unix_nanos)
    return pb.varint_field(1, seconds) + pb.varint_field(2, nanos)


def encode_block_id(block_id: BlockId) -> bytes:
    """``BlockID{1: hash, 2: PartSetHeader{1: total, 2: hash}}``; field 2 is never omitted."""
    part_set = pb.varint_field(1, block_id.part_set_header.total) + pb.bytes_field(
        2, block_id.part_set_header.hash
    )
    return pb.bytes_field(1, block_id.hash) + pb.message_field(2, part_set)


def header_fields(header: Header) -> list[bytes]:
    """The 14 encoded leaves of the header hash, in CometBFT's order."""
    wrapped_bytes = [
        header.last_commit_hash,
        header.data_hash,
        header.validators_hash,
        header.next_validators_hash,
        header.consensus_hash,
        header.app_hash,
        header.last_results_hash,
        header.evidence_hash,
        header.proposer_address,
    ]
    return [
        pb.varint_field(1, header.version.block) + pb.varint_field(2, header.version.app),
        pb.string_field(1, header.chain_id),
        pb.varint_field(1, header.height),
        encode_timestamp(header.time),
        encode_block_id(header.last_block_id),
        *(pb.bytes_field(1, value) for value in wrapped_bytes),
    ]


def header_hash(header: Header) -> bytes:
    """The block hash: what ``commit.block_id.hash`` must equal."""
    return merkle_root(header_fields(header))


def canonical_order(validators: Sequence[Validator]) -> list[Validator]:
    """Voting power descending, then address ascending (CometBFT's ``ValidatorsByVotingPower``)."""
    return sorted(validators, key=lambda v: (-v.voting_power, v.address))


def encode_simple_validator(validator: Validator) -> bytes:
    """``SimpleValidator{1: PublicKey{1: ed25519}, 2: voting_power}``."""
    public_key = pb.message_field(1, validator.pub_key)  # oneof member: present even if empty
    return pb.message_field(1, public_key) + pb.varint_field(2, validator.voting_power)


def validator_set_hash(validator_set: ValidatorSet) -> bytes:
    """What ``header.validators_hash`` / ``next_validators_hash`` must equal."""
    ordered = canonical_order(validator_set.validators)
    return merkle_root([encode_simple_validator(v) for v in ordered])


def encode_canonical_block_id(block_id: BlockId) -> bytes:
    """``CanonicalBlockID{1: hash, 2: CanonicalPartSetHeader{1: total, 2: hash}}``."""
    return encode_block_id(block_id)  # same field numbers and types as BlockID


class CommitSignBytes:
    """Sign bytes of every signature of one commit; the parts shared by all votes are encoded once."""

    def __init__(self, chain_id: str, commit: Commit) -> None:
        self._head = (
            pb.varint_field(1, PRECOMMIT_TYPE)
            + pb.sfixed64_field(2, commit.height)
            + pb.sfixed64_field(3, commit.round)
        )
        self._block_id = (
            b""
            if commit.block_id.is_zero()
            else pb.message_field(4, encode_canonical_block_id(commit.block_id))
        )
        self._chain_id = pb.string_field(6, chain_id)

    def of(self, sig: CommitSig) -> bytes:
        """The length-prefixed ``CanonicalVote`` for ``sig`` (block id only when it voted for the block)."""
        block_id = self._block_id if sig.block_id_flag == BlockIdFlag.COMMIT else b""
        vote = self._head + block_id + pb.message_field(5, encode_timestamp(sig.timestamp)) + self._chain_id
        return pb.length_prefixed(vote)


def vote_sign_bytes(chain_id: str, commit: Commit, index: int) -> bytes:
    """Sign bytes of ``commit.signatures[index]``."""
    return CommitSignBytes(chain_id, commit).of(commit.signatures[index])
