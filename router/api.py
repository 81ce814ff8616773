"""Routing API, first slice: live chain capacity and quotes (issue 3). Mounted by the daemon under ``/v1``.

    GET  /v1/chains                      live capacity, utilisation, fees and health per chain (CapacityModel), and
                                         its token bridge's rate limits per remote chain and token
    POST /v1/quote                       the route options for one intent, cheapest first, and the planner's choice;
                                         a cross-chain transfer's wait for the bridge rate limits (router.bridge_limits)
    POST /v1/intents                     a batch (<= 1,000) to plan and execute with the operator's accounts: 202 + ids;
                                         with "signer": unsigned transactions for the dApp to sign itself
    POST /v1/intents/{id}/broadcast      the hash of the transaction the dApp signed and broadcast
    GET  /v1/intents/{id}                planned / submitted / included / delivered / failed / unserved, tx, message id
    GET  /v1/batches/{batch}             every intent of a batch, and counts by status
    GET  /v1/batches/{batch}/events      server-sent events: each status change of the batch's intents, then done
    GET  /v1/integrators/{code}/report   intents, volume, fees and fee share of one referral code, by chain and UTC day;
                                         with router.rewards: its payouts (tx hashes), rewards paid / in flight /
                                         pending per chain, quotes and conversion, volume and fees by chain and day

With ``[router] api_keys`` set, the POSTs need a matching ``X-API-Key`` header (401 otherwise). A batch
is validated whole before anything is planned or sent: one bad intent refuses the batch (400 naming
``intents[i].field``; 413 when over the size limit).

Who may spend the operator accounts (issue 12): a client (its API key, or its address when no keys are set, which
the daemon allows only on a loopback-only API) gets ``router.intents_per_s`` intents a second (token bucket of
``router.intents_burst``) and, of each token, ``router.value_per_day`` a day sent by the operators; over either:
429 with ``Retry-After`` and a body naming the limit, before any row or chain call. Operator-signed call intents
go only to ``router.call_allowlist`` contracts and selectors (403 naming ``intents[i].recipient`` or
``intents[i].calldata`` otherwise). Intents the planner leaves unserved, and refused batches, are answered inline
and stored nowhere (their id is null).

Bad input (unknown chain, non-positive or non-numeric amount, a cross-chain intent without its origin, a field of
the wrong type or out of range, an unknown field) is 400 with ``{"detail": {"field": ..., "error": ...}}``, the one
shape (``router.errors``); the rules are the models of ``router.schemas`` and the checks of ``router.validation``.
Nothing is planned from bad input.

The routes, by group: capacity (``/chains``, ``/quote``), intents (``/intents``, ``/intents/{id}/broadcast``,
``/intents/{id}``), batches (``/batches/{batch}``, its events), integrators (the report). ``RoutingContext`` holds what
they share: the API keys, who the client is, the per-client limits and the refusals.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import numpy as np
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from adapters.base import ChainStats
from adapters.message import Domain
from config.settings import ChainFamily
from router.bridge_limits import BridgeLimitReader, fold_wait, quote_limits
from router.budgets import ValueBudgets
from router.capacity import CapacityModel, ChainProfile
from router.errors import (  # noqa: F401 - ErrorBody and the rest are imported from here too
    BODY_ERRORS,
    SSE_RESPONSE,
    ErrorBody,
    bad_input,
    error_responses,
)
from router.events import BatchFeed
from router.intents import (
    IntentExecutor,
    IntentStatus,
    IntentStore,
    integrator_report,
    intent_view,
    intent_work,
    is_settled,
)
from router.planner import Reason, plan, route_costs
from router.pools import PoolReader
from router.rewards import IntegratorRewards
from router.room import ActiveWork, RoomStore
from router.schemas import (  # noqa: F401 - the models are imported from here too
    INTENT_BATCH_BODY,
    MAX_AMOUNT_DIGITS,
    MAX_BATCH,
    BroadcastRequest,
    IntentBatchAnswer,
    IntentRequest,
    QuoteRequest,
)
from router.submit import room_now, submit_batch
from router.validation import ParsedIntent, check_integrator_code, parse_request, planner_intents

QUOTE_TTL_S = 30.0


def profile_from_stats(name: str, domain: int, family: str, stats: ChainStats, *, finality_blocks: float,
                       transfer_gas: float, native_usd: float) -> ChainProfile:
    """A chain's profile from what its adapter reports (``ChainStats``, already in chain-neutral units), its native
    token's USD price and ``transfer_gas``, the gas of a token transfer where the adapter does not know its payout's
    gas (EVM). A chain whose adapter knows it (Cosmos, Solana) measures its work in payouts: ``transfer_gas`` is then
    the payout's gas, so one intent there is one payout."""
    block_time = max(stats.block_time_s, 0.05)
    scale = 10.0 ** -stats.native_decimals
    payout_gas = float(stats.payout_gas) if stats.payout_gas is not None else 0.0
    return ChainProfile(name=name, domain=Domain(domain), family=ChainFamily(family), block_time_s=block_time,
                        gas_limit=float(stats.gas_limit), transfer_gas=payout_gas or transfer_gas,
                        finality_s=finality_blocks * block_time, base_fee=stats.base_fee_native, native_usd=native_usd,
                        priority_fee=stats.priority_fee * scale, tx_fee=stats.tx_fee * scale, payout_gas=payout_gas,
                        payout_fee=None if stats.payout_fee is None else stats.payout_fee * scale)


class Limiter(Protocol):
    """A token bucket per client (``relayer.api.ratelimit.KeyedRateLimiter``)."""

    def take(self, key: str, n: float = 1.0) -> float:
        """0.0 when granted (``n`` taken), else the seconds to wait (``math.inf``: more than the burst)."""
        ...

    def give_back(self, key: str, n: float) -> None: ...


@dataclass
class IntentLimits:
    """Per-client admission of intents, built by the relayer from ``[router]`` (issue 12, finding 3)."""

    intents: Limiter                           # intents (and broadcast reports) per second
    intents_per_s: float
    intents_burst: int
    value: ValueBudgets                        # what the operators send for a client, per token and day (shared)
    value_per_day: Mapping[str, float]
    retry_after: Callable[[float], str]        # seconds -> the Retry-After header's value
    max_open_unsigned: int = 10_000


def call_allowed(allowlist: Mapping[str, Mapping[str, frozenset[str]]], chain: str, contract: str, data: bytes) -> bool:
    """Whether ``router.call_allowlist`` lets the operators call ``contract`` on ``chain`` with ``data``: the contract
    is listed for that chain and the first 4 bytes of ``data`` are one of its selectors."""
    selectors = allowlist.get(chain, {}).get(contract.lower())
    return selectors is not None and len(data) >= 4 and "0x" + data[:4].hex() in selectors


@dataclass
class IntentsBackend:
    """What the intent endpoints need, wired by the relayer."""

    store: IntentStore
    executor: IntentExecutor | None      # None: no operator accounts configured
    decimals: dict[str, int]             # token symbol -> decimals
    token_chains: dict[str, set[str]]    # token symbol -> chains where it exists
    fee_share: float = 0.1
    not_bridged: frozenset[str] = frozenset()  # tokens issued natively per chain: no cross-chain transfers
    limits: IntentLimits | None = None   # None: no per-client limits (unit tests of other behaviour)
    # chain -> contract (lower-case) -> allowed selectors ("0x" + 8 lower-case hex): operator-signed call intents
    call_allowlist: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    on_refusal: Callable[[str], None] = lambda _reason: None  # a refused request, by reason (metrics)
    room: RoomStore | None = None        # the chains' shared room (router/room.py); None: on the intents' own engine
    backlog_s: float = 3.0               # seconds of a chain's spare rate the daemons may have taken and not mined
    max_wait_s: float = 0.0              # an operator-signed intent's default wait for room (0: no queue)
    max_queued: int = 100_000            # queued intents at most, all daemons together

    active: ActiveWork | None = None     # work taken and not mined, as admission reads it; None: from ``store``
    # (chain, token symbol) -> decimals where they differ from ``decimals`` (wrapped TST has 9 on Solana): the units a
    # cross-chain transfer moves on its origin
    chain_decimals: dict[tuple[str, str], int] = field(default_factory=dict)
    # issue 15: registered integrators, quotes per code, payouts (router.rewards); None: rewards are only reported
    rewards: IntegratorRewards | None = None
    # issue 15: the token bridges' rate limits (router.bridge_limits), in /v1/quote and /v1/chains; None: not shown
    bridge_limits: BridgeLimitReader | None = None
    pools: PoolReader | None = None      # the liquidity pools of pooled tokens (router/pools.py)

    def __post_init__(self) -> None:
        if self.room is None:
            self.room = RoomStore(self.store.engine)
        if self.active is None:
            self.active = ActiveWork(self.store.active_work)


class RoutingContext:
    """What the routing API's route groups share: the capacity model, the intents backend, the API keys
    (``require_key``), who the client is (``client_of``), the per-client limits (``admit``, ``spend_value``) and
    refusals (``refuse``)."""

    def __init__(self, model: Callable[[], CapacityModel | None], clock: Callable[[], float],
                 intents: IntentsBackend | None, api_keys: Sequence[str],
                 admit_intents: Callable[[str | None, int], None] | None,
                 release_intents: Callable[[int], None] | None) -> None:
        self.model = model
        self.clock = clock
        self.intents = intents
        self.keys = frozenset(api_keys)
        self.admit_intents = admit_intents
        self.release_intents = release_intents

    async def require_key(self, x_api_key: str | None = Header(None)) -> None:
        if self.keys and (x_api_key is None or not any(hmac.compare_digest(x_api_key, k) for k in self.keys)):
            raise HTTPException(401, {"error": "a valid X-API-Key header is required"})

    def client_of(self, request: Request) -> str:
        """Whom the limits count against: the API key (hashed: the key itself is kept nowhere) when keys are
        configured, else the client's address (the daemon then serves on loopback only when it holds operator
        keys). Headers such as X-Forwarded-For are not trusted."""
        key = request.headers.get("x-api-key")
        if self.keys and key:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
        return "addr:" + (request.client.host if request.client else "unknown")

    def refuse(self, reason: str, status: int, detail: dict[str, Any],
               retry_after_s: float | None = None) -> HTTPException:
        intents = self.intents
        if intents is not None:
            intents.on_refusal(reason)
        headers = None
        if retry_after_s is not None and intents is not None and intents.limits is not None:
            detail = detail | {"retry_after_s": round(retry_after_s, 3)}
            headers = {"Retry-After": intents.limits.retry_after(retry_after_s)}
        return HTTPException(status, detail, headers=headers)

    def admit(self, client: str, n: int) -> None:
        """``n`` intents (or reports) of ``client`` against ``router.intents_per_s``: 413 above the burst, 429 with
        Retry-After when the bucket is empty. Checked before anything is parsed, stored or asked of a chain."""
        limits = self.intents.limits if self.intents is not None else None
        if limits is None:
            return
        if n > limits.intents_burst:
            raise self.refuse("rate_limit", 413, {"field": "intents", "limit": "router.intents_burst",
                                                  "error": f"at most {limits.intents_burst} intents at once "
                                                           f"(router.intents_burst), got {n}"})
        wait = limits.intents.take(client, n)
        if wait > 0:
            raise self.refuse("rate_limit", 429, {"error": f"over this client's limit of {limits.intents_per_s:g} "
                                                           f"intents/s (burst {limits.intents_burst})",
                                                  "limit": "router.intents_per_s"}, retry_after_s=wait)

    async def spend_value(self, client: str, reqs: Sequence[IntentRequest], amounts: Sequence[Decimal]
                          ) -> dict[str, float]:
        """The operator-sent value of a batch against the client's ``router.value_per_day`` budgets, shared by every
        daemon on the database (``router.budgets``), all tokens or none. A token without a configured budget is
        never sent by the operators (403); more than a whole day's budget in one batch is 403, an exhausted budget
        429."""
        intents = self.intents
        limits = intents.limits if intents is not None else None
        if intents is None or limits is None:
            return {}
        totals = self._value_totals(limits, reqs, amounts)
        for token, total in sorted(totals.items()):
            cap = limits.value_per_day[token]
            if total > cap:
                raise self.refuse("value_limit", 403, {"field": "intents", "limit": f"router.value_per_day.{token}",
                                                       "error": f"the batch sends {total:g} {token}, more than a whole "
                                                                f"day's limit of {cap:g} "
                                                                f"(router.value_per_day.{token})"})
        short = await intents.store.aio.run_first(limits.value.take, client, totals)
        if short is not None:
            token, wait = short
            raise self.refuse("value_limit", 429, {"limit": f"router.value_per_day.{token}",
                                                   "error": f"over this client's limit of "
                                                            f"{limits.value_per_day[token]:g} {token} a day sent by "
                                                            "the operator accounts"}, retry_after_s=wait)
        return totals

    def _value_totals(self, limits: IntentLimits, reqs: Sequence[IntentRequest],
                      amounts: Sequence[Decimal]) -> dict[str, float]:
        """Per token, what the batch's operator-sent intents send (403 for a token with no daily limit)."""
        totals: dict[str, float] = {}
        for i, (req, amount) in enumerate(zip(reqs, amounts, strict=True)):
            if req.kind == "call":
                continue
            if limits.value_per_day.get(req.token) is None:
                raise self.refuse("value_limit", 403, {"field": f"intents[{i}].token",
                                                       "limit": f"router.value_per_day.{req.token}",
                                                       "error": f"the operator accounts send no {req.token}: "
                                                                f"router.value_per_day has no daily limit for it"})
            totals[req.token] = totals.get(req.token, 0.0) + float(amount)
        return totals

    async def give_back_value(self, client: str, returns: Mapping[str, float]) -> None:
        """Value taken by ``spend_value`` that will not be sent (per token) goes back to the client's budgets."""
        intents = self.intents
        limits = intents.limits if intents is not None else None
        if intents is not None and limits is not None and any(v > 0 for v in returns.values()):
            await intents.store.aio.run_first(limits.value.give_back, client, returns)

    def current(self) -> CapacityModel:
        m = self.model()
        if m is None:
            raise HTTPException(503, {"error": "chain capacity not sampled yet; retry in a few seconds"})
        return m

    def check_call(self, i: int, req: IntentRequest) -> None:
        """An operator-signed call goes only to a ``router.call_allowlist`` contract and function, on every chain the
        intent allows (403 naming ``intents[i].recipient`` or ``intents[i].calldata``); nothing is planned else."""
        allowlist = self.intents.call_allowlist if self.intents is not None else {}
        if not allowlist:
            raise self.refuse("call_not_allowed", 403, {"field": f"intents[{i}].kind", "limit": "router.call_allowlist",
                                                        "error": "call intents signed by the operator accounts are "
                                                                 "disabled (router.call_allowlist is empty)"})
        data = bytes.fromhex((req.calldata or "0x")[2:])
        for chain in req.chains or ():
            contracts = allowlist.get(chain, {})
            if req.recipient.lower() not in contracts:
                raise self.refuse("call_not_allowed", 403, {
                    "field": f"intents[{i}].recipient", "limit": "router.call_allowlist",
                    "error": f"contract {req.recipient.lower()} on {chain} is not in router.call_allowlist"})
            if not call_allowed(allowlist, chain, req.recipient, data):
                selector = "0x" + data[:4].hex() if len(data) >= 4 else "none (less than 4 bytes)"
                raise self.refuse("call_not_allowed", 403, {
                    "field": f"intents[{i}].calldata", "limit": "router.call_allowlist",
                    "error": f"function selector {selector} is not allowed on {req.recipient.lower()} on {chain} "
                             f"(allowed: {', '.join(sorted(contracts[req.recipient.lower()]))})"})


def create_routing_api(model: Callable[[], CapacityModel | None], *, clock: Callable[[], float] = time.monotonic,
                       intents: IntentsBackend | None = None, api_keys: Sequence[str] = (),
                       admit_intents: Callable[[str | None, int], None] | None = None,
                       release_intents: Callable[[int], None] | None = None) -> APIRouter:
    """``admit_intents(client host, n)``: the daemon's rate of intents (relayer.api.server); it raises the refusal (503
    with Retry-After) when a batch of ``n`` would pass it; ``release_intents(n)`` gives back what was admitted and then
    not taken (refused later, unserved, or signed by the dApp itself)."""
    api = APIRouter(prefix="/v1", tags=["routing"])
    ctx = RoutingContext(model, clock, intents, api_keys, admit_intents, release_intents)
    _capacity_routes(api, ctx)
    _intent_routes(api, ctx)
    _batch_routes(api, ctx)
    _integrator_routes(api, ctx)
    return api


# ---- capacity: /chains, /quote
def _capacity_routes(api: APIRouter, ctx: RoutingContext) -> None:
    @api.get("/chains", responses=error_responses(503))
    async def chains() -> dict[str, Any]:
        """Per chain: health, capacity and fees; and ``bridge_limits`` (``status`` ``ok``, ``none``: its bridge has no
        rate limits, or ``unknown`` with ``error``: they could not be read, never shown as zero), whose ``limits``
        list every remote chain and token with a limit in either direction: ``outbound`` and ``inbound`` buckets
        (``capacity``, ``refill_per_s``, ``room`` now, in whole tokens as exact decimal strings; ``limited`` false: no
        limit) and the inbound transfers queued on chain (``queued``, ``queued_transfers``). Read at most every 3 s."""
        view = _chains_view(ctx.current(), ctx.clock())
        reader = ctx.intents.bridge_limits if ctx.intents is not None else None
        if reader is not None:
            limits = await asyncio.gather(*(reader.chain_view(c["name"]) for c in view["chains"]))
            for c, lim in zip(view["chains"], limits, strict=True):
                c["bridge_limits"] = lim
        return view

    @api.post("/quote", dependencies=[Depends(ctx.require_key)], responses=error_responses(*BODY_ERRORS, 401, 503))
    async def quote(req: QuoteRequest) -> dict[str, Any]:
        """The route options, cheapest first, and the planner's ``route``. A cross-chain transfer's options, its route
        and the quote carry ``bridge_limit``: the origin bridge's ``outbound`` bucket towards that destination and
        the destination's ``inbound`` bucket from the origin (``status`` limited / unlimited / none / unknown; the
        bucket's figures; ``wait_s`` from now; inbound: ``queued`` before it), and what they add to ``latency_s``
        (``wait_s``; null: unknown or never). ``possible`` false with ``reason``: the amount can never pass there (above
        the outbound capacity, or a bucket that does not refill); the route is then another option, or null with
        ``unserved_reason`` ``bridge_limit``. ``wait_s`` of the quote: the later of the wait for the chains' room and
        the route's bridge wait. ``pool``: for a token with a liquidity pool on both chains (the fast route, netted per
        epoch), the destination pool's free liquidity and whether it pays at once (``pays_at_once`` false: the
        payout waits in the pool for the epoch's settlement); null otherwise."""
        if req.integrator is not None:
            check_integrator_code(req.integrator, "integrator")
        m = ctx.current()
        parsed = parse_request(req, m, "")
        answer = _quote(m, req, parsed, ctx.clock())
        await _bridge_limits(ctx, req, parsed, answer)
        await _pool_route(ctx, req, parsed, answer)
        answer["wait_s"] = fold_wait(await _wait_estimate(ctx, m, req, parsed), answer["bridge_limit"])
        await _count_quote(ctx, req)
        return answer


async def _bridge_limits(ctx: RoutingContext, req: QuoteRequest, parsed: ParsedIntent, answer: dict[str, Any]) -> None:
    """A cross-chain transfer's options each get the bridges' ``bridge_limit`` (``router.bridge_limits``), and the
    quote the route's. An option the limits never let through is kept, marked ``possible: false`` with the reason;
    when the planner's route is one, the route is the cheapest option that can pass (none: ``route`` null,
    ``unserved_reason`` ``bridge_limit``)."""
    answer["bridge_limit"] = None
    reader = ctx.intents.bridge_limits if ctx.intents is not None else None
    if req.kind != "xchain" or reader is None or req.from_chain is None:
        return
    for option in answer["options"]:
        option["bridge_limit"] = await quote_limits(reader, req.from_chain, option["chain"], req.token, parsed.amount,
                                                    option["latency_s"])
    route = answer["route"]
    if route is None:
        return
    by_chain = {o["chain"]: o for o in answer["options"]}
    route["bridge_limit"] = by_chain[route["chain"]]["bridge_limit"] if route["chain"] in by_chain else (
        await quote_limits(reader, req.from_chain, route["chain"], req.token, parsed.amount, route["latency_s"]))
    answer["bridge_limit"] = route["bridge_limit"]
    if route["bridge_limit"]["possible"] is not False:
        return
    passing = [o for o in answer["options"] if o["bridge_limit"]["possible"] is not False]
    answer["route"] = passing[0] if passing else None
    answer["unserved_reason"] = None if passing else "bridge_limit"
    answer["bridge_limit"] = passing[0]["bridge_limit"] if passing else route["bridge_limit"]


async def _pool_route(ctx: RoutingContext, req: QuoteRequest, parsed: ParsedIntent, answer: dict[str, Any]) -> None:
    """A pooled token's cross-chain route says so (``router.pools``): the quote's ``pool``, for its route."""
    answer["pool"] = None
    reader = ctx.intents.pools if ctx.intents is not None else None
    route = answer["route"]
    if req.kind != "xchain" or reader is None or req.from_chain is None or route is None:
        return
    answer["pool"] = await reader.quote(req.from_chain, route["chain"], req.token, parsed.amount)


async def _count_quote(ctx: RoutingContext, req: QuoteRequest) -> None:
    """A quote served to an integrator code counts for it (its explorer page, its conversion), when the code is
    registered: a made-up code leaves no row (``router.integrators``)."""
    if req.integrator is None:
        return
    rewards = ctx.intents.rewards if ctx.intents is not None else None
    if rewards is not None:
        await rewards.count_quote(req.integrator)


async def _wait_estimate(ctx: RoutingContext, m: CapacityModel, req: QuoteRequest,
                         parsed: ParsedIntent) -> float | None:
    """Seconds until an intent like ``req``, submitted now, would find room (0: at once), from the shared room of
    the chains it allows (``router.room``), the work already queued ahead of it and the rate the room refills at;
    None when those chains have no spare rate (it would wait for as long as that lasts) or nothing executes intents."""
    intents = ctx.intents
    if intents is None or intents.executor is None:
        return None
    room = await room_now(ctx, m)
    healthy = m.healthy(ctx.clock())
    allowed = [n for i, n in enumerate(m.index) if parsed.allowed[i] and healthy[i]]
    if req.kind == "xchain" and req.from_chain:
        allowed = [req.from_chain]
    rate = sum(room.rates[n] for n in allowed)
    if rate <= 0:
        return None
    work = intent_work(req.kind, req.work if req.kind == "call" else 1.0)
    ahead = await intents.store.aio.queued_work()
    return round(max(0.0, (ahead + work - sum(room.work[n] for n in allowed)) / rate), 3)


def _usd(value: float) -> float:
    """A USD figure as the API shows it: 6 significant digits (the planner computes fees in float32)."""
    return float(f"{value:.6g}")


def _chains_view(m: CapacityModel, now: float) -> dict[str, Any]:
    """Per chain: health, capacity, and what one transfer and one payout (the destination leg of a cross-chain
    transfer) cost there, in USD at the chain's own native token price (``router.native_usd_by_chain``)."""
    healthy = m.healthy(now)
    spare = m.spare_gas_per_s(now)
    transfer_fee, payout_fee = m.transfer_fee_usd(), m.payout_fee_usd()
    return {"chains": [
        {"name": c.name, "domain": int(c.domain), "healthy": bool(healthy[i]),
         "block_time_s": round(float(m.block_time_s[i]), 3), "gas_limit": int(m.gas_limit[i]),
         "utilisation": round(float(m.used_fraction_ema[i]), 4),
         "target_utilisation": float(m.target_utilisation[i]),
         "spare_gas_per_s": round(float(spare[i])),
         "spare_transfers_per_s": round(float(spare[i] / m.transfer_gas[i]), 1),
         "base_fee_per_gas": float(m.base_fee[i]), "base_fee_trend": round(float(m.base_fee_trend[i]), 4),
         "native_usd": float(m.native_usd[i]),
         "transfer_fee_usd": _usd(transfer_fee[i]), "payout_fee_usd": _usd(payout_fee[i]),
         "error_rate": round(float(m.error_rate[i]), 3)}
        for i, c in enumerate(m.chains)]}


def _quote(m: CapacityModel, req: QuoteRequest, parsed: ParsedIntent, now: float) -> dict[str, Any]:
    """The planner's route and every healthy allowed chain as an option, cheapest first; the route's figures are
    its option's (both read from one ``route_costs``)."""
    intents = planner_intents([parsed], m)
    assignment = plan(intents, m, window_s=1.0, now_s=now)
    costs = route_costs(intents.kind, intents.work, intents.origin.astype(np.intp), m)
    names = list(m.index)
    origin = parsed.origin
    fee = costs.fee_usd[0]

    def option(i: int) -> dict[str, Any]:
        return {"chain": names[i], "origin": names[origin] if origin >= 0 else names[i],
                "fee_usd": _usd(fee[i]), "origin_fee_usd": _usd(costs.origin_fee_usd[0]),
                "destination_fee_usd": _usd(costs.dest_fee_usd[0, i]),
                "latency_s": round(float(costs.latency_s[0, i]), 3)}

    candidates = sorted(np.flatnonzero(parsed.allowed & m.healthy(now)), key=lambda i: float(fee[i]))
    chosen = int(assignment.chain[0])
    return {
        "kind": req.kind, "amount": str(parsed.amount), "token": req.token,
        "route": None if chosen < 0 else option(chosen),
        "unserved_reason": None if chosen >= 0 else Reason(int(assignment.reason[0])).name.lower(),
        "options": [option(int(i)) for i in candidates],
        "expires_at": time.time() + QUOTE_TTL_S,
    }


# ---- intents: submit, report a broadcast, status
def _intent_routes(api: APIRouter, ctx: RoutingContext) -> None:
    intents = ctx.intents

    @api.post("/intents", status_code=202, dependencies=[Depends(ctx.require_key)],
              responses={202: {"model": IntentBatchAnswer, "description": "accepted: one entry per intent"},
                         **error_responses(*BODY_ERRORS, 401, 403, 409, 429, 503)},
              openapi_extra=INTENT_BATCH_BODY)
    async def submit(request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008 - FastAPI idiom
        try:
            return await submit_batch(ctx, request, body)
        finally:  # the daemon-wide rate counts the intents the operators will send, not refused or unserved ones
            admitted = getattr(request.state, "intents_admitted", 0)
            if admitted and ctx.release_intents is not None:
                ctx.release_intents(admitted - getattr(request.state, "intents_taken", 0))

    @api.post("/intents/{intent_id}/broadcast", dependencies=[Depends(ctx.require_key)],
              responses=error_responses(*BODY_ERRORS, 401, 403, 404, 409, 429))
    async def broadcast(intent_id: str, req: BroadcastRequest, request: Request) -> dict[str, Any]:
        """Tell the router the hash of the transaction a dApp signed for an ``unsigned`` intent. The hash belongs to
        this intent only (409 if any intent holds it); only the client that submitted the intent may report it
        (403). Once mined, the transaction must be the one built for the intent (sent by its signer, to the same
        address with the same call data, after it was built): otherwise the intent fails with the reason (400 when
        that is known at once) and counts for nothing."""
        return await _broadcast(ctx, intent_id, req, request)

    @api.get("/intents/{intent_id}", responses=error_responses(404))
    async def intent_status(intent_id: str) -> dict[str, Any]:
        rec = await intents.store.aio.get(intent_id) if intents is not None else None
        if rec is None:
            raise HTTPException(404, {"error": f"no intent {intent_id!r}"})
        if intents is not None and intents.executor is not None:
            rec = await intents.executor.refresh(rec)
        return intent_view(rec)


async def _broadcast(ctx: RoutingContext, intent_id: str, req: BroadcastRequest, request: Request) -> dict[str, Any]:
    intents = ctx.intents
    client = ctx.client_of(request)
    ctx.admit(client, 1)
    rec = await intents.store.aio.get(intent_id) if intents is not None else None
    if rec is None or intents is None or intents.executor is None:
        raise HTTPException(404, {"error": f"no intent {intent_id!r}"})
    if rec.signer is None:
        raise HTTPException(409, {"field": "intent_id", "error": "this intent is signed by the operator accounts"})
    if rec.client is not None and not hmac.compare_digest(rec.client, client):
        raise ctx.refuse("claim_refused", 403, {"field": "intent_id",
                                                "error": "only the client that submitted this intent may report its "
                                                         "hash"})
    if rec.status != IntentStatus.UNSIGNED:
        raise HTTPException(409, {"field": "intent_id", "error": f"intent is {rec.status}, not unsigned"})
    tx_hash = req.tx_hash.lower()
    if await intents.executor.knows_tx(tx_hash) or not await intents.store.aio.claim(rec.id, tx_hash):
        latest = await intents.store.aio.get(rec.id)
        if latest is not None and latest.status != IntentStatus.UNSIGNED:
            raise HTTPException(409, {"field": "intent_id", "error": f"intent is {latest.status}, not unsigned"})
        raise ctx.refuse("claim_refused", 409, {"field": "tx_hash",
                                                "error": "this transaction is already the transaction of another "
                                                         "intent"})
    done = await intents.executor.settle_claim(rec, tx_hash)
    if done.status == IntentStatus.FAILED and (done.reason or "").startswith("reported transaction refused"):
        intents.on_refusal("claim_refused")
        raise HTTPException(400, {"field": "tx_hash", "error": done.reason, "intent": intent_view(done)})
    return intent_view(done)


# ---- batches: status, events
def _batch_routes(api: APIRouter, ctx: RoutingContext) -> None:
    intents = ctx.intents

    @api.get("/batches/{batch}", responses=error_responses(404))
    async def batch_status(batch: str) -> dict[str, Any]:
        """Every intent of a batch and a count by status."""
        records = await intents.store.aio.by_batch(batch) if intents is not None else []
        if not records:
            raise HTTPException(404, {"error": f"no batch {batch!r}"})
        counts: dict[str, int] = {}
        for r in records:
            counts[r.status] = counts.get(r.status, 0) + 1
        return {"batch": batch, "counts": counts, "settled": all(is_settled(r) for r in records),
                "intents": [intent_view(r) for r in records]}

    batch_feed = BatchFeed(intents.store.by_batch) if intents is not None else None

    @api.get("/batches/{batch}/events", response_class=StreamingResponse,
             responses={**SSE_RESPONSE, **error_responses(404)})
    async def batch_events(batch: str, timeout_s: float = Query(300.0, gt=0, le=3600)) -> StreamingResponse:
        """Server-sent events: one ``intent`` event per status change of the batch's intents, then ``done``. Every
        stream on a batch shares one feed (router.events.BatchFeed: one store read per batch and interval)."""
        sub = await batch_feed.subscribe(batch) if batch_feed is not None else None
        if sub is None or batch_feed is None:
            raise HTTPException(404, {"error": f"no batch {batch!r}"})
        return StreamingResponse(batch_feed.stream(batch, sub, timeout_s), media_type="text/event-stream")


# ---- integrators: the report
def _integrator_routes(api: APIRouter, ctx: RoutingContext) -> None:
    intents = ctx.intents

    @api.get("/integrators/{code}/report", responses=error_responses(400, 503))
    async def report(code: str) -> dict[str, Any]:
        check_integrator_code(code)
        if intents is None:
            raise HTTPException(503, {"error": "intents are not enabled on this daemon"})
        records = await intents.store.aio.by_integrator(code)
        rewards = intents.rewards
        if rewards is None:
            return integrator_report(code, records, intents.fee_share)
        share = await rewards.share_of(code)  # a registered share overrides router.integrator_fee_share
        return {**integrator_report(code, records, float(share)), **await rewards.attribution(code, records)}
