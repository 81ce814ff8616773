"""Queued intents released as room appears (issue 14: "queue instead of refusing").

An operator-signed intent that finds every allowed chain full is stored ``queued`` with its request and a deadline
(``router/submit.py``). Every ``interval_s`` each daemon: ends the queued intents past their deadline ``expired``
(nothing was sent; the value each reserved goes back to its client's daily budget, ``router.value_per_day``, kept
by the daemon that expires it), then takes the oldest queued intents that fit in the room the chains have now
(``router.room``), plans them as a batch would be planned (balances, planner, operator accounts, the shared buckets)
and moves them to ``planned`` with conditional updates (one statement per plan: so two daemons never release one
intent twice), where the lanes pick them up. The oldest are taken first, and none overtakes an older one that does
not fit yet (it stays queued).
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog
from fastapi import HTTPException

from router.intents import IntentExecutor, IntentFields, IntentStatus
from router.schemas import IntentRequest
from router.submit import (
    Batch,
    assign_operators,
    plan_batch,
    read_balances,
    reserve_room,
    room_now,
    take_planned_funds,
)
from router.validation import parse_request

if TYPE_CHECKING:
    from router.api import RoutingContext

log = structlog.get_logger("router.queue")


async def release_queued(ctx: RoutingContext, limit: int = 1000) -> int:
    """One pass: expire, then release the oldest queued intents that fit; how many were released."""
    intents = ctx.intents
    assert intents is not None and intents.executor is not None
    expired = await intents.store.aio.expire_queued()
    unsent: dict[str, dict[str, float]] = {}
    for client, token, amount in expired:  # nothing was sent: the value goes back to the client's daily budget
        if client is not None:
            per_token = unsent.setdefault(client, {})
            per_token[token] = per_token.get(token, 0.0) + float(Decimal(amount))
    for client, returns in unsent.items():
        await ctx.give_back_value(client, returns)
    if expired:
        log.info("queued_intents_expired", count=len(expired))
    if not await intents.store.aio.queued_count():
        return 0
    try:
        m = ctx.current()
    except HTTPException:  # capacity not sampled yet
        return 0
    room = await room_now(ctx, m)
    if max(room.work.values(), default=0.0) <= 1e-9:
        return 0  # no chain has room: the queue is not read (four passes a second while it waits)
    head, requests = _fitting_prefix(await intents.store.aio.queued(limit), room.work)
    if not head:
        return 0
    batch = Batch(client="", signer=None, reqs=[], parsed=[])
    for rec, req in zip(head, requests, strict=True):
        batch.reqs.append(req)
        batch.parsed.append((parse_request(req, m, ""), int(rec.units)))
    executor = intents.executor
    names = list(m.index)
    balances = await read_balances(executor, names, batch)
    assignment = plan_batch(ctx, m, batch, balances, room)
    fresh = assign_operators(batch, assignment, names, executor.operators, balances)
    planned = [_planned_as(rec, plan) for rec, plan in zip(head, fresh, strict=True)
               if plan.status == IntentStatus.PLANNED]
    await reserve_room(ctx, room, planned)
    ready = [r for r in planned if r.status == IntentStatus.PLANNED]
    released = set(await intents.store.aio.release(ready))
    started = [r for r in ready if r.id in released]
    take_planned_funds(executor, started)
    unused: dict[str, float] = {}  # released first by another daemon: the room this pass reserved for them goes back
    for r in ready:
        if r.id not in released:
            chain = r.origin or r.chain or ""
            unused[chain] = unused.get(chain, 0.0) + IntentExecutor.work_of(r)
    if unused:
        assert intents.room is not None
        await intents.store.aio.run_sync(intents.room.give_back, unused, room.rates, room.burst_s)
        if intents.active is not None:
            intents.active.taken({chain: -work for chain, work in unused.items()})
    executor.start(started)
    return len(started)


def _fitting_prefix(queued: list[IntentFields],
                    room: dict[str, float]) -> tuple[list[IntentFields], list[IntentRequest]]:
    """The oldest queued intents that fit, each on one of the chains it allows (the one with the most room left),
    stopping at the first that does not: released strictly in order, none overtaking an older one. With their
    requests, parsed only up to that first one (a long queue is read four times a second)."""
    left = dict(room)
    head: list[IntentFields] = []
    requests: list[IntentRequest] = []
    for rec in queued:
        req = IntentRequest.model_validate_json(rec.request or "{}")
        chains = [req.from_chain] if req.kind == "xchain" and req.from_chain else (req.chains or list(left))
        best = max((c for c in chains if c in left), key=lambda c: left[c], default=None)
        work = IntentExecutor.work_of(rec)
        if best is None or left[best] + 1e-9 < work:
            break
        left[best] -= work
        head.append(rec)
        requests.append(req)
    return head, requests


def _planned_as(rec: IntentFields, plan: IntentFields) -> IntentFields:
    """The queued row ``rec`` with the chain, operator and estimates its plan gave."""
    rec.status, rec.chain, rec.origin, rec.operator = IntentStatus.PLANNED, plan.chain, plan.origin, plan.operator
    rec.fee_usd, rec.latency_s = plan.fee_usd, plan.latency_s
    return rec


async def run_releaser(ctx: RoutingContext, stop: asyncio.Event, interval_s: float = 0.25) -> None:
    """``release_queued`` every ``interval_s`` until ``stop``; a failed pass is logged and retried."""
    while not stop.is_set():
        try:
            await release_queued(ctx)
        except Exception as exc:  # noqa: BLE001 - the store or a chain away for a moment: the next pass retries
            log.warning("queue_release_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
