"""The daemon's view of its chains: the health sampling job (every 2 s), wallet balances, the light clients'
progress, and the routing API's capacity model, which it builds from the first full round of chain stats and feeds
every round after. ``/readyz``, ``/v1/status``, the explorer's chain history and the status view read what it keeps.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from adapters.base import (
    AdapterError,
    CapacitySource,
    ChainAdapter,
    ChainHealth,
    ChainStats,
    WalletBalance,
    WalletSource,
)
from adapters.capabilities import EndpointHealth, LightClientFollower, QuorumDisagreements
from adapters.checkpoint import CheckpointSigner
from config.settings import Settings
from relayer.daemon.metrics import Metrics
from relayer.explorer import ChainSampleBuffer
from relayer.pipeline.validator import OriginAttester
from relayer.store import FailureReason, MessageState, Store
from router.api import IntentsBackend, profile_from_stats
from router.capacity import CapacityModel

log = structlog.get_logger("relayer.daemon.health")



@dataclass
class ChainStatus:
    name: str
    domain: int
    health: ChainHealth | None = None
    stats: ChainStats | None = None

@dataclass
class HealthMonitor:
    """Samples every chain (``refresh_health``, the periodic job) and keeps what it saw: ``chain_status`` per chain,
    ``samples`` (the explorer's history), ``capacity`` (the router's model, once every chain was sampled)."""

    settings: Settings
    role: str
    adapters: dict[str, ChainAdapter]
    store: Store
    metrics: Metrics
    attesters: dict[int, OriginAttester]
    intents: IntentsBackend | None = None
    chain_status: dict[str, ChainStatus] = field(default_factory=dict)
    capacity: CapacityModel | None = None  # live chain capacity for the routing API, once every chain was sampled
    # chain -> when wallet_balance_low was last logged
    wallet_low_logged: dict[str, float] = field(default_factory=dict)
    samples: ChainSampleBuffer = field(default_factory=ChainSampleBuffer)  # the explorer's chain history

    def __post_init__(self) -> None:
        for name, chain in self.settings.chains.items():
            self.chain_status[name] = ChainStatus(name, chain.domain)

    async def refresh_health(self) -> None:
        async def one(name: str, adapter: ChainAdapter) -> None:
            try:
                health = await adapter.health()
            except AdapterError as exc:
                health = ChainHealth(False, None, None, 0.0, detail=str(exc)[:200])
            self.chain_status[name].health = health
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
            if isinstance(adapter, EndpointHealth):
                for i, up in enumerate(adapter.endpoint_health()):
                    self.metrics.set("relayer_rpc_endpoint_up", 1.0 if up else 0.0, chain=name, endpoint=i)
            if isinstance(adapter, QuorumDisagreements):
                for (method, i), outvoted in adapter.take_quorum_disagreements().items():
                    self.metrics.inc("relayer_rpc_quorum_disagreements_total", outvoted, chain=name, method=method,
                                     endpoint=i)
            if "output_lag_blocks" in health.extra:  # a rollup that settles on an L1 (adapters.evm.settlement)
                self.metrics.set("relayer_rollup_output_lag_blocks", health.extra["output_lag_blocks"], chain=name)
                self.metrics.set("relayer_rollup_output_age_seconds", health.extra["output_age_s"], chain=name)
            if health.latest_height is not None:
                self.metrics.set("relayer_chain_height", health.latest_height, chain=name)
                if health.finalized_height is not None:
                    self.metrics.set("relayer_chain_finalized_lag", health.latest_height - health.finalized_height,
                                     chain=name)

        await asyncio.gather(*(one(n, a) for n, a in self.adapters.items()))
        if self.role in ("relayer", "all"):
            await self.sample_wallets()
        self._feed_capacity()
        self._sample_router()
        names = {c.domain: n for n, c in self.settings.chains.items()}
        counts = await self.store.aio.counts_by_state()
        queue: dict[int, dict[str, int]] = {}
        for (dest, state), n in counts.items():
            queue.setdefault(dest, {})[state] = n
        self.samples.record(self.chain_status.values(), capacity=self.capacity, queue=queue)
        for dest in sorted({d for d, _ in counts} | set(names)):
            for state in MessageState:  # every state, so one that empties reads 0, not its last count
                self.metrics.set("relayer_queue_depth", counts.get((dest, state.value), 0),
                                 destination=names.get(dest, dest), state=state.value)
        reasons = await self.store.aio.reasons()
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
                self.metrics.set("validator_light_client_finalized_height", finalized.number,
                                 origin=attester.adapter.name)

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
            self.metrics.set("router_chain_spare_transfers_per_second", round(float(spare[i]), 3), chain=name)

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
                                                   native_usd=self._native_usd(st.name)))
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
                    own_gas = (executor.included_work_per_s(st.name, window) * float(model.transfer_gas[i])
                               * st.stats.block_time_s)
                model.observe_blocks(i, gas_used=st.stats.gas_used_ratio * st.stats.gas_limit, own_gas=own_gas,
                                     base_fee=st.stats.base_fee_native, gas_limit=st.stats.gas_limit, now_s=now)
            else:
                model.observe_error(i)

    def _native_usd(self, name: str) -> float:
        """The USD price of ``name``'s native token: ``router.native_usd_by_chain``, else ``router.native_usd``
        (warned about for a chain whose native token is not ether: its fees in USD are then a guess)."""
        r = self.settings.router
        family = self.settings.chains[name].family
        if name not in r.native_usd_by_chain and family != "evm":
            log.warning("native_usd_not_configured", chain=name, family=family, native_usd=r.native_usd,
                        detail=f"fees on {name} are priced at router.native_usd; set router.native_usd_by_chain.{name}")
        return self.settings.native_usd(name)

    def chains_ready(self) -> dict[str, str]:
        """Per chain: ``ok``, or why it is not (its health detail, or not checked yet)."""
        detail = {}
        for name, st in self.chain_status.items():
            h = st.health
            detail[name] = "ok" if h and h.healthy else (h.detail if h else "not checked yet")
        return detail

    async def status_report(self, role: str, signers: list[CheckpointSigner]) -> dict[str, Any]:
        """The body of ``GET /v1/status``: chains (health, capacity), queue depths by state, failure reasons,
        the validators and their latest signed index per origin."""
        names = {c.domain: n for n, c in self.settings.chains.items()}
        counts: dict[str, dict[str, int]] = {}
        for (dest, state), n in (await self.store.aio.counts_by_state()).items():
            counts.setdefault(names.get(dest, str(dest)), {})[state] = n
        chains = {name: chain_view(st) for name, st in self.chain_status.items()}
        attest = {names.get(d, str(d)): a.latest_index for d, a in self.attesters.items()}
        return {"role": role, "chains": chains, "messages": counts, "reasons": await self.store.aio.reasons(),
                "validators": [s.address for s in signers], "latest_signed_index": attest}


def chain_view(st: ChainStatus) -> dict[str, Any]:
    """One chain in ``GET /v1/status``."""
    h = st.health
    return {"domain": st.domain, "healthy": bool(h and h.healthy),
            "latest_height": h.latest_height if h else None,
            "finalized_height": h.finalized_height if h else None,
            "latency_s": h.latency_s if h else None, "detail": h.detail if h else "not checked yet",
            "capacity": None if st.stats is None else {
                "block_time_s": round(st.stats.block_time_s, 3), "gas_limit": st.stats.gas_limit,
                "gas_per_s": round(st.stats.gas_per_s), "utilisation": round(st.stats.gas_used_ratio, 4),
                "base_fee": st.stats.base_fee, "base_fee_trend": round(st.stats.base_fee_trend, 4),
                "pending_txs": st.stats.pending_txs}}
