"""Tendermint / CometBFT light client: verify Cosmos-chain headers from a trusted block.

Modules: ``blocks`` (the data), ``rpc_json`` (CometBFT JSON in and out), ``hashing`` (header and
validator-set hashes, vote sign bytes; ``protobuf`` is the encoder under it), ``verifier`` (single-step
``verify`` returning a ``Verdict``), ``bisection`` (``verify_to_height`` over a ``LightBlockProvider``),
``misbehaviour`` (``detect_conflict``), ``builder`` (signed test chains), ``conformance`` (vector runner
CLI), ``bench`` (skipping-verification throughput), ``errors``.
"""

from light_clients.tendermint.bisection import verify_to_height
from light_clients.tendermint.blocks import (
    BlockId,
    BlockIdFlag,
    Commit,
    CommitSig,
    Header,
    LightBlock,
    SignedHeader,
    TrustedState,
    Validator,
    ValidatorSet,
)
from light_clients.tendermint.errors import (
    LightBlockParseError,
    LightBlockUnavailable,
    TargetHeightBelowTrusted,
    TendermintLightClientError,
    VerificationFailed,
)
from light_clients.tendermint.hashing import header_hash, validator_set_hash
from light_clients.tendermint.misbehaviour import Misbehaviour, detect_conflict
from light_clients.tendermint.provider import LightBlockProvider, MemoryLightBlockProvider
from light_clients.tendermint.verifier import (
    Invalid,
    NotEnoughTrust,
    Success,
    Verdict,
    VerifyOptions,
    verify,
    verify_commit,
)

__all__ = [
    "BlockId",
    "BlockIdFlag",
    "Commit",
    "CommitSig",
    "Header",
    "Invalid",
    "LightBlock",
    "LightBlockParseError",
    "LightBlockProvider",
    "LightBlockUnavailable",
    "MemoryLightBlockProvider",
    "Misbehaviour",
    "NotEnoughTrust",
    "SignedHeader",
    "Success",
    "TargetHeightBelowTrusted",
    "TendermintLightClientError",
    "TrustedState",
    "Validator",
    "ValidatorSet",
    "Verdict",
    "VerificationFailed",
    "VerifyOptions",
    "detect_conflict",
    "header_hash",
    "validator_set_hash",
    "verify",
    "verify_commit",
    "verify_to_height",
]
