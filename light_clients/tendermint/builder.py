"""Builds real CometBFT light blocks for tests, benchmarks and devnets: deterministic ed25519 validator
keys, headers with real hashes, commits with real signatures.

    keys = validator_keys(4)
    committee = Committee.equal_power(keys, power=10)
    chain = build_chain("test-chain", lambda height: committee, first_height=1, last_height=100)
    verify(chain[1], chain[100], options, now)   # Success

Everything is a pure function of the seeds, heights and times given, so two runs build identical chains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from nacl.signing import SigningKey

from light_clients.tendermint.blocks import (
    BlockId,
    BlockIdFlag,
    Commit,
    CommitSig,
    ConsensusVersion,
    Header,
    LightBlock,
    PartSetHeader,
    SignedHeader,
    Validator,
    ValidatorSet,
    address_of,
)
from light_clients.tendermint.hashing import CommitSignBytes, canonical_order, header_hash, validator_set_hash
from light_clients.tendermint.timestamps import NANOS_PER_SECOND, UnixNanos, parse_rfc3339

EMPTY_HASH = hashlib.sha256(b"").digest()
DEFAULT_GENESIS_TIME = parse_rfc3339("2026-01-01T00:00:00Z")
DEFAULT_VERSION = ConsensusVersion(block=11, app=0)
DEFAULT_CONSENSUS_HASH = hashlib.sha256(b"xchain-relayer test consensus params").digest()


@dataclass(frozen=True)
class ValidatorKey:
    """An ed25519 validator key from a 32-byte seed."""

    seed: bytes

    @cached_property
    def signing_key(self) -> SigningKey:
        return SigningKey(self.seed)

    @cached_property
    def pub_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def address(self) -> bytes:
        return address_of(self.pub_key)

    def validator(self, voting_power: int) -> Validator:
        return Validator(self.address, self.pub_key, voting_power)

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature


def validator_key(seed: str | bytes) -> ValidatorKey:
    """A deterministic key: the ed25519 seed is sha256 of a fixed label and ``seed``."""
    raw = seed.encode() if isinstance(seed, str) else seed
    return ValidatorKey(hashlib.sha256(b"xchain-relayer/tendermint-validator/" + raw).digest())


def validator_keys(count: int, prefix: str = "validator") -> list[ValidatorKey]:
    """``count`` deterministic keys with seeds ``{prefix}-0``, ``{prefix}-1``, ..."""
    return [validator_key(f"{prefix}-{i}") for i in range(count)]


@dataclass(frozen=True)
class Committee:
    """Validators together with their keys: a validator set a test can sign with."""

    members: tuple[tuple[ValidatorKey, int], ...]

    @classmethod
    def equal_power(cls, keys: Iterable[ValidatorKey], power: int = 10) -> Committee:
        return cls(tuple((key, power) for key in keys))

    @classmethod
    def with_powers(cls, members: Iterable[tuple[ValidatorKey, int]]) -> Committee:
        return cls(tuple(members))

    @cached_property
    def validator_set(self) -> ValidatorSet:
        """In canonical order, as a node reports it; no proposer (as ``/validators`` reports it)."""
        return ValidatorSet(tuple(canonical_order([key.validator(power) for key, power in self.members])))

    @cached_property
    def keys_by_address(self) -> dict[bytes, ValidatorKey]:
        return {key.address: key for key, _ in self.members}


def part_set_header_for(block_hash: bytes) -> PartSetHeader:
    """A stand-in part-set header (one part) for blocks that have no real body."""
    return PartSetHeader(1, hashlib.sha256(b"parts" + block_hash).digest())


def build_header(
    *,
    chain_id: str,
    height: int,
    time: UnixNanos | int,
    validators: ValidatorSet,
    next_validators: ValidatorSet,
    last_block_id: BlockId | None = None,
    app_hash: bytes = b"",
    last_commit_hash: bytes = EMPTY_HASH,
    data_hash: bytes = EMPTY_HASH,
    proposer_address: bytes | None = None,
    version: ConsensusVersion = DEFAULT_VERSION,
) -> Header:
    """A header whose ``validators_hash`` and ``next_validators_hash`` are the real hashes of the sets."""
    ordered = canonical_order(validators.validators)
    return Header(
        version=version,
        chain_id=chain_id,
        height=height,
        time=UnixNanos(time),
        last_block_id=last_block_id or BlockId(),
        last_commit_hash=last_commit_hash,
        data_hash=data_hash,
        validators_hash=validator_set_hash(validators),
        next_validators_hash=validator_set_hash(next_validators),
        consensus_hash=DEFAULT_CONSENSUS_HASH,
        app_hash=app_hash,
        last_results_hash=EMPTY_HASH,
        evidence_hash=EMPTY_HASH,
        proposer_address=proposer_address if proposer_address is not None else ordered[0].address,
    )


def sign_commit(
    header: Header,
    committee: Committee,
    *,
    signers: Collection[bytes] | None = None,
    nil_voters: Collection[bytes] = (),
    round: int = 0,
    vote_time: UnixNanos | int | None = None,
    block_id: BlockId | None = None,
) -> Commit:
    """A commit for ``header``: one slot per validator in canonical order.

    ``signers`` (addresses; default: everyone) precommit for the block, ``nil_voters`` precommit nil,
    the rest are absent. Votes are timestamped ``vote_time`` (default: header time + 1 s).
    """
    target = block_id or BlockId(header_hash(header), part_set_header_for(header_hash(header)))
    voting_for_block = set(committee.keys_by_address) if signers is None else set(signers)
    timestamp = UnixNanos(header.time + NANOS_PER_SECOND if vote_time is None else vote_time)
    unsigned = Commit(header.height, round, target, ())
    sign_bytes = CommitSignBytes(header.chain_id, unsigned)
    signatures = []
    for validator in committee.validator_set.validators:
        if validator.address in voting_for_block:
            flag = BlockIdFlag.COMMIT
        elif validator.address in nil_voters:
            flag = BlockIdFlag.NIL
        else:
            signatures.append(CommitSig(BlockIdFlag.ABSENT, b"", UnixNanos(0), b""))
            continue
        sig = CommitSig(flag, validator.address, timestamp, b"")
        signature = committee.keys_by_address[validator.address].sign(sign_bytes.of(sig))
        signatures.append(CommitSig(flag, validator.address, timestamp, signature))
    return Commit(header.height, round, target, tuple(signatures))


def build_light_block(
    *,
    chain_id: str,
    height: int,
    time: UnixNanos | int,
    committee: Committee,
    next_committee: Committee | None = None,
    last_block_id: BlockId | None = None,
    app_hash: bytes = b"",
    signers: Collection[bytes] | None = None,
) -> LightBlock:
    """A header signed by ``committee`` (all of it unless ``signers`` is given) with both validator sets."""
    next_committee = next_committee or committee
    header = build_header(
        chain_id=chain_id,
        height=height,
        time=time,
        validators=committee.validator_set,
        next_validators=next_committee.validator_set,
        last_block_id=last_block_id,
        app_hash=app_hash,
    )
    commit = sign_commit(header, committee, signers=signers)
    return LightBlock(SignedHeader(header, commit), committee.validator_set, next_committee.validator_set)


def build_chain(
    chain_id: str,
    committee_at: Callable[[int], Committee] | Sequence[Committee],
    *,
    first_height: int = 1,
    last_height: int,
    genesis_time: UnixNanos | int = DEFAULT_GENESIS_TIME,
    block_interval: int = NANOS_PER_SECOND,
) -> dict[int, LightBlock]:
    """Light blocks ``first_height..last_height``, linked by ``last_block_id``, block ``h`` signed by all of
    ``committee_at(h)`` (or ``committee_at[h - first_height]``), one block every ``block_interval`` ns.
    """

    def committee(height: int) -> Committee:
        if callable(committee_at):
            return committee_at(height)
        return committee_at[height - first_height]

    blocks: dict[int, LightBlock] = {}
    last_block_id: BlockId | None = None
    for height in range(first_height, last_height + 1):
        block = build_light_block(
            chain_id=chain_id,
            height=height,
            time=genesis_time + (height - first_height) * block_interval,
            committee=committee(height),
            next_committee=committee(height + 1),
            last_block_id=last_block_id,
            app_hash=height.to_bytes(8, "big"),
        )
        blocks[height] = block
        last_block_id = block.commit.block_id
    return blocks
