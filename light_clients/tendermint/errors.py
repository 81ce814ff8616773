"""Errors of the Tendermint light client.

    RelayerError                          (config.errors)
    +-- TendermintLightClientError        every error this package raises
        +-- LightBlockParseError (ValueError)   malformed CometBFT JSON; names the field path
        +-- LightBlockUnavailable         a provider could not supply a block (yet)
        +-- VerificationFailed            bisection met a block that verifies as Invalid (carries the verdict)
        +-- TargetHeightBelowTrusted      bisection asked to go backwards

A verdict (``Success``, ``NotEnoughTrust``, ``Invalid``) is a value, not an error: ``verify`` never raises
for a bad block. Only the bisection loop, which has nowhere left to go, turns a verdict into an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from light_clients.base import LightClientError

if TYPE_CHECKING:
    from light_clients.tendermint.verifier import Verdict


class TendermintLightClientError(LightClientError):
    """Root of the Tendermint light-client errors."""


class LightBlockParseError(TendermintLightClientError, ValueError):
    """CometBFT JSON could not be read. ``field`` is the dotted path (``signed_header.commit.height``)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


class LightBlockUnavailable(TendermintLightClientError):
    """A provider has no light block at ``height`` (yet, or at all): asking again later may find it."""

    def __init__(self, height: int, problem: str = "not available") -> None:
        self.height = height
        super().__init__(f"light block at height {height}: {problem}")


class VerificationFailed(TendermintLightClientError):
    """Bisection reached a block whose verdict is not recoverable by trying an intermediate height."""

    def __init__(self, height: int, verdict: Verdict) -> None:
        self.height = height
        self.verdict = verdict
        super().__init__(f"light block at height {height} failed verification: {verdict}")


class TargetHeightBelowTrusted(TendermintLightClientError, ValueError):
    """Backwards verification is not supported: the target is below the trusted height."""

    def __init__(self, target: int, trusted: int) -> None:
        self.target = target
        self.trusted = trusted
        super().__init__(f"target height {target} is below the trusted height {trusted}")
