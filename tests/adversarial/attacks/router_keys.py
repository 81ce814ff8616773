"""Routing API requests without the API key a daemon requires: no key, a wrong key, a key-shaped guess, a replayed
request with the header stripped. Each answer is recorded; the chains are read by the test."""

from __future__ import annotations

from typing import Any

import httpx

from tests.adversarial.attacker import AttackerContext

TRANSFER = "a9059cbb"


async def without_the_key(ctx: AttackerContext, operators: list[str]) -> dict[str, Any]:
    me = ctx.addresses["l1"]
    tst = ctx.chains["l1"]["tokens"]["TST"]["address"]
    steal = "0x" + TRANSFER + me.lower().removeprefix("0x").rjust(64, "0") + "f" * 64
    bodies = {
        "transfer to the attacker": {"intents": [{"amount": "1", "token": "TST", "recipient": me, "chains": ["l1"]}]},
        "call transfer-all": {"intents": [{"kind": "call", "amount": "0", "recipient": tst, "calldata": steal,
                                           "chains": ["l1"]}]},
        "quote": None,
    }
    answers: list[dict[str, Any]] = []
    for header in (None, "", "wrong-key", "0" * 64):
        headers = {} if header is None else {"X-API-Key": header}
        for what, body in bodies.items():
            if body is None:
                resp = await ctx.http.post(f"{ctx.api_url}/v1/quote", json={"amount": "1"}, headers=headers)
            else:
                resp = await ctx.http.post(f"{ctx.api_url}/v1/intents", json=body, headers=headers)
            answers.append({"what": what, "header": header, "status": resp.status_code})
    async with httpx.AsyncClient(timeout=30) as http:  # the public reads stay open
        chains = (await http.get(f"{ctx.api_url}/v1/chains")).status_code
    return {"answers": answers, "chains": chains, "operators": operators}
