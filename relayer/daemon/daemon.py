"""The daemon: one process of a role, composed of its parts and running their tasks until stopped.

    composition   (relayer.daemon.composition)  which adapters and workers a role runs; start-up checks
    health        (relayer.daemon.health)       chain health sampling, wallets, the router's capacity feed
    handover      (relayer.daemon.handover)     heartbeat, hand-over of dead instances' work, orphan sweep
    jobs          (relayer.daemon.jobs)         the periodic jobs and their wrappers
    API           (relayer.api.server)          served with this daemon as its ``relayer.api.daemon_view.DaemonView``

Roles: ``validator`` indexes its origins and signs checkpoints; ``relayer`` indexes every chain and delivers;
``all`` does both in one process (the devnet default). Every role serves HTTP at ``api.url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from adapters.base import AdapterError, ChainAdapter
from adapters.capabilities import FeeAccountPayments, GasPaymaster
from adapters.checkpoint import CheckpointSigner
from adapters.message import MessageId
from config.errors import ConfigError
from config.settings import Settings
from relayer.api.daemon_view import ExecutionRefused, Readiness
from relayer.api.server import PreparedApi, prepare_api, serve_api
from relayer.daemon.audit import AuditJob
from relayer.daemon.composition import (  # noqa: F401 - re-exported: the CLI, bench and tests import them from here
    OriginTrust,
    Role,
    Workers,
    build_adapters,
    build_inclusion_verifier,
    daemon_parts,
    origin_trust,
    relayer_identity,
    report_origin_trust,
    warn_if_operator_api_open,
)
from relayer.daemon.handover import Handover
from relayer.daemon.health import ChainStatus, HealthMonitor
from relayer.daemon.jobs import _ends_quietly_on_stop, _store_outage_logged, schedule_jobs  # noqa: F401
from relayer.daemon.loop_lag import watch_loop_lag
from relayer.daemon.metrics import Metrics
from relayer.explorer import ChainSampleBuffer
from relayer.pipeline.accountant import GlobalAccountant
from relayer.pipeline.cosign import CosignService
from relayer.pipeline.filters import MessageFilter, compile_rules
from relayer.pipeline.gas_policy import how_fee_accounts_are_paid, top_up
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.origin import OriginLoop
from relayer.pipeline.outcome import FailureReason
from relayer.pipeline.processor import DestinationProcessor, ManualExecutionRefused
from relayer.pipeline.validator import OriginAttester
from relayer.store import Store, StoreError
from router.api import IntentsBackend, RoutingContext
from router.capacity import CapacityModel
from router.queue import run_releaser

log = structlog.get_logger("relayer.daemon.daemon")


EXECUTION_LEASE_S = 60.0  # a manual execution holds its message this long (its delivery is recorded well before)


@dataclass
class RelayerDaemon:
    """Composes ``Workers`` (composition), ``HealthMonitor`` (health) and ``Handover`` (heartbeat, hand-over) and
    runs their tasks: the API, the origin loops, the destination processors, the periodic jobs. It is the API's
    ``DaemonView``."""

    settings: Settings
    role: Role
    adapters: dict[str, ChainAdapter]
    store: Store
    signers: list[CheckpointSigner]
    http: httpx.AsyncClient
    metrics: Metrics = field(default_factory=Metrics)
    operator_keys: list[str] = field(default_factory=list)  # the router's accounts (resolved keys; never logged)
    intents: IntentsBackend | None = None
    audit: AuditJob | None = None  # the periodic solvency audit (settings.audit)
    relayer_auth: httpx.Auth | None = None  # signs the relayer's requests to validators (relayer.identity_key)
    settings_source: Callable[[], Settings] | None = None  # reads the config again (reload_filters); None: cannot
    workers: Workers = field(init=False)
    health: HealthMonitor = field(init=False)
    handover: Handover = field(init=False)

    def __post_init__(self) -> None:
        self._relay_loop: asyncio.AbstractEventLoop | None = None  # set by run(): where the processors run
        self._prepared_api: tuple[asyncio.Event, PreparedApi] | None = None  # prepare_api's, for run(stop)
        self.workers = Workers(self.settings, self.role, self.adapters, self.store, self.signers, self.http,
                               self.metrics, operator_keys=self.operator_keys, relayer_auth=self.relayer_auth,
                               intents=self.intents, audit=self.audit)
        self.intents, self.audit = self.workers.intents, self.workers.audit
        self.health = HealthMonitor(self.settings, self.role, self.adapters, self.store, self.metrics,
                                    self.workers.attesters, self.intents)
        self.handover = Handover(self.settings, self.store, self.metrics, self.workers.processors)

    # ---- the parts, by the names the workers, the status view and the tests use
    @property
    def indexers(self) -> dict[int, OriginIndexer]:
        return self.workers.indexers

    @property
    def attesters(self) -> dict[int, OriginAttester]:
        return self.workers.attesters

    @property
    def processors(self) -> dict[int, DestinationProcessor]:
        return self.workers.processors

    @property
    def cosign(self) -> CosignService | None:
        return self.workers.cosign

    @property
    def accountant(self) -> GlobalAccountant | None:
        return self.workers.accountant

    @property
    def chain_status(self) -> dict[str, ChainStatus]:
        return self.health.chain_status

    @property
    def capacity(self) -> CapacityModel | None:
        return self.health.capacity

    @property
    def samples(self) -> ChainSampleBuffer:
        return self.health.samples

    @property
    def store_status(self) -> str:
        return self.handover.store_status

    async def refresh_health(self) -> None:
        await self.health.refresh_health()

    # ---- relayer.allow / relayer.deny
    @property
    def message_filter(self) -> MessageFilter:
        return self.workers.message_filter

    def message_filters(self) -> dict[str, Any]:
        current = self.message_filter
        return {**current.rules.view(), "loaded_at": current.loaded_at, "reloads": current.reloads}

    async def reload_filters(self, source: str) -> dict[str, Any]:
        """Read ``relayer.allow`` / ``relayer.deny`` again from the config the daemon started with, compile them and
        swap them in whole; then send the ``DROPPED(denied)`` messages the new lists allow back to delivery. The
        other settings are not reloaded. ``ConfigError`` (the old lists stay) for a file that does not load or a
        rule that does not compile. ``source``: who asked (``SIGHUP``, ``admin_api``), logged."""
        try:
            if self.settings_source is None:
                raise ConfigError("relayer.allow", "this daemon was not started from a config file: nothing to reload")
            rules = compile_rules(self.settings_source(), self.adapters)
        except ConfigError as exc:
            self.metrics.inc("relayer_message_filter_reloads_total", result="invalid")
            log.error("message_filters_reload_refused", source=source, error=str(exc)[:500])
            raise
        self.message_filter.replace(rules)
        self.metrics.inc("relayer_message_filter_reloads_total", result="ok")
        self._count_rules()
        dropped = await self.store.aio.dropped_for(FailureReason.DENIED)
        allowed = [mid for mid, raw in dropped if self.message_filter.denial(raw) is None]
        reopened = await self.store.aio.reopen(allowed, FailureReason.OPERATOR_RETRY,
                                               f"allowed by relayer.allow / relayer.deny as reloaded ({source})")
        self.metrics.inc("relayer_messages_reopened_total", reopened)
        self.destinations_changed()
        log.info("message_filters_reloaded", source=source, allow=len(rules.allow), deny=len(rules.deny),
                 reopened=reopened)
        return {"allow": len(rules.allow), "deny": len(rules.deny), "reopened": reopened, **rules.view()}

    async def gas_owed(self, message_id: str, refund_to: str | None) -> dict[str, Any] | None:
        rec = await self.store.aio.get(message_id)
        if rec is None:
            return None
        policy = self.workers.gas_policy
        mid = MessageId(bytes.fromhex(rec.id[2:]))
        owed = await top_up(policy, rec.raw, (await self.store.aio.paid_for([mid])).get(mid), rec.gas_needed)
        names = {c.domain: n for n, c in self.settings.chains.items()}
        view: dict[str, Any] = {"id": rec.id, "origin": names.get(rec.origin, str(rec.origin)),
                                "destination": names.get(rec.destination, str(rec.destination)), **owed.view(),
                                "pay": None}
        origin = self.adapters.get(view["origin"])
        if isinstance(origin, FeeAccountPayments) and origin.gas_fee_account:
            view["fee_account"] = origin.gas_fee_account
            view["how_to_pay"] = how_fee_accounts_are_paid(view["origin"], origin.gas_fee_account)
            if owed.shortfall:
                view["pay"] = origin.top_up_call(bytes(mid), rec.destination, owed.shortfall)
            return view
        paymaster = policy.paymasters.get(rec.origin) if policy else None
        if refund_to and owed.gas_limit and isinstance(paymaster, GasPaymaster):
            call = paymaster.pay_for_gas_call(bytes(mid), rec.destination, owed.gas_limit, refund_to)
            view["pay"] = {**call, "value": str(owed.value)}
        return view

    async def route_profits(self) -> list[dict[str, Any]]:
        profits = self.workers.route_profits
        return [p.view() for p in await profits.current()] if profits else []

    async def execute_message(self, message_id: str, gas_limit: int) -> dict[str, Any]:
        """The admin API's manual execution (runs on the relay loop): ``ExecutionRefused`` says why not."""
        rec, claimed = await self.store.aio.claim_for_execution(message_id, EXECUTION_LEASE_S)
        if rec is None:
            raise ExecutionRefused(404, f"no message {message_id}")
        if claimed is None:
            raise ExecutionRefused(409, f"message {message_id} is {rec.state}" + (
                f" ({rec.last_reason}: it cannot be delivered)" if rec.state == "DROPPED"
                else ", held by a processor right now: try again in a moment"
                if rec.state in ("DISPATCHED", "ATTESTED") else ": nothing to execute"))
        processor = self.processors.get(claimed.destination)
        if processor is None:
            raise ExecutionRefused(409, f"this daemon delivers nothing to domain {claimed.destination}")
        try:
            tx = await processor.execute_now(claimed, gas_limit)
        except ManualExecutionRefused as exc:
            await self.store.aio.release([claimed.id])
            raise ExecutionRefused(409, str(exc)) from None
        except AdapterError as exc:
            await self.store.aio.release([claimed.id])
            raise ExecutionRefused(503, f"the destination did not take it: {str(exc)[:300]}") from None
        return {"id": rec.id, "tx": tx.tx_hash, "gas_limit": gas_limit}

    def destinations_changed(self) -> None:
        """The operator changed something (from the API's own thread, or a signal): the processors look again, on
        the relay loop they run on."""
        def wake() -> None:
            for processor in self.processors.values():
                processor.routes_changed()

        if self._relay_loop is None:
            wake()
        else:
            self._relay_loop.call_soon_threadsafe(wake)

    def _count_rules(self) -> None:
        rules = self.message_filter.rules
        self.metrics.set("relayer_message_filter_rules", len(rules.allow), list="allow")
        self.metrics.set("relayer_message_filter_rules", len(rules.deny), list="deny")

    # ---- what the API reads (relayer.api.daemon_view.DaemonView)
    def ready(self) -> tuple[bool, dict[str, str]]:
        detail = self.health.chains_ready()
        return all(v == "ok" for v in detail.values()) and self.store_status == "ok", detail

    def readiness(self) -> Readiness:
        ok, chains = self.ready()
        return Readiness(ok, chains, self.store_status)

    async def status(self) -> dict[str, Any]:
        return await self.health.status_report(self.role, self.signers)

    def checkpoints(self, origin: int) -> OriginAttester | None:
        return self.attesters.get(origin)

    # ---- workers
    def prepare_api(self, stop: asyncio.Event) -> None:
        """Build the HTTP API now (a few hundred milliseconds), for a later ``run(stop)`` with this ``stop``: a daemon
        forked ahead of its start (``relayer.testing``) then serves it as soon as it runs."""
        self._prepared_api = (stop, prepare_api(self, stop))

    async def run(self, stop: asyncio.Event, on_started: Callable[[], Awaitable[None]] | None = None) -> None:
        for indexer in self.indexers.values():
            await self.store.aio.run(indexer.load)
        for attester in self.attesters.values():
            await self.store.aio.run(attester.load)
        if self.accountant is not None:
            await self.store.aio.run(self.accountant.load, {d: a.latest_index for d, a in self.attesters.items()})
        await self.store.aio.register_instance(self.role)
        self._relay_loop = asyncio.get_running_loop()
        self._count_rules()
        self.handover.started()
        scheduler = schedule_jobs(self.settings, self.health, self.handover, self.intents, self.audit, stop,
                                  gas_oracle=self.workers.gas_oracle, route_profits=self.workers.route_profits,
                                  queue_releaser=self.workers.queue_releaser, netting=self.workers.netting)
        warn_if_operator_api_open(self.settings, self.operator_keys, self.metrics)
        await self.refresh_health()
        scheduler.start()
        log.info("daemon_started", role=self.role, chains=list(self.adapters),
                 validators=[s.address for s in self.signers], api=self.settings.api.url, store=self.store._safe_url())
        prepared = self._prepared_api[1] if self._prepared_api is not None and self._prepared_api[0] is stop else None
        tasks = [asyncio.create_task(serve_api(self, stop, prepared=prepared,
                                               watch_lag=lambda served: watch_loop_lag(self.metrics, "api", served)),
                                     name="api"),
                 asyncio.create_task(watch_loop_lag(self.metrics, "relay", stop), name="loop-lag")]
        tasks += [asyncio.create_task(OriginLoop(i, self.attesters.get(d), self.processors, self.metrics,
                                                 interval_s=self.settings.chains[i.adapter.name].poll_interval_s).run(stop),
                                      name=f"origin-{d}") for d, i in self.indexers.items()]
        tasks += [asyncio.create_task(p.run(stop), name=f"destination-{d}") for d, p in self.processors.items()]
        if self.intents is not None and self.intents.executor is not None and self.intents.executor.lanes is not None:
            tasks.append(asyncio.create_task(self.intents.executor.lanes.run(stop), name="intent-lanes"))
            releaser = RoutingContext(lambda: self.capacity, time.monotonic, self.intents, (), None, None)
            tasks.append(asyncio.create_task(run_releaser(releaser, stop), name="intent-queue"))
        if on_started is not None:
            await on_started()
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                if t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            scheduler.shutdown(wait=False)
            try:
                await self.store.aio.stop_instance()  # peers take over what is left at once
            except StoreError as exc:
                log.warning("instance_stop_not_recorded", reason=exc.reason, error=str(exc)[:300])
            log.info("daemon_stopped")

    async def close(self) -> None:
        if self.intents is not None and self.intents.executor is not None:
            await self.intents.executor.close()
        for attester in self.attesters.values():
            if attester.verifier is not None:
                with contextlib.suppress(Exception):
                    await attester.verifier.close()
        for adapter in self.adapters.values():
            with contextlib.suppress(Exception):
                await adapter.close()
        await self.http.aclose()
        self.store.close()


def build_daemon(settings: Settings, role: Role, *, instance: str | None = None) -> RelayerDaemon:
    """The daemon of ``role`` from settings (``ConfigError`` naming the key when the role cannot start)."""
    parts = daemon_parts(settings, role, instance=instance)
    daemon = RelayerDaemon(settings, role, parts.adapters, parts.store, parts.signers, parts.http,
                           operator_keys=parts.operator_keys, relayer_auth=parts.relayer_auth)
    report_origin_trust(parts.trust, daemon.metrics)
    return daemon
