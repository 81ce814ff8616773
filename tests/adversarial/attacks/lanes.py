"""Attacks on the durable operator lanes and the queue (issue 14: router/lanes.py, router/queue.py,
adapters/evm/writeahead.py): get a forbidden call signed later by queueing it, queue without limits or in signer
mode, and replay an operator's signed lane transaction (read back from the public chain) on its own chain and on
the others, hoping it pays a second time.

Every function only calls the daemon's public API and the chains' public RPC."""

from __future__ import annotations

from typing import Any

from tests.adversarial.attacker import AttackerContext
from tests.adversarial.attacks.router import APPROVE, MAX_UINT, _answer, _evm_chains, _post, _word


async def queue_abuse(ctx: AttackerContext, signer: str) -> dict[str, Any]:
    """Intents that must be refused before anything is stored, whatever they ask to wait for."""
    me = ctx.addresses["l1"]
    tst = ctx.chains["l1"]["tokens"]["TST"]["address"]
    approve = "0x" + APPROVE + _word(me) + MAX_UINT
    tries = {
        "a forbidden call asking to wait a day": {"intents": [{
            "kind": "call", "amount": "0", "recipient": tst, "calldata": approve, "chains": ["l1"],
            "max_wait_s": 86_400}]},
        "a wait longer than a day": {"intents": [{"amount": "1", "token": "TST", "recipient": me,
                                                  "max_wait_s": 10**9}]},
        "a negative wait": {"intents": [{"amount": "1", "token": "TST", "recipient": me, "max_wait_s": -1}]},
        "signer mode asking to queue": {"signer": signer, "intents": [{
            "amount": "1", "token": "TST", "recipient": me, "chains": ["l1"], "max_wait_s": 60}]},
    }
    return {"answers": {what: _answer(await _post(ctx, body)) for what, body in tries.items()}}


async def replay_lane_tx(ctx: AttackerContext, tx_hash: str, chain: str) -> dict[str, Any]:
    """The operator's signed transaction ``tx_hash`` (mined on ``chain``), fetched from the chain as raw bytes and
    sent again to every EVM chain's node: what each node answered."""
    rpc = ctx.chains[chain]["rpc_url"]
    raw = (await ctx.http.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getRawTransactionByHash",
                                          "params": [tx_hash]})).json()["result"]
    answers = {}
    for name in _evm_chains(ctx):
        resp = await ctx.http.post(ctx.chains[name]["rpc_url"], json={
            "jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]})
        body = resp.json()
        answers[name] = {"error": (body.get("error") or {}).get("message"), "result": body.get("result")}
    return {"raw_found": raw is not None, "answers": answers}
