"""Stuck funds and unbacked tokens (issue 12, finding 7): the attacker dispatches token transfers that the
destination could never deliver, hoping the origin locks or burns them anyway (funds stuck for good, the
relayers retrying forever) or that a destination ends up with unbacked wrapped tokens.

Every transfer is a raw transaction the attacker signs itself with a fixed gas limit, so no client-side check
(``eth_estimateGas``, the adapter's route pre-check) stands between it and the chain: what is refused here is
refused by the TokenBridge on chain, in a mined transaction.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import to_checksum_address

from adapters.evm import abi
from adapters.evm.contracts import ARTIFACT_NAMES, load_artifact
from adapters.message import address_to_bytes32
from tests.adversarial.attacker import AttackerContext

GAS = 400_000
U64_MAX = 2**64 - 1
TST = 10**18


class _Evm:
    """The attacker's own EVM account on one chain, talking raw JSON-RPC."""

    def __init__(self, ctx: AttackerContext, chain: str) -> None:
        self.ctx, self.chain = ctx, chain
        self.url = ctx.settings.chains[chain].rpc_url
        self.account = Account.from_key(ctx.keys["evm"])
        self.errors = abi.ErrorTable.from_abi(load_artifact(n).abi for n in ARTIFACT_NAMES)

    async def rpc(self, method: str, params: list[Any]) -> Any:
        answer = (await self.ctx.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                           "params": params})).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def send(self, to: str | None, data: bytes, gas: int = GAS, value: int = 0) -> dict[str, Any]:
        """Sign and send with a fixed gas limit (no estimate), wait until mined; the receipt plus the decoded
        revert reason when it reverted."""
        base = int((await self.rpc("eth_getBlockByNumber", ["latest", False]))["baseFeePerGas"], 16)
        tx: dict[str, Any] = {
            "chainId": int(await self.rpc("eth_chainId", []), 16),
            "nonce": int(await self.rpc("eth_getTransactionCount", [self.account.address, "pending"]), 16),
            "gas": gas, "maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9, "value": value,
            "data": data, "type": 2,
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        signed = self.account.sign_transaction(tx)
        tx_hash = await self.rpc("eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
        deadline = time.monotonic() + 60
        while (receipt := await self.rpc("eth_getTransactionReceipt", [tx_hash])) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{tx_hash} not mined within 60 s")
            await asyncio.sleep(0.1)
        out = {"tx": tx_hash, "status": int(receipt["status"], 16), "block": int(receipt["blockNumber"], 16),
               "contract": receipt.get("contractAddress"), "reason": ""}
        if out["status"] == 0:
            out["reason"] = await self.replay(to, data, out["block"])
        return out

    async def replay(self, to: str | None, data: bytes, block: int) -> str:
        """The revert reason: the same call replayed on the state before its block."""
        call = {"from": self.account.address, "to": to, "data": "0x" + data.hex(), "gas": hex(GAS)}
        answer = (await self.ctx.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                                                           "params": [call, hex(block - 1)]})).json()
        err = answer.get("error") or {}
        raw = err.get("data")
        if isinstance(raw, dict):
            raw = raw.get("data")
        return self.errors.decode(bytes.fromhex(raw[2:])) if isinstance(raw, str) and raw.startswith("0x") else str(err)

    def transfer_remote(self, token: str, destination: int, recipient: bytes, amount: int) -> bytes:
        return abi.encode_transfer_remote(token, destination, recipient, amount)


def _domain(ctx: AttackerContext, chain: str) -> int:
    return int(ctx.settings.chains[chain].domain)


async def dispatch_undeliverable(ctx: AttackerContext) -> dict[str, Any]:
    """Transfers no destination could deliver: finer than its decimals, above what it can hold, a token it does
    not know, a token nobody bridges, a domain without a bridge; and an attempt to enrol a route itself first."""
    l1 = _Evm(ctx, "l1")
    rollup_a = _Evm(ctx, "rollup_a")
    chains = ctx.chains
    bridge = chains["l1"]["contracts"]["token_bridge"]
    tst = chains["l1"]["tokens"]["TST"]["address"]
    solx = chains["l1"]["tokens"]["SOLX"]["address"]
    usdc = chains["l1"]["tokens"]["USDC"]["address"]
    cosmos, solana, a = _domain(ctx, "cosmos"), _domain(ctx, "solana"), _domain(ctx, "rollup_a")
    me32 = address_to_bytes32(l1.account.address)
    cosmos_me = ctx.adapters()["cosmos"].account_bytes32(ctx.addresses["cosmos"])
    solana_me = ctx.adapters()["solana"].account_bytes32(ctx.addresses["solana"])
    approve = await l1.send(tst, abi.encode_approve(bridge, 1_000 * TST))  # so no refusal is a missing allowance
    own_token = load_artifact("TestToken")
    deployed = await l1.send(None, bytes.fromhex(own_token.bytecode[2:]) + abi_encode(
        ("string", "string", "uint8", "uint256"), ("Attacker Token", "ATK", 18, 10**24)), gas=2_000_000)
    mine = deployed["contract"]
    await l1.send(mine, abi.encode_approve(bridge, 10**24))
    enroll = abi.selector("enrollRoute(uint32,address,uint128,uint128)") + abi_encode(
        ("uint32", "address", "uint128", "uint128"), (cosmos, tst, 1, 2**128 - 1))
    cases: list[tuple[str, _Evm, str, bytes]] = [
        ("enrol a route of its own (TST to cosmos, scale 1)", l1, bridge, enroll),
        ("1.0000000001 TST to cosmos (uxtst has 6 decimals)", l1, bridge,
         l1.transfer_remote(tst, cosmos, cosmos_me, TST + 10**8)),
        ("1 wei of TST to cosmos", l1, bridge, l1.transfer_remote(tst, cosmos, cosmos_me, 1)),
        ("1 TST + 1 wei to solana (9 decimals)", l1, bridge, l1.transfer_remote(tst, solana, solana_me, TST + 1)),
        ("u64 max + 1 SPL units of TST to solana", l1, bridge,
         l1.transfer_remote(tst, solana, solana_me, (U64_MAX + 1) * 10**9)),
        ("SOLX to cosmos (cosmos does not know SOLX)", l1, bridge, l1.transfer_remote(solx, cosmos, cosmos_me, 10**9)),
        ("USDC (not bridged) to rollup_a", l1, bridge, l1.transfer_remote(usdc, a, me32, 10**6)),
        ("its own token to rollup_a (nobody wraps it)", l1, bridge, l1.transfer_remote(mine, a, me32, TST)),
        ("TST to a domain without a bridge", l1, bridge, l1.transfer_remote(tst, 4242, me32, TST)),
        ("wrapped TST from rollup_a to solana, finer than 9 decimals", rollup_a,
         chains["rollup_a"]["contracts"]["token_bridge"],
         rollup_a.transfer_remote(chains["rollup_a"]["tokens"]["TST"]["address"], solana, solana_me, TST + 1)),
    ]
    results = []
    for name, evm, to, data in cases:
        outcome = await evm.send(to, data)
        results.append({"case": name, "chain": evm.chain, **outcome})
    # the same finer-than-uxtst transfer once more, after its own enrolment attempt
    results.append({"case": "1.0000000001 TST to cosmos again", "chain": "l1",
                    **await l1.send(bridge, l1.transfer_remote(tst, cosmos, cosmos_me, TST + 10**8))})
    return {"approve_status": approve["status"], "own_token": mine, "cases": results}
