"""Routing API, first slice: live chain capacity and quotes (issue 3). Mounted by the daemon under ``/v1``.

    GET  /v1/chains                      live capacity, utilisation, fees and health per chain (CapacityModel)
    POST /v1/quote                       the route options for one intent, cheapest first, and the planner's choice
    POST /v1/intents                     a batch (<= 1,000) to plan and execute with the operator's accounts: 202 + ids;
                                         with "signer": unsigned transactions for the dApp to sign itself
    POST /v1/intents/{id}/broadcast      the hash of the transaction the dApp signed and broadcast
    GET  /v1/intents/{id}                planned / submitted / included / delivered / failed / unserved, tx, message id
    GET  /v1/batches/{batch}             every intent of a batch, and counts by status
    GET  /v1/batches/{batch}/events      server-sent events: each status change of the batch's intents, then done
    GET  /v1/integrators/{code}/report   intents, volume, fees and fee share of one referral code, by chain and UTC day

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

Bad input (unknown chain, non-positive or non-numeric amount, a cross-chain intent without its origin)
is a 4xx with a JSON body naming the field and what was wrong; nothing is planned from it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Protocol

import numpy as np
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import AdapterError, ChainStats
from adapters.message import Domain
from config.settings import ChainFamily
from router.capacity import CapacityModel, ChainProfile
from router.events import BatchFeed
from router.intents import (
    IntentExecutor,
    IntentRecord,
    IntentStatus,
    IntentStore,
    Operator,
    integrator_report,
    intent_view,
    is_settled,
    new_intent_id,
)
from router.planner import RELAY_OVERHEAD_S, Intents, Kind, Reason, plan

QUOTE_TTL_S = 30.0


MAX_BATCH = 1000
MAX_AMOUNT_DIGITS = 40  # 1e40 smallest units of an 18-decimal token is beyond any supply; bounds the int() of it
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_CODE = re.compile(r"^[a-z0-9_-]{1,32}$")
_HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["transfer", "call", "xchain"] = "transfer"
    amount: str = Field(max_length=80, description="token amount as a decimal string, > 0")
    token: str = Field("TST", min_length=1, max_length=32)
    chains: list[str] | None = Field(None, description="chains the intent accepts (destination for xchain); default all")
    from_chain: str | None = Field(None, description="origin chain of an xchain transfer")
    work: float = Field(1.0, ge=1.0, le=1000.0, description="gas of the call in token transfers (call only)")
    max_fee_usd: float = Field(1e9, gt=0)
    max_latency_s: float = Field(1e9, gt=0)


class IntentRequest(QuoteRequest):
    recipient: str = Field(description="0x-prefixed 20-byte address that receives the tokens (call: the contract)")
    integrator: str | None = Field(None, description="referral code, [a-z0-9_-]{1,32}")
    calldata: str | None = Field(None, max_length=2 + 2 * 24_576,
                                 description="call only: 0x-hex data for the contract (no value is sent; amount is 0)")


class IntentBatchAnswer(BaseModel):
    """The answer to ``POST /v1/intents``: one entry per submitted intent, in order. An intent that is stored (and
    then followed with ``GET /v1/intents/{id}``) has an id; one the planner left ``unserved`` (or, in signer mode,
    whose transaction could not be built: ``failed``) is answered here only, with its reason, and has ``null`` as
    id: nothing of it is kept. ``batch`` is null when no intent of the batch was stored."""

    batch: str | None = Field(description="id for GET /v1/batches/{batch}; null when nothing was stored")
    ids: list[str | None] = Field(description="intent ids in submission order; null for an intent not stored")
    statuses: list[str] = Field(description="planned, unsigned (signer mode), unserved, or failed (signer mode)")
    reasons: list[str | None] = Field(description="why an intent is unserved or failed (planner reason or error)")
    transactions: list[dict[str, Any] | None] | None = Field(
        None, description="signer mode: the unsigned transaction of each intent (null where none)")


class BroadcastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tx_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="hash of the signed transaction you broadcast")


def profile_from_stats(name: str, domain: int, family: str, stats: ChainStats, *, finality_blocks: float,
                       transfer_gas: float, native_usd: float) -> ChainProfile:
    """A chain's profile from what its adapter reports (``ChainStats``, already in chain-neutral units)."""
    block_time = max(stats.block_time_s, 0.05)
    return ChainProfile(name=name, domain=Domain(domain), family=ChainFamily(family), block_time_s=block_time,
                        gas_limit=float(stats.gas_limit), transfer_gas=transfer_gas,
                        finality_s=finality_blocks * block_time, base_fee=stats.base_fee_native, native_usd=native_usd)


class ErrorBody(BaseModel):
    """Every 4xx/5xx the daemon answers itself: ``detail`` is a sentence, or ``{"error": ..., "field": ...}``."""

    detail: str | dict[str, Any]


_ERROR_TEXT = {
    400: "bad input: detail names the field and what is wrong with it",
    401: "a valid X-API-Key header is required ([router] api_keys)",
    403: "refused",
    404: "not found",
    409: "not possible in this state or with this daemon's configuration",
    413: "too large: the request body (api.max_body_bytes) or the batch (intents per batch); detail names the limit",
    415: "the request body is not JSON (Content-Type: application/json)",
    429: "over a limit of this client (router.intents_per_s, router.value_per_day, per API key or address): detail "
         "names it; retry after the Retry-After header's seconds",
    503: "not ready yet (chain capacity not sampled), not enabled on this daemon, full (router.max_open_unsigned) or "
         "over the daemon-wide intent rate (api.max_intents_per_s)",
}
BODY_ERRORS = (400, 413, 415)  # what relayer.api.request_guard answers for any request with a body


# a server-sent events stream, documented per event (what OpenAPI tools such as schemathesis check)
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"description": "server-sent events", "content": {"text/event-stream": {
    "schema": {"type": "object", "properties": {"event": {"type": "string"}, "data": {"type": "string"},
                                                 "id": {"type": "string"}, "retry": {"type": "integer"}}}}}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in sorted(set(codes))}


def _bad(field: str, problem: str, status: int = 400) -> HTTPException:
    return HTTPException(status, {"field": field, "error": problem})


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
    value: Mapping[str, Limiter]               # token symbol -> token units a day the operators send for a client
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


@dataclass(frozen=True, slots=True)
class _Parsed:
    kind: Kind
    amount: Decimal
    allowed: np.ndarray
    origin: int
    work: float
    max_fee_usd: float
    max_latency_s: float


def _parse(req: QuoteRequest, m: CapacityModel, prefix: str) -> _Parsed:
    """Check one request against the live chains; 400 naming ``prefix + field`` when it is wrong."""
    try:
        amount = Decimal(req.amount)
    except InvalidOperation:
        raise _bad(prefix + "amount", f"{req.amount!r} is not a number") from None
    if req.kind == "call":
        if not amount.is_finite() or amount != 0:
            raise _bad(prefix + "amount", f"a call intent sends no value: amount must be 0, got {req.amount}")
    elif not amount.is_finite() or amount <= 0:
        raise _bad(prefix + "amount", f"must be a positive number, got {req.amount}")
    if amount.is_finite() and amount != 0 and amount.adjusted() >= MAX_AMOUNT_DIGITS:
        raise _bad(prefix + "amount", f"at most {MAX_AMOUNT_DIGITS} digits before the decimal point, got {req.amount}")
    names = list(m.index)
    allowed = np.zeros(len(names), dtype=bool)
    for i, name in enumerate(req.chains if req.chains is not None else names):
        if name not in m.index:
            raise _bad(f"{prefix}chains[{i}]", f"unknown chain {name!r}; known: {', '.join(names)}")
        allowed[m.index[name]] = True
    origin = -1
    if req.kind == "xchain":
        if req.from_chain is None:
            raise _bad(prefix + "from_chain", "an xchain intent needs its origin chain")
        if req.from_chain not in m.index:
            raise _bad(prefix + "from_chain", f"unknown chain {req.from_chain!r}; known: {', '.join(names)}")
        origin = m.index[req.from_chain]
        allowed[origin] = False
    elif req.from_chain is not None:
        raise _bad(prefix + "from_chain", "only an xchain intent has an origin chain")
    if not allowed.any():
        raise _bad(prefix + "chains", "no chain left to route to")
    kind = {"transfer": Kind.TRANSFER, "call": Kind.CALL, "xchain": Kind.XCHAIN}[req.kind]
    return _Parsed(kind, amount, allowed, origin, req.work if req.kind == "call" else 1.0, req.max_fee_usd,
                   req.max_latency_s)


def _intents(rows: list[_Parsed], m: CapacityModel) -> Intents:
    n = len(rows)
    return Intents(
        kind=np.array([r.kind for r in rows], dtype=np.int8), work=np.array([r.work for r in rows], dtype=np.float32),
        amount=np.array([float(r.amount) for r in rows]), allowed=np.array([r.allowed for r in rows], dtype=bool).reshape(n, len(m)),
        liquidity=np.ones((n, len(m)), dtype=bool), max_fee_usd=np.array([r.max_fee_usd for r in rows], dtype=np.float32),
        max_latency_s=np.array([r.max_latency_s for r in rows], dtype=np.float32),
        origin=np.array([r.origin for r in rows], dtype=np.int16))


# POST /v1/intents reads its body itself (one bad intent names ``intents[i].field``; 413 over MAX_BATCH); this is
# the body it takes, for the OpenAPI document
_INTENT_BATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False, "required": ["intents"],
    "properties": {
        "intents": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH, "items": IntentRequest.model_json_schema()},
        "signer": {"type": "string", "pattern": _ADDRESS.pattern,
                   "description": "get unsigned transactions for this address to sign, instead of the operator's"},
    }}}}}}


def create_routing_api(model: Callable[[], CapacityModel | None], *, clock: Callable[[], float] = time.monotonic,
                       intents: IntentsBackend | None = None, api_keys: Sequence[str] = (),
                       admit_intents: Callable[[str | None, int], None] | None = None,
                       release_intents: Callable[[int], None] | None = None) -> APIRouter:
    """``admit_intents(client host, n)``: the daemon's rate of intents (relayer.api.server); it raises the refusal (503 with
    Retry-After) when a batch of ``n`` would pass it; ``release_intents(n)`` gives back what was admitted and then
    not taken (refused later, unserved, or signed by the dApp itself)."""
    api = APIRouter(prefix="/v1", tags=["routing"])
    keys = frozenset(api_keys)

    async def require_key(x_api_key: str | None = Header(None)) -> None:
        if keys and (x_api_key is None or not any(hmac.compare_digest(x_api_key, k) for k in keys)):
            raise HTTPException(401, {"error": "a valid X-API-Key header is required"})

    def client_of(request: Request) -> str:
        """Whom the limits count against: the API key (hashed: the key itself is kept nowhere) when keys are
        configured, else the client's address (the daemon then serves on loopback only when it holds operator
        keys). Headers such as X-Forwarded-For are not trusted."""
        key = request.headers.get("x-api-key")
        if keys and key:
            return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
        return "addr:" + (request.client.host if request.client else "unknown")

    def refuse(reason: str, status: int, detail: dict[str, Any], retry_after_s: float | None = None) -> HTTPException:
        if intents is not None:
            intents.on_refusal(reason)
        headers = None
        if retry_after_s is not None and intents is not None and intents.limits is not None:
            detail = detail | {"retry_after_s": round(retry_after_s, 3)}
            headers = {"Retry-After": intents.limits.retry_after(retry_after_s)}
        return HTTPException(status, detail, headers=headers)

    def admit(client: str, n: int) -> None:
        """``n`` intents (or reports) of ``client`` against ``router.intents_per_s``: 413 above the burst, 429 with
        Retry-After when the bucket is empty. Checked before anything is parsed, stored or asked of a chain."""
        limits = intents.limits if intents is not None else None
        if limits is None:
            return
        if n > limits.intents_burst:
            raise refuse("rate_limit", 413, {"field": "intents", "limit": "router.intents_burst",
                                             "error": f"at most {limits.intents_burst} intents at once "
                                                      f"(router.intents_burst), got {n}"})
        wait = limits.intents.take(client, n)
        if wait > 0:
            raise refuse("rate_limit", 429, {"error": f"over this client's limit of {limits.intents_per_s:g} intents/s "
                                                      f"(burst {limits.intents_burst})", "limit": "router.intents_per_s"},
                          retry_after_s=wait)

    def spend_value(client: str, reqs: Sequence[IntentRequest], amounts: Sequence[Decimal]) -> dict[str, float]:
        """The operator-sent value of a batch against the client's ``router.value_per_day`` budgets, all tokens or
        none (a refusal gives back what it took). A token without a configured budget is never sent by the
        operators (403); more than a whole day's budget in one batch is 403, an exhausted budget 429."""
        limits = intents.limits if intents is not None else None
        if limits is None:
            return {}
        totals: dict[str, float] = {}
        for i, (req, amount) in enumerate(zip(reqs, amounts, strict=True)):
            if req.kind == "call":
                continue
            cap = limits.value_per_day.get(req.token)
            if cap is None:
                raise refuse("value_limit", 403, {"field": f"intents[{i}].token", "limit": f"router.value_per_day.{req.token}",
                                                  "error": f"the operator accounts send no {req.token}: "
                                                           f"router.value_per_day has no daily limit for it"})
            totals[req.token] = totals.get(req.token, 0.0) + float(amount)
        taken: list[tuple[str, float]] = []
        for token, total in sorted(totals.items()):
            cap = limits.value_per_day[token]
            if total > cap:
                for t, v in taken:
                    limits.value[t].give_back(client, v)
                raise refuse("value_limit", 403, {"field": "intents", "limit": f"router.value_per_day.{token}",
                                                  "error": f"the batch sends {total:g} {token}, more than a whole day's "
                                                           f"limit of {cap:g} (router.value_per_day.{token})"})
            wait = limits.value[token].take(client, total)
            if wait > 0:
                for t, v in taken:
                    limits.value[t].give_back(client, v)
                raise refuse("value_limit", 429, {"limit": f"router.value_per_day.{token}",
                                                  "error": f"over this client's limit of {cap:g} {token} a day sent by "
                                                           f"the operator accounts"}, retry_after_s=wait)
            taken.append((token, total))
        return totals

    def give_back_value(client: str, token: str, amount: Decimal) -> None:
        limits = intents.limits if intents is not None else None
        if limits is not None and token in limits.value:
            limits.value[token].give_back(client, float(amount))

    def current() -> CapacityModel:
        m = model()
        if m is None:
            raise HTTPException(503, {"error": "chain capacity not sampled yet; retry in a few seconds"})
        return m

    @api.get("/chains", responses=error_responses(503))
    async def chains() -> dict[str, Any]:
        m = current()
        now = clock()
        healthy = m.healthy(now)
        spare = m.spare_gas_per_s(now)
        fee = m.fee_per_gas_usd() * m.transfer_gas + m.tx_fee_usd()
        return {"chains": [
            {"name": c.name, "domain": int(c.domain), "healthy": bool(healthy[i]),
             "block_time_s": round(float(m.block_time_s[i]), 3), "gas_limit": int(m.gas_limit[i]),
             "utilisation": round(float(m.used_fraction_ema[i]), 4),
             "target_utilisation": float(m.target_utilisation[i]),
             "spare_gas_per_s": round(float(spare[i])), "spare_transfers_per_s": round(float(spare[i] / m.transfer_gas[i]), 1),
             "base_fee_per_gas": float(m.base_fee[i]), "base_fee_trend": round(float(m.base_fee_trend[i]), 4),
             "transfer_fee_usd": float(fee[i]), "error_rate": round(float(m.error_rate[i]), 3)}
            for i, c in enumerate(m.chains)]}

    @api.post("/quote", dependencies=[Depends(require_key)], responses=error_responses(*BODY_ERRORS, 401, 503))
    async def quote(req: QuoteRequest) -> dict[str, Any]:
        m = current()
        parsed = _parse(req, m, "")
        intents = _intents([parsed], m)
        now = clock()
        assignment = plan(intents, m, window_s=1.0, now_s=now)
        names = list(m.index)
        origin, allowed = parsed.origin, parsed.allowed
        work = req.work if req.kind == "call" else 1.0
        fee = (m.fee_per_gas_usd() * m.transfer_gas * work + m.tx_fee_usd())
        latency = m.inclusion_latency_s()
        if origin >= 0:
            latency = latency + latency[origin] + m.finality_s[origin] + RELAY_OVERHEAD_S
            fee = fee + fee[origin]
        healthy = m.healthy(now)
        candidates = sorted(np.flatnonzero(allowed & healthy), key=lambda i: float(fee[i]))
        options = [{"chain": names[i], "origin": names[origin] if origin >= 0 else names[i],
                    "fee_usd": float(fee[i]), "latency_s": round(float(latency[i]), 3)} for i in candidates]
        chosen = int(assignment.chain[0])
        return {
            "kind": req.kind, "amount": str(parsed.amount), "token": req.token,
            "route": None if chosen < 0 else {"chain": names[chosen], "origin": names[int(assignment.origin[0])],
                                              "fee_usd": float(assignment.fee_usd[0]),
                                              "latency_s": round(float(assignment.latency_s[0]), 3)},
            "unserved_reason": None if chosen >= 0 else Reason(int(assignment.reason[0])).name.lower(),
            "options": options,
            "expires_at": time.time() + QUOTE_TTL_S,
        }

    @api.post("/intents", status_code=202, dependencies=[Depends(require_key)],
              responses={202: {"model": IntentBatchAnswer, "description": "accepted: one entry per intent"},
                         **error_responses(*BODY_ERRORS, 401, 403, 409, 429, 503)},
              openapi_extra=_INTENT_BATCH_BODY)
    async def submit(request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008 - FastAPI idiom
        try:
            return await _submit(request, body)
        finally:  # the daemon-wide rate counts the intents the operators will send, not refused or unserved ones
            admitted = getattr(request.state, "intents_admitted", 0)
            if admitted and release_intents is not None:
                release_intents(admitted - getattr(request.state, "intents_taken", 0))

    async def _submit(request: Request, body: dict[str, Any]) -> JSONResponse:
        raw = body.get("intents")
        if not isinstance(raw, list) or not raw:
            raise _bad("intents", "a non-empty list of intents is required")
        if len(raw) > MAX_BATCH:
            raise _bad("intents", f"at most {MAX_BATCH} intents per batch, got {len(raw)}", 413)
        if admit_intents is not None:  # the daemon's rate, before any work on them (503 + Retry-After)
            admit_intents(request.client.host if request.client else None, len(raw))
            request.state.intents_admitted = len(raw)
        client = client_of(request)
        admit(client, len(raw))  # this client's quota (router.intents_per_s): per API key, else per address
        if set(body) - {"intents", "signer"}:
            raise _bad(min(set(body) - {"intents", "signer"}), "unknown field")
        signer = body.get("signer")
        if signer is not None and (not isinstance(signer, str) or not _ADDRESS.match(signer)):
            raise _bad("signer", f"{signer!r} is not a 0x-prefixed 20-byte address")
        if intents is None or intents.executor is None:
            raise HTTPException(409, {"error": "intents are not enabled on this daemon (no chain can send)"})
        if signer is None and not intents.executor.operators:
            raise HTTPException(409, {"error": "no operator accounts configured ([router] operator_keys); "
                                               "pass \"signer\" to get unsigned transactions instead"})
        if signer is not None and signer.lower() in {o.address.lower() for o in intents.executor.operators}:
            raise _bad("signer", "is one of the router's operator accounts; omit signer to have it sign")
        m = current()
        reqs: list[IntentRequest] = []
        for i, item in enumerate(raw):
            try:
                reqs.append(IntentRequest.model_validate(item))
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                raise _bad(f"intents[{i}].{loc}" if loc else f"intents[{i}]", err["msg"]) from None
        parsed = []
        for i, req in enumerate(reqs):
            if not _ADDRESS.match(req.recipient):
                raise _bad(f"intents[{i}].recipient", f"{req.recipient!r} is not a 0x-prefixed 20-byte address")
            if req.integrator is not None and not _CODE.match(req.integrator):
                raise _bad(f"intents[{i}].integrator", "an integrator code is 1-32 of [a-z0-9_-]")
            if req.kind == "call":
                if req.calldata is None or not _HEX.match(req.calldata):
                    raise _bad(f"intents[{i}].calldata", "a call intent needs calldata: 0x followed by whole bytes of hex")
                if req.chains is None:
                    raise _bad(f"intents[{i}].chains", "a call intent names the chains where its contract is")
            elif req.calldata is not None:
                raise _bad(f"intents[{i}].calldata", "only a call intent has calldata")
            if signer is not None and req.kind == "xchain":
                raise _bad(f"intents[{i}].kind", "xchain intents are signed by the operator accounts; omit signer")
            p = _parse(req, m, f"intents[{i}].")
            decimals = intents.decimals.get(req.token)
            if decimals is None:
                raise _bad(f"intents[{i}].token", f"unknown token {req.token!r}; known: {', '.join(sorted(intents.decimals))}")
            scaled = p.amount.scaleb(decimals)
            if scaled != scaled.to_integral_value():
                raise _bad(f"intents[{i}].amount", f"more than {decimals} decimals")
            if p.kind == Kind.XCHAIN and req.token in intents.not_bridged:
                raise _bad(f"intents[{i}].token", f"{req.token} is issued natively on each chain and is not bridged; "
                                                  "use a bridged token for xchain intents")
            parsed.append((p, int(scaled)))
        if signer is None:  # the operators sign: only allow-listed calls, within the client's daily value
            for i, req in enumerate(reqs):
                if req.kind == "call":
                    check_call(i, req)
            spend_value(client, reqs, [p.amount for p, _ in parsed])
        elif intents.limits is not None and (await intents.store.aio.open_signer_intents() + len(reqs)
                                             > intents.limits.max_open_unsigned):
            raise refuse("unsigned_full", 503, {"error": f"too many signer-mode intents open "
                                                         f"(router.max_open_unsigned = {intents.limits.max_open_unsigned})",
                                                "limit": "router.max_open_unsigned"}, retry_after_s=30.0)
        names = list(m.index)
        # liquidity: same-chain intents run where an operator holds enough of the token; xchain ones may land
        # anywhere the token is (the bridge mints or unlocks it) but start where an operator holds it
        balances: dict[str, dict[str, list[int]]] = {}
        for token in {r.token for r in reqs if r.kind != "call"}:
            balances[token] = await intents.executor.balances(names, token, [signer] if signer else None)
        n = len(reqs)
        liquidity = np.zeros((n, len(names)), dtype=bool)
        for i, (req, (p, units)) in enumerate(zip(reqs, parsed, strict=True)):
            for c, name in enumerate(names):
                liquidity[i, c] = p.kind == Kind.CALL or ((name in intents.token_chains.get(req.token, ())) and (
                    p.kind == Kind.XCHAIN or max(balances[req.token][name], default=0) >= units))
        arrays = _intents([p for p, _ in parsed], m)
        arrays = Intents(kind=arrays.kind, work=arrays.work, amount=arrays.amount, allowed=arrays.allowed,
                         liquidity=liquidity, max_fee_usd=arrays.max_fee_usd, max_latency_s=arrays.max_latency_s,
                         origin=arrays.origin)
        # what the chain still has to take: sent or planned and not mined, and at least what was admitted in the
        # last planning horizon, so admission is a rate (target gas per second), not only a backlog bound
        pending = intents.executor.pending_work()
        horizon = np.maximum(1.0, m.block_time_s)
        owed = [max(pending.get(n, 0.0), intents.executor.admitted_work(n, float(horizon[c]))) for c, n in enumerate(names)]
        m.observe_pending(np.arange(len(names)), np.array(owed) * m.transfer_gas)
        assignment = plan(arrays, m, window_s=1.0, now_s=clock())
        ops = [Operator("", signer.lower())] if signer else intents.executor.operators
        left = {t: {c: list(v) for c, v in b.items()} for t, b in balances.items()}
        batch = "bat_" + uuid.uuid4().hex
        now = time.time()
        records = []
        for i, (req, (p, units)) in enumerate(zip(reqs, parsed, strict=True)):
            chain = int(assignment.chain[i])
            rec = IntentRecord(id=new_intent_id(), batch=batch, created_at=now, updated_at=now, kind=req.kind,
                               token=req.token, amount=str(p.amount), units=str(units), recipient=req.recipient.lower(),
                               integrator=req.integrator, from_chain=req.from_chain, client=client,
                               signer=signer.lower() if signer else None)
            if chain < 0:
                rec.status, rec.reason = IntentStatus.UNSERVED, Reason(int(assignment.reason[i])).name.lower()
            else:
                origin = names[int(assignment.origin[i])]
                rec.chain, rec.origin = names[chain], origin
                rec.fee_usd, rec.latency_s = float(assignment.fee_usd[i]), float(assignment.latency_s[i])
                rec.work = p.work
                if p.kind == Kind.CALL:  # no token moves: spread calls over the operator accounts
                    rec.calldata, rec.operator = req.calldata, ops[i % len(ops)].address
                    records.append(rec)
                    continue
                funds = left[req.token][origin]
                k = max(range(len(ops)), key=lambda j: funds[j])
                if funds[k] < units:
                    rec.status, rec.reason = IntentStatus.UNSERVED, "liquidity"
                else:
                    funds[k] -= units
                    rec.operator = ops[k].address
            records.append(rec)
        if signer is None:
            for rec, (p, _units) in zip(records, parsed, strict=True):
                if rec.status == IntentStatus.UNSERVED:  # nothing will be sent: its value goes back to the client's budget
                    give_back_value(client, rec.token, p.amount)
            kept = [r for r in records if r.status == IntentStatus.PLANNED]
            request.state.intents_taken = len(kept)
            if kept:
                await intents.store.aio.add_all(kept)
                intents.executor.start(kept, {o.address: o.key for o in ops})
            return _answer(batch if kept else None, records)
        # unsigned: the dApp signs and broadcasts, then tells us the hash (POST /v1/intents/{id}/broadcast)
        executor = intents.executor

        async def build(rec: IntentRecord) -> dict[str, Any] | None:
            if rec.status != IntentStatus.PLANNED:
                return None
            try:
                tx = await executor.unsigned(rec)
            except AdapterError as exc:
                rec.status, rec.reason = IntentStatus.FAILED, f"{type(exc).__name__}: {exc.reason}"[:500]
                return None
            rec.status = IntentStatus.UNSIGNED
            return tx

        transactions = await asyncio.gather(*(build(r) for r in records))
        kept = [r for r in records if r.status == IntentStatus.UNSIGNED]
        if kept:
            await intents.store.aio.add_all(kept)
        return _answer(batch if kept else None, records, list(transactions))

    def check_call(i: int, req: IntentRequest) -> None:
        """An operator-signed call goes only to a ``router.call_allowlist`` contract and function, on every chain the
        intent allows (403 naming ``intents[i].recipient`` or ``intents[i].calldata``); nothing is planned else."""
        allowlist = intents.call_allowlist if intents is not None else {}
        if not allowlist:
            raise refuse("call_not_allowed", 403, {"field": f"intents[{i}].kind", "limit": "router.call_allowlist",
                                                   "error": "call intents signed by the operator accounts are disabled "
                                                            "(router.call_allowlist is empty)"})
        data = bytes.fromhex((req.calldata or "0x")[2:])
        for chain in req.chains or ():
            contracts = allowlist.get(chain, {})
            if req.recipient.lower() not in contracts:
                raise refuse("call_not_allowed", 403, {
                    "field": f"intents[{i}].recipient", "limit": "router.call_allowlist",
                    "error": f"contract {req.recipient.lower()} on {chain} is not in router.call_allowlist"})
            if not call_allowed(allowlist, chain, req.recipient, data):
                selector = "0x" + data[:4].hex() if len(data) >= 4 else "none (less than 4 bytes)"
                raise refuse("call_not_allowed", 403, {
                    "field": f"intents[{i}].calldata", "limit": "router.call_allowlist",
                    "error": f"function selector {selector} is not allowed on {req.recipient.lower()} on {chain} "
                             f"(allowed: {', '.join(sorted(contracts[req.recipient.lower()]))})"})

    @api.post("/intents/{intent_id}/broadcast", dependencies=[Depends(require_key)],
              responses=error_responses(*BODY_ERRORS, 401, 403, 404, 409, 429))
    async def broadcast(intent_id: str, req: BroadcastRequest, request: Request) -> dict[str, Any]:
        """Tell the router the hash of the transaction a dApp signed for an ``unsigned`` intent. The hash belongs to
        this intent only (409 if any intent holds it); only the client that submitted the intent may report it
        (403). Once mined, the transaction must be the one built for the intent (sent by its signer, to the same
        address with the same call data, after it was built): otherwise the intent fails with the reason (400 when
        that is known at once) and counts for nothing."""
        client = client_of(request)
        admit(client, 1)
        rec = await intents.store.aio.get(intent_id) if intents is not None else None
        if rec is None or intents is None or intents.executor is None:
            raise HTTPException(404, {"error": f"no intent {intent_id!r}"})
        if rec.signer is None:
            raise HTTPException(409, {"field": "intent_id", "error": "this intent is signed by the operator accounts"})
        if rec.client is not None and not hmac.compare_digest(rec.client, client):
            raise refuse("claim_refused", 403, {"field": "intent_id",
                                                "error": "only the client that submitted this intent may report its hash"})
        if rec.status != IntentStatus.UNSIGNED:
            raise HTTPException(409, {"field": "intent_id", "error": f"intent is {rec.status}, not unsigned"})
        tx_hash = req.tx_hash.lower()
        if await intents.executor.knows_tx(tx_hash) or not await intents.store.aio.claim(rec.id, tx_hash):
            latest = await intents.store.aio.get(rec.id)
            if latest is not None and latest.status != IntentStatus.UNSIGNED:
                raise HTTPException(409, {"field": "intent_id", "error": f"intent is {latest.status}, not unsigned"})
            raise refuse("claim_refused", 409, {"field": "tx_hash",
                                                "error": "this transaction is already the transaction of another intent"})
        done = await intents.executor.settle_claim(rec, tx_hash)
        if done.status == IntentStatus.FAILED and (done.reason or "").startswith("reported transaction refused"):
            intents.on_refusal("claim_refused")
            raise HTTPException(400, {"field": "tx_hash", "error": done.reason, "intent": intent_view(done)})
        return intent_view(done)

    @api.get("/intents/{intent_id}", responses=error_responses(404))
    async def intent_status(intent_id: str) -> dict[str, Any]:
        rec = await intents.store.aio.get(intent_id) if intents is not None else None
        if rec is None:
            raise HTTPException(404, {"error": f"no intent {intent_id!r}"})
        if intents is not None and intents.executor is not None:
            rec = await intents.executor.refresh(rec)
        return intent_view(rec)

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

    @api.get("/integrators/{code}/report", responses=error_responses(400, 503))
    async def report(code: str) -> dict[str, Any]:
        if not _CODE.match(code):
            raise _bad("code", "an integrator code is 1-32 of [a-z0-9_-]")
        if intents is None:
            raise HTTPException(503, {"error": "intents are not enabled on this daemon"})
        return integrator_report(code, await intents.store.aio.by_integrator(code), intents.fee_share)

    return api


def _answer(batch: str | None, records: Sequence[IntentRecord],
            transactions: list[dict[str, Any] | None] | None = None) -> JSONResponse:
    """``IntentBatchAnswer``: ids only for the intents that were stored (planned or unsigned)."""
    stored = (IntentStatus.PLANNED, IntentStatus.UNSIGNED)
    body: dict[str, Any] = {"batch": batch, "ids": [r.id if r.status in stored else None for r in records],
                            "statuses": [r.status for r in records], "reasons": [r.reason for r in records]}
    if transactions is not None:
        body["transactions"] = transactions
    return JSONResponse(body, status_code=202)
