"""``POST /v1/intents``, step by step (``submit_batch``): validate the batch (envelope, admission, each intent:
``router.validation``), read the operators' (or the signer's) balances, plan, assign the operator accounts, then
persist and start the intents (operators sign) or build their unsigned transactions (signer mode)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from adapters.base import AdapterError
from router.capacity import CapacityModel
from router.errors import bad_input
from router.intents import IntentExecutor, IntentRecord, IntentStatus, Operator, new_intent_id
from router.planner import Assignment, Intents, Kind, Reason, plan
from router.schemas import IntentRequest
from router.validation import (
    ParsedIntent,
    batch_items,
    batch_signer,
    check_intent,
    parse_request,
    planner_intents,
    read_intents,
    token_units,
)

if TYPE_CHECKING:
    from router.api import RoutingContext


@dataclass
class _Batch:
    """A batch on its way through ``submit_batch``: who sent it, for whom to sign, its intents as sent and as parsed."""

    client: str
    signer: str | None
    reqs: list[IntentRequest]
    parsed: list[tuple[ParsedIntent, int]]  # (the intent against the live chains, its amount in smallest units)


async def submit_batch(ctx: RoutingContext, request: Request, body: dict[str, Any]) -> JSONResponse:
    """Validate (envelope, admission, each intent), read the operators' (or signer's) balances, plan, assign the
    operator accounts, then persist and start (operators sign) or build the unsigned transactions (signer mode)."""
    raw = batch_items(body)
    client = _admit_batch(ctx, request, len(raw))
    signer = batch_signer(body)
    executor = _executor_for(ctx, signer)
    m = ctx.current()
    batch = await _validate_batch(ctx, client, signer, read_intents(raw), m)
    names = list(m.index)
    balances = await _read_balances(executor, names, batch)
    assignment = _plan_batch(ctx, executor, m, batch, balances)
    ops = [Operator("", signer.lower())] if signer else executor.operators
    records = _assign_operators(batch, assignment, names, ops, balances)
    if signer is None:
        return await _start_operator_batch(ctx, request, executor, batch, records, ops)
    return await _build_unsigned(ctx, executor, records)


def _admit_batch(ctx: RoutingContext, request: Request, n: int) -> str:
    """The daemon-wide rate (503 + Retry-After), then this client's (``router.intents_per_s``: per API key, else per
    address), before any work on the batch; the client."""
    if ctx.admit_intents is not None:
        ctx.admit_intents(request.client.host if request.client else None, n)
        request.state.intents_admitted = n
    client = ctx.client_of(request)
    ctx.admit(client, n)
    return client


def _executor_for(ctx: RoutingContext, signer: str | None) -> IntentExecutor:
    """Whoever signs must be able to: an executor at all, operator accounts when no signer is given (409), and a
    signer that is not one of them (400)."""
    intents = ctx.intents
    if intents is None or intents.executor is None:
        raise HTTPException(409, {"error": "intents are not enabled on this daemon (no chain can send)"})
    if signer is None and not intents.executor.operators:
        raise HTTPException(409, {"error": "no operator accounts configured ([router] operator_keys); "
                                           "pass \"signer\" to get unsigned transactions instead"})
    if signer is not None and signer.lower() in {o.address.lower() for o in intents.executor.operators}:
        raise bad_input("signer", "is one of the router's operator accounts; omit signer to have it sign")
    return intents.executor


async def _validate_batch(ctx: RoutingContext, client: str, signer: str | None, reqs: list[IntentRequest],
                    m: CapacityModel) -> _Batch:
    """Every intent checked (``router.validation``), then what the operators may send for this client: only
    allow-listed calls, within its daily value; or, in signer mode, room for more open unsigned intents."""
    intents = ctx.intents
    assert intents is not None
    parsed = []
    for i, req in enumerate(reqs):
        check_intent(i, req, signer)
        p = parse_request(req, m, f"intents[{i}].")
        parsed.append((p, token_units(i, req, p, intents.decimals, intents.not_bridged)))
    if signer is None:  # the operators sign: only allow-listed calls, within the client's daily value
        for i, req in enumerate(reqs):
            if req.kind == "call":
                ctx.check_call(i, req)
        ctx.spend_value(client, reqs, [p.amount for p, _ in parsed])
    elif intents.limits is not None and (await intents.store.aio.open_signer_intents() + len(reqs)
                                         > intents.limits.max_open_unsigned):
        raise ctx.refuse("unsigned_full", 503, {"error": f"too many signer-mode intents open "
                                                         "(router.max_open_unsigned = "
                                                         f"{intents.limits.max_open_unsigned})",
                                                "limit": "router.max_open_unsigned"}, retry_after_s=30.0)
    return _Batch(client, signer, reqs, parsed)


async def _read_balances(executor: IntentExecutor, names: list[str], batch: _Batch) -> dict[str, dict[str, list[int]]]:
    """Per token and chain, the balance of each operator account (or of the signer)."""
    balances: dict[str, dict[str, list[int]]] = {}
    for token in {r.token for r in batch.reqs if r.kind != "call"}:
        balances[token] = await executor.balances(names, token, [batch.signer] if batch.signer else None)
    return balances


def _plan_batch(ctx: RoutingContext, executor: IntentExecutor, m: CapacityModel, batch: _Batch,
                balances: dict[str, dict[str, list[int]]]) -> Assignment:
    """The planner's assignment of the batch, with each intent's liquidity and the chains' pending work."""
    intents = ctx.intents
    assert intents is not None
    names = list(m.index)
    # liquidity: same-chain intents run where an operator holds enough of the token; xchain ones may land
    # anywhere the token is (the bridge mints or unlocks it) but start where an operator holds it
    n = len(batch.reqs)
    liquidity = np.zeros((n, len(names)), dtype=bool)
    for i, (req, (p, units)) in enumerate(zip(batch.reqs, batch.parsed, strict=True)):
        for c, name in enumerate(names):
            liquidity[i, c] = p.kind == Kind.CALL or ((name in intents.token_chains.get(req.token, ())) and (
                p.kind == Kind.XCHAIN or max(balances[req.token][name], default=0) >= units))
    arrays = planner_intents([p for p, _ in batch.parsed], m)
    arrays = Intents(kind=arrays.kind, work=arrays.work, amount=arrays.amount, allowed=arrays.allowed,
                     liquidity=liquidity, max_fee_usd=arrays.max_fee_usd, max_latency_s=arrays.max_latency_s,
                     origin=arrays.origin)
    # what the chain still has to take: sent or planned and not mined, and at least what was admitted in the
    # last planning horizon, so admission is a rate (target gas per second), not only a backlog bound
    pending = executor.pending_work()
    horizon = np.maximum(1.0, m.block_time_s)
    owed = [max(pending.get(n, 0.0), executor.admitted_work(n, float(horizon[c]))) for c, n in enumerate(names)]
    m.observe_pending(np.arange(len(names)), np.array(owed) * m.transfer_gas)
    return plan(arrays, m, window_s=1.0, now_s=ctx.clock())


def _assign_operators(batch: _Batch, assignment: Assignment, names: list[str], ops: list[Operator],
                      balances: dict[str, dict[str, list[int]]]) -> list[IntentRecord]:
    """One record per intent: unserved (with the planner's reason, or liquidity), or planned on its chain with the
    operator account that pays (the one holding the most of the token; calls spread over the accounts)."""
    left = {t: {c: list(v) for c, v in b.items()} for t, b in balances.items()}
    batch_id = "bat_" + uuid.uuid4().hex
    now = time.time()
    records = []
    for i, (req, (p, units)) in enumerate(zip(batch.reqs, batch.parsed, strict=True)):
        chain = int(assignment.chain[i])
        rec = IntentRecord(id=new_intent_id(), batch=batch_id, created_at=now, updated_at=now, kind=req.kind,
                           token=req.token, amount=str(p.amount), units=str(units), recipient=req.recipient.lower(),
                           integrator=req.integrator, from_chain=req.from_chain, client=batch.client,
                           signer=batch.signer.lower() if batch.signer else None)
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
    return records


async def _start_operator_batch(ctx: RoutingContext, request: Request, executor: IntentExecutor, batch: _Batch,
                          records: list[IntentRecord], ops: list[Operator]) -> JSONResponse:
    """The operators sign: the planned intents are stored and started; an unserved one's value goes back to the
    client's budget (nothing will be sent)."""
    intents = ctx.intents
    assert intents is not None
    for rec, (p, _units) in zip(records, batch.parsed, strict=True):
        if rec.status == IntentStatus.UNSERVED:  # nothing will be sent: its value goes back to the client's budget
            ctx.give_back_value(batch.client, rec.token, p.amount)
    kept = [r for r in records if r.status == IntentStatus.PLANNED]
    request.state.intents_taken = len(kept)
    if kept:
        await intents.store.aio.add_all(kept)
        executor.start(kept, {o.address: o.key for o in ops})
    return _answer(kept[0].batch if kept else None, records)


async def _build_unsigned(ctx: RoutingContext, executor: IntentExecutor, records: list[IntentRecord]) -> JSONResponse:
    """Signer mode: the unsigned transaction of each planned intent; the dApp signs and broadcasts, then tells us the
    hash (POST /v1/intents/{id}/broadcast). Only the intents whose transaction was built are stored."""
    intents = ctx.intents
    assert intents is not None

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
    return _answer(kept[0].batch if kept else None, records, list(transactions))


def _answer(batch: str | None, records: Sequence[IntentRecord],
            transactions: list[dict[str, Any] | None] | None = None) -> JSONResponse:
    """``IntentBatchAnswer``: ids only for the intents that were stored (planned or unsigned)."""
    stored = (IntentStatus.PLANNED, IntentStatus.UNSIGNED)
    body: dict[str, Any] = {"batch": batch, "ids": [r.id if r.status in stored else None for r in records],
                            "statuses": [r.status for r in records], "reasons": [r.reason for r in records]}
    if transactions is not None:
        body["transactions"] = transactions
    return JSONResponse(body, status_code=202)
