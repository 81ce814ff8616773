"""``AsyncStore``: the store's operations as coroutines for code on an event loop. Each call runs the synchronous
SQLAlchemy work on the store's own threads, so a slow or unreachable database delays the coroutine that asked,
never the loop (the other loops, the API's answers, the timers).

Threads: SQLite takes one writer at a time, so its store gets one thread: calls run one after another in the
order they were made, as they did on the loop, and never wait on each other's file lock. PostgreSQL gets as many
threads as the engine's connection pool, so one slow query holds up one thread, not every caller. Every caller
awaits its call before making the next, so one coroutine's calls (a submission, then its mark-delivered) reach
the database in order; calls of different coroutines may run together, as those of several instances sharing the
database always could (leases and conditional updates make that safe). A call the caller stopped waiting for
(cancelled) still runs to its end: a transaction is never cut in half. Calls made with ``run_first`` (a client
waits on them) run before the ordinary calls not yet started (``relayer.store.threads``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Engine

from relayer.store.accountant import ReservationTable
from relayer.store.checkpoints import CheckpointTable
from relayer.store.cosignatures import CosignatureTable
from relayer.store.cursors import CursorTable
from relayer.store.deliveries import DeliveryTable
from relayer.store.inspection import MessageQueries
from relayer.store.instances import InstanceTable
from relayer.store.messages import MessageTable
from relayer.store.operator import OperatorTable
from relayer.store.payments import PaymentTable
from relayer.store.payout_limits import PayoutLimitTable
from relayer.store.schema import POSTGRES_POOL_SIZE
from relayer.store.threads import StoreThreads

if TYPE_CHECKING:
    from relayer.store import Store

P = ParamSpec("P")
R = TypeVar("R")


def _off_loop(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[AsyncStore, P], Coroutine[Any, Any, R]]:
    """``method`` of the synchronous store as a coroutine run on the store's threads."""
    name = method.__name__

    @functools.wraps(method)
    async def call(self: AsyncStore, *args: P.args, **kwargs: P.kwargs) -> R:
        bound: Callable[P, R] = getattr(self.sync, name)  # the instance's own (error-mapped) method
        return await self.run(bound, *args, **kwargs)

    return call


def store_threads(engine: Engine) -> int:
    return POSTGRES_POOL_SIZE if engine.dialect.name == "postgresql" else 1


class AsyncStore:
    """The same operations as ``Store``, awaitable; errors are the same ``StoreError``."""

    def __init__(self, store: Store) -> None:
        self.sync = store
        self._threads = StoreThreads(store_threads(store.engine), "store")

    @property
    def owner(self) -> str:
        return self.sync.owner

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` on the store's threads (for code that works on the store's engine itself)."""
        return await asyncio.get_running_loop().run_in_executor(self._threads.ordinary,
                                                                functools.partial(fn, *args, **kwargs))

    async def run_first(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """As ``run``, before every call not yet started: for work a client is waiting on (``StoreThreads``)."""
        return await asyncio.get_running_loop().run_in_executor(self._threads.first,
                                                                functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Wait for the calls already made, then stop the threads."""
        self._threads.shutdown(wait=True)

    # cursors
    cursor = _off_loop(CursorTable.cursor)
    set_cursor = _off_loop(CursorTable.set_cursor)
    # messages: indexing and relaying
    record_dispatched = _off_loop(MessageTable.record_dispatched)
    message_ids_in_order = _off_loop(MessageTable.message_ids_in_order)
    claim_ready = _off_loop(MessageTable.claim_ready)
    next_claim_in = _off_loop(MessageTable.next_claim_in)
    mark_attested = _off_loop(MessageTable.mark_attested)
    mark_delivered = _off_loop(MessageTable.mark_delivered)
    mark_retry = _off_loop(MessageTable.mark_retry)
    mark_not_ready = _off_loop(MessageTable.mark_not_ready)
    set_gas_needed = _off_loop(MessageTable.set_gas_needed)
    requeue = _off_loop(MessageTable.requeue)
    release = _off_loop(MessageTable.release)
    drop = _off_loop(MessageTable.drop)
    drop_reorged = _off_loop(MessageTable.drop_reorged)
    dropped_for = _off_loop(MessageTable.dropped_for)
    pause_route = _off_loop(OperatorTable.pause_route)
    resume_route = _off_loop(OperatorTable.resume_route)
    paused_routes = _off_loop(OperatorTable.paused_routes)
    stuck_messages = _off_loop(OperatorTable.stuck_messages)
    operator_drop = _off_loop(OperatorTable.operator_drop)
    claim_for_execution = _off_loop(OperatorTable.claim_for_execution)
    reopen = _off_loop(MessageTable.reopen)
    paid_for = _off_loop(PaymentTable.paid_for)
    route_money = _off_loop(PaymentTable.route_money)
    # messages: reads and the operator's retry
    dispatched_range = _off_loop(MessageQueries.dispatched_range)
    messages_sent_by = _off_loop(MessageQueries.messages_sent_by)
    get = _off_loop(MessageQueries.get)
    find = _off_loop(MessageQueries.find)
    recent = _off_loop(MessageQueries.recent)
    retry_now = _off_loop(MessageQueries.retry_now)
    counts_by_state = _off_loop(MessageQueries.counts_by_state)
    reasons = _off_loop(MessageQueries.reasons)
    # deliveries
    record_submission = _off_loop(DeliveryTable.record_submission)
    pending_deliveries = _off_loop(DeliveryTable.pending_deliveries)
    orphaned_submissions = _off_loop(DeliveryTable.orphaned_submissions)
    replace_delivery = _off_loop(DeliveryTable.replace_delivery)
    finish_delivery = _off_loop(DeliveryTable.finish_delivery)
    settle_delivery = _off_loop(DeliveryTable.settle_delivery)
    # checkpoints
    save_checkpoint = _off_loop(CheckpointTable.save_checkpoint)
    checkpoint = _off_loop(CheckpointTable.checkpoint)
    # instances sharing the database
    register_instance = _off_loop(InstanceTable.register_instance)
    heartbeat = _off_loop(InstanceTable.heartbeat)
    stop_instance = _off_loop(InstanceTable.stop_instance)
    instances = _off_loop(InstanceTable.instances)
    alive_instances = _off_loop(InstanceTable.alive_instances)
    keeper_instance = _off_loop(InstanceTable.keeper_instance)
    adopt_dead_instances = _off_loop(InstanceTable.adopt_dead_instances)
    # the validators' co-signatures (the once-rule) and the accountant's reservations
    cosignatures = _off_loop(CosignatureTable.cosignatures)
    record_cosignatures = _off_loop(CosignatureTable.record_cosignatures)
    open_reservations = _off_loop(ReservationTable.open_reservations)
    settle_reservations = _off_loop(ReservationTable.settle_reservations)
    reserve_cosign = _off_loop(ReservationTable.reserve_cosign)
    # the validators' payout buckets
    bucket_state = _off_loop(PayoutLimitTable.bucket_state)
    payout_log = _off_loop(PayoutLimitTable.payout_log)
    append_payout_log = _off_loop(PayoutLimitTable.append_payout_log)
