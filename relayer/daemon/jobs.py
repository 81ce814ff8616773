"""The daemon's periodic jobs (apscheduler) and the wrappers every job runs in: quiet on stop
(``_ends_quietly_on_stop``), one warning line per run while the store is down (``_store_outage_logged``).

    health          every 2 s     HealthMonitor.refresh_health: chains, wallets, capacity feed, queue gauges
    orphan sweep    every 15 s    Handover.sweep_orphans
    heartbeat       lease / 5     Handover.beat: heartbeat, the keeper instance read, hand-over of dead instances' work
    intents         every 1 s     IntentExecutor.refresh_unsettled (with operator accounts or signer mode)
    intent expiry   <= 30 s       IntentExecutor.prune(router.unsigned_ttl_s)
    value budgets   every 600 s   ValueBudgets.prune: clients' buckets full for a day
    audit           audit.interval_s, first at once   AuditJob.run_once
    gas oracles     relayer.gas_oracle.update_interval_s, first at once   GasOracleKeeper.run_once
    route profit    every 15 s, first at once   RouteProfits.refresh (relayer_route_*_usd gauges)
    payouts         router.integrator_payout_interval_s   PayoutJob.run_once: integrator rewards paid on chain
    bridge queues   every 2 s     QueuedTransferReleaser.run_once (rate-limited inbound transfers paid out)
    netting         every 2 s     NettingKeeper.run_once (pool epochs settled and completed, deferred payouts released)

The gas oracles, bridge queues and netting jobs are keeper jobs: they run only on the keeper instance of the store
(``Handover.is_keeper``; one instance among those sharing a database), the others skip them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from config.settings import Settings
from relayer.daemon.audit import AuditJob
from relayer.daemon.bridge_queue import QueuedTransferReleaser
from relayer.daemon.gas_oracle import GasOracleKeeper
from relayer.daemon.handover import Handover
from relayer.daemon.health import HealthMonitor
from relayer.daemon.netting import NettingKeeper
from relayer.daemon.route_profit import RouteProfits
from relayer.store import StoreError
from router.api import IntentsBackend

log = structlog.get_logger("relayer.daemon.jobs")


def schedule_jobs(settings: Settings, health: HealthMonitor, handover: Handover, intents: IntentsBackend | None,
                  audit: AuditJob | None, stop: asyncio.Event, *, gas_oracle: GasOracleKeeper | None = None,
                  route_profits: RouteProfits | None = None,
                  queue_releaser: QueuedTransferReleaser | None = None,
                  netting: NettingKeeper | None = None) -> AsyncIOScheduler:
    """The scheduler with every periodic job of the daemon (not started)."""
    scheduler = AsyncIOScheduler()
    scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(health.refresh_health), stop), "interval",
                      seconds=2.0, max_instances=1, coalesce=True)
    scheduler.add_job(_ends_quietly_on_stop(handover.sweep_orphans, stop), "interval", seconds=15.0, max_instances=1,
                      coalesce=True)
    scheduler.add_job(_ends_quietly_on_stop(handover.beat, stop), "interval",
                      seconds=max(0.2, settings.relayer.instance_lease_s / 5), max_instances=1, coalesce=True)
    if intents is not None and intents.executor is not None:
        executor = intents.executor
        scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(executor.refresh_unsettled), stop),
                          "interval", seconds=1.0, max_instances=1, coalesce=True)
        ttl = settings.router.unsigned_ttl_s  # rows of intents that never landed expire
        scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(lambda: executor.prune(ttl)), stop),
                          "interval", seconds=min(30.0, ttl / 4), max_instances=1, coalesce=True)
    payouts = intents.rewards.job if intents is not None and intents.rewards is not None else None
    if payouts is not None:  # integrator rewards paid on chain, per epoch (router/payouts.py)
        scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(payouts.run_once), stop), "interval",
                          seconds=settings.router.integrator_payout_interval_s, max_instances=1, coalesce=True)
    if intents is not None and intents.limits is not None:  # clients' value buckets full for a day are forgotten
        budgets = intents.limits.value
        scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(lambda: intents.store.aio.run_sync(
            budgets.prune)), stop), "interval", seconds=600.0, max_instances=1, coalesce=True)
    if audit is not None:  # the first audit right away, then every audit.interval_s
        scheduler.add_job(_ends_quietly_on_stop(audit.run_once, stop), "interval",
                          seconds=settings.audit.interval_s, max_instances=1, coalesce=True,
                          next_run_time=datetime.now(UTC))
    if gas_oracle is not None and settings.relayer.gas_oracle is not None:
        scheduler.add_job(_ends_quietly_on_stop(_on_the_keeper_only(gas_oracle.run_once, handover), stop),
                          "interval", seconds=settings.relayer.gas_oracle.update_interval_s, max_instances=1,
                          coalesce=True, next_run_time=datetime.now(UTC))
    if queue_releaser is not None and queue_releaser.bridges:
        scheduler.add_job(_ends_quietly_on_stop(_on_the_keeper_only(queue_releaser.run_once, handover), stop),
                          "interval", seconds=2.0, max_instances=1, coalesce=True)
    if netting is not None and netting.active:
        scheduler.add_job(_ends_quietly_on_stop(_on_the_keeper_only(netting.run_once, handover), stop),
                          "interval", seconds=2.0, max_instances=1, coalesce=True)
    if route_profits is not None:
        scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(route_profits.refresh), stop), "interval",
                          seconds=15.0, max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    return scheduler


def _ends_quietly_on_stop(job: Callable[[], Awaitable[object]], stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
    """A periodic job still running when the daemon stops is cancelled with the event loop; once ``stop`` is set
    that is the expected end, not an error (apscheduler would log a CancelledError traceback after
    ``daemon_stopped`` at every Ctrl-C). A cancellation before the stop still propagates."""

    async def run() -> None:
        try:
            await job()
        except asyncio.CancelledError:
            if not stop.is_set():
                raise

    return run


def _on_the_keeper_only(job: Callable[[], Awaitable[object]], handover: Handover) -> Callable[[], Awaitable[None]]:
    """A keeper job: run on the store's keeper instance, skipped on the others."""

    async def run() -> None:
        if await handover.is_keeper():
            await job()

    return run


def _store_outage_logged(job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    """A periodic job that touches the database: while it is down, one warning line per run instead of a traceback."""

    async def run() -> None:
        try:
            await job()
        except (StoreError, SQLAlchemyError) as exc:
            reason = exc.reason if isinstance(exc, StoreError) else "store_unavailable"
            log.warning("job_skipped", job=getattr(job, "__qualname__", str(job)), reason=reason, error=str(exc)[:200])

    return run
