"""``DestinationProcessor``: one per destination chain; moves its messages ATTESTED -> SUBMITTED -> DELIVERED.

Scheduling goals:
- *prepare*: claim ready messages (fresh work before failing work, in nonce order per origin), attach the
  freshest quorum checkpoint of their origin; messages past that checkpoint wait without losing an attempt.
- *submit*: ask the destination which ids are already delivered (by anyone) and never submit those; the
  rest go as batches of up to ``batch_size`` under one checkpoint, one transaction each, several in flight.
  A batch the chain would refuse (estimation reverts) is split in halves until the refused messages are
  isolated; only they are retried, with the retry policy's backoff and a recorded reason.
- *confirm*: follow each delivery transaction to the confirmation depth; messages the receipt shows
  processed are DELIVERED, the others are asked of the chain again (another relayer may have delivered
  them) and otherwise retried. A stuck transaction is replaced by the adapter (same nonce, higher fee).

Hand-over: the deliveries of a dead instance adopted by this one (``Store.adopt_dead_instances``) are
confirmed like our own, by transaction hash. Their transactions were signed by the dead instance's wallet,
so a stuck one cannot be bumped here: after ``relayer.adopted_tx_timeout_s`` it is given up, the chain is
asked which of its ids are delivered and the rest are retried (a late inclusion is harmless: the chain skips
or refuses ids already processed).

Every stage returns ``StageOutcome`` values (``relayer.pipeline.outcome``) and ``_apply`` alone acts on them,
by the ``RetryPolicy``: what is retried, how soon, what waits without spending an attempt, what is dropped.

Exactly-once rests on the chain: the destination mailbox refuses (``process``) or skips (``processBatch``)
an id already processed, and this processor re-asks the chain before every (re)submission.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

import structlog

from adapters.base import (
    AdapterError,
    ChainAdapter,
    CostEstimate,
    DeliveryBatch,
    DeliveryItem,
    PayoutRateLimited,
    SignedCheckpoint,
    SubmittedTx,
    TxHash,
    TxOutcome,
    TxReverted,
    TxState,
    WalletSource,
)
from adapters.capabilities import BatchLimit, ExactEstimates
from adapters.merkle import multiproof, multiproof_root
from adapters.message import MessageId
from config.settings import RelayerRoleSettings
from relayer.daemon import failpoints
from relayer.daemon.metrics import Metrics
from relayer.pipeline.checkpoints import CheckpointCollector
from relayer.pipeline.filters import MessageFilter
from relayer.pipeline.gas_policy import GasPolicy
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.outcome import (
    Action,
    AwaitCheckpoint,
    Delivered,
    FailureReason,
    RetryPolicy,
    StageOutcome,
    Submitted,
    Undelivered,
    outage_backoff,
    reason_of,
)
from relayer.pipeline.route_limits import RouteLimiter
from relayer.store import DeliveryRecord, MessageState, Store, StoredMessage, StoreError

log = structlog.get_logger("relayer.pipeline.processor")

LEASE_S = 60.0


class ManualExecutionRefused(Exception):
    """A manual execution that cannot go now; the message says why."""
STORE_BACKOFF_MAX_S = 5.0
# an idle loop looks at the store at least this often (work another instance stored, an operator's retry-now);
# work of this process wakes it at once (``wake``), and retry times and leases are waited for precisely
IDLE_POLL_S = 1.0
PAUSES_MAX_AGE_S = 1.0  # routes paused by the operator (possibly through another instance) are read this often


def _split(claimed: Sequence[StoredMessage], why_of: Callable[[StoredMessage], str | None]
           ) -> tuple[list[StoredMessage], dict[str, list[MessageId]]]:
    """(the messages ``why_of`` lets through, the ids of the others grouped by why not)."""
    kept: list[StoredMessage] = []
    held: dict[str, list[MessageId]] = defaultdict(list)
    for m in claimed:
        why = why_of(m)
        if why is None:
            kept.append(m)
        else:
            held[why].append(m.id)
    return kept, held


def _proven_batch(checkpoint: SignedCheckpoint, indexer: OriginIndexer, items: tuple[DeliveryItem, ...]
                  ) -> DeliveryBatch | None:
    """``items`` with their multiproof under ``checkpoint``; None when the local tree does not prove them under the
    signed root."""
    count = checkpoint.checkpoint.index + 1
    proof = tuple(multiproof(indexer.tree, [it.leaf_index for it in items], count))
    if multiproof_root([(it.leaf_index, it.id) for it in items], proof, count) != checkpoint.checkpoint.root:
        return None
    return DeliveryBatch(checkpoint, items, proof)


class DestinationProcessor:
    def __init__(self, adapter: ChainAdapter, store: Store, indexers: dict[int, OriginIndexer],
                 collector: CheckpointCollector, settings: RelayerRoleSettings, metrics: Metrics,
                 *, chain_names: dict[int, str] | None = None, clock: Callable[[], float] = time.time,
                 policy: RetryPolicy | None = None, message_filter: MessageFilter | None = None,
                 route_limiter: RouteLimiter | None = None, gas_policy: GasPolicy | None = None) -> None:
        self.adapter = adapter
        self.gas_policy = gas_policy
        self.message_filter = message_filter or MessageFilter()
        self.route_limiter = route_limiter
        self.store = store
        self.indexers = indexers
        self.collector = collector
        self.settings = settings
        self.metrics = metrics
        self.names = chain_names or {}
        self.clock = clock
        self.policy = policy or RetryPolicy.from_settings(settings)
        self.domain = adapter.domain
        self._last_confirm_round: tuple[int, frozenset[str]] | None = None
        self._prepare_wake = asyncio.Event()
        self._confirm_wake = asyncio.Event()
        self._deliveries_pending = True  # until the confirm loop looked
        self._paused: dict[tuple[int, int], str] = {}  # (origin, destination) -> note: routes the operator paused
        self._paused_read_at = float("-inf")

    def wake(self) -> None:
        """New work for this destination (messages indexed, deliveries adopted): both loops look now."""
        self._prepare_wake.set()
        self._confirm_wake.set()

    # ---- prepare + submit
    @property
    def batch_size(self) -> int:
        """Messages per delivery transaction: the setting, or less where the destination caps it (a Solana
        transaction holds a few deliveries: the adapter's ``BatchLimit``)."""
        cap = self.adapter.max_delivery_batch if isinstance(self.adapter, BatchLimit) else None
        return min(self.settings.batch_size, cap) if isinstance(cap, int) and cap > 0 else self.settings.batch_size

    async def prepare_and_submit_once(self) -> int:
        """Claim ready work and submit it; returns the number of messages submitted."""
        room = self.settings.max_inflight_per_destination - len(await self.store.aio.pending_deliveries(self.domain))
        if room <= 0 or (failpoints.ENABLED and failpoints.switched_off("claim")):
            return 0
        claimed = await self.store.aio.claim_ready(self.domain, self.batch_size * room, LEASE_S)
        if not claimed:
            return 0
        if failpoints.ENABLED:
            await failpoints.reached("after_claim")
        claimed = await self._hold_unpaid(await self._hold_paused(await self._drop_denied(claimed)))
        by_origin: dict[int, list[StoredMessage]] = defaultdict(list)
        for m in claimed:
            by_origin[m.origin].append(m)
        jobs: list[Awaitable[int]] = []
        for origin, group in by_origin.items():
            outcomes, checkpoint, ready = await self._prepare(origin, group)
            for outcome in outcomes:
                await self._apply(outcome)
            if checkpoint is None or not ready:
                continue
            chunks = [ready[i : i + self.batch_size] for i in range(0, len(ready), self.batch_size)]
            await self.store.aio.mark_attested([m.id for m in ready if m.state != MessageState.ATTESTED.value],
                                               checkpoint.checkpoint.index)
            indexer = self.indexers[origin]
            jobs.extend(self._submit_chunk(origin, checkpoint, indexer, chunk) for chunk in chunks)
        if failpoints.ENABLED and jobs:
            await failpoints.reached("after_attest")
        # chunks go out concurrently: the adapter's nonce manager orders the sends
        return sum(await asyncio.gather(*jobs)) if jobs else 0

    async def _hold_paused(self, claimed: list[StoredMessage]) -> list[StoredMessage]:
        """The claimed messages whose route is not paused; the others wait (no attempt spent) with the operator's
        note, until the route is resumed (``Store.resume_route`` makes them claimable at once)."""
        if self.clock() - self._paused_read_at > PAUSES_MAX_AGE_S:
            self._paused = await self.store.aio.paused_routes()
            self._paused_read_at = self.clock()
        kept, held = _split(claimed, lambda m: self._paused.get((m.origin, self.domain)))
        for note, ids in held.items():
            await self._apply(Undelivered(ids, FailureReason.ROUTE_PAUSED, f"route paused by the operator: {note}"))
        return kept

    async def _hold_unpaid(self, claimed: list[StoredMessage]) -> list[StoredMessage]:
        """The claimed messages that paid what ``relayer.gas_payment`` asks of them; the others wait (underpaid, no
        attempt spent) until a payment for them is indexed (``Store.record_dispatched`` makes them claimable) or the
        operator wait passes (the quote may have moved)."""
        if self.gas_policy is None or not self.gas_policy.rules or not claimed:
            return claimed
        short = await self.gas_policy.shortfalls({m.id: m.raw for m in claimed}, self.store.aio.paid_for,
                                                 {m.id: m.gas_needed for m in claimed})
        kept, held = _split(claimed, lambda m: short.get(m.id))
        for why, ids in held.items():
            await self._apply(Undelivered(ids, FailureReason.UNDERPAID, why))
            self.metrics.inc("relayer_messages_underpaid_total", len(ids), destination=self.adapter.name)
        return kept

    async def _within_limit(self, origin: int, todo: list[StoredMessage]) -> list[StoredMessage]:
        """Of the messages about to be sent (the chain said none is delivered yet), those the route's
        ``relayer.route_limits`` bucket has room for, oldest first; the others wait (rate_limited, no attempt
        spent). Messages someone else delivered never take room."""
        if self.route_limiter is None or not todo:
            return todo
        todo = sorted(todo, key=lambda m: m.nonce)
        granted, wait_s = self.route_limiter.admit(origin, self.domain, len(todo))
        if granted < len(todo):
            found = self.route_limiter.limit_of(origin, self.domain)
            where = f"relayer.route_limits[{found[0]}] ({found[1].messages_per_s}/s)" if found else "a route limit"
            route = f"{self.names.get(origin, origin)} -> {self.adapter.name}"
            await self._apply(Undelivered([m.id for m in todo[granted:]], FailureReason.RATE_LIMITED,
                                          f"route {route} is at {where}: room again in {wait_s:.2f} s"))
            self.metrics.inc("relayer_messages_rate_limited_total", len(todo) - granted,
                             destination=self.adapter.name)
        return todo[:granted]

    def routes_changed(self) -> None:
        """A route was paused or resumed here: read the pauses again at the next claim."""
        self._paused_read_at = float("-inf")
        self.wake()

    async def _drop_denied(self, claimed: list[StoredMessage]) -> list[StoredMessage]:
        """The claimed messages ``relayer.allow`` / ``relayer.deny`` let through; the others are never submitted and
        end DROPPED(denied) with the rule that stopped them (DELIVERED where the destination shows another relayer
        delivered them)."""
        kept, denied = _split(claimed, lambda m: self.message_filter.denial(m.raw))
        for why, ids in denied.items():
            with contextlib.suppress(AdapterError):  # the chain away: they are denied all the same
                done = {i for i, d in zip(ids, await self.adapter.delivered(ids), strict=True) if d}
                if done:
                    await self._apply(Delivered(list(done)))
                    ids = [i for i in ids if i not in done]
            if not ids:
                continue
            await self._apply(Undelivered(ids, FailureReason.DENIED, why))
            self.metrics.inc("relayer_messages_denied_total", len(ids), destination=self.adapter.name)
            log.warning("messages_denied", destination=self.adapter.name, messages=len(ids), reason=why[:300])
        return kept

    async def _prepare(self, origin: int, group: list[StoredMessage]
                       ) -> tuple[list[StageOutcome], SignedCheckpoint | None, list[StoredMessage]]:
        """The prepare stage of one origin's claimed messages: (outcomes of those that cannot go now, the quorum
        checkpoint, the messages it covers)."""
        indexer = self.indexers.get(origin)
        if indexer is None:
            return [Undelivered([m.id for m in group], FailureReason.UNKNOWN_DESTINATION,
                                f"origin {origin} is not configured")], None, []
        outcomes: list[StageOutcome] = []
        if indexer.reorg is not None:  # a finality violation halted that origin: deliver only its canonical prefix
            held = [m.id for m in group if m.nonce >= indexer.reorg.canonical_count]
            outcomes.append(Undelivered(held, FailureReason.ORIGIN_REORGED, indexer.reorg.detail))
            group = [m for m in group if m.nonce < indexer.reorg.canonical_count]
            if not group:
                return outcomes, None, []
        checkpoint = await self.collector.quorum(origin, indexer.tree)
        if checkpoint is None:
            problem = self.collector.last_problem.get(origin, "no quorum")
            return outcomes + [Undelivered([m.id for m in group], FailureReason.NO_QUORUM, problem)], None, []
        index = checkpoint.checkpoint.index
        waiting = [m.id for m in group if m.nonce > index]
        if waiting:
            outcomes.append(AwaitCheckpoint(waiting, index))
        return outcomes, checkpoint, [m for m in group if m.nonce <= index]

    async def _submit_chunk(self, origin: int, checkpoint: SignedCheckpoint, indexer: OriginIndexer,
                            chunk: Sequence[StoredMessage]) -> int:
        ids = [m.id for m in chunk]
        try:
            already = await self.adapter.delivered(ids)
        except AdapterError as exc:
            return await self._apply(Undelivered(ids, reason_of(exc), str(exc)))
        done = [i for i, d in zip(ids, already) if d]
        if done:
            await self._apply(Delivered(done))
        todo = await self._within_limit(origin, [m for m, d in zip(chunk, already) if not d])
        if not todo:
            return 0
        items = tuple(DeliveryItem(m.raw, m.id, m.nonce) for m in sorted(todo, key=lambda m: m.nonce))
        return await self._submit_items(origin, checkpoint, indexer, items)

    async def _submit_items(self, origin: int, checkpoint: SignedCheckpoint, indexer: OriginIndexer,
                            items: tuple[DeliveryItem, ...]) -> int:
        """Submit ``items`` as one transaction, or in halves while the chain would refuse the batch; returns the
        number of messages submitted."""
        ids = [it.id for it in items]
        batch = _proven_batch(checkpoint, indexer, items)
        if batch is None:
            return await self._apply(Undelivered(ids, FailureReason.CHECKPOINT_MISMATCH,
                                                 "our tree does not prove these ids under the signed root"))
        try:
            estimate = await self.adapter.estimate_delivery(batch)
        except TxReverted as exc:
            if len(items) > 1:
                return await self._submit_halves(origin, checkpoint, indexer, items)
            return await self._apply(Undelivered(ids, FailureReason.ESTIMATE_REVERTED, exc.reason))
        except AdapterError as exc:
            return await self._apply(Undelivered(ids, reason_of(exc), str(exc)))
        cap = self.settings.max_gas_per_message
        if cap is not None and estimate.gas > cap * len(items):
            if len(items) > 1:  # isolate the messages that need more
                return await self._submit_halves(origin, checkpoint, indexer, items)
            try:
                estimate = await self._exactly(batch, estimate)
            except AdapterError as exc:
                return await self._apply(Undelivered(ids, reason_of(exc), str(exc)))
            if estimate.gas > cap:
                return await self._apply(Undelivered(ids, FailureReason.GAS_LIMIT_EXCEEDED, (
                    f"its delivery needs {estimate.gas} gas, over relayer.max_gas_per_message ({cap}): the operator "
                    "may execute it with a higher gas limit (POST /admin/v1/messages/{id}/execute)")))
        if await self._underpaid_for_gas(items, estimate):
            if len(items) > 1:  # isolate the messages that did not pay for what they need
                return await self._submit_halves(origin, checkpoint, indexer, items)
            try:
                estimate = await self._exactly(batch, estimate)
            except AdapterError as exc:
                return await self._apply(Undelivered(ids, reason_of(exc), str(exc)))
            if why := await self._underpaid_for_gas(items, estimate):
                await self.store.aio.set_gas_needed(ids, estimate.gas)
                self.metrics.inc("relayer_messages_underpaid_total", len(ids), destination=self.adapter.name)
                return await self._apply(Undelivered(ids, FailureReason.UNDERPAID,
                                                     f"its delivery needs {estimate.gas} gas: {why}"))
        try:
            tx = await self.adapter.submit_delivery(batch, estimate)
        except PayoutRateLimited as exc:  # the validators' payout limits: the oldest that fit go first
            if len(items) > 1:
                return await self._submit_halves(origin, checkpoint, indexer, items)
            self.metrics.inc("relayer_messages_rate_limited_total", len(ids), destination=self.adapter.name)
            return await self._apply(Undelivered.of(ids, exc))
        except AdapterError as exc:
            return await self._apply(Undelivered(ids, reason_of(exc), str(exc)))
        return await self._apply(Submitted(ids, tx, origin, checkpoint.checkpoint.index))

    async def _underpaid_for_gas(self, items: tuple[DeliveryItem, ...], estimate: CostEstimate) -> str:
        """Why one of ``items`` did not pay for its share of ``estimate`` (the batch's gas split evenly: together
        they paid for what the batch needs) when that is more than its rule's ``gas_amount``; "" when all did (or
        nothing asks them to pay)."""
        if self.gas_policy is None or not self.gas_policy.rules:
            return ""
        share = -(-estimate.gas // len(items))
        if all(share <= r.rule.gas_amount for r in self.gas_policy.rules if r.rule.policy == "on_chain_quote"):
            return ""  # what the claim already checked (_hold_unpaid)
        short = await self.gas_policy.shortfalls({it.id: it.message for it in items}, self.store.aio.paid_for,
                                                 {it.id: share for it in items})
        return next(iter(short.values()), "")

    async def _exactly(self, batch: DeliveryBatch, estimate: CostEstimate) -> CostEstimate:
        """``estimate``, or the chain's simulation of ``batch`` when a model sized it (``ExactEstimates``)."""
        if estimate.exact or not isinstance(self.adapter, ExactEstimates):
            return estimate
        return await self.adapter.estimate_delivery_exactly(batch)

    async def _submit_halves(self, origin: int, checkpoint: SignedCheckpoint, indexer: OriginIndexer,
                             items: tuple[DeliveryItem, ...]) -> int:
        half = len(items) // 2
        return (await self._submit_items(origin, checkpoint, indexer, items[:half])
                + await self._submit_items(origin, checkpoint, indexer, items[half:]))

    async def execute_now(self, message: StoredMessage, gas_limit: int) -> SubmittedTx:
        """The operator's manual execution (CCIP's): deliver ``message`` (leased to this instance by
        ``Store.claim_for_execution``) in a transaction of its own with ``gas_limit`` gas, whatever
        relayer.max_gas_per_message says; the confirm loop follows it like any delivery. ``ManualExecutionRefused``
        says why it cannot go now (delivered already, no quorum checkpoint covers it, the chain refuses it)."""
        ids = [message.id]
        if (await self.adapter.delivered(ids))[0]:
            await self._apply(Delivered(ids))
            raise ManualExecutionRefused("the destination shows it delivered already")
        indexer = self.indexers.get(message.origin)
        if indexer is None:
            raise ManualExecutionRefused(f"origin {message.origin} is not configured")
        checkpoint = await self.collector.quorum(message.origin, indexer.tree)
        if checkpoint is None or checkpoint.checkpoint.index < message.nonce:
            raise ManualExecutionRefused("no quorum checkpoint covers it yet: try again shortly")
        batch = _proven_batch(checkpoint, indexer, (DeliveryItem(message.raw, message.id, message.nonce),))
        if batch is None:
            raise ManualExecutionRefused("our tree does not prove it under the signed root")
        try:
            estimate = await self.adapter.estimate_delivery(batch)
        except TxReverted as exc:
            raise ManualExecutionRefused(f"the destination would refuse it: {exc.reason}") from None
        tx = await self.adapter.submit_delivery(batch, CostEstimate(gas_limit, estimate.max_fee_per_gas,
                                                                    estimate.priority_fee_per_gas))
        await self._apply(Submitted(ids, tx, message.origin, checkpoint.checkpoint.index))
        return tx

    # ---- the one place outcomes are acted on
    async def _apply(self, outcome: StageOutcome) -> int:
        """Act on a stage's outcome (store, metrics, logs); returns the number of messages it submitted."""
        if not outcome.ids:
            return 0
        if isinstance(outcome, Submitted):
            return await self._record_submitted(outcome)
        if isinstance(outcome, Delivered):
            await self.store.aio.mark_delivered(outcome.ids, tx_hash=None, height=None, at=self.clock())
            log.info("already_delivered", destination=self.adapter.name, messages=len(outcome.ids))
        elif isinstance(outcome, AwaitCheckpoint):
            await self.store.aio.mark_not_ready(outcome.ids, FailureReason.NO_QUORUM,
                                                f"latest quorum checkpoint is index {outcome.index}",
                                                self.policy.checkpoint_wait_s)
        else:
            await self._undelivered(outcome)
        return 0

    async def _record_submitted(self, outcome: Submitted) -> int:
        tx, ids = outcome.tx, list(outcome.ids)
        await self.store.aio.record_submission(tx_hash=tx.tx_hash, destination=self.domain, origin=outcome.origin,
                                               sender=tx.sender, nonce=tx.nonce, ids=ids, gas_limit=tx.gas_limit,
                                               max_fee=tx.max_fee)
        self._confirm_wake.set()
        self.metrics.inc("relayer_batches_submitted_total", destination=self.adapter.name)
        log.info("batch_submitted", destination=self.adapter.name,
                 origin=self.names.get(outcome.origin, outcome.origin),
                 messages=len(ids), tx=tx.tx_hash, nonce=tx.nonce, checkpoint_index=outcome.checkpoint_index)
        if failpoints.ENABLED:
            await failpoints.reached("after_submit")
        return len(ids)

    async def _undelivered(self, outcome: Undelivered) -> None:
        ids, reason, error = outcome.ids, outcome.reason, outcome.detail
        action = self.policy.action(reason)
        if action is Action.DROP:
            await self.store.aio.drop(ids, reason, error)
            return
        self.metrics.inc("relayer_failures_total", len(ids), destination=self.adapter.name, reason=reason.value)
        if action is Action.WAIT:  # not the messages' fault: they wait without spending attempts
            wait_s = self.policy.wait_s(reason) if outcome.wait_s is None else outcome.wait_s
            await self.store.aio.mark_not_ready(ids, reason, error, wait_s)
            if reason is FailureReason.INSUFFICIENT_FUNDS:  # (no quorum is found by the prepare loop itself)
                self._prepare_wake.set()
                log.warning("delivery_waiting_for_funds", destination=self.adapter.name, messages=len(ids),
                            error=error[:300])
            return
        self._prepare_wake.set()  # the prepare loop takes the new retry time into account
        dropped = await self.store.aio.mark_retry(ids, reason, error, backoff=self.policy.backoff,
                                                  max_attempts=self.policy.max_attempts)
        log.warning("delivery_retry", destination=self.adapter.name, messages=len(ids), reason=reason.value,
                    error=error[:300])
        if dropped:
            log.error("messages_dropped", destination=self.adapter.name, messages=len(dropped),
                      reason=FailureReason.MAX_ATTEMPTS.value, last_reason=reason.value)

    # ---- confirm
    async def confirm_once(self) -> int:
        """Follow pending deliveries; the chain is asked again only when it has a new block."""
        pending = await self.store.aio.pending_deliveries(self.domain)
        self._deliveries_pending = bool(pending)
        if not pending:
            return 0
        height = await self.adapter.latest_height()
        hashes = frozenset(d.tx_hash for d in pending)
        if (height, hashes) == self._last_confirm_round:
            return 0
        self._last_confirm_round = (height, hashes)
        results = await asyncio.gather(*(self._confirm(d) for d in pending))
        return sum(results)

    async def _confirm(self, rec: DeliveryRecord) -> int:
        tx = SubmittedTx(TxHash(rec.tx_hash), rec.nonce, rec.sender, rec.submitted_at, rec.gas_limit, rec.max_fee)
        ids = rec.ids()
        if failpoints.ENABLED:
            await failpoints.reached("before_confirm")
        try:
            outcome = await self.adapter.confirm(tx)
        except AdapterError as exc:
            log.debug("confirm_unavailable", destination=self.adapter.name, tx=rec.tx_hash, error=str(exc)[:200])
            return 0
        if outcome.state is TxState.PENDING:
            if outcome.replacement is not None:
                await self.store.aio.replace_delivery(rec.tx_hash, outcome.replacement.tx_hash,
                                                      outcome.replacement.max_fee)
                log.warning("delivery_replaced", destination=self.adapter.name, old=rec.tx_hash,
                            new=outcome.replacement.tx_hash)
            elif (rec.adopted_from is not None
                  and self.clock() - (rec.adopted_at or 0.0) > self.settings.adopted_tx_timeout_s):
                await self.store.aio.finish_delivery(rec.tx_hash, "abandoned")
                log.warning("adopted_delivery_abandoned", destination=self.adapter.name, tx=rec.tx_hash,
                            from_instance=rec.adopted_from, messages=len(ids), reason=FailureReason.TX_DROPPED.value)
                await self._settle_unprocessed(ids, FailureReason.TX_DROPPED,
                                               f"adopted delivery {rec.tx_hash} of {rec.adopted_from} not mined after "
                                               f"{self.settings.adopted_tx_timeout_s:.0f}s")
            return 0
        if outcome.state is TxState.CONFIRMED:
            if failpoints.ENABLED:
                await failpoints.reached("after_confirmed")
            processed = set(outcome.delivered_ids)
            mine = [i for i in ids if i in processed]
            await self.store.aio.settle_delivery(rec.tx_hash, mine, at=self.clock(), gas_used=outcome.gas_used,
                                       fee_paid=outcome.fee_paid, height=outcome.height)
            self.metrics.inc("relayer_deliveries_total", len(mine), destination=self.adapter.name)
            self._count_spent(outcome)
            rest = [i for i in ids if i not in processed]
            if rest:
                await self._settle_unprocessed(rest, FailureReason.TX_DROPPED,
                                               "skipped by the batch: delivered by another transaction?")
            log.info("batch_delivered", destination=self.adapter.name, messages=len(mine), tx=rec.tx_hash,
                     height=outcome.height, gas_used=outcome.gas_used)
            return len(mine)
        state = "reverted" if outcome.state is TxState.REVERTED else "dropped"
        if outcome.state is TxState.REVERTED:
            self._count_spent(outcome)  # a reverted delivery was mined and paid for too
        await self.store.aio.finish_delivery(rec.tx_hash, state)
        reason = FailureReason.TX_REVERTED if outcome.state is TxState.REVERTED else FailureReason.TX_DROPPED
        await self._settle_unprocessed(ids, reason, outcome.reason or state)
        return 0

    def _count_spent(self, outcome: TxOutcome) -> None:
        decimals = self.adapter.native_decimals if isinstance(self.adapter, WalletSource) else 18
        self.metrics.inc("relayer_gas_used_total", outcome.gas_used, destination=self.adapter.name)
        self.metrics.inc("relayer_fee_paid_total", outcome.fee_paid / 10**decimals, destination=self.adapter.name)

    async def _settle_unprocessed(self, ids: list[MessageId], reason: FailureReason, error: str) -> None:
        """Messages a delivery did not process: delivered elsewhere (ask the chain), or undelivered for ``reason``."""
        try:
            flags = await self.adapter.delivered(ids)
        except AdapterError:
            flags = [False] * len(ids)
        await self._apply(Delivered([i for i, d in zip(ids, flags) if d]))
        await self._apply(Undelivered([i for i, d in zip(ids, flags) if not d], reason, error))

    async def sweep_orphans(self) -> int:
        """SUBMITTED messages whose delivery record finished without them (crash between steps): requeue."""
        orphans = await self.store.aio.orphaned_submissions(self.domain, older_than_s=30.0)
        if orphans:
            await self.store.aio.requeue(orphans)
            log.warning("orphans_requeued", destination=self.adapter.name, messages=len(orphans))
        return len(orphans)

    # ---- loops
    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self._loop(stop, self.prepare_and_submit_once, self._prepare_wake, self._prepare_idle_s,
                                        recheck=self._prepare_due_in),
                             self._loop(stop, self._confirm_step, self._confirm_wake, self._confirm_idle_s))

    async def _confirm_step(self) -> int:
        settled = await self.confirm_once()
        if settled:
            self._prepare_wake.set()  # room for more in flight
        return settled

    def _idle_cap_s(self) -> float:
        return max(self.settings.poll_interval_s, IDLE_POLL_S)

    async def _prepare_due_in(self) -> float:
        """Seconds until the next open message can be claimed (a retry time, another instance's lease; <= 0: now),
        at most the idle cap."""
        due_in = await self.store.aio.next_claim_in(self.domain)
        return self._idle_cap_s() if due_in is None else min(self._idle_cap_s(), due_in)

    async def _prepare_idle_s(self) -> float:
        return max(self.settings.poll_interval_s, await self._prepare_due_in())

    async def _confirm_idle_s(self) -> float:
        """Deliveries in flight: follow the chain every poll interval; none: wait for a submission (woken) or the
        cap."""
        return self.settings.poll_interval_s if self._deliveries_pending else self._idle_cap_s()

    async def _loop(self, stop: asyncio.Event, step: Callable[[], Awaitable[int]], wake: asyncio.Event | None = None,
                    idle_s: Callable[[], Awaitable[float]] | None = None,
                    recheck: Callable[[], Awaitable[float]] | None = None) -> None:
        """Run ``step`` until ``stop``: again at once while it does something; when idle, after ``idle_s()`` seconds
        or as soon as ``wake`` is set; after a store error, after the outage backoff. ``recheck`` (seconds until
        work is due) is a cheaper question asked when an idle wait ran out: the step runs only when it says now."""
        wake = wake or asyncio.Event()
        outage = outage_backoff(self.settings.poll_interval_s, STORE_BACKOFF_MAX_S)
        store_failures = 0
        while not stop.is_set():
            wake.clear()  # a wake-up from now on (during the step) makes the wait below return at once
            delay = self.settings.poll_interval_s
            try:
                did = await step()
                if not did and idle_s is not None:
                    delay = await idle_s()
                store_failures = 0
            except AdapterError as exc:
                log.warning("destination_step_failed", destination=self.adapter.name, error=str(exc)[:300])
                did = 0
            except StoreError as exc:  # the database is down or restarting: back off, never die
                store_failures += 1
                did = 0
                delay = outage(store_failures)
                self.metrics.inc("relayer_store_errors_total", reason=exc.reason, where=self.adapter.name)
                log.warning("destination_step_failed", destination=self.adapter.name, reason=exc.reason,
                            error=str(exc)[:300], failures=store_failures, retry_in_s=round(delay, 2))
            if did:
                continue
            if store_failures:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            while not await _wait_any(stop, wake, delay) and recheck is not None:
                try:
                    delay = await recheck()
                except StoreError:
                    break  # the step meets the outage and backs off
                if delay <= 0:
                    break


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout_s: float) -> bool:
    """Until ``stop`` or ``wake`` is set (True), or ``timeout_s`` passed (False)."""
    if stop.is_set() or wake.is_set():
        return True
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    return bool(done)
