"""Single-step light-client verification of a CometBFT block against a trusted one.

``verify(trusted, untrusted, options, now)`` applies the checks in tendermint-rs's order
(``verify_update_header``) and returns a ``Verdict``:

1. The untrusted block is self-consistent: its validator sets hash to the header's ``validators_hash`` and
   ``next_validators_hash``, its commit is for this header (``block_id.hash == H(header)``, same height),
   has one entry per validator and at least one non-absent signature.             Otherwise ``Invalid``.
2. Against the trusted state: the trusted header is still within the trusting period, time moves forward,
   same chain id; an adjacent block (height + 1) must be signed by the trusted ``next_validators``
   (hash equality), a non-adjacent one must be higher.                            Otherwise ``Invalid``.
3. The untrusted header is not from the future (``time < now + clock_drift``).    Otherwise ``Invalid``.
4. Skipping only: validators of the trusted ``next_validators`` with a valid precommit for the block hold
   more than ``trust_threshold`` of that set's power.                            Otherwise ``NotEnoughTrust``.
5. Valid precommits for the block hold more than 2/3 of the untrusted set's power. Otherwise ``Invalid``.

Every non-absent signature of a validator in the set being tallied is checked (ed25519, libsodium), nil
votes included, and a validator voting twice makes the commit ``Invalid``. Each signature is checked at
most once per call even though steps 4 and 5 may both need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from light_clients.tendermint.blocks import BlockIdFlag, LightBlock, SignedHeader, TrustedState, ValidatorSet
from light_clients.tendermint.hashing import CommitSignBytes, header_hash, validator_set_hash
from light_clients.tendermint.timestamps import NANOS_PER_SECOND, UnixNanos

TWO_THIRDS = Fraction(2, 3)


@dataclass(frozen=True)
class VerifyOptions:
    """Trust parameters. Durations are nanoseconds (``VerifyOptions.from_seconds`` for seconds)."""

    trusting_period: int
    clock_drift: int = 0
    trust_threshold: Fraction = Fraction(1, 3)

    def __post_init__(self) -> None:
        if not Fraction(1, 3) <= self.trust_threshold <= 1:
            raise ValueError(f"trust_threshold must be in [1/3, 1], got {self.trust_threshold}")
        if self.trusting_period <= 0 or self.clock_drift < 0:
            raise ValueError("trusting_period must be positive and clock_drift non-negative")

    @classmethod
    def from_seconds(
        cls, trusting_period: float, clock_drift: float = 0.0, trust_threshold: Fraction = Fraction(1, 3)
    ) -> VerifyOptions:
        return cls(
            round(trusting_period * NANOS_PER_SECOND), round(clock_drift * NANOS_PER_SECOND), trust_threshold
        )


@dataclass(frozen=True)
class Success:
    """The untrusted block is verified and may be trusted from now on."""

    def __str__(self) -> str:
        return "SUCCESS"


@dataclass(frozen=True)
class NotEnoughTrust:
    """Too little of the trusted validators' power signed to skip there; try an intermediate height."""

    reason: str
    tallied: int
    total: int

    def __str__(self) -> str:
        return f"NOT_ENOUGH_TRUST: {self.reason} ({self.tallied}/{self.total})"


@dataclass(frozen=True)
class Invalid:
    """The untrusted block must be rejected (bad data, bad signature, expired trust, ...)."""

    reason: str

    def __str__(self) -> str:
        return f"INVALID: {self.reason}"


Verdict = Success | NotEnoughTrust | Invalid


@lru_cache(maxsize=4096)
def _verify_key(pub_key: bytes) -> VerifyKey:
    return VerifyKey(pub_key)


def verify_signature(pub_key: bytes, message: bytes, signature: bytes) -> bool:
    """ed25519 verification of ``signature`` over ``message``."""
    try:
        _verify_key(pub_key).verify(message, signature)
    except BadSignatureError:
        return False
    return True


@dataclass(frozen=True)
class VotingPower:
    """Power of the valid precommits for the block (``tallied``) out of a set's ``total``."""

    tallied: int
    total: int

    def exceeds(self, fraction: Fraction) -> bool:
        return self.tallied * fraction.denominator > self.total * fraction.numerator


@dataclass
class CommitTally:
    """Tallies a commit's valid precommits against validator sets, checking each signature once."""

    signed_header: SignedHeader
    _sign_bytes: CommitSignBytes = field(init=False)
    _checked: dict[int, bool] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._sign_bytes = CommitSignBytes(self.signed_header.header.chain_id, self.signed_header.commit)

    def _signature_valid(self, index: int, pub_key: bytes) -> bool:
        known = self._checked.get(index)
        if known is None:
            sig = self.signed_header.commit.signatures[index]
            known = verify_signature(pub_key, self._sign_bytes.of(sig), sig.signature)
            self._checked[index] = known
        return known

    def valid_precommits(self, validator_set: ValidatorSet) -> dict[bytes, int]:
        """Address -> power of the members of ``validator_set`` with a valid precommit for the block."""
        by_address = validator_set.by_address()
        found: dict[bytes, int] = {}
        for index, sig in enumerate(self.signed_header.commit.signatures):
            validator = by_address.get(sig.validator_address)
            if sig.block_id_flag != BlockIdFlag.COMMIT or validator is None:
                continue
            if self._signature_valid(index, validator.pub_key):
                found[validator.address] = validator.voting_power
        return found

    def power_in(self, validator_set: ValidatorSet) -> VotingPower | Invalid:
        """Power of ``validator_set`` members that precommitted for the block, or why the commit is bad."""
        by_address = validator_set.by_address()
        seen: set[bytes] = set()
        tallied = 0
        for index, sig in enumerate(self.signed_header.commit.signatures):
            if sig.block_id_flag == BlockIdFlag.ABSENT:
                continue
            validator = by_address.get(sig.validator_address)
            if validator is None:
                continue
            if sig.validator_address in seen:
                return Invalid(f"validator {sig.validator_address.hex().upper()} voted twice")
            seen.add(sig.validator_address)
            if not self._signature_valid(index, validator.pub_key):
                return Invalid(
                    f"bad signature at commit index {index} from {sig.validator_address.hex().upper()}"
                )
            if sig.block_id_flag == BlockIdFlag.COMMIT:
                tallied += validator.voting_power
        return VotingPower(tallied, validator_set.total_voting_power())


def validate_light_block(block: LightBlock) -> Invalid | None:
    """Step 1: the block's own parts agree with each other."""
    header, commit = block.header, block.commit
    if validator_set_hash(block.validators) != header.validators_hash:
        return Invalid("validator set does not hash to header.validators_hash")
    if validator_set_hash(block.next_validators) != header.next_validators_hash:
        return Invalid("next validator set does not hash to header.next_validators_hash")
    if commit.height != header.height:
        return Invalid(f"commit height {commit.height} != header height {header.height}")
    if commit.block_id.hash != header_hash(header):
        return Invalid("commit is for another block: block_id.hash != hash of the header")
    if all(sig.block_id_flag == BlockIdFlag.ABSENT for sig in commit.signatures):
        return Invalid("commit has no signatures")
    validator_count = len(block.validators.validators)
    if len(commit.signatures) != validator_count:
        return Invalid(f"commit has {len(commit.signatures)} signatures for {validator_count} validators")
    return None


def verify(
    trusted: LightBlock | TrustedState, untrusted: LightBlock, options: VerifyOptions, now: UnixNanos | int
) -> Verdict:
    """Whether ``untrusted`` may be trusted given ``trusted``; see the module docstring for the checks."""
    state = TrustedState.of(trusted)
    problem = validate_light_block(untrusted)
    if problem is not None:
        return problem
    trusted_header, header = state.header, untrusted.header
    if trusted_header.time + options.trusting_period <= now:
        return Invalid("trusted header is outside the trusting period")
    if header.time <= trusted_header.time:
        return Invalid("untrusted header time is not after the trusted header time")
    if header.chain_id != trusted_header.chain_id:
        return Invalid(f"chain id {header.chain_id!r} != trusted {trusted_header.chain_id!r}")
    adjacent = header.height == trusted_header.height + 1
    if adjacent:
        if header.validators_hash != trusted_header.next_validators_hash:
            return Invalid("adjacent header's validators_hash != trusted next_validators_hash")
    elif header.height <= trusted_header.height:
        return Invalid(f"height {header.height} is not above the trusted height {trusted_header.height}")
    if header.time >= now + options.clock_drift:
        return Invalid("header is from the future")
    tally = CommitTally(untrusted.signed_header)
    if not adjacent:
        trust = tally.power_in(state.next_validators)
        if isinstance(trust, Invalid):
            return trust
        if not trust.exceeds(options.trust_threshold):
            return NotEnoughTrust(
                f"trusted validators signed no more than {options.trust_threshold}",
                trust.tallied,
                trust.total,
            )
    own = tally.power_in(untrusted.validators)
    if isinstance(own, Invalid):
        return own
    if not own.exceeds(TWO_THIRDS):
        return Invalid(f"signers hold no more than 2/3 of the voting power ({own.tallied}/{own.total})")
    return Success()


def verify_commit(signed_header: SignedHeader, validators: ValidatorSet) -> Verdict:
    """A commit checked on its own: for this header, by ``validators``, with more than 2/3 of their power.

    No trusted state, no clock: what a light client does with a validator set it already trusts (genesis).
    """
    if validator_set_hash(validators) != signed_header.header.validators_hash:
        return Invalid("validator set does not hash to header.validators_hash")
    if signed_header.commit.height != signed_header.header.height:
        return Invalid("commit height != header height")
    if signed_header.commit.block_id.hash != header_hash(signed_header.header):
        return Invalid("commit is for another block: block_id.hash != hash of the header")
    power = CommitTally(signed_header).power_in(validators)
    if isinstance(power, Invalid):
        return power
    if not power.exceeds(TWO_THIRDS):
        return Invalid(f"signers hold no more than 2/3 of the voting power ({power.tallied}/{power.total})")
    return Success()
