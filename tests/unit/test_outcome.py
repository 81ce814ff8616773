"""The retry policy's table (each reason -> retry / wait / drop), its backoff's bounds and jitter, and the mapping of
adapter errors onto reasons by class (relayer.pipeline.outcome)."""

from __future__ import annotations

import random

import pytest

from adapters.base import (
    AdapterError,
    CosignRefused,
    FeeTooHigh,
    InsufficientFunds,
    MailboxNotDeployed,
    NoCosignQuorum,
    NonceTooLow,
    ReplacementUnderpriced,
    RpcError,
    RpcUnavailable,
    SequenceMismatch,
    TxNotFound,
    TxReverted,
)
from adapters.evm.errors import LogQueryTooLarge, NonceTooHigh, SigningError, TxAlreadyKnown
from config.settings import RelayerRoleSettings
from relayer.pipeline.outcome import (
    ACTIONS,
    BOOKKEEPING,
    OPERATOR_WAIT_S,
    Action,
    Backoff,
    FailureReason,
    RetryPolicy,
    outage_backoff,
    reason_of,
)

R = FailureReason
TABLE = {
    R.UNKNOWN_DESTINATION: Action.DROP,
    R.MALFORMED: Action.DROP,
    R.ORIGIN_REORGED: Action.DROP,
    R.MAX_ATTEMPTS: Action.DROP,
    R.DENIED: Action.DROP,
    R.NO_QUORUM: Action.WAIT,
    R.INSUFFICIENT_FUNDS: Action.WAIT,
    R.ROUTE_PAUSED: Action.WAIT,
    R.RATE_LIMITED: Action.WAIT,
    R.NO_COSIGN_QUORUM: Action.RETRY,
    R.CHECKPOINT_MISMATCH: Action.RETRY,
    R.ESTIMATE_REVERTED: Action.RETRY,
    R.TX_REVERTED: Action.RETRY,
    R.TX_DROPPED: Action.RETRY,
    R.RPC_UNAVAILABLE: Action.RETRY,
    R.RPC_ERROR: Action.RETRY,
    R.FEE_TOO_HIGH: Action.RETRY,
    R.NONCE_CONFLICT: Action.RETRY,
}


@pytest.mark.parametrize("reason", list(TABLE), ids=lambda r: r.value)
def test_each_reason_has_one_action(reason: FailureReason) -> None:
    assert RetryPolicy.action(reason) is TABLE[reason]


def test_every_reason_is_a_stage_outcome_or_the_stores_bookkeeping() -> None:
    assert set(ACTIONS) | BOOKKEEPING == set(FailureReason) and not set(ACTIONS) & BOOKKEEPING
    for reason in BOOKKEEPING:
        with pytest.raises(ValueError, match=reason.value):
            RetryPolicy.action(reason)


def test_the_metric_label_set_is_closed_and_snake_case() -> None:
    values = [r.value for r in FailureReason]
    assert len(values) == len(set(values)) == 26
    assert all(v.isidentifier() and v == v.lower() for v in values)


ERRORS = [
    (TxReverted("x"), R.ESTIMATE_REVERTED),
    (RpcUnavailable("x"), R.RPC_UNAVAILABLE),
    (FeeTooHigh("x"), R.FEE_TOO_HIGH),
    (InsufficientFunds("x"), R.INSUFFICIENT_FUNDS),
    (NonceTooLow("x"), R.NONCE_CONFLICT),
    (SequenceMismatch("x", expected=7), R.NONCE_CONFLICT),
    (NoCosignQuorum("x"), R.NO_COSIGN_QUORUM),
    (RpcError("x"), R.RPC_ERROR),
    (MailboxNotDeployed("x"), R.RPC_ERROR),
    (TxNotFound("x"), R.RPC_ERROR),
    (ReplacementUnderpriced("x"), R.RPC_ERROR),
    (CosignRefused("x"), R.RPC_ERROR),
    (TxAlreadyKnown("x"), R.RPC_ERROR),
    (NonceTooHigh("x"), R.RPC_ERROR),
    (LogQueryTooLarge("x"), R.RPC_ERROR),
    (SigningError("x"), R.RPC_ERROR),
    (AdapterError("x"), R.RPC_ERROR),
]


@pytest.mark.parametrize(("error", "reason"), ERRORS,
                         ids=lambda e: type(e).__name__ if isinstance(e, Exception) else "")
def test_errors_become_reasons_by_class_not_text(error: AdapterError, reason: FailureReason) -> None:
    assert reason_of(error) is reason
    # the text is not read: the same class with any reason string maps the same way
    assert reason_of(type(error)("x", reason="insufficient funds")) is reason


def test_no_error_carries_a_retryable_flag() -> None:
    assert not hasattr(AdapterError("x"), "retryable")


def test_backoff_without_jitter_doubles_then_caps() -> None:
    backoff = Backoff(base_s=1.0, max_s=60.0, jitter=0.0)
    assert [backoff(n) for n in range(9)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_huge_attempt_counts_do_not_overflow() -> None:
    assert Backoff(0.5, 120.0, jitter=0.0)(10_000) == 120.0


@pytest.mark.parametrize("attempt", [1, 2, 5, 8, 100])
def test_jitter_stays_within_its_range_and_under_the_cap(attempt: int) -> None:
    backoff = Backoff(1.0, 60.0, jitter=0.2, rng=random.Random(attempt))
    full = min(60.0, 2.0 ** (attempt - 1))
    delays = [backoff(attempt) for _ in range(500)]
    assert all(0.8 * full <= d <= full for d in delays)
    assert max(delays) - min(delays) > 0.1 * full  # it does spread


def test_outage_backoff_starts_at_twice_the_interval() -> None:
    backoff = outage_backoff(0.5, 5.0, jitter=0.0)
    assert [backoff(n) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_policy_from_settings() -> None:
    settings = RelayerRoleSettings(backoff_base_s=2.0, backoff_max_s=3.0, max_attempts=4)
    policy = RetryPolicy.from_settings(settings, rng=random.Random(1))
    assert policy.max_attempts == 4
    assert (policy.backoff.base_s, policy.backoff.max_s) == (2.0, 3.0)
    assert 2.4 <= policy.backoff(5) <= 3.0
    assert policy.wait_s(R.INSUFFICIENT_FUNDS) == min(OPERATOR_WAIT_S, 3.0)
    assert policy.wait_s(R.NO_QUORUM) == policy.not_ready_wait_s
    assert policy.checkpoint_wait_s < policy.not_ready_wait_s
