"""Detection of a fork: two headers for one height, each signed by enough power to be believed.

A light client that receives such a pair from two providers has proof that validators double-signed
(``equivocators``: validators with a valid precommit for each of the two blocks). A header signed by too
little power is not evidence of anything and yields no report.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from light_clients.tendermint.blocks import LightBlock, ValidatorSet
from light_clients.tendermint.hashing import header_hash
from light_clients.tendermint.verifier import TWO_THIRDS, CommitTally, Invalid, validate_light_block

ONE_THIRD = Fraction(1, 3)


@dataclass(frozen=True)
class Misbehaviour:
    """Two conflicting, sufficiently signed headers at ``height``."""

    height: int
    hash_a: bytes
    hash_b: bytes
    equivocators: tuple[bytes, ...]
    """Addresses (ascending) of the validators that precommitted for both blocks."""
    block_a: LightBlock
    block_b: LightBlock


def _sufficiently_signed(block: LightBlock, trusted_validators: ValidatorSet | None) -> bool:
    if validate_light_block(block) is not None:
        return False
    tally = CommitTally(block.signed_header)
    if trusted_validators is None:
        power = tally.power_in(block.validators)
        return not isinstance(power, Invalid) and power.exceeds(TWO_THIRDS)
    power = tally.power_in(trusted_validators)
    return not isinstance(power, Invalid) and power.exceeds(ONE_THIRD)


def _precommitters(block: LightBlock, trusted_validators: ValidatorSet | None) -> set[bytes]:
    """Addresses with a valid precommit for the block, from its own set and the trusted one."""
    tally = CommitTally(block.signed_header)
    found = set(tally.valid_precommits(block.validators))
    if trusted_validators is not None:
        found |= set(tally.valid_precommits(trusted_validators))
    return found


def detect_conflict(
    block_a: LightBlock, block_b: LightBlock, trusted_validators: ValidatorSet | None = None
) -> Misbehaviour | None:
    """A report when ``block_a`` and ``block_b`` are different blocks at one height, both signed by more
    than 1/3 of ``trusted_validators`` (when given) or else by more than 2/3 of their own validator set.
    """
    if block_a.height != block_b.height or block_a.header.chain_id != block_b.header.chain_id:
        return None
    hash_a, hash_b = header_hash(block_a.header), header_hash(block_b.header)
    if hash_a == hash_b:
        return None
    for block in (block_a, block_b):
        if not _sufficiently_signed(block, trusted_validators):
            return None
    both = _precommitters(block_a, trusted_validators) & _precommitters(block_b, trusted_validators)
    return Misbehaviour(block_a.height, hash_a, hash_b, tuple(sorted(both)), block_a, block_b)
