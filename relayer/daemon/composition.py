"""The daemon's wiring: which adapter serves each chain family, which workers each role runs and what they share.

This is the only place that picks concrete classes (adapters, light clients, workers, the routing API's intents
backend). ``relayer.daemon.daemon.build_daemon`` calls ``daemon_parts`` and ``RelayerDaemon`` calls ``Workers``;
everything else receives its dependencies through constructors, so tests can hand the daemon fakes or real
devnet adapters.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

import httpx
import structlog

from adapters.base import ChainAdapter, Cosigner, InclusionVerifier, MessageSender
from adapters.capabilities import OperatorAccounts, WalletSource, WriteAheadSender
from adapters.checkpoint import CheckpointSigner
from adapters.keys import resolve_private_key
from config.errors import ConfigError
from config.settings import ChainConfig, EvmChainConfig, Settings
from relayer.api.ratelimit import KeyedRateLimiter, retry_after_header
from relayer.api.relayer_auth import RelayerAuth, RelayerRequestSigner
from relayer.daemon import failpoints
from relayer.daemon.audit import AuditJob
from relayer.daemon.bridge_queue import QueuedTransferReleaser
from relayer.daemon.gas_oracle import GasOracleKeeper, quote_sources
from relayer.daemon.metrics import Metrics
from relayer.daemon.netting import NettingKeeper
from relayer.daemon.route_profit import RouteProfits
from relayer.pipeline.accountant import GlobalAccountant, TokenDirectory
from relayer.pipeline.checkpoints import CheckpointCollector
from relayer.pipeline.cosign import CosignService, HttpCosigner
from relayer.pipeline.filters import MessageFilter, compile_rules
from relayer.pipeline.gas_policy import GasPolicy, compile_payment_rules
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.payout_limits import PayoutLimiter
from router.pools import PoolReader

if TYPE_CHECKING:
    from light_clients.ethereum.inclusion import EvmInclusionVerifier
from relayer.pipeline.processor import DestinationProcessor
from relayer.pipeline.route_limits import RouteLimiter
from relayer.pipeline.validator import OriginAttester
from relayer.store import Store
from router.api import IntentLimits, IntentsBackend, call_allowed
from router.bridge_limits import BridgeLimitReader
from router.budgets import ValueBudgets
from router.integrators import IntegratorStore, address_check
from router.intents import IntentExecutor, IntentStore, Operator
from router.lanes import LaneExecutor, LaneKey, LaneStore
from router.payouts import ChainPayoutMinimums, ExecutorPayoutLanes, PayoutJob, PayoutStore
from router.rewards import IntegratorRewards
from router.room import RoomStore

log = structlog.get_logger("relayer.daemon.composition")

Role = Literal["validator", "relayer", "all"]


@dataclass
class Workers:
    """The workers of one role, wired from settings: origin indexers, attesters (validator), destination processors
    (relayer), the co-sign service and accountant (validator), the routing API's intents backend and the audit."""

    settings: Settings
    role: Role
    adapters: dict[str, ChainAdapter]
    store: Store
    signers: list[CheckpointSigner]
    http: httpx.AsyncClient
    metrics: Metrics
    operator_keys: list[str] = field(default_factory=list)  # the router's accounts (resolved keys; never logged)
    relayer_auth: httpx.Auth | None = None  # signs the relayer's requests to validators (relayer.identity_key)
    intents: IntentsBackend | None = None
    audit: AuditJob | None = None  # the periodic solvency audit (settings.audit)
    gas_oracle: GasOracleKeeper | None = None  # relayer.gas_oracle: keeps the origins' gas oracles current
    route_profits: RouteProfits | None = None  # relayer role: fees collected against gas spent, per route
    gas_policy: GasPolicy | None = None  # relayer.gas_payment compiled (relayer role, with rules)
    queue_releaser: QueuedTransferReleaser | None = None  # relayer role: pays out rate-limited inbound transfers
    netting: NettingKeeper | None = None  # relayer role: settles the liquidity pools' epochs, releases their payouts
    indexers: dict[int, OriginIndexer] = field(default_factory=dict)
    attesters: dict[int, OriginAttester] = field(default_factory=dict)
    processors: dict[int, DestinationProcessor] = field(default_factory=dict)
    message_filter: MessageFilter = field(init=False)  # relayer.allow / relayer.deny in force (reloadable)
    cosign: CosignService | None = None  # validator role with co-signed destinations (Solana, Cosmos)
    accountant: GlobalAccountant | None = None  # validator role: what was locked and paid out, per token and chain

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
                verifier = (build_inclusion_verifier(name, s.chains[name], s.settlement_l1(name))
                            if s.validator.verify_inclusion else None)
                self.attesters[d] = OriginAttester(self.adapters[name], self.indexers[d], self.signers, self.store,
                                                   self.metrics, verifier=verifier, accountant=self.accountant)
            if s.validator.cosign_keys:
                self.cosign = self._cosign_service()
        self.message_filter = MessageFilter(compile_rules(s, self.adapters))  # ConfigError naming the rule
        if self.role in ("relayer", "all"):
            collector = CheckpointCollector(s.security, self.http, timeout_s=s.relayer.signature_timeout_s,
                                            refresh_s=s.relayer.poll_interval_s, metrics=self.metrics,
                                            chain_names=names, auth=self.relayer_auth)
            limiter = (RouteLimiter(s.relayer.route_limits, {n: c.domain for n, c in s.chains.items()})
                       if s.relayer.route_limits else None)  # one per instance, shared by its processors
            self.gas_policy = gas_policy = self._gas_policy()
            for name, chain in s.chains.items():
                self.processors[chain.domain] = DestinationProcessor(self.adapters[name], self.store, self.indexers,
                                                                     collector, s.relayer, self.metrics,
                                                                     chain_names=names,
                                                                     message_filter=self.message_filter,
                                                                     route_limiter=limiter, gas_policy=gas_policy)
        if self.intents is None:
            self.intents = self._intents_backend()
        if self.audit is None and s.audit.enabled:
            self.audit = AuditJob(s, self.adapters, self.metrics)
        if self.role in ("relayer", "all"):
            self.route_profits = RouteProfits(s, self.adapters, self.store, self.metrics)
            self.queue_releaser = QueuedTransferReleaser(self.adapters, self.metrics)
            self.netting = NettingKeeper(s, self.adapters, self.metrics)
            if s.relayer.gas_oracle is not None:
                key = resolve_private_key(s.relayer.gas_oracle.signer, where="relayer.gas_oracle.signer")
                self.gas_oracle = GasOracleKeeper(s, s.relayer.gas_oracle, self.adapters, key, self.metrics)

    def _gas_policy(self) -> GasPolicy | None:
        """``relayer.gas_payment`` compiled (``ConfigError`` naming the rule), over the origins with a paymaster."""
        rules = compile_payment_rules(self.settings, self.adapters)
        if not rules:
            return None
        return GasPolicy(rules, quote_sources(self.settings, self.adapters))

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

        limiter = (PayoutLimiter.from_settings(s, TokenDirectory.from_settings(s, self.adapters), self.store.aio,
                                               self.metrics) if s.validator.payout_limits else None)
        return CosignService(self.store, self.adapters, keys, latest_signed, self.metrics, accountant=self.accountant,
                             limiter=limiter)

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

    async def _message_state(self, message_id: str) -> str | None:
        """A message's state in the store (None: not stored), for the intents executor."""
        rec = await self.store.aio.get(message_id)
        return rec.state if rec is not None else None

    def _operator(self, key: str) -> Operator:
        """An operator key with its account on every chain whose adapter names one (``OperatorAccounts``) and whose
        account is not its EVM address (a Solana public key, a Cosmos address)."""
        address = CheckpointSigner.from_hex(key).address
        accounts = {name: a.account_of(key) for name, a in self.adapters.items() if isinstance(a, OperatorAccounts)}
        return Operator(key, address, {n: acct for n, acct in accounts.items() if acct.lower() != address.lower()})

    def _lane_blocked(self, executor: IntentExecutor, key: LaneKey, blocked: bool) -> None:
        executor.lane_blocked(key.chain, key.account, blocked)
        self.metrics.set("router_lane_blocked", 1.0 if blocked else 0.0, chain=key.chain, account=key.account)

    def _lanes(self, operators: list[Operator], allowlist: dict[str, dict[str, frozenset[str]]]
               ) -> Callable[[IntentExecutor], LaneExecutor]:
        """The durable lanes (router/lanes.py) on every chain whose adapter signs write-ahead."""
        r = self.settings.router
        senders = self._lane_senders()
        lane_store = LaneStore(self.store.engine)

        def build(executor: IntentExecutor) -> LaneExecutor:
            keys = {chain: {o.on(chain): o.key for o in operators} for chain in senders}
            return LaneExecutor(lane_store, senders, keys, self.store.owner,
                                self.store.aio.run, domains={n: c.domain for n, c in self.settings.chains.items()},
                                native_usd=r.native_usd, lease_s=r.lane_lease_s,
                                reprice_after_s=r.lane_reprice_after_s,
                                on_repriced=lambda chain: self.metrics.inc("router_lane_transactions_repriced_total",
                                                                           chain=chain),
                                on_refused=lambda chain: self.metrics.inc("router_lane_broadcasts_refused_total",
                                                                          chain=chain),
                                failpoint=_lane_failpoint_hook(),
                                on_settled=executor.lane_settled,
                                on_blocked=lambda key, blocked: self._lane_blocked(executor, key, blocked),
                                call_allowed=lambda chain, to, data: call_allowed(allowlist, chain, to, data))

        return build

    def _lane_senders(self) -> dict[str, WriteAheadSender]:
        """Every chain's write-ahead sender (they also sign the integrator payouts: kind ``native``)."""
        return {n: a for n, a in self.adapters.items() if isinstance(a, WriteAheadSender)}

    def _rewards(self, store: IntentStore, executor: IntentExecutor | None) -> IntegratorRewards:
        """Integrator registration, quotes and payouts (issue 15) on the daemon's database; the payout job only with
        operator lanes to pay from."""
        r = self.settings.router
        share = Decimal(str(r.integrator_fee_share))
        integrators, payouts = IntegratorStore(store.engine), PayoutStore(store.engine)
        lanes = ExecutorPayoutLanes(executor) if executor is not None and executor.lanes is not None else None
        job = None
        if lanes is not None:
            decimals = {n: a.native_decimals for n, a in self.adapters.items() if isinstance(a, WalletSource)}
            job = PayoutJob(payouts, integrators, lanes, ChainPayoutMinimums(self.adapters), store.aio.run_sync,
                            share, decimals)
        return IntegratorRewards(integrators, payouts, share,
                                 lanes.payout_chains if lanes is not None else frozenset,
                                 address_check(self.adapters), self.settings.chains, store.aio.run_sync, job)

    def _intents_backend(self) -> IntentsBackend:
        """The routing API's intents: rows in the daemon's database, executed with the operator accounts."""
        s = self.settings
        store = IntentStore(self.store.engine, run=self.store.aio.run, run_first=self.store.aio.run_first)
        decimals: dict[str, int] = {}
        token_chains: dict[str, set[str]] = {}
        for name, chain in s.chains.items():
            for symbol, token in getattr(chain, "tokens", {}).items():
                decimals.setdefault(symbol, token.decimals)
                token_chains.setdefault(symbol, set()).add(name)
        chain_decimals = {(name, symbol): token.decimals for name, chain in s.chains.items()
                          for symbol, token in getattr(chain, "tokens", {}).items()
                          if token.decimals != decimals[symbol]}
        senders = {n: a for n, a in self.adapters.items() if isinstance(a, MessageSender)}
        r = s.router
        allowlist = {chain: {t.contract.lower(): frozenset(sel.lower() for sel in t.selectors) for t in targets}
                     for chain, targets in r.call_allowlist.items()}
        executor = None
        if senders:  # without operator keys the API still plans and hands out unsigned transactions
            operators = [self._operator(k) for k in self.operator_keys]
            executor = IntentExecutor(store, senders, {n: c.domain for n, c in s.chains.items()}, operators,
                                      self._message_state,
                                      native_usd=r.native_usd,
                                      lanes=self._lanes(operators, allowlist) if operators else None)
        # tokens issued natively per chain go cross-chain only through liquidity pools (router/pools.py)
        not_bridged = frozenset(sym for chain in s.chains.values() for sym, t in getattr(chain, "tokens", {}).items()
                                if not getattr(t, "bridged", True) and getattr(t, "pool", None) is None)
        # per client (API key, or address when there are none): bounded in memory whatever the callers send
        limits = IntentLimits(
            intents=KeyedRateLimiter(r.intents_per_s, float(r.intents_burst)), intents_per_s=r.intents_per_s,
            intents_burst=r.intents_burst,
            value=ValueBudgets(self.store.engine, r.value_per_day),
            value_per_day=dict(r.value_per_day), retry_after=retry_after_header, max_open_unsigned=r.max_open_unsigned)
        return IntentsBackend(store, executor, decimals, token_chains, r.integrator_fee_share, not_bridged,
                              room=RoomStore(self.store.engine), backlog_s=r.backlog_s, max_wait_s=r.max_wait_s,
                              max_queued=r.max_queued, chain_decimals=chain_decimals,
                              limits=limits, call_allowlist=allowlist, rewards=self._rewards(store, executor),
                              bridge_limits=BridgeLimitReader(
                                  self.adapters, {n: c.domain for n, c in s.chains.items()},
                                  lambda chain, symbol: chain_decimals.get((chain, symbol), decimals.get(symbol, 18))),
                              pools=PoolReader(self.adapters,
                                               lambda chain, symbol: chain_decimals.get((chain, symbol),
                                                                                        decimals.get(symbol, 18))),
                              on_refusal=lambda reason: self.metrics.inc("router_intents_refused_total", reason=reason))


def _lane_failpoint_hook() -> Callable[[str], Awaitable[None]]:
    """The fault suite's failpoints inside the lanes (test-only; a no-op unless RELAYER_FAILPOINTS is set)."""

    async def reached(point: str) -> None:
        if failpoints.ENABLED:
            await failpoints.reached(point)

    return reached


def build_adapters(settings: Settings, *, with_signers: bool,
                   cosigner: Cosigner | None = None) -> dict[str, ChainAdapter]:
    """The one place that maps a chain family to its adapter class. ``cosigner`` gathers the validators'
    signatures for destinations delivered by co-signed transactions (Solana, Cosmos)."""
    adapters: dict[str, ChainAdapter] = {}
    for name, chain in settings.chains.items():
        key = (resolve_private_key(chain.signer, where=f"chains.{name}.signer") if (with_signers and chain.signer)
               else None)
        if chain.family == "evm":
            from adapters.evm.adapter import EvmAdapter

            l1 = settings.chains[chain.settlement.l1] if chain.settlement is not None else None
            adapters[name] = EvmAdapter(name, chain, signer_key=key,
                                        settlement_l1=l1 if isinstance(l1, EvmChainConfig) else None)
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


def build_inclusion_verifier(name: str, chain: ChainConfig,
                             l1: ChainConfig | None = None) -> InclusionVerifier | None:
    """The light-client check of one origin, by chain family (the validator's path). ``l1``: the config of the
    chain a rollup's ``settlement`` names (required with it): the rollup is then proven from that L1's light client."""
    if chain.family == "evm":
        if chain.settlement is not None:
            return _rollup_verifier(name, chain, l1)
        return _evm_verifier(name, chain)
    if chain.family == "cosmos":
        from adapters.cosmos.transactions import tokens_from_config
        from light_clients.tendermint.inclusion import CosmosInclusionVerifier

        return CosmosInclusionVerifier(name, chain.rpc_urls, chain.vault, chain.domain,
                                       other_rpc_urls=chain.verify_rpc_urls, trusting_period_s=chain.trusting_period_s,
                                       tokens=tokens_from_config(chain.domain, chain.tokens),
                                       timeout_s=chain.request_timeout_s)
    return None  # Solana: no light client exists; the adapter requires its verify_rpc_urls to agree


def _evm_verifier(name: str, chain: EvmChainConfig) -> EvmInclusionVerifier:
    """An EVM chain's own light client: the sync committee's (beacon_url) or the header chain from its anchor."""
    from light_clients.ethereum.inclusion import EvmInclusionVerifier, TrustedAnchor

    cp = chain.trusted_checkpoint
    anchor = TrustedAnchor(cp.height, bytes.fromhex(cp.hash[2:])) if cp is not None else None
    beacon = None
    if chain.beacon_url is not None and chain.trusted_block_root is not None:
        from light_clients.ethereum.consensus.beacon_client import BeaconLightClient
        from light_clients.ethereum.consensus.config import DEVNET_SLOT_DURATION_MS, devnet_network
        from light_clients.ethereum.consensus.preset import LightClientFork

        # the devnet beacon network of this chain id (devnets/beacon): preset, fork schedule, genesis root
        beacon = BeaconLightClient(name, chain.beacon_urls, bytes.fromhex(chain.trusted_block_root[2:]),
                                   devnet_network(chain.chain_id), LightClientFork.ELECTRA, DEVNET_SLOT_DURATION_MS,
                                   timeout_s=chain.request_timeout_s)
    # reads from rpc_url, then fallback_rpc_urls (light_clients.fallback); verify_rpc_urls must all agree
    return EvmInclusionVerifier(name, chain.rpc_urls, chain.mailbox, other_rpc_urls=chain.verify_rpc_urls,
                                anchor=anchor, beacon=beacon, timeout_s=chain.request_timeout_s)


def _rollup_verifier(name: str, chain: EvmChainConfig, l1: ChainConfig | None) -> InclusionVerifier:
    """A rollup proven from its L1 (light_clients.ethereum.rollup): the L1's own light client, the rollup's reads."""
    from light_clients.ethereum.inclusion import EvmInclusionVerifier
    from light_clients.ethereum.rollup import RollupInclusionVerifier

    assert chain.settlement is not None
    if not isinstance(l1, EvmChainConfig):
        raise ConfigError(f"chains.{name}.settlement.l1", "the L1's chain config was not given to the validator")
    rollup = EvmInclusionVerifier(name, chain.rpc_urls, chain.mailbox, timeout_s=chain.request_timeout_s)
    return RollupInclusionVerifier(name, rollup, _evm_verifier(chain.settlement.l1, l1), l1.finality,
                                   chain.settlement)


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
        l1 = settings.settlement_l1(name)
        if chain.family == "evm" and not settings.validator.verify_inclusion:
            found.append(OriginTrust(name, "evm", "single_rpc", "validator.verify_inclusion = false"))
        elif isinstance(l1, EvmChainConfig):
            found.append(_rollup_trust(name, l1))
        elif chain.family == "evm" and chain.beacon_url is not None:
            found.append(OriginTrust(name, "evm", "beacon"))
        elif chain.verify_rpc_urls:
            found.append(OriginTrust(name, chain.family, "endpoints"))
        elif chain.trust_single_rpc:
            found.append(OriginTrust(name, chain.family, "single_rpc", f"chains.{name}.trust_single_rpc = true"))
        else:
            keys = ("beacon_url + trusted_block_root (a sync-committee light client), " if chain.family == "evm"
                    else "")
            raise ConfigError(f"chains.{name}", f"the validator attests {name} but has no light-client source and no "
                              f"second endpoint to compare its RPC node with: set {keys}verify_rpc_urls (other "
                              f"independent endpoints that must agree), or trust_single_rpc = true to accept trusting "
                              f"{chain.rpc_url} alone")
    return found


def _rollup_trust(name: str, l1: EvmChainConfig) -> OriginTrust:
    """A rollup proven from its L1 rests on the L1's light-client source (``l1_outputs``)."""
    if l1.beacon_url is not None or l1.verify_rpc_urls:
        return OriginTrust(name, "evm", "l1_outputs")
    if l1.trust_single_rpc:
        return OriginTrust(name, "evm", "single_rpc", f"its L1's node: chains.{name}.settlement.l1 has "
                           "trust_single_rpc = true")
    raise ConfigError(f"chains.{name}.settlement", f"the validator proves {name} from its L1's output roots, but the "
                      "L1 has no light-client source and no second endpoint: set beacon_url + trusted_block_root or "
                      "verify_rpc_urls on the L1, or trust_single_rpc = true there")


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



@dataclass
class DaemonParts:
    """What ``build_daemon`` hands ``RelayerDaemon``: resolved keys, the store, the shared HTTP client, the adapters."""

    adapters: dict[str, ChainAdapter]
    store: Store
    signers: list[CheckpointSigner]
    http: httpx.AsyncClient
    operator_keys: list[str]
    relayer_auth: RelayerAuth | None
    trust: list[OriginTrust]


def daemon_parts(settings: Settings, role: Role, *, instance: str | None = None) -> DaemonParts:
    """The start-up checks of ``role`` (``ConfigError`` naming the key) and the parts a daemon of that role runs on."""
    settings.check_operator_exposure()  # ConfigError naming router.api_keys: operator keys on an open, non-loopback API
    trust = origin_trust(settings) if role in ("validator", "all") else []
    if role in ("relayer", "all"):
        # cosmos: the multisig pays
        missing = [n for n, c in settings.chains.items() if c.signer is None and c.family != "cosmos"]
        if missing:
            raise ConfigError(f"chains.{missing[0]}.signer",
                              "the relayer role needs a signer on every destination chain")
    signers: list[CheckpointSigner] = []
    if role in ("validator", "all"):
        if not settings.validator.keys:
            raise ConfigError("validator.keys", "the validator role needs at least one key")
        for i, key in enumerate(settings.validator.keys):
            signers.append(CheckpointSigner.from_hex(resolve_private_key(key, where=f"validator.keys[{i}]")))
        if settings.validator.cosign_keys and not settings.validator.allowed_relayers:
            # without an allow-list no co-sign request could ever be accepted (and co-signing is never open to anyone)
            raise ConfigError("validator.allowed_relayers",
                              "co-signing (validator.cosign_keys) serves only allow-listed "
                              "relayers: list their identity addresses (relayer.identity_key)")
    relayer_auth = relayer_identity(settings) if role in ("relayer", "all") else None
    store = Store(settings.store.url, owner=instance or socket.gethostname())
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=64))
    adapters = build_adapters(settings, with_signers=role in ("relayer", "all"),
                              cosigner=HttpCosigner(settings.security.validators, http, auth=relayer_auth))
    operator_keys = [resolve_private_key(k, where=f"router.operator_keys[{i}]")
                     for i, k in enumerate(settings.router.operator_keys)]
    return DaemonParts(adapters, store, signers, http, operator_keys, relayer_auth, trust)


def relayer_identity(settings: Settings) -> RelayerAuth:
    """The relayer's request signer from ``relayer.identity_key`` (required by the relayer role; never a validator's
    key, so a relayer identity can never sign anything a validator signs)."""
    if settings.relayer.identity_key is None:
        raise ConfigError("relayer.identity_key",
                          "the relayer role signs its requests to validators with this key (its "
                          "address goes into their validator.allowed_relayers); none is set")
    signer = RelayerRequestSigner(resolve_private_key(settings.relayer.identity_key, where="relayer.identity_key"))
    if signer.address in {v.address.lower() for v in settings.security.validators}:
        raise ConfigError("relayer.identity_key", f"{signer.address} is a validator's address: the relayer's identity "
                                                  "must be a key of its own")
    log.info("relayer_identity", address=signer.address)
    return RelayerAuth(signer)


def warn_if_operator_api_open(settings: Settings, operator_keys: list[str], metrics: Metrics) -> None:
    """Operator keys and no API key (allowed only on a loopback-only API, ``Settings.check_operator_exposure``):
    say so at start, as an event and a gauge, since anyone on this host can then spend the operator accounts."""
    open_api = settings.operator_api_open and bool(operator_keys)
    metrics.set("router_operator_api_unauthenticated", 1.0 if open_api else 0.0)
    if open_api:
        log.warning("operator_api_unauthenticated", api=settings.api.url, operators=len(operator_keys),
                    risk="anyone on this host can spend the operator accounts through POST /v1/intents",
                    fix="set router.api_keys")
