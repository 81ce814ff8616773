"""``POST /v1/intents``, step by step (``submit_batch``): validate the batch (envelope, admission, each intent:
``router.validation``), read the operators' (or the signer's) balances, plan, assign the operator accounts, then
persist and start the intents (operators sign) or build their unsigned transactions (signer mode)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from adapters.base import AdapterError
from router.capacity import CapacityModel
from router.errors import bad_input
from router.intents import IntentExecutor, IntentFields, IntentStatus, Operator, intent_fields, new_intent_ids
from router.planner import Assignment, Intents, Kind, Reason, plan
from router.schemas import IntentRequest
from router.validation import (
    ParsedIntent,
    batch_items,
    batch_signer,
    check_intent,
    check_signable,
    parse_request,
    planner_intents,
    read_intents,
    token_units,
)

if TYPE_CHECKING:
    from router.api import IntentsBackend, RoutingContext


@dataclass
class Batch:
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
    balances = await read_balances(executor, names, batch)
    room = await room_now(ctx, m)
    assignment = plan_batch(ctx, m, batch, balances, room)
    ops = [Operator("", signer.lower())] if signer else executor.operators
    records = assign_operators(batch, assignment, names, ops, balances)
    if signer is None:
        return await _start_operator_batch(ctx, request, executor, batch, room, records)
    await reserve_room(ctx, room, records)
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
                    m: CapacityModel) -> Batch:
    """Every intent checked (``router.validation``), then what the operators may send for this client: only
    allow-listed calls, within its daily value; or, in signer mode, room for more open unsigned intents."""
    intents = ctx.intents
    assert intents is not None
    parsed = []
    signable = intents.executor.signable_chains() if intents.executor is not None else {}
    seen: dict[tuple[Any, ...], tuple[ParsedIntent, int]] = {}  # intents alike but for their recipient parse alike
    for i, req in enumerate(reqs):
        check_intent(i, req, signer)
        shape = (req.kind, req.amount, req.token, tuple(req.chains) if req.chains is not None else None,
                 req.from_chain, req.work, req.max_fee_usd, req.max_latency_s)
        if shape not in seen:
            p = parse_request(req, m, f"intents[{i}].")
            if signer is None:  # the operators sign only on chains with lanes
                check_signable(i, req, signable)
            seen[shape] = (p, token_units(i, req, p, intents.decimals, intents.not_bridged, intents.chain_decimals))
        parsed.append(seen[shape])
    if signer is None:  # the operators sign: only allow-listed calls, within the client's daily value
        for i, req in enumerate(reqs):
            if req.kind == "call":
                ctx.check_call(i, req)
        await ctx.spend_value(client, reqs, [p.amount for p, _ in parsed])
    elif intents.limits is not None and (await intents.store.aio.open_signer_intents() + len(reqs)
                                         > intents.limits.max_open_unsigned):
        raise ctx.refuse("unsigned_full", 503, {"error": f"too many signer-mode intents open "
                                                         "(router.max_open_unsigned = "
                                                         f"{intents.limits.max_open_unsigned})",
                                                "limit": "router.max_open_unsigned"}, retry_after_s=30.0)
    return Batch(client, signer, reqs, parsed)


async def read_balances(executor: IntentExecutor, names: list[str], batch: Batch) -> dict[str, dict[str, list[int]]]:
    """Per token and chain, the balance of each operator account (or of the signer); 0 for an operator account whose
    lane there waits on a transaction its node refuses (no new intents for it until the node takes it)."""
    balances: dict[str, dict[str, list[int]]] = {}
    for token in {r.token for r in batch.reqs if r.kind != "call"}:
        balances[token] = (await executor.balances(names, token, [batch.signer]) if batch.signer
                           else await executor.operator_balances.get(names, token))
    if not batch.signer and executor.blocked_accounts:
        for per_chain in balances.values():
            for chain, held in per_chain.items():
                for k, op in enumerate(executor.operators):
                    if (chain, op.on(chain).lower()) in executor.blocked_accounts:
                        held[k] = 0
    return balances


def take_planned_funds(executor: IntentExecutor, records: Sequence[IntentFields]) -> None:
    """What the planned (stored) operator-signed ``records`` will send is not there for the next batch's plan."""
    for r in records:
        if r.status == IntentStatus.PLANNED and r.kind != "call" and r.operator and r.signer is None:
            executor.operator_balances.take(r.token, r.origin or r.chain or "", r.operator, int(r.units))


@dataclass
class Room:
    """Each chain's room for this batch, shared by every daemon (``router.room``): the work it may still take now
    (``work``), at what rate its bucket fills (``rates``: spare transfers per second at the fee-market target) and
    how many seconds of that a bucket holds (``burst_s``: the planning horizon)."""

    work: dict[str, float]
    rates: dict[str, float]
    burst_s: dict[str, float]
    queued: int = 0  # intents queued by every daemon, when the room was read


async def room_now(ctx: RoutingContext, m: CapacityModel) -> Room:
    """The lesser of each chain's shared bucket and its backlog bound (``router.backlog_s`` of its spare rate, less
    the work every daemon has taken there and not seen mined), and the queue's length: read in one call on the
    store's threads, ahead of the background loops' calls (a client waits, or the queue's release does)."""
    intents = ctx.intents
    assert intents is not None and intents.room is not None
    room, taken = intents.room, intents.active
    assert taken is not None
    names = list(m.index)
    horizon = np.maximum(1.0, m.block_time_s)
    spare = m.spare_gas_per_s(ctx.clock()) / m.transfer_gas
    rates = {n: float(spare[c]) for c, n in enumerate(names)}
    burst = {n: float(horizon[c]) for c, n in enumerate(names)}

    def read() -> tuple[dict[str, float], dict[str, float], int]:
        return room.available(rates, burst), taken.now(), intents.store.queued_count()

    bucket, active, queued = await intents.store.aio.run_first(read)
    work = {n: max(0.0, min(bucket[n], rates[n] * intents.backlog_s - active.get(n, 0.0))) for n in names}
    return Room(work, rates, burst, queued)


def plan_batch(ctx: RoutingContext, m: CapacityModel, batch: Batch, balances: dict[str, dict[str, list[int]]],
                room: Room) -> Assignment:
    """The planner's assignment of the batch, with each intent's liquidity and the chains' room."""
    intents = ctx.intents
    assert intents is not None
    names = list(m.index)
    # liquidity: same-chain intents run where an operator holds enough of the token; xchain ones may land
    # anywhere the token is (the bridge mints or unlocks it) but start where an operator holds it
    # (the operators sign only on chains with lanes: an operator-signed intent runs, or starts, only there)
    everywhere = frozenset(names)
    signable = ({k: everywhere for k in ("transfer", "call", "xchain")} if batch.signer
                else intents.executor.signable_chains() if intents.executor else {})
    liquidity = np.zeros((len(batch.reqs), len(names)), dtype=bool)
    rows: dict[tuple[str, Kind, int, str | None], list[bool]] = {}
    for i, (req, (p, units)) in enumerate(zip(batch.reqs, batch.parsed, strict=True)):
        key = (req.token, p.kind, units, req.from_chain)
        if key not in rows:
            rows[key] = [_can_pay(p.kind, name, req, units, intents.token_chains, balances, signable)
                         for name in names]
        liquidity[i] = rows[key]
    arrays = planner_intents([p for p, _ in batch.parsed], m)
    arrays = Intents(kind=arrays.kind, work=arrays.work, amount=arrays.amount, allowed=arrays.allowed,
                     liquidity=liquidity, max_fee_usd=arrays.max_fee_usd, max_latency_s=arrays.max_latency_s,
                     origin=arrays.origin)
    # the planner's window capacity is spare x horizon - pending: "pending" is set so that it equals the room
    horizon = np.maximum(1.0, m.block_time_s)
    spare = m.spare_gas_per_s(ctx.clock())
    room_gas = np.array([room.work[n] for n in names]) * m.transfer_gas
    m.observe_pending(np.arange(len(names)), np.maximum(0.0, spare * horizon - room_gas))
    return plan(arrays, m, window_s=1.0, now_s=ctx.clock())


def _can_pay(kind: Kind, chain: str, req: IntentRequest, units: int, token_chains: dict[str, set[str]],
             balances: dict[str, dict[str, list[int]]], signable: Mapping[str, Collection[str]]) -> bool:
    """Whether ``chain`` can take the intent: a call where its signer may sign one; a same-chain transfer where the
    token is and its signer may sign one and holds ``units``; a cross-chain one to anywhere the token is, from an
    origin where its signer may sign one."""
    if kind == Kind.CALL:
        return chain in signable.get("call", ())
    if chain not in token_chains.get(req.token, ()):
        return False
    if kind == Kind.XCHAIN:
        return req.from_chain in signable.get("xchain", ())
    return chain in signable.get("transfer", ()) and max(balances[req.token][chain], default=0) >= units


async def reserve_room(ctx: RoutingContext, room: Room, records: list[IntentFields]) -> None:
    """Take the planned intents' work from the shared buckets; an intent that no longer fits (another daemon took
    the room meanwhile) is answered ``capacity`` instead, the last of the batch first."""
    intents = ctx.intents
    assert intents is not None and intents.room is not None
    wants = _work_wanted(records)
    _cut_to_granted(records, wants, await intents.store.aio.run_first(_reserve, intents, room, wants))


def _reserve(intents: IntentsBackend, room: Room, wants: dict[str, float]) -> dict[str, float]:
    """``wants`` taken from the shared buckets (``RoomStore.reserve``) and counted as active; what was granted."""
    assert intents.room is not None and intents.active is not None
    granted = intents.room.reserve(wants, room.rates, room.burst_s)
    intents.active.taken(granted)
    return granted


def _work_wanted(records: list[IntentFields]) -> dict[str, float]:
    """The planned intents' work, per chain that sends them."""
    wants: dict[str, float] = {}
    for r in records:
        if r.status == IntentStatus.PLANNED:
            chain = r.origin or r.chain or ""
            wants[chain] = wants.get(chain, 0.0) + IntentExecutor.work_of(r)
    return wants


def _cut_to_granted(records: list[IntentFields], wants: dict[str, float], granted: dict[str, float]) -> None:
    """Where a chain granted less than ``wants``, the batch's last planned intents there become ``capacity``."""
    for chain, want in wants.items():
        excess = want - granted.get(chain, 0.0)
        for r in reversed([r for r in records if r.status == IntentStatus.PLANNED and (r.origin or r.chain) == chain]):
            if excess <= 1e-9:
                break
            r.status, r.reason = IntentStatus.UNSERVED, Reason.CAPACITY.name.lower()
            excess -= IntentExecutor.work_of(r)


def _queue_capacity_refusals(intents: IntentsBackend, batch: Batch, records: list[IntentFields],
                             queued: int) -> None:
    """Operator-signed intents the chains had no room for wait for it (``queued``, up to their ``max_wait_s``, default
    ``router.max_wait_s``) instead of coming back ``capacity``, while the queue (``queued`` long) has room
    (``router.max_queued``)."""
    waits = [intents.max_wait_s if req.max_wait_s is None else req.max_wait_s for req in batch.reqs]
    full = [i for i, r in enumerate(records) if r.status == IntentStatus.UNSERVED and r.reason == "capacity"
            and waits[i] > 0]
    now = time.time()
    for i in full[:max(0, intents.max_queued - queued)]:
        req, rec, wait = batch.reqs[i], records[i], waits[i]
        rec.status, rec.reason = IntentStatus.QUEUED, "waiting for room on an allowed chain"
        rec.deadline_at = now + wait
        rec.request, rec.chain, rec.origin, rec.operator = req.model_dump_json(), None, None, None


def _take_room_and_store(intents: IntentsBackend, room: Room, batch: Batch,
                         records: list[IntentFields]) -> list[IntentFields]:
    """On the store's threads, in one call: take the planned intents' work from the shared buckets (what no longer
    fits is ``capacity``), queue the ``capacity`` ones that may wait, store the planned and queued ones, and give the
    value of the unserved ones back to the client's budgets (nothing of them will be sent); the stored ones."""
    wants = _work_wanted(records)
    _cut_to_granted(records, wants, _reserve(intents, room, wants))
    _queue_capacity_refusals(intents, batch, records, room.queued)
    kept = [r for r in records if r.status in (IntentStatus.PLANNED, IntentStatus.QUEUED)]
    intents.store.add_all(kept)
    if intents.limits is not None:
        intents.limits.value.give_back(batch.client, _value_of(batch, records, IntentStatus.UNSERVED))
    return kept


def _value_of(batch: Batch, records: list[IntentFields], status: str | None = None) -> dict[str, float]:
    """Per token, what the batch's token-moving intents (those in ``status``, or all) send."""
    value: dict[str, float] = {}
    for rec, (p, _units) in zip(records, batch.parsed, strict=True):
        if rec.kind != "call" and (status is None or rec.status == status):
            value[rec.token] = value.get(rec.token, 0.0) + float(p.amount)
    return value


def assign_operators(batch: Batch, assignment: Assignment, names: list[str], ops: list[Operator],
                      balances: dict[str, dict[str, list[int]]]) -> list[IntentFields]:
    """One record per intent: unserved (with the planner's reason, or liquidity), or planned on its chain with the
    operator account that pays (the one holding the most of the token; calls spread over the accounts)."""
    left = {t: {c: list(v) for c, v in b.items()} for t, b in balances.items()}
    batch_id = "bat_" + uuid.uuid4().hex
    now = time.time()
    ids = new_intent_ids(len(batch.reqs))
    signer = batch.signer.lower() if batch.signer else None
    records = []
    for i, (req, (p, units)) in enumerate(zip(batch.reqs, batch.parsed, strict=True)):
        values = {"id": ids[i], "batch": batch_id, "created_at": now, "updated_at": now, "kind": req.kind,
                  "token": req.token, "amount": str(p.amount), "units": str(units),
                  "recipient": req.recipient.lower(), "integrator": req.integrator, "from_chain": req.from_chain,
                  "client": batch.client, "signer": signer}
        chain = int(assignment.chain[i])
        if chain < 0:
            values.update(status=IntentStatus.UNSERVED, reason=Reason(int(assignment.reason[i])).name.lower())
        else:
            values.update(_placement(assignment, i, names, p, units, req, ops, left))
        records.append(intent_fields(values))  # no validation: every value was checked above (router.validation)
    return records


def _placement(assignment: Assignment, i: int, names: list[str], p: ParsedIntent, units: int, req: IntentRequest,
               ops: list[Operator], left: dict[str, dict[str, list[int]]]) -> dict[str, Any]:
    """Planned intent ``i``'s chain, origin, estimates and operator account, taking its amount from what that account
    has ``left``; unserved for ``liquidity`` when no account holds enough."""
    origin = names[int(assignment.origin[i])]
    values: dict[str, Any] = {"chain": names[int(assignment.chain[i])], "origin": origin,
                              "fee_usd": float(assignment.fee_usd[i]), "latency_s": float(assignment.latency_s[i]),
                              "work": p.work}
    if p.kind == Kind.CALL:  # no token moves: spread calls over the operator accounts
        return values | {"calldata": req.calldata, "operator": ops[i % len(ops)].on(origin)}
    funds = left[req.token][origin]
    k = max(range(len(ops)), key=lambda j: funds[j])
    if funds[k] < units:
        return values | {"status": IntentStatus.UNSERVED, "reason": "liquidity"}
    funds[k] -= units
    return values | {"operator": ops[k].on(origin)}


async def _start_operator_batch(ctx: RoutingContext, request: Request, executor: IntentExecutor, batch: Batch,
                                room: Room, records: list[IntentFields]) -> JSONResponse:
    """The operators sign: the intents with room are stored and started, those without queued (stored too) or
    unserved (their value back in the client's budgets)."""
    intents = ctx.intents
    assert intents is not None
    try:
        kept = await intents.store.aio.run_first(_take_room_and_store, intents, room, batch, records)
    except BaseException:  # nothing was stored: the whole batch's value goes back to the client's budgets
        await ctx.give_back_value(batch.client, _value_of(batch, records))
        raise
    request.state.intents_taken = len(kept)
    take_planned_funds(executor, kept)
    if kept:
        executor.start([r for r in kept if r.status == IntentStatus.PLANNED])
    return _answer(kept[0].batch if kept else None, records)


async def _build_unsigned(ctx: RoutingContext, executor: IntentExecutor, records: list[IntentFields]) -> JSONResponse:
    """Signer mode: the unsigned transaction of each planned intent; the dApp signs and broadcasts, then tells us the
    hash (POST /v1/intents/{id}/broadcast). Only the intents whose transaction was built are stored."""
    intents = ctx.intents
    assert intents is not None

    async def build(rec: IntentFields) -> dict[str, Any] | None:
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


def _answer(batch: str | None, records: Sequence[IntentFields],
            transactions: list[dict[str, Any] | None] | None = None) -> JSONResponse:
    """``IntentBatchAnswer``: ids only for the intents that were stored (planned or unsigned)."""
    stored = (IntentStatus.PLANNED, IntentStatus.QUEUED, IntentStatus.UNSIGNED)
    body: dict[str, Any] = {"batch": batch, "ids": [r.id if r.status in stored else None for r in records],
                            "statuses": [r.status for r in records], "reasons": [r.reason for r in records]}
    if transactions is not None:
        body["transactions"] = transactions
    return JSONResponse(body, status_code=202)
