"""What a pipeline stage says happened to its messages, why, and the one policy that decides what comes next.

Every stage of a destination's pipeline (prepare, submit, confirm) ends by returning ``StageOutcome`` values
for the messages it handled, and ``DestinationProcessor`` alone interprets them (as Hyperlane's relayer does with
``PendingOperationResult``):

    Delivered(ids)                 the destination shows them processed (by us or anyone): DELIVERED
    Submitted(ids, tx, ...)        in a transaction we sent: recorded, the confirm stage follows it
    AwaitCheckpoint(ids, index)    past the latest quorum checkpoint: claimed again shortly, not an attempt
    Undelivered(ids, reason, ..)   not delivered now, for ``reason``; ``RetryPolicy.action(reason)`` says:
                                     RETRY  an attempt is spent, next one after ``backoff(attempts)``,
                                            DROPPED(max_attempts) once ``max_attempts`` are spent
                                     WAIT   not the messages' fault (no quorum yet, a wallet to top up), or
                                            theirs but curable (underpaid: a top-up resumes them):
                                            claimed again after ``wait_s(reason)``, no attempt spent
                                     DROP   never deliverable from here (unknown origin, reorged origin,
                                            denied by relayer.allow / relayer.deny, over
                                            relayer.max_gas_per_message: the operator may execute it)

``FailureReason`` is the one vocabulary of why a message waits or was dropped: the store's ``last_reason``, the
log field, and the label of ``relayer_failures_total`` and ``relayer_messages_waiting`` (a closed set). An
``AdapterError`` becomes a reason by its class only (``reason_of``): the adapters map their SDK's errors onto
those classes at their boundary, so no decision here reads an error's text.

``Backoff`` is the one backoff: exponential, capped, with jitter; message retries and the loops' outage waits
(a store or an origin that does not answer) use it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from adapters.base import (
    AdapterError,
    FeeTooHigh,
    InsufficientFunds,
    NoCosignQuorum,
    NonceTooLow,
    PayoutRateLimited,
    RpcUnavailable,
    SequenceMismatch,
    SubmittedTx,
    TxReverted,
)
from adapters.message import MessageId
from config.settings import RelayerRoleSettings


class FailureReason(str, enum.Enum):
    """Why a message is waiting or dropped: the log field, the metric label and the ``messages show`` line."""

    UNKNOWN_DESTINATION = "unknown_destination"
    MALFORMED = "malformed"
    NO_QUORUM = "no_quorum"
    NO_COSIGN_QUORUM = "no_cosign_quorum"  # too few validators co-signed a delivery (Solana, Cosmos)
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    ESTIMATE_REVERTED = "estimate_reverted"
    TX_REVERTED = "tx_reverted"
    TX_DROPPED = "tx_dropped"
    RPC_UNAVAILABLE = "rpc_unavailable"
    RPC_ERROR = "rpc_error"
    FEE_TOO_HIGH = "fee_too_high"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NONCE_CONFLICT = "nonce_conflict"
    MAX_ATTEMPTS = "max_attempts"
    OPERATOR_RETRY = "operator_retry"
    INSTANCE_DIED = "instance_died"  # its instance stopped beating for longer than relayer.instance_lease_s
    INSTANCE_STOPPED = "instance_stopped"  # its instance shut down cleanly with work in hand
    LEASE_EXPIRED = "lease_expired"  # another instance held it past its lease without settling it
    ORIGIN_REORGED = "origin_reorged"  # the origin chain no longer holds it: a reorg deeper than its finality
    DENIED = "denied"  # relayer.deny matches it, or relayer.allow does not (relayer.pipeline.filters)
    ROUTE_PAUSED = "route_paused"  # the operator paused its route (admin API): it waits, no attempt spent
    RATE_LIMITED = "rate_limited"  # its route is at relayer.route_limits, or its payout over the validators'
    # validator.payout_limits (Solana, Cosmos): it waits for room, no attempt spent
    GAS_LIMIT_EXCEEDED = "gas_limit_exceeded"  # its delivery needs more than relayer.max_gas_per_message
    UNDERPAID = "underpaid"  # paid less than relayer.gas_payment asks: it waits for a top-up, no attempt spent
    OPERATOR_DROPPED = "operator_dropped"  # the operator dropped it, with a note (admin API)
    STORE_UNAVAILABLE = "store_unavailable"  # the database did not answer (log field and metric label only)


class Action(enum.Enum):
    RETRY = "retry"  # an attempt is spent; the next after the backoff, or dropped past max_attempts
    WAIT = "wait"  # no attempt spent; looked at again after a fixed wait
    DROP = "drop"  # terminal


# reason -> what the processor does with ``Undelivered`` messages of that reason
ACTIONS: dict[FailureReason, Action] = {
    FailureReason.UNKNOWN_DESTINATION: Action.DROP,
    FailureReason.MALFORMED: Action.DROP,
    FailureReason.ORIGIN_REORGED: Action.DROP,
    FailureReason.MAX_ATTEMPTS: Action.DROP,
    FailureReason.DENIED: Action.DROP,  # until a reloaded list allows it (RelayerDaemon.reload_filters reopens it)
    FailureReason.GAS_LIMIT_EXCEEDED: Action.DROP,  # until the operator executes it with a higher gas limit
    FailureReason.NO_QUORUM: Action.WAIT,
    FailureReason.INSUFFICIENT_FUNDS: Action.WAIT,  # the operator's problem, not the messages'
    FailureReason.ROUTE_PAUSED: Action.WAIT,
    FailureReason.RATE_LIMITED: Action.WAIT,  # (after the not-ready wait, 0.5 s, or the validators' wait)
    FailureReason.UNDERPAID: Action.WAIT,  # (at once when a payment for it is indexed, else after the operator wait)
    FailureReason.NO_COSIGN_QUORUM: Action.RETRY,
    FailureReason.CHECKPOINT_MISMATCH: Action.RETRY,
    FailureReason.ESTIMATE_REVERTED: Action.RETRY,
    FailureReason.TX_REVERTED: Action.RETRY,
    FailureReason.TX_DROPPED: Action.RETRY,
    FailureReason.RPC_UNAVAILABLE: Action.RETRY,
    FailureReason.RPC_ERROR: Action.RETRY,
    FailureReason.FEE_TOO_HIGH: Action.RETRY,
    FailureReason.NONCE_CONFLICT: Action.RETRY,
}
# reasons the store writes itself: a hand-over, a requeue, the operator's retry or drop (admin API, CLI)
BOOKKEEPING = frozenset({FailureReason.OPERATOR_RETRY, FailureReason.OPERATOR_DROPPED, FailureReason.INSTANCE_DIED,
                         FailureReason.INSTANCE_STOPPED, FailureReason.LEASE_EXPIRED,
                         FailureReason.STORE_UNAVAILABLE})

# error class -> reason, first match wins (subclasses before their bases); any other AdapterError: RPC_ERROR
_ERROR_REASONS: tuple[tuple[type[AdapterError], FailureReason], ...] = (
    (TxReverted, FailureReason.ESTIMATE_REVERTED),
    (RpcUnavailable, FailureReason.RPC_UNAVAILABLE),
    (FeeTooHigh, FailureReason.FEE_TOO_HIGH),
    (InsufficientFunds, FailureReason.INSUFFICIENT_FUNDS),
    (NonceTooLow, FailureReason.NONCE_CONFLICT),
    (SequenceMismatch, FailureReason.NONCE_CONFLICT),
    (PayoutRateLimited, FailureReason.RATE_LIMITED),
    (NoCosignQuorum, FailureReason.NO_COSIGN_QUORUM),
)


def reason_of(exc: AdapterError) -> FailureReason:
    """The reason a delivery stage failed with ``exc``, read from its class only."""
    for cls, reason in _ERROR_REASONS:
        if isinstance(exc, cls):
            return reason
    return FailureReason.RPC_ERROR


# ---- what a stage returns
@dataclass(frozen=True, slots=True)
class Delivered:
    """The destination shows these messages processed (by this relayer or anyone else)."""

    ids: Sequence[MessageId]


@dataclass(frozen=True, slots=True)
class Submitted:
    """The messages are in a transaction the destination accepted; the confirm stage follows it."""

    ids: Sequence[MessageId]
    tx: SubmittedTx
    origin: int
    checkpoint_index: int


@dataclass(frozen=True, slots=True)
class AwaitCheckpoint:
    """Past the latest quorum checkpoint of their origin (index ``index``): looked at again shortly."""

    ids: Sequence[MessageId]
    index: int


@dataclass(frozen=True, slots=True)
class Undelivered:
    """Not delivered now, because of ``reason`` (``detail`` says more); ``RetryPolicy.action`` decides. ``wait_s``:
    a WAIT whose length the refusal gave (the validators' payout limits), instead of the policy's."""

    ids: Sequence[MessageId]
    reason: FailureReason
    detail: str
    wait_s: float | None = None

    @classmethod
    def of(cls, ids: Sequence[MessageId], exc: AdapterError) -> Undelivered:
        """Undelivered for ``exc`` (its reason by class, and the wait it gave, if any)."""
        return cls(ids, reason_of(exc), str(exc), exc.retry_after_s if isinstance(exc, PayoutRateLimited) else None)


StageOutcome = Delivered | Submitted | AwaitCheckpoint | Undelivered


# ---- the policy
@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential from ``base_s``, doubling per failure, capped at ``max_s``, less up to ``jitter`` of itself
    (drawn from ``rng``) so that many waiters do not come back at once: ``attempt`` >= 1 failures wait in
    ``[(1 - jitter) * d, d]`` with ``d = min(max_s, base_s * 2 ** (attempt - 1))``."""

    base_s: float
    max_s: float
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __call__(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1``, given ``attempt`` (>= 1) attempts already failed."""
        if attempt < 1:
            return 0.0
        full = min(self.max_s, self.base_s * 2 ** min(attempt - 1, 62))
        return full * (1.0 - self.jitter * self.rng.random())


def outage_backoff(interval_s: float, max_s: float, *, jitter: float = 0.2) -> Backoff:
    """Spacing of a loop's steps while what it depends on fails (a store or an origin that does not answer):
    twice its interval after the first failure, doubling, at most ``max_s``."""
    return Backoff(2 * interval_s, max_s, jitter)


NOT_READY_WAIT_S = 0.5  # re-check spacing of messages without a quorum checkpoint
CHECKPOINT_WAIT_S = 0.25  # ... of messages past the latest quorum checkpoint (the next one is near)
OPERATOR_WAIT_S = 5.0  # ... of messages waiting on the operator (a wallet to top up)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What happens to undelivered messages: ``action(reason)``, and when they are looked at again."""

    backoff: Backoff
    max_attempts: int
    operator_wait_s: float = OPERATOR_WAIT_S
    not_ready_wait_s: float = NOT_READY_WAIT_S
    checkpoint_wait_s: float = CHECKPOINT_WAIT_S

    @classmethod
    def from_settings(cls, settings: RelayerRoleSettings, *, rng: random.Random | None = None) -> RetryPolicy:
        backoff = Backoff(settings.backoff_base_s, settings.backoff_max_s, rng=rng or random.Random())
        return cls(backoff, settings.max_attempts, operator_wait_s=min(OPERATOR_WAIT_S, settings.backoff_max_s))

    @staticmethod
    def action(reason: FailureReason) -> Action:
        """RETRY, WAIT or DROP; a bookkeeping reason (the store's own) is no stage's outcome."""
        try:
            return ACTIONS[reason]
        except KeyError:
            raise ValueError(f"{reason.value} is not a stage outcome's reason") from None

    def wait_s(self, reason: FailureReason) -> float:
        """The wait of a WAIT reason (no attempt spent)."""
        operators = (FailureReason.INSUFFICIENT_FUNDS, FailureReason.ROUTE_PAUSED, FailureReason.UNDERPAID)
        return self.operator_wait_s if reason in operators else self.not_ready_wait_s
