"""Composition root: builds adapters, store, signers and workers from settings and runs them.

This is the only module that picks concrete adapters (``build_daemon``). Everything else receives its
dependencies through constructors, so tests can hand ``RelayerDaemon`` fakes or real devnet adapters.

Roles: ``validator`` indexes its origins and signs checkpoints; ``relayer`` indexes every chain and delivers;
``all`` does both in one process (the devnet default). Every role serves HTTP at ``api.url``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlparse

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import (
    AdapterError,
    CapacitySource,
    ChainAdapter,
    ChainHealth,
    ChainStats,
    Cosigner,
    InclusionVerifier,
    MessageSender,
    WalletBalance,
    WalletSource,
)
from adapters.capabilities import LightClientFollower
from adapters.checkpoint import CheckpointSigner
from adapters.keys import resolve_private_key
from config.errors import ConfigError
from config.settings import ChainConfig, Settings
from relayer.api.ratelimit import KeyedRateLimiter, retry_after_header
from relayer.api.relayer_auth import RelayerAuth, RelayerRequestSigner
from relayer.daemon.audit import AuditJob
from relayer.daemon.metrics import Metrics
from relayer.explorer import ChainSampleBuffer
from relayer.pipeline.accountant import GlobalAccountant, TokenDirectory
from relayer.pipeline.checkpoints import CheckpointCollector
from relayer.pipeline.cosign import CosignService, HttpCosigner
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.origin import OriginLoop
from relayer.pipeline.processor import DestinationProcessor
from relayer.pipeline.validator import OriginAttester
from relayer.store import FailureReason, MessageState, Store, StoreError
from router.api import IntentLimits, IntentsBackend, call_allowed, profile_from_stats
from router.capacity import CapacityModel
from router.intents import IntentExecutor, IntentStore, Operator

log = structlog.get_logger("relayer.daemon.daemon")

Role = Literal["validator", "relayer", "all"]


@dataclass
class ChainStatus:
    name: str
    domain: int
    health: ChainHealth | None = None
    stats: ChainStats | None = None
    checked_at: float = 0.0


@dataclass
class RelayerDaemon:
    settings: Settings
    role: Role
    adapters: dict[str, ChainAdapter]
    store: Store
    signers: list[CheckpointSigner]
    http: httpx.AsyncClient
    metrics: Metrics = field(default_factory=Metrics)
    indexers: dict[int, OriginIndexer] = field(default_factory=dict)
    attesters: dict[int, OriginAttester] = field(default_factory=dict)
    processors: dict[int, DestinationProcessor] = field(default_factory=dict)
    chain_status: dict[str, ChainStatus] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    capacity: CapacityModel | None = None  # live chain capacity for the routing API, once every chain was sampled
    cosign: CosignService | None = None  # validator role with co-signed destinations (Solana, Cosmos)
    accountant: GlobalAccountant | None = None  # validator role: what was locked and paid out, per token and chain
    operator_keys: list[str] = field(default_factory=list)  # the router's accounts (resolved keys; never logged)
    intents: IntentsBackend | None = None
    store_status: str = "ok"  # "ok" or why the last heartbeat could not reach the store (in /readyz)
    _store_ok_since: float | None = None  # monotonic time of the first good heartbeat after start or an outage
    wallet_low_logged: dict[str, float] = field(default_factory=dict)  # chain -> when wallet_balance_low was last logged
    samples: ChainSampleBuffer = field(default_factory=ChainSampleBuffer)  # the explorer's chain history
    audit: AuditJob | None = None  # the periodic solvency audit (settings.audit)
    relayer_auth: httpx.Auth | None = None  # signs the relayer's requests to validators (relayer.identity_key)

    def __post_init__(self) -> None:
        s = self.settings
        domains = {c.domain for c in s.chains.values()}
        names = {c.domain: n for n, c in s.chains.items()}
        # a relayer indexes every chain (any may be an origin); a validator-only process just its origins
        origins = list(s.chains) if self.role != "validator" else (s.validator.origins or list(s.chains))
        for name in origins:
            chain = s.chains[name]
            self.indexers[chain.domain] = OriginIndexer(self.adapters[name], self.store, known_destinations=domains,
                                                        start_height=chain.start_height, metrics=self.metrics)
        if self.role in ("validator", "all"):
            attest = s.validator.origins or list(s.chains)
            self.accountant = self._accountant(attest)
            for name in attest:
                d = s.chains[name].domain
                verifier = build_inclusion_verifier(name, s.chains[name]) if s.validator.verify_inclusion else None
                self.attesters[d] = OriginAttester(self.adapters[name], self.indexers[d], self.signers, self.store, self.metrics,
                                                   verifier=verifier, accountant=self.accountant)
            if s.validator.cosign_keys:
                self.cosign = self._cosign_service()
        if self.role in ("relayer", "all"):
            collector = CheckpointCollector(s.security, self.http, timeout_s=s.relayer.signature_timeout_s,
                                            refresh_s=s.relayer.poll_interval_s, metrics=self.metrics, chain_names=names,
                                            auth=self.relayer_auth)
            for name, chain in s.chains.items():
                self.processors[chain.domain] = DestinationProcessor(self.adapters[name], self.store, self.indexers, collector,
                                                                     s.relayer, self.metrics, chain_names=names)
        for name, chain in s.chains.items():
            self.chain_status[name] = ChainStatus(name, chain.domain)
        if self.intents is None:
            self.intents = self._intents_backend()
        if self.audit is None and s.audit.enabled:
            self.audit = AuditJob(s, self.adapters, self.metrics)

    def _cosign_service(self) -> CosignService:
        s = self.settings
        keys: dict[str, dict[str, str]] = {}
        for chain, chain_keys in s.validator.cosign_keys.items():
            if chain not in s.chains:
                raise ConfigError(f"validator.cosign_keys.{chain}", f"unknown chain; known: {', '.join(s.chains)}")
            if len(chain_keys) != len(self.signers):
                raise ConfigError(f"validator.cosign_keys.{chain}",
                                  f"one key per validator.keys entry ({len(self.signers)}), got {len(chain_keys)}")
            keys[chain] = {signer.address: resolve_private_key(k, where=f"validator.cosign_keys.{chain}[{i}]")
                           for i, (signer, k) in enumerate(zip(self.signers, chain_keys, strict=True))}

        def latest_signed(validator: str, origin: int) -> int | None:
            rec = self.store.checkpoint(validator, origin, None)
            return None if rec is None else rec.index

        return CosignService(self.store, self.adapters, keys, latest_signed, self.metrics, accountant=self.accountant)

    def _accountant(self, attest: list[str]) -> GlobalAccountant | None:
        """The validators' accountant; it must see every origin whose bridge sends tokens (it counts only what
        this process attests), so with ``validator.origins`` leaving one out there is none (logged)."""
        directory = TokenDirectory.from_settings(self.settings, self.adapters)
        unseen = sorted(directory.chain_label(d) for d in directory.bridges
                        if directory.chain_label(d) not in attest)
        if unseen:
            log.warning("accountant_disabled", reason="validator.origins leaves out chains with a token bridge",
                        chains=unseen)
            return None
        def lagging() -> list[int]:  # origins not indexed to their finalized height, or not attested to the index
            return [d for d, a in self.attesters.items() if a.indexer.indexed_height is None
                    or a.indexer.indexed_height < (a.indexer.finalized_height or 0)
                    or a.latest_index < a.indexer.tree.count - 1]

        return GlobalAccountant(directory, self.store, self.metrics, lagging=lagging)

    def _intents_backend(self) -> IntentsBackend:
        """The routing API's intents: rows in the daemon's database, executed with the operator accounts."""
        s = self.settings
        store = IntentStore(self.store.engine)
        decimals: dict[str, int] = {}
        token_chains: dict[str, set[str]] = {}
        for name, chain in s.chains.items():
            for symbol, token in getattr(chain, "tokens", {}).items():
                decimals.setdefault(symbol, token.decimals)
                token_chains.setdefault(symbol, set()).add(name)
        senders = {n: a for n, a in self.adapters.items() if isinstance(a, MessageSender)}
        r = s.router
        allowlist = {chain: {t.contract.lower(): frozenset(sel.lower() for sel in t.selectors) for t in targets}
                     for chain, targets in r.call_allowlist.items()}
        executor = None
        if senders:  # without operator keys the API still plans and hands out unsigned transactions
            operators = [Operator(k, CheckpointSigner.from_hex(k).address) for k in self.operator_keys]
            executor = IntentExecutor(store, senders, {n: c.domain for n, c in s.chains.items()}, operators,
                                      lambda mid: (rec.state if (rec := self.store.get(mid)) else None),
                                      native_usd=r.native_usd,
                                      call_allowed=lambda chain, to, data: call_allowed(allowlist, chain, to, data))
        not_bridged = frozenset(sym for chain in s.chains.values() for sym, t in getattr(chain, "tokens", {}).items()
                                if not getattr(t, "bridged", True))
        # per client (API key, or address when there are none): bounded in memory whatever the callers send
        limits = IntentLimits(
            intents=KeyedRateLimiter(r.intents_per_s, float(r.intents_burst)), intents_per_s=r.intents_per_s,
            intents_burst=r.intents_burst,
            value={sym: KeyedRateLimiter(cap / 86_400.0, cap) for sym, cap in r.value_per_day.items()},
            value_per_day=dict(r.value_per_day), retry_after=retry_after_header, max_open_unsigned=r.max_open_unsigned)
        return IntentsBackend(store, executor, decimals, token_chains, r.integrator_fee_share, not_bridged,
                              limits=limits, call_allowlist=allowlist,
                              on_refusal=lambda reason: self.metrics.inc("router_intents_refused_total", reason=reason))

    # ---- periodic jobs (apscheduler)
    async def refresh_health(self) -> None:
        async def one(name: str, adapter: ChainAdapter) -> None:
            try:
                health = await adapter.health()
            except AdapterError as exc:
                health = ChainHealth(False, None, None, 0.0, detail=str(exc)[:200])
            self.chain_status[name].health = health
            self.chain_status[name].checked_at = time.time()
            if health.healthy and isinstance(adapter, CapacitySource):
                try:
                    stats = await adapter.chain_stats()
                except AdapterError:
                    stats = None
                self.chain_status[name].stats = stats
                if stats is not None:
                    self.metrics.set("relayer_chain_utilisation", round(stats.gas_used_ratio, 4), chain=name)
                    self.metrics.set("relayer_chain_base_fee", stats.base_fee, chain=name)
            self.metrics.set("relayer_chain_up", 1.0 if health.healthy else 0.0, chain=name)
            if health.latest_height is not None:
                self.metrics.set("relayer_chain_height", health.latest_height, chain=name)
                if health.finalized_height is not None:
                    self.metrics.set("relayer_chain_finalized_lag", health.latest_height - health.finalized_height, chain=name)

        await asyncio.gather(*(one(n, a) for n, a in self.adapters.items()))
        if self.role in ("relayer", "all"):
            await self.sample_wallets()
        self._feed_capacity()
        self._sample_router()
        names = {c.domain: n for n, c in self.settings.chains.items()}
        counts = self.store.counts_by_state()
        queue: dict[int, dict[str, int]] = {}
        for (dest, state), n in counts.items():
            queue.setdefault(dest, {})[state] = n
        self.samples.record(self.chain_status.values(), capacity=self.capacity, queue=queue)
        for dest in sorted({d for d, _ in counts} | set(names)):
            for state in MessageState:  # every state, so one that empties reads 0, not its last count
                self.metrics.set("relayer_queue_depth", counts.get((dest, state.value), 0),
                                 destination=names.get(dest, dest), state=state.value)
        reasons = self.store.reasons()
        for reason in FailureReason:
            self.metrics.set("relayer_messages_waiting", reasons.get(reason.value, 0), reason=reason.value)
        await self._follow_light_clients()
        for attester in self.attesters.values():
            for address in attester.signers:
                if attester.latest_index >= 0:
                    self.metrics.set("validator_latest_signed_index", attester.latest_index,
                                     origin=attester.adapter.name, validator=address)

    async def _follow_light_clients(self) -> None:
        """Keep the origins' sync-committee light clients caught up between claims; export their finalized height."""
        async def one(attester: OriginAttester) -> None:
            verifier = attester.verifier
            finalized = await verifier.follow_light_client() if isinstance(verifier, LightClientFollower) else None
            if finalized is not None:
                self.metrics.set("validator_light_client_finalized_height", finalized.number, origin=attester.adapter.name)

        await asyncio.gather(*(one(a) for a in self.attesters.values()))

    async def sample_wallets(self) -> None:
        """Balance of each chain's paying account; below ``min_wallet_balance``: gauge 1 and ``wallet_balance_low``
        logged (on the change, then once a minute while it lasts)."""
        async def one(name: str, adapter: WalletSource) -> tuple[str, WalletBalance | None]:
            try:
                return name, await adapter.wallet_balance()
            except AdapterError as exc:
                log.debug("wallet_balance_unavailable", chain=name, error=str(exc)[:200])
                return name, None

        sources = [(n, a) for n, a in self.adapters.items() if isinstance(a, WalletSource)]
        for name, balance in await asyncio.gather(*(one(n, a) for n, a in sources)):
            if balance is None:
                continue
            self.metrics.set("relayer_wallet_balance", balance.native, chain=name, address=balance.address)
            minimum = self.settings.chains[name].min_wallet_balance
            if minimum is None:
                continue
            self.metrics.set("relayer_wallet_min_balance", minimum, chain=name)
            low = balance.native < minimum
            self.metrics.set("relayer_wallet_balance_low", 1.0 if low else 0.0, chain=name, address=balance.address)
            now = time.monotonic()
            if low and now - self.wallet_low_logged.get(name, -1e9) >= 60.0:
                self.wallet_low_logged[name] = now
                log.warning("wallet_balance_low", chain=name, address=balance.address, balance=balance.native,
                            min_wallet_balance=minimum)
            elif not low and self.wallet_low_logged.pop(name, None) is not None:
                log.info("wallet_balance_ok", chain=name, address=balance.address, balance=balance.native,
                         min_wallet_balance=minimum)

    def _sample_router(self) -> None:
        """The capacity model's view per chain: recent use as a fraction of the target, and the spare room."""
        model = self.capacity
        if model is None:
            return
        utilisation = model.used_fraction_ema / model.target_utilisation
        spare = model.spare_gas_per_s(time.monotonic()) / model.transfer_gas
        for name, i in model.index.items():
            self.metrics.set("router_chain_utilisation", round(float(utilisation[i]), 6), chain=name)
            self.metrics.set("router_chain_spare_transfers_per_s", round(float(spare[i]), 3), chain=name)

    def _feed_capacity(self) -> None:
        """Build the capacity model from the first full round of chain stats, then feed it every round."""
        now = time.monotonic()
        if self.capacity is None:
            if any(st.stats is None or st.health is None for st in self.chain_status.values()):
                return
            r = self.settings.router
            profiles = []
            for st in self.chain_status.values():
                assert st.stats is not None and st.health is not None
                lag = (st.health.latest_height or 0) - (st.health.finalized_height or 0)
                profiles.append(profile_from_stats(st.name, st.domain, self.settings.chains[st.name].family, st.stats,
                                                   finality_blocks=max(1, lag), transfer_gas=r.transfer_gas,
                                                   native_usd=r.native_usd))
            self.capacity = CapacityModel(profiles, now_s=now)
        model = self.capacity
        for st in self.chain_status.values():
            i = model.index[st.name]
            if st.stats is not None and st.health is not None and st.health.healthy:
                # our own share of those blocks: intents the router sent there and saw mined over the same window
                own_gas = 0.0
                executor = self.intents.executor if self.intents is not None else None
                if executor is not None:
                    window = max(st.stats.blocks, 1) * st.stats.block_time_s
                    own_gas = (executor.included_work_per_s(st.name, window) * self.settings.router.transfer_gas
                               * st.stats.block_time_s)
                model.observe_blocks(i, gas_used=st.stats.gas_used_ratio * st.stats.gas_limit, own_gas=own_gas,
                                     base_fee=st.stats.base_fee_native, gas_limit=st.stats.gas_limit, now_s=now)
            else:
                model.observe_error(i)

    def sweep_orphans(self) -> None:
        try:
            for p in self.processors.values():
                p.sweep_orphans()
        except StoreError as exc:
            log.warning("orphan_sweep_failed", reason=exc.reason, error=str(exc)[:300])

    # ---- several instances on one store: heartbeat and hand-over
    def beat(self) -> None:
        """Heartbeat (every ``relayer.instance_lease_s / 5``); a relayer then takes over dead instances' work."""
        lease = self.settings.relayer.instance_lease_s
        now = time.monotonic()
        try:
            was_dead = self.store.heartbeat()
            alive = self.store.alive_instances(lease)
        except StoreError as exc:
            if self._store_ok_since is not None:
                log.warning("store_unavailable", reason=exc.reason, error=str(exc)[:300])
            self._store_ok_since = None
            self.store_status = f"{exc.reason}: {str(exc)[:200]}"
            self.metrics.set("relayer_store_up", 0.0)
            self.metrics.inc("relayer_store_errors_total", reason=exc.reason, where="heartbeat")
            return
        if self._store_ok_since is None:
            if self.store_status != "ok":
                log.info("store_available_again")
            self._store_ok_since = now
        self.store_status = "ok"
        self.metrics.set("relayer_store_up", 1.0)
        self.metrics.set("relayer_instances_alive", alive)
        if was_dead is not None:
            log.warning("instance_was_declared_dead", instance=self.store.owner, handed_over_to=was_dead.handed_over_to,
                        reason="heartbeat late by more than relayer.instance_lease_s")
        # only after a whole lease of our own good beats: after a store outage every peer looks silent at first
        if not self.processors or now - self._store_ok_since < lease:
            return
        try:
            handovers = self.store.adopt_dead_instances(lease)
        except StoreError as exc:
            log.warning("handover_failed", reason=exc.reason, error=str(exc)[:300])
            return
        if any(h.deliveries or h.messages for h in handovers):
            for processor in self.processors.values():
                processor.wake()
        for h in handovers:
            if not h.deliveries and not h.messages:  # it left nothing in hand: only note that it is gone
                log.info("instance_gone", instance=h.from_instance, reason=h.reason.value, silent_s=round(h.silent_s, 1))
                continue
            self.metrics.inc("relayer_handovers_total", from_instance=h.from_instance, reason=h.reason.value)
            self.metrics.inc("relayer_messages_handed_over_total", h.messages, from_instance=h.from_instance,
                             reason=h.reason.value)
            log.warning("instance_handover", from_instance=h.from_instance, to_instance=self.store.owner,
                        reason=h.reason.value, silent_s=round(h.silent_s, 1), deliveries=len(h.deliveries),
                        submitted=h.submitted, released=h.released)

    def ready(self) -> tuple[bool, dict[str, str]]:
        detail = {}
        for name, st in self.chain_status.items():
            h = st.health
            detail[name] = "ok" if h and h.healthy else (h.detail if h else "not checked yet")
        return all(v == "ok" for v in detail.values()) and self.store_status == "ok", detail

    # ---- workers
    async def run(self, stop: asyncio.Event, on_started: Callable[[], Awaitable[None]] | None = None) -> None:
        from relayer.api.server import serve_api
        from relayer.daemon.loop_lag import watch_loop_lag

        for indexer in self.indexers.values():
            indexer.load()
        for attester in self.attesters.values():
            attester.load()
        if self.accountant is not None:
            self.accountant.load({d: a.latest_index for d, a in self.attesters.items()})
        self.store.register_instance(self.role)
        self._store_ok_since = time.monotonic()
        scheduler = AsyncIOScheduler()
        scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(self.refresh_health), stop), "interval",
                          seconds=2.0, max_instances=1, coalesce=True)
        scheduler.add_job(self.sweep_orphans, "interval", seconds=15.0, max_instances=1, coalesce=True)
        scheduler.add_job(self.beat, "interval", seconds=max(0.2, self.settings.relayer.instance_lease_s / 5),
                          max_instances=1, coalesce=True)
        if self.intents is not None and self.intents.executor is not None:
            executor = self.intents.executor
            scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(executor.refresh_unsettled), stop),
                              "interval", seconds=1.0, max_instances=1, coalesce=True)
            ttl = self.settings.router.unsigned_ttl_s  # rows of intents that never landed expire
            scheduler.add_job(_ends_quietly_on_stop(_store_outage_logged(_as_async(lambda: executor.prune(ttl))), stop),
                              "interval", seconds=min(30.0, ttl / 4), max_instances=1, coalesce=True)
        self._warn_if_operator_api_open()
        if self.audit is not None:  # the first audit right away, then every audit.interval_s
            scheduler.add_job(_ends_quietly_on_stop(self.audit.run_once, stop), "interval",
                              seconds=self.settings.audit.interval_s, max_instances=1, coalesce=True,
                              next_run_time=datetime.now(UTC))
        await self.refresh_health()
        scheduler.start()
        log.info("daemon_started", role=self.role, chains=list(self.adapters), validators=[s.address for s in self.signers],
                 api=self.settings.api.url, store=self.store._safe_url())
        tasks = [asyncio.create_task(serve_api(self, stop), name="api"),
                 asyncio.create_task(watch_loop_lag(self.metrics, "relay", stop), name="loop-lag")]
        tasks += [asyncio.create_task(OriginLoop(i, self.attesters.get(d), self.processors, self.metrics,
                                                 interval_s=self.settings.chains[i.adapter.name].poll_interval_s).run(stop),
                                      name=f"origin-{d}") for d, i in self.indexers.items()]
        tasks += [asyncio.create_task(p.run(stop), name=f"destination-{d}") for d, p in self.processors.items()]
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
                self.store.stop_instance()  # peers take over what is left at once
            except StoreError as exc:
                log.warning("instance_stop_not_recorded", reason=exc.reason, error=str(exc)[:300])
            log.info("daemon_stopped")

    def _warn_if_operator_api_open(self) -> None:
        """Operator keys and no API key (allowed only on a loopback-only API, ``Settings.check_operator_exposure``):
        say so at start, as an event and a gauge, since anyone on this host can then spend the operator accounts."""
        open_api = self.settings.operator_api_open and bool(self.operator_keys)
        self.metrics.set("router_operator_api_unauthenticated", 1.0 if open_api else 0.0)
        if open_api:
            log.warning("operator_api_unauthenticated", api=self.settings.api.url, operators=len(self.operator_keys),
                        risk="anyone on this host can spend the operator accounts through POST /v1/intents",
                        fix="set router.api_keys")

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


def _as_async(job: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        job()

    run.__qualname__ = getattr(job, "__qualname__", "job")
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


def build_adapters(settings: Settings, *, with_signers: bool, cosigner: Cosigner | None = None) -> dict[str, ChainAdapter]:
    """The one place that maps a chain family to its adapter class. ``cosigner`` gathers the validators'
    signatures for destinations delivered by co-signed transactions (Solana, Cosmos)."""
    adapters: dict[str, ChainAdapter] = {}
    for name, chain in settings.chains.items():
        key = resolve_private_key(chain.signer, where=f"chains.{name}.signer") if (with_signers and chain.signer) else None
        if chain.family == "evm":
            from adapters.evm.adapter import EvmAdapter

            adapters[name] = EvmAdapter(name, chain, signer_key=key)
        elif chain.family == "cosmos":
            from adapters.cosmos.adapter import CosmosAdapter

            escrow = {sym: t.escrow for sym, t in chain.tokens.items() if t.wrapped and t.escrow is not None}
            adapters[name] = CosmosAdapter(name, chain, cosigner=cosigner, remote_bridges=chain.remote_bridges,
                                           wrapped_escrow=escrow)
        elif chain.family == "solana":
            from adapters.solana.adapter import SolanaAdapter

            adapters[name] = SolanaAdapter(name, chain, cosigner=cosigner)  # its fee payer comes from chain.signer
        else:  # pragma: no cover - the config union only admits known families
            raise ConfigError(f"chains.{name}.family", f"no adapter for family {chain.family!r}")
    return adapters


def build_inclusion_verifier(name: str, chain: ChainConfig) -> InclusionVerifier | None:
    """The light-client check of one origin, by chain family (the validator's path)."""
    from light_clients.ethereum.inclusion import EvmInclusionVerifier, TrustedAnchor

    if chain.family == "evm":
        cp = chain.trusted_checkpoint
        anchor = TrustedAnchor(cp.height, bytes.fromhex(cp.hash[2:])) if cp is not None else None
        beacon = None
        if chain.beacon_url is not None and chain.trusted_block_root is not None:
            from light_clients.ethereum.consensus.beacon_client import BeaconLightClient
            from light_clients.ethereum.consensus.config import DEVNET_SLOT_DURATION_MS, devnet_network
            from light_clients.ethereum.consensus.preset import LightClientFork

            # the devnet beacon network of this chain id (devnets/beacon): preset, fork schedule, genesis root
            beacon = BeaconLightClient(name, chain.beacon_url, bytes.fromhex(chain.trusted_block_root[2:]),
                                       devnet_network(chain.chain_id), LightClientFork.ELECTRA, DEVNET_SLOT_DURATION_MS,
                                       timeout_s=chain.request_timeout_s)
        return EvmInclusionVerifier(name, chain.rpc_url, chain.mailbox, other_rpc_urls=chain.verify_rpc_urls, anchor=anchor,
                                    beacon=beacon)
    if chain.family == "cosmos":
        from adapters.cosmos.transactions import tokens_from_config
        from light_clients.tendermint.inclusion import CosmosInclusionVerifier

        return CosmosInclusionVerifier(name, chain.rpc_url, chain.vault, chain.domain, other_rpc_urls=chain.verify_rpc_urls,
                                       trusting_period_s=chain.trusting_period_s,
                                       tokens=tokens_from_config(chain.domain, chain.tokens))
    return None  # Solana: no light client exists; the adapter requires its verify_rpc_urls to agree


@dataclass(frozen=True)
class OriginTrust:
    """What a validator's checks on one origin rest on: ``source`` is ``beacon`` (sync-committee light client),
    ``tendermint`` (the Cosmos light client), ``endpoints`` (agreeing independent RPC endpoints) or ``single_rpc``
    (the operator chose to trust rpc_url alone: ``reason`` says how)."""

    chain: str
    family: str
    source: str
    reason: str = ""


def origin_trust(settings: Settings) -> list[OriginTrust]:
    """The start-up rule of the validator role, for every origin it attests.

    EVM needs ``beacon_url`` (+ ``trusted_block_root``) or ``verify_rpc_urls`` (another independent endpoint that
    must agree); Solana needs ``verify_rpc_urls``; Cosmos has its Tendermint light client. Otherwise the operator
    must say ``trust_single_rpc = true`` for that chain, or ``ConfigError`` names the chain and the keys to set.
    ``validator.verify_inclusion = false`` is itself the operator's choice to trust the RPC node of every EVM and
    Cosmos origin (no light client runs), reported as such."""
    found = []
    for name in settings.validator.origins or list(settings.chains):
        chain = settings.chains[name]
        if chain.family == "cosmos":
            if settings.validator.verify_inclusion:
                found.append(OriginTrust(name, "cosmos", "tendermint"))
            else:
                found.append(OriginTrust(name, "cosmos", "single_rpc", "validator.verify_inclusion = false"))
            continue
        if chain.family == "evm" and not settings.validator.verify_inclusion:
            found.append(OriginTrust(name, "evm", "single_rpc", "validator.verify_inclusion = false"))
        elif chain.family == "evm" and chain.beacon_url is not None:
            found.append(OriginTrust(name, "evm", "beacon"))
        elif chain.verify_rpc_urls:
            found.append(OriginTrust(name, chain.family, "endpoints"))
        elif chain.trust_single_rpc:
            found.append(OriginTrust(name, chain.family, "single_rpc", f"chains.{name}.trust_single_rpc = true"))
        else:
            keys = ("beacon_url + trusted_block_root (a sync-committee light client), " if chain.family == "evm" else "")
            raise ConfigError(f"chains.{name}", f"the validator attests {name} but has no light-client source and no "
                              f"second endpoint to compare its RPC node with: set {keys}verify_rpc_urls (other "
                              f"independent endpoints that must agree), or trust_single_rpc = true to accept trusting "
                              f"{chain.rpc_url} alone")
    return found


def report_origin_trust(trust: list[OriginTrust], metrics: Metrics) -> None:
    """At start: a warning per origin trusted on one RPC node, and ``validator_single_rpc_trust{chain}`` (1 or 0)."""
    for t in trust:
        single = t.source == "single_rpc"
        metrics.set("validator_single_rpc_trust", 1.0 if single else 0.0, chain=t.chain)
        if single:
            log.warning("validator_single_rpc_trust", chain=t.chain, family=t.family, reason=t.reason,
                        note="this validator signs what one RPC node says about this origin")
        else:
            log.info("validator_origin_trust", chain=t.chain, family=t.family, source=t.source)


def build_daemon(settings: Settings, role: Role, *, instance: str | None = None) -> RelayerDaemon:
    settings.check_operator_exposure()  # ConfigError naming router.api_keys: operator keys on an open, non-loopback API
    trust = origin_trust(settings) if role in ("validator", "all") else []
    if role in ("relayer", "all"):
        missing = [n for n, c in settings.chains.items() if c.signer is None and c.family != "cosmos"]  # cosmos: the multisig pays
        if missing:
            raise ConfigError(f"chains.{missing[0]}.signer", "the relayer role needs a signer on every destination chain")
    signers: list[CheckpointSigner] = []
    if role in ("validator", "all"):
        if not settings.validator.keys:
            raise ConfigError("validator.keys", "the validator role needs at least one key")
        for i, key in enumerate(settings.validator.keys):
            signers.append(CheckpointSigner.from_hex(resolve_private_key(key, where=f"validator.keys[{i}]")))
        if settings.validator.cosign_keys and not settings.validator.allowed_relayers:
            # without an allow-list no co-sign request could ever be accepted (and co-signing is never open to anyone)
            raise ConfigError("validator.allowed_relayers", "co-signing (validator.cosign_keys) serves only allow-listed "
                                                            "relayers: list their identity addresses (relayer.identity_key)")
    relayer_auth = relayer_identity(settings) if role in ("relayer", "all") else None
    store = Store(settings.store.url, owner=instance or socket.gethostname())
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))
    adapters = build_adapters(settings, with_signers=role in ("relayer", "all"),
                              cosigner=HttpCosigner(settings.security.validators, http, auth=relayer_auth))
    operator_keys = [resolve_private_key(k, where=f"router.operator_keys[{i}]")
                     for i, k in enumerate(settings.router.operator_keys)]
    daemon = RelayerDaemon(settings, role, adapters, store, signers, http, operator_keys=operator_keys,
                           relayer_auth=relayer_auth)
    report_origin_trust(trust, daemon.metrics)
    return daemon


def relayer_identity(settings: Settings) -> RelayerAuth:
    """The relayer's request signer from ``relayer.identity_key`` (required by the relayer role; never a validator's
    key, so a relayer identity can never sign anything a validator signs)."""
    if settings.relayer.identity_key is None:
        raise ConfigError("relayer.identity_key", "the relayer role signs its requests to validators with this key (its "
                                                  "address goes into their validator.allowed_relayers); none is set")
    signer = RelayerRequestSigner(resolve_private_key(settings.relayer.identity_key, where="relayer.identity_key"))
    if signer.address in {v.address.lower() for v in settings.security.validators}:
        raise ConfigError("relayer.identity_key", f"{signer.address} is a validator's address: the relayer's identity "
                                                  "must be a key of its own")
    log.info("relayer_identity", address=signer.address)
    return RelayerAuth(signer)


def api_host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)
