"""Paying out more than the validators' payout limit on Cosmos (issue 15): a malicious relayer the validators
allow-listed asks them directly (``POST /validators/{address}/cosign``) to co-sign payouts of attested transfers one
after the other, broadcasting each that got a quorum, then, for the transfer over the limit, asks again and again:
the same payload, re-built payloads (another timeout height, another fee, the next vault sequence), and batches
with a transfer already paid. It reports every answer and what the chain did with its broadcasts; the test reads
the outcome from the chain."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from adapters.base import CosignRequest, MessageId
from tests.adversarial.attacker import AttackerContext
from tests.adversarial.attacks.cosmos_cosign import Asker, _altered, _broadcast, _message_raw

THRESHOLD = 2


async def _ask_all(asker: Asker, name: str, targets: list[dict[str, Any]], request: CosignRequest,
                   wait_s: float) -> list[dict[str, Any]]:
    """Ask every validator, again while one has not attested the message yet; the answers once none says so."""
    deadline = time.monotonic() + wait_s
    while True:
        answers = await asyncio.gather(*(asker.ask(name, v, request, keep=False) for v in targets))
        if all(a.get("reason") != "not attested" for a in answers) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    for v, a in zip(targets, answers, strict=True):
        asker.asked.append({"request": name, "validator": v["address"], "sequence": request.context["sequence"],
                            "timeout_height": request.context["timeout_height"], **a})
    return list(answers)


async def _pay(asker: Asker, adapter: Any, request: CosignRequest) -> dict[str, Any] | None:
    """Broadcast ``request`` with what it was given, if that is a quorum."""
    given = asker.signed.get(request.payload, (request, {}))[1]
    if len(given) < THRESHOLD:
        return None
    return await _broadcast(adapter, request, list(given.values()))


async def pay_over_the_limit(ctx: AttackerContext, message_ids: list[str], rounds: int = 3,
                             wait_s: float = 120.0) -> dict[str, Any]:
    """``message_ids``: transfers to Cosmos, in order; the last is over the limit once the others are paid."""
    raws = [await _message_raw(ctx, m, wait_s) for m in message_ids]
    chain = raws[0][1]
    adapter = ctx.adapters()[chain]
    targets = list(ctx.world["validators"])
    asker = Asker(ctx, {}, signed=True)
    broadcasts: list[dict[str, Any]] = []

    for i, (raw, _chain) in enumerate(raws[:-1]):  # within the limit: each paid at once
        request = await adapter.cosign_request([raw])
        await _ask_all(asker, f"transfer {i}", targets, request, wait_s)
        await _ask_all(asker, f"transfer {i} again", targets, request, wait_s)  # the idempotent retry, unsent
        outcome = await _pay(asker, adapter, request)
        if outcome is not None:
            broadcasts.append({"request": f"transfer {i}", **outcome})
            again = await _pay(asker, adapter, request)
            broadcasts.append({"request": f"transfer {i} replayed", **(again or {})})

    over = raws[-1][0]
    for r in range(rounds):  # over the limit: asked again and again, re-built every way
        request = await adapter.cosign_request([over])
        sequence, timeout = int(request.context["sequence"]), int(request.context["timeout_height"])
        variants = [
            ("over", request),
            ("over: timeout +1", _altered(adapter, request, timeout_height=str(timeout + 1))),
            ("over: fee x2", _altered(adapter, request, fee_amount=str(2 * int(request.context["fee_amount"])))),
            ("over: next sequence", _altered(adapter, request, sequence=str(sequence + 1))),
            ("over: with a paid transfer", await adapter.cosign_request([raws[0][0], over])),
        ]
        for name, variant in variants:
            await _ask_all(asker, f"round {r}: {name}", targets, variant, wait_s)
            outcome = await _pay(asker, adapter, variant)
            if outcome is not None:
                broadcasts.append({"request": f"round {r}: {name}", **outcome})
    delivered = await adapter.delivered([MessageId(bytes.fromhex(m[2:])) for m in message_ids])
    return {"asked": asker.asked, "broadcasts": broadcasts, "delivered": delivered,
            "signed_payloads": [{"messages": len(req.messages), "sequence": req.context["sequence"],
                                 "validators": sorted(v)} for req, v in asker.signed.values()]}
