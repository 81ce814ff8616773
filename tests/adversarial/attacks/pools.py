"""The liquidity pools (issue 16) under attack: the attacker, with its own funded accounts and no key of the owner's,
the validators' or the relayer's, tries to take USDC out of rollup_a's pool or mint it. It calls ``handle`` with a
FILL paying itself (only the Mailbox may), dispatches that FILL through l1's Mailbox as a message to the pool (only the
enrolled remote pool may send one), mints USDC and makes itself a minter, burns the pool's tokens, enrols itself as
l1's pool, takes the pool's ownership, releases a payout that does not exist, settles an epoch still open and completes
a settlement nobody sent. Raw transactions with fixed gas: only the chain decides."""

from __future__ import annotations

from typing import Any

from eth_abi import encode as abi_encode

from adapters.evm import abi
from adapters.message import address_to_bytes32
from tests.adversarial.attacker import AttackerContext
from tests.adversarial.attacks.stuck_funds import _Evm

USDC = 10**6


def _call(signature: str, types: list[str], args: list[Any]) -> bytes:
    return abi.selector(signature) + abi_encode(types, args)


async def _view(evm: _Evm, to: str, signature: str, types: list[str] | None = None,
                args: list[Any] | None = None) -> int:
    data = _call(signature, types or [], args or [])
    return int(await evm.rpc("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"]), 16)


async def drain_or_mint(ctx: AttackerContext) -> dict[str, Any]:
    l1, rollup_a = _Evm(ctx, "l1"), _Evm(ctx, "rollup_a")
    chains = ctx.chains
    pool, usdc = chains["rollup_a"]["tokens"]["USDC"]["pool"], chains["rollup_a"]["tokens"]["USDC"]["address"]
    l1_domain, a_domain = int(ctx.settings.chains["l1"].domain), int(ctx.settings.chains["rollup_a"].domain)
    me = rollup_a.account.address
    fill = abi_encode(["uint8", "uint64", "bytes32", "uint256"],
                      [1, await _view(rollup_a, pool, "currentEpoch()"), address_to_bytes32(me), 5_000 * USDC])
    l1_pool32 = address_to_bytes32(chains["l1"]["tokens"]["USDC"]["pool"])
    epoch = await _view(rollup_a, pool, "currentEpoch()")
    cases = {
        "call handle with a FILL paying itself": await rollup_a.send(pool, _call(
            "handle(uint32,bytes32,bytes)", ["uint32", "bytes32", "bytes"], [l1_domain, l1_pool32, fill])),
        "mint USDC to itself": await rollup_a.send(usdc, _call("mint(address,uint256)", ["address", "uint256"],
                                                               [me, 10**6 * USDC])),
        "make itself a minter": await rollup_a.send(usdc, _call("setMinter(address,bool)", ["address", "bool"],
                                                                [me, True])),
        "burn the pool's USDC": await rollup_a.send(usdc, _call("burn(address,uint256)", ["address", "uint256"],
                                                                [pool, 1_000 * USDC])),
        "enrol itself as l1's pool": await rollup_a.send(pool, _call(
            "enrollRemotePool(uint32,bytes32)", ["uint32", "bytes32"], [l1_domain, address_to_bytes32(me)])),
        "take the pool's ownership": await rollup_a.send(pool, _call("transferOwnership(address)", ["address"], [me])),
        "release a payout that does not exist": await rollup_a.send(pool, _call("releaseDeferred(uint256)",
                                                                                ["uint256"], [10**6])),
        "settle the epoch still open": await rollup_a.send(pool, _call("settle(uint32,uint64)", ["uint32", "uint64"],
                                                                       [l1_domain, epoch + 1])),
        "complete a settlement nobody sent": await rollup_a.send(pool, _call(
            "completeSettlement(uint32,uint64)", ["uint32", "uint64"], [l1_domain, max(0, epoch - 1)])),
    }
    mailbox = chains["l1"]["contracts"]["mailbox"]
    sent = await l1.send(mailbox, abi.DISPATCH + abi_encode(["uint32", "bytes32", "bytes"],
                                                           [a_domain, address_to_bytes32(pool), fill]))
    receipt = await l1.rpc("eth_getTransactionReceipt", [sent["tx"]])
    dispatched = next(lg["topics"][1] for lg in receipt["logs"] if lg["topics"][0] == abi.DISPATCH_TOPIC)
    return {"cases": {k: {"status": v["status"], "reason": v["reason"]} for k, v in cases.items()},
            "fill_message": dispatched, "attacker": me.lower(),
            "attacker_usdc": await _view(rollup_a, usdc, "balanceOf(address)", ["address"], [me])}
