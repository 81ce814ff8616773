"""Rate limits in the token bridge (issue 15): the operator limited TST from l1 into rollup_a (inbound) and out of l1
towards rollup_a (outbound). The attacker, with its own TST on l1 and no key of the owner's, tries to lift or
replace the limits, to push more out of l1 than the bucket holds in one burst of transactions, to pay out its queued
transfer on rollup_a before the bucket has room, and to release a queue entry that does not exist. Raw transactions
with fixed gas: only the chain decides."""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode

from adapters.evm import abi
from adapters.message import address_to_bytes32
from tests.adversarial.attacker import AttackerContext
from tests.adversarial.attacks.stuck_funds import _Evm

TST = 10**18


def _set_limit(domain: int, token: str, inbound: bool) -> bytes:
    return abi.selector("setRateLimit(uint32,address,bool,uint112,uint128)") + abi_encode(
        ("uint32", "address", "bool", "uint112", "uint128"), (domain, token, inbound, 0, 0))


def _release(queue_id: int) -> bytes:
    return abi.selector("releaseQueued(uint256)") + abi_encode(("uint256",), (queue_id,))


async def _queued_count(evm: _Evm, bridge: str) -> int:
    return int(await evm.rpc("eth_call", [{"to": bridge, "data": "0x" + abi.selector("queuedCount()").hex()},
                                          "latest"]), 16)


async def lift_or_outrun_the_limits(ctx: AttackerContext, burst: int, amount: int) -> dict[str, Any]:
    l1, rollup_a = _Evm(ctx, "l1"), _Evm(ctx, "rollup_a")
    chains = ctx.chains
    l1_bridge, a_bridge = chains["l1"]["contracts"]["token_bridge"], chains["rollup_a"]["contracts"]["token_bridge"]
    tst, wrapped = chains["l1"]["tokens"]["TST"]["address"], chains["rollup_a"]["tokens"]["TST"]["address"]
    l1_domain, a_domain = int(ctx.settings.chains["l1"].domain), int(ctx.settings.chains["rollup_a"].domain)
    cases = {
        "lift the inbound limit on rollup_a": await rollup_a.send(a_bridge, _set_limit(l1_domain, wrapped, True)),
        "lift the outbound limit on l1": await l1.send(l1_bridge, _set_limit(a_domain, tst, False)),
        "release a queue entry that does not exist": await rollup_a.send(a_bridge, _release(10**6)),
    }
    await l1.send(tst, abi.encode_approve(l1_bridge, burst * amount))
    me = address_to_bytes32(l1.account.address)
    sent = [await l1.send(l1_bridge, l1.transfer_remote(tst, a_domain, me, amount)) for _ in range(burst)]
    return {"cases": cases, "burst": [{"status": s["status"], "reason": s["reason"]} for s in sent],
            "queued_count": await _queued_count(rollup_a, a_bridge)}


async def release_early(ctx: AttackerContext, queue_id: int) -> dict[str, Any]:
    rollup_a = _Evm(ctx, "rollup_a")
    return await rollup_a.send(ctx.chains["rollup_a"]["contracts"]["token_bridge"], _release(queue_id))
