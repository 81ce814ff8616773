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

With ``[router] api_keys`` set, the two POSTs need a matching ``X-API-Key`` header (401 otherwise). A batch
is validated whole before anything is planned or sent: one bad intent refuses the batch (400 naming
``intents[i].field``; 413 when over the size limit).

Bad input (unknown chain, non-positive or non-numeric amount, a cross-chain intent without its origin)
is a 4xx with a JSON body naming the field and what was wrong; nothing is planned from it.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import AdapterError, ChainStats
from adapters.message import Domain
from router.capacity import CapacityModel, ChainProfile
from router.events import BatchFeed
from router.intents import (
    IntentExecutor,
    IntentRecord,
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


class BroadcastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tx_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$", description="hash of the signed transaction you broadcast")


def profile_from_stats(name: str, domain: int, family: str, stats: ChainStats, *, finality_blocks: float,
                       transfer_gas: float, native_usd: float) -> ChainProfile:
    """A chain's profile from what its adapter reports (``ChainStats``, already in chain-neutral units)."""
    block_time = max(stats.block_time_s, 0.05)
    return ChainProfile(name=name, domain=Domain(domain), family=family, block_time_s=block_time,
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
    429: "over a per-client rate (api.max_intents_per_s_per_client): detail names it; see Retry-After",
    503: "not ready yet (chain capacity not sampled) or not enabled on this daemon",
}
BODY_ERRORS = (400, 413, 415)  # what relayer.request_guard answers for any request with a body


# a server-sent events stream, documented per event (what OpenAPI tools such as schemathesis check)
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"description": "server-sent events", "content": {"text/event-stream": {
    "schema": {"type": "object", "properties": {"event": {"type": "string"}, "data": {"type": "string"},
                                                 "id": {"type": "string"}, "retry": {"type": "integer"}}}}}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in sorted(set(codes))}


def _bad(field: str, problem: str, status: int = 400) -> HTTPException:
    return HTTPException(status, {"field": field, "error": problem})


@dataclass
class IntentsBackend:
    """What the intent endpoints need, wired by the relayer."""

    store: IntentStore
    executor: IntentExecutor | None      # None: no operator accounts configured
    decimals: dict[str, int]             # token symbol -> decimals
    token_chains: dict[str, set[str]]    # token symbol -> chains where it exists
    fee_share: float = 0.1
    not_bridged: frozenset[str] = frozenset()  # tokens issued natively per chain: no cross-chain transfers


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
                       admit_intents: Callable[[str | None, int], None] | None = None) -> APIRouter:
    """``admit_intents(client host, n)``: the daemon's rate of intents per client and in all (relayer.api); it
    raises the refusal (429 / 503 with Retry-After) when a batch of ``n`` would pass it."""
    api = APIRouter(prefix="/v1", tags=["routing"])
    keys = frozenset(api_keys)

    async def require_key(x_api_key: str | None = Header(None)) -> None:
        if keys and (x_api_key is None or not any(hmac.compare_digest(x_api_key, k) for k in keys)):
            raise HTTPException(401, {"error": "a valid X-API-Key header is required"})

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
              responses=error_responses(*BODY_ERRORS, 401, 409, 429, 503), openapi_extra=_INTENT_BATCH_BODY)
    async def submit(request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008 - FastAPI idiom
        raw = body.get("intents")
        if not isinstance(raw, list) or not raw:
            raise _bad("intents", "a non-empty list of intents is required")
        if len(raw) > MAX_BATCH:
            raise _bad("intents", f"at most {MAX_BATCH} intents per batch, got {len(raw)}", 413)
        if admit_intents is not None:  # before any work on them: raises 429/503 with Retry-After over the rate
            admit_intents(request.client.host if request.client else None, len(raw))
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
                               integrator=req.integrator, from_chain=req.from_chain)
            if chain < 0:
                rec.status, rec.reason = "unserved", Reason(int(assignment.reason[i])).name.lower()
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
                    rec.status, rec.reason = "unserved", "liquidity"
                else:
                    funds[k] -= units
                    rec.operator = ops[k].address
            records.append(rec)
        if signer is None:
            intents.store.add_all(records)
            intents.executor.start(records, {o.address: o.key for o in ops})
            return JSONResponse({"batch": batch, "ids": [r.id for r in records],
                                 "statuses": [r.status for r in records], "reasons": [r.reason for r in records]},
                                status_code=202)
        # unsigned: the dApp signs and broadcasts, then tells us the hash (POST /v1/intents/{id}/broadcast)
        executor = intents.executor

        async def build(rec: IntentRecord) -> dict[str, Any] | None:
            if rec.status != "planned":
                return None
            try:
                tx = await executor.unsigned(rec)
            except AdapterError as exc:
                rec.status, rec.reason = "failed", f"{type(exc).__name__}: {exc.reason}"[:500]
                return None
            rec.status = "unsigned"
            return tx

        transactions = await asyncio.gather(*(build(r) for r in records))
        intents.store.add_all(records)
        return JSONResponse({"batch": batch, "ids": [r.id for r in records], "statuses": [r.status for r in records],
                             "reasons": [r.reason for r in records], "transactions": list(transactions)},
                            status_code=202)

    @api.post("/intents/{intent_id}/broadcast", dependencies=[Depends(require_key)],
              responses=error_responses(*BODY_ERRORS, 401, 404, 409))
    async def broadcast(intent_id: str, req: BroadcastRequest) -> dict[str, Any]:
        """Tell the router the hash of the transaction a dApp signed for an ``unsigned`` intent; it is then
        followed to inclusion like any other."""
        rec = intents.store.get(intent_id) if intents is not None else None
        if rec is None or intents is None or intents.executor is None:
            raise HTTPException(404, {"error": f"no intent {intent_id!r}"})
        if rec.status != "unsigned":
            raise HTTPException(409, {"field": "intent_id", "error": f"intent is {rec.status}, not unsigned"})
        intents.executor.track(rec, req.tx_hash.lower())
        return intent_view(rec) | {"status": "submitted", "tx_hash": req.tx_hash.lower()}

    @api.get("/intents/{intent_id}", responses=error_responses(404))
    async def intent_status(intent_id: str) -> dict[str, Any]:
        rec = intents.store.get(intent_id) if intents is not None else None
        if rec is None:
            raise HTTPException(404, {"error": f"no intent {intent_id!r}"})
        if intents is not None and intents.executor is not None:
            rec = await intents.executor.refresh(rec)
        return intent_view(rec)

    @api.get("/batches/{batch}", responses=error_responses(404))
    async def batch_status(batch: str) -> dict[str, Any]:
        """Every intent of a batch and a count by status."""
        records = intents.store.by_batch(batch) if intents is not None else []
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
        return integrator_report(code, intents.store.by_integrator(code), intents.fee_share)

    return api
