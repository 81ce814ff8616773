"""Errors of the Ethereum consensus light client.

    RelayerError (config.errors)
    +-- LightClientError               anything this light client refuses
        +-- MalformedSsz (ValueError)  bytes that do not decode as the expected SSZ container
        +-- InvalidUpdate              an update that fails a check; ``reason`` says which
            +-- InvalidBootstrap       the bootstrap does not match the trusted root or prove its committee

A rejected update never changes the store: every check runs before the first write.
"""

from __future__ import annotations

import enum

from light_clients.base import LightClientError as BaseLightClientError


class LightClientError(BaseLightClientError):
    """Root of the consensus light client's errors. Not retryable: the same bytes fail the same way."""


class MalformedSsz(LightClientError, ValueError):
    """The bytes are not a valid SSZ encoding of the container asked for."""


class RejectReason(enum.StrEnum):
    """Why an update was refused; the value doubles as a log field and metric label."""

    PARTICIPATION_BELOW_MINIMUM = "participation below minimum"
    BAD_EXECUTION_BRANCH = "bad execution branch"
    SIGNATURE_SLOT_IN_FUTURE = "signature_slot after current slot"
    SIGNATURE_SLOT_NOT_AFTER_ATTESTED = "signature_slot not after attested slot"
    FINALIZED_AFTER_ATTESTED = "finalized slot after attested slot"
    WRONG_SYNC_COMMITTEE = "wrong sync committee"
    NOT_NEWER = "update does not advance the store"
    UNEXPECTED_FINALIZED_HEADER = "finalized header without finality branch"
    BAD_FINALITY_BRANCH = "bad finality branch"
    UNEXPECTED_NEXT_SYNC_COMMITTEE = "next sync committee without branch"
    CONFLICTING_NEXT_SYNC_COMMITTEE = "next sync committee differs from the known one"
    BAD_NEXT_SYNC_COMMITTEE_BRANCH = "bad next sync committee branch"
    BAD_SIGNATURE = "bad signature"
    FINALIZED_PERIOD_MISMATCH = "finalized period is not the store period"
    BOOTSTRAP_ROOT_MISMATCH = "bootstrap header does not match trusted block root"
    BAD_CURRENT_SYNC_COMMITTEE_BRANCH = "bad current sync committee branch"
    WRONG_COMMITTEE_SIZE = "sync committee size does not match the preset"


class InvalidUpdate(LightClientError):
    """An update failed one of the sync-protocol checks named by ``reason``."""

    def __init__(self, reason: RejectReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)


class InvalidBootstrap(InvalidUpdate):
    """The bootstrap does not match the trusted block root or does not prove its sync committee."""
