"""The rollups' output oracles on the L1 (issue 16): only the proposer posts output roots, only the challenger deletes
them. The attacker, with its own funded account on l1 and neither key, posts a root of its own for rollup_a (far ahead
of the rollup, and just past the newest output) and deletes the outputs from the first and from the newest one on.
Raw transactions with fixed gas: only the chain decides."""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from adapters.evm import abi
from adapters.evm.settlement import encode_propose
from tests.adversarial.attacker import AttackerContext
from tests.adversarial.attacks.stuck_funds import _Evm

ATTACKER_ROOT = b"\xa7" * 32


async def _view(l1: _Evm, oracle: str, signature: str, args: tuple[Any, ...] = (), types: tuple[str, ...] = ()) -> Any:
    data = abi.selector(signature) + (abi_encode(types, args) if types else b"")
    return await l1.rpc("eth_call", [{"to": oracle, "data": "0x" + data.hex()}, "latest"])


async def _count(l1: _Evm, oracle: str) -> int:
    return int(await _view(l1, oracle, "nextOutputIndex()"), 16)


async def _roots(l1: _Evm, oracle: str) -> list[str]:
    """Every output root the oracle holds, 0x-hex."""
    roots = []
    for index in range(await _count(l1, oracle)):
        raw = await _view(l1, oracle, "getL2Output(uint256)", (index,), ("uint256",))
        root, _ts, _number = abi_decode(["bytes32", "uint128", "uint128"], bytes.fromhex(raw[2:]))
        roots.append("0x" + bytes(root).hex())
    return roots


async def post_or_delete_outputs(ctx: AttackerContext) -> dict[str, Any]:
    l1 = _Evm(ctx, "l1")
    oracle = ctx.chains["rollup_a"]["settlement"]["output_oracle"]
    latest_block = int(await _view(l1, oracle, "latestBlockNumber()"), 16)
    before = await _count(l1, oracle)
    delete = abi.selector("deleteL2Outputs(uint256)")
    far, next_one = encode_propose(ATTACKER_ROOT, latest_block + 10**6), encode_propose(ATTACKER_ROOT, latest_block + 1)
    cases = {
        "post a root far ahead of the rollup": await l1.send(oracle, far),
        "post a root just past the newest output": await l1.send(oracle, next_one),
        "delete every output": await l1.send(oracle, delete + abi_encode(["uint256"], [0])),
        "delete the newest output": await l1.send(oracle, delete + abi_encode(["uint256"], [max(0, before - 1)])),
    }
    return {"cases": {k: {"status": v["status"], "reason": v["reason"]} for k, v in cases.items()},
            "count_before": before, "count_after": await _count(l1, oracle), "roots": await _roots(l1, oracle),
            "attacker_root": "0x" + ATTACKER_ROOT.hex()}
