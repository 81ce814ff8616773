"""Attacks on the durable operator lanes and the queue (issue 14: router/lanes.py, router/queue.py,
adapters/evm/writeahead.py): get a forbidden call signed later by queueing it, queue without limits or in signer
mode, replay an operator's signed lane transaction (read back from the public chain) on its own chain and on the
others, hoping it pays a second time, and spend the operators' standing approval of the token bridge.

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


async def spend_standing_approvals(ctx: AttackerContext, operators: list[str]) -> dict[str, Any]:
    """The operators' standing approval of the token bridge on l1 (the lanes set it for cross-chain transfers; it is
    public): try to spend it, with ``transferFrom`` straight from the token, and through the bridge's
    ``transferRemote`` (which pulls from its caller), from the attacker's own account. What each attempt got."""
    from adapters.evm import abi
    from adapters.message import address_to_bytes32

    me, key = ctx.addresses["l1"], ctx.keys["evm"]
    chain = ctx.chains["l1"]
    token, bridge = chain["tokens"]["TST"]["address"], chain["contracts"]["token_bridge"]
    destination = ctx.settings.chains["rollup_a"].domain
    l1 = ctx.adapters()["l1"]
    out: dict[str, Any] = {"allowances": {}, "attempts": {}}
    for op in operators:
        raw = await _rpc_call(ctx, chain["rpc_url"], token, "0x" + abi.encode_allowance(op, bridge).hex())
        out["allowances"][op] = int(raw, 16)
        pull = "0x" + abi.selector("transferFrom(address,address,uint256)").hex() + _word(op) + _word(me) + _word(1)
        out["attempts"][f"transferFrom {op}"] = await _attempt(l1, key, token, bytes.fromhex(pull[2:]))
    remote = abi.encode_transfer_remote(token, destination, address_to_bytes32(bytes.fromhex(me[2:])), 1)
    out["attempts"]["transferRemote from the attacker"] = await _attempt(l1, key, bridge, remote)
    return out


async def _rpc_call(ctx: AttackerContext, url: str, to: str, data: str) -> str:
    resp = await ctx.http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                          "params": [{"to": to, "data": data}, "latest"]})
    return str(resp.json()["result"])


async def _attempt(adapter: Any, key: str, to: str, data: bytes) -> dict[str, Any]:
    try:
        tx = await adapter.call_contract(key, to.lower(), data)
    except Exception as exc:  # noqa: BLE001 - what the node said is the result
        return {"sent": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"sent": True, "tx": str(tx)}


async def non_evm_lane_abuse(ctx: AttackerContext) -> dict[str, Any]:
    """Make the operators' Solana and Cosmos accounts sign what they may not: a same-chain transfer there (their lanes
    sign cross-chain transfers only), more than a day's budget across, and a cross-chain transfer from them in a token
    they do not hold. What the API answered each."""
    me = ctx.addresses["l1"]
    tries = {
        "SOLX same-chain on solana": {"intents": [{"amount": "1", "token": "SOLX", "recipient": me,
                                                   "chains": ["solana"]}]},
        "TST same-chain on cosmos": {"intents": [{"amount": "1", "token": "TST", "recipient": me,
                                                  "chains": ["cosmos"]}]},
        "20,000 SOLX from solana": {"intents": [{"kind": "xchain", "from_chain": "solana", "chains": ["l1"],
                                                 "amount": "20000", "token": "SOLX", "recipient": me}]},
        "20,000 TST from cosmos": {"intents": [{"kind": "xchain", "from_chain": "cosmos", "chains": ["l1"],
                                                "amount": "20000", "token": "TST", "recipient": me}]},
    }
    return {"answers": {what: _answer(await _post(ctx, body)) for what, body in tries.items()}}


async def replay_solana_lane_tx(ctx: AttackerContext, signature: str) -> dict[str, Any]:
    """The operator's Solana lane transaction ``signature``, read back from the chain and sent again, with preflight
    and without: what the node answered each time, and the slot it was at just after."""
    import base64

    rpc = ctx.chains["solana"]["rpc_url"]

    async def call(method: str, params: list[Any]) -> dict[str, Any]:
        resp = await ctx.http.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        return dict(resp.json())

    found = (await call("getTransaction", [signature, {"encoding": "base64", "commitment": "confirmed",
                                                       "maxSupportedTransactionVersion": 0}]))["result"]
    raw = found["transaction"][0] if found else None
    answers = {}
    if raw is not None:
        assert base64.b64decode(raw)  # the signed bytes, as anyone can read them
        for label, skip in (("with preflight", False), ("without preflight", True)):
            body = await call("sendTransaction", [raw, {"encoding": "base64", "skipPreflight": skip}])
            answers[label] = {"error": (body.get("error") or {}).get("message"), "result": body.get("result")}
    return {"raw_found": raw is not None, "answers": answers,
            "slot": (await call("getSlot", [{"commitment": "confirmed"}]))["result"]}
