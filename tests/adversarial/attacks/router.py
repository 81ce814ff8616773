"""Attacks on the routing API (issue 12, findings 3 and 5): make the operator accounts send the attacker their
tokens through call intents, drain them with transfers, flood the API, and inflate an integrator's rewards with
intents that never land or with transactions that are not theirs.

Every function only calls the daemon's public API and the chains' public RPC, with the attacker's own key."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx

from tests.adversarial.attacker import AttackerContext

TRANSFER = "a9059cbb"   # transfer(address,uint256)
APPROVE = "095ea7b3"    # approve(address,uint256)
MAX_UINT = "f" * 64


def _word(value: str | int) -> str:
    if isinstance(value, int):
        return hex(value)[2:].rjust(64, "0")
    return value[2:].lower().rjust(64, "0")


def _evm_chains(ctx: AttackerContext) -> list[str]:
    return [name for name, chain in ctx.chains.items() if chain["family"] == "evm"]


def _answer(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = {"text": resp.text[:300]}
    detail = body.get("detail") if isinstance(body, dict) else None
    out: dict[str, Any] = {"status": resp.status_code, "retry_after": resp.headers.get("retry-after")}
    if isinstance(detail, dict):
        out |= {"field": detail.get("field"), "limit": detail.get("limit"), "error": detail.get("error")}
    elif isinstance(body, dict):
        out |= {"ids": body.get("ids"), "statuses": body.get("statuses"), "batch": body.get("batch")}
    return out


async def _post(ctx: AttackerContext, body: dict[str, Any], timeout: float = 30.0) -> httpx.Response:
    """POST /v1/intents, waiting out the HTTP front's share of the relay loop per client (a 429 naming
    ``api.max_relay_requests_per_s_per_client``: the attacker is patient), so that each attempt meets the router."""
    for _ in range(20):
        resp = await ctx.http.post(f"{ctx.api_url}/v1/intents", json=body, timeout=timeout)
        detail = resp.json().get("detail") if resp.status_code in (429, 503) else None
        if not (isinstance(detail, dict) and str(detail.get("cap", "")).startswith("api.max_relay_requests")):
            return resp
        await asyncio.sleep(float(resp.headers.get("retry-after", "1")))
    return resp


async def operator_calls(ctx: AttackerContext, operators: list[str]) -> dict[str, Any]:
    """Call intents the operator accounts would sign: ``transfer(attacker, all)`` and ``approve(attacker, max)`` on
    every token they hold, to contracts that are not allow-listed and to the allow-listed TestRecipient with a
    function that is not; in variations (upper-case hex, several chains, a batch hiding one behind an allowed call)."""
    me = ctx.addresses["l1"]
    attempts: list[dict[str, Any]] = []
    allowed_call = None
    for chain in _evm_chains(ctx):
        info = ctx.chains[chain]
        adapter = ctx.adapters()[chain]
        for symbol, token in info["tokens"].items():
            held = max([await adapter.token_balance(symbol, o) for o in operators] + [0])
            if held == 0:
                continue
            steal = "0x" + TRANSFER + _word(me) + _word(held)
            attempts.append({"what": f"transfer-all {symbol} on {chain}", "intent": {
                "kind": "call", "amount": "0", "recipient": token["address"], "calldata": steal, "chains": [chain]}})
            attempts.append({"what": f"approve-max {symbol} on {chain} (upper-case hex)", "intent": {
                "kind": "call", "amount": "0", "recipient": token["address"].upper().replace("0X", "0x"),
                "calldata": ("0x" + APPROVE + _word(me) + MAX_UINT).upper().replace("0X", "0x"), "chains": [chain]}})
        recipient = info["contracts"]["test_recipient"]
        tst = info["tokens"].get("TST", {}).get("address", recipient)
        allowed_call = {"kind": "call", "amount": "0", "recipient": recipient, "calldata": "0x83a6deb5",
                        "chains": [chain]}
        attempts.append({"what": f"allow-listed TestRecipient, transfer selector on {chain}", "intent": {
            "kind": "call", "amount": "0", "recipient": recipient, "calldata": "0x" + TRANSFER + _word(me) + _word(1),
            "chains": [chain]}})
        attempts.append({"what": f"allow-listed TestRecipient, setRevert on {chain}", "intent": {
            "kind": "call", "amount": "0", "recipient": recipient, "calldata": "0x" + "8fb5f171" + _word(1),
            "chains": [chain]}})
        attempts.append({"what": f"token with the allowed selector on {chain}", "intent": {
            "kind": "call", "amount": "0", "recipient": tst, "calldata": "0x83a6deb5", "chains": [chain]}})
    every = _evm_chains(ctx)
    first = ctx.chains[every[0]]
    attempts.append({"what": "transfer-all on several chains at once", "intent": {
        "kind": "call", "amount": "0", "recipient": first["tokens"]["TST"]["address"],
        "calldata": "0x" + TRANSFER + _word(me) + _word(1), "chains": every, "work": 1000}})
    out = []
    for attempt in attempts:
        resp = await _post(ctx, {"intents": [attempt["intent"]]})
        out.append({"what": attempt["what"]} | _answer(resp))
    # one bad call hidden behind an allowed one: the whole batch is refused
    hidden = [allowed_call, attempts[0]["intent"]]
    resp = await _post(ctx, {"intents": hidden})
    out.append({"what": "allowed call then transfer-all in one batch"} | _answer(resp))
    return {"attempts": out}


async def drain(ctx: AttackerContext) -> dict[str, Any]:
    """Transfers to the attacker of more than a day's value limit: one intent, and a batch that adds up to it."""
    me = ctx.addresses["l1"]
    out = []
    for what, intents in (
        ("50,000 TST at once", [{"amount": "50000", "token": "TST", "recipient": me, "chains": ["l1"]}]),
        ("6,000 TST twice in one batch", [{"amount": "6000", "token": "TST", "recipient": me, "chains": ["l1"]}] * 2),
        ("a token the daemon does not know", [{"amount": "1", "token": "DOGE", "recipient": me}]),
        ("xchain 20,000 TST", [{"kind": "xchain", "amount": "20000", "token": "TST", "recipient": me,
                                "from_chain": "l1", "chains": ["rollup_a"]}]),
    ):
        resp = await _post(ctx, {"intents": intents})
        out.append({"what": what} | _answer(resp))
    return {"attempts": out}


async def flood(ctx: AttackerContext, batches: int, size: int) -> dict[str, Any]:
    """``batches`` back-to-back batches of ``size`` intents the planner leaves unserved (they would cost the
    router planning only): how many got through before the client's intent rate stopped them."""
    me = ctx.addresses["l1"]
    intents = [{"amount": "0.001", "token": "TST", "recipient": me, "max_latency_s": 0.000001}] * size
    started = time.monotonic()
    answers = []
    for _ in range(batches):
        resp = await _post(ctx, {"intents": intents}, timeout=120)
        answers.append(_answer(resp))
    elapsed = time.monotonic() - started
    return {"answers": answers, "elapsed_s": elapsed}


async def _rpc(url: str, method: str, params: list[Any]) -> Any:
    async with httpx.AsyncClient(timeout=30) as http:
        return (await http.post(url,
                                json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).json()["result"]


async def _unsigned(ctx: AttackerContext, code: str, signer: str) -> dict[str, Any]:
    intent = {"amount": "1", "token": "TST", "recipient": ctx.addresses["l1"], "chains": ["l1"], "integrator": code}
    resp = await ctx.http.post(f"{ctx.api_url}/v1/intents", json={"intents": [intent], "signer": signer})
    return {"http": resp.status_code} | (resp.json() if resp.status_code == 202 else {"detail": resp.json()["detail"]})


async def bogus_claims(ctx: AttackerContext, code: str, someone_elses: str, intent_tx: str,
                       operator: str) -> dict[str, Any]:
    """Unsigned intents under the attacker's integrator code, reported with transactions that are not theirs:
    someone else's real transaction, the same hash again (a replay), an operator's intent transaction, a hash no
    chain knows, and the attacker's own older transaction with exactly the intent's call (sent before the router
    built the intent); plus an intent that names an operator account as its signer."""
    me = ctx.addresses["l1"]
    key = ctx.keys["evm"]
    l1 = ctx.adapters()["l1"]
    results: dict[str, Any] = {}

    async def report(label: str, tx_hash: str) -> None:
        made = await _unsigned(ctx, code, me)
        intent_id = made["ids"][0]
        resp = await ctx.http.post(f"{ctx.api_url}/v1/intents/{intent_id}/broadcast", json={"tx_hash": tx_hash})
        view = (await ctx.http.get(f"{ctx.api_url}/v1/intents/{intent_id}")).json()
        results[label] = {"intent": intent_id, "after": view.get("status"),
                          "reason": view.get("reason")} | _answer(resp)

    await report("someone_elses_tx", someone_elses)
    await report("replayed_hash", someone_elses)
    await report("operators_intent_tx", intent_tx)
    await report("random_hash", "0x" + secrets.token_hex(32))
    # the attacker's own transaction doing exactly what the intent will ask, sent before the intent exists
    old = await l1.transfer_token(key, "TST", me, 10**18)
    deadline = time.monotonic() + 60
    while await _rpc(ctx.chains["l1"]["rpc_url"], "eth_getTransactionReceipt", [old]) is None:
        assert time.monotonic() < deadline, "own transaction not mined"
        await asyncio.sleep(0.2)  # polling the chain with a deadline
    await report("own_older_tx", str(old))
    results["operator_as_signer"] = await _unsigned(ctx, code, operator)
    report_doc = (await ctx.http.get(f"{ctx.api_url}/v1/integrators/{code}/report")).json()
    return {"results": results, "report": report_doc, "own_older_tx": old}
