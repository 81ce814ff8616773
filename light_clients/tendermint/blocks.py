"""The CometBFT data a light client handles: headers, commits, validator sets and light blocks.

Plain frozen dataclasses; hashes, addresses, keys and signatures are raw ``bytes``, times are Unix
nanoseconds. Parsing from and writing to CometBFT JSON is in ``rpc_json``; hashing in ``hashing``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum

from light_clients.tendermint.timestamps import UnixNanos

ADDRESS_LENGTH = 20
ED25519_PUBKEY_LENGTH = 32
ED25519_SIGNATURE_LENGTH = 64


class BlockIdFlag(IntEnum):
    """What a validator's slot in a commit holds."""

    ABSENT = 1
    COMMIT = 2
    NIL = 3


def address_of(pub_key: bytes) -> bytes:
    """A validator's address: the first 20 bytes of sha256 of its ed25519 public key."""
    return hashlib.sha256(pub_key).digest()[:ADDRESS_LENGTH]


@dataclass(frozen=True)
class PartSetHeader:
    total: int = 0
    hash: bytes = b""


@dataclass(frozen=True)
class BlockId:
    hash: bytes = b""
    part_set_header: PartSetHeader = field(default_factory=PartSetHeader)

    def is_zero(self) -> bool:
        return not self.hash and self.part_set_header == PartSetHeader()


@dataclass(frozen=True)
class ConsensusVersion:
    block: int = 11
    app: int = 0


@dataclass(frozen=True)
class Header:
    version: ConsensusVersion
    chain_id: str
    height: int
    time: UnixNanos
    last_block_id: BlockId
    last_commit_hash: bytes
    data_hash: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    consensus_hash: bytes
    app_hash: bytes
    last_results_hash: bytes
    evidence_hash: bytes
    proposer_address: bytes


@dataclass(frozen=True)
class CommitSig:
    """One validator's slot in a commit: absent, a precommit for the block, or a precommit for nil."""

    block_id_flag: BlockIdFlag
    validator_address: bytes
    timestamp: UnixNanos
    signature: bytes


@dataclass(frozen=True)
class Commit:
    height: int
    round: int
    block_id: BlockId
    signatures: tuple[CommitSig, ...]


@dataclass(frozen=True)
class Validator:
    address: bytes
    pub_key: bytes
    voting_power: int
    proposer_priority: int = 0


@dataclass(frozen=True)
class ValidatorSet:
    """Validators in the order they were given (JSON order); ``hashing`` sorts them canonically."""

    validators: tuple[Validator, ...]
    proposer: Validator | None = None

    def total_voting_power(self) -> int:
        return sum(v.voting_power for v in self.validators)

    def by_address(self) -> dict[bytes, Validator]:
        return {v.address: v for v in self.validators}


@dataclass(frozen=True)
class SignedHeader:
    header: Header
    commit: Commit


@dataclass(frozen=True)
class LightBlock:
    """A signed header with the validator set that signed it and the one that signs the next block."""

    signed_header: SignedHeader
    validators: ValidatorSet
    next_validators: ValidatorSet

    @property
    def header(self) -> Header:
        return self.signed_header.header

    @property
    def commit(self) -> Commit:
        return self.signed_header.commit

    @property
    def height(self) -> int:
        return self.signed_header.header.height


@dataclass(frozen=True)
class TrustedState:
    """What a light client keeps of a block it trusts: the header and the next validator set."""

    header: Header
    next_validators: ValidatorSet

    @property
    def height(self) -> int:
        return self.header.height

    @classmethod
    def of(cls, block: LightBlock | TrustedState) -> TrustedState:
        if isinstance(block, TrustedState):
            return block
        return cls(block.header, block.next_validators)
