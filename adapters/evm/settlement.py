"""A rollup's finalized height from the output roots its proposer posts on the L1 (``chains.<rollup>.settlement``).

The relayer's side of the L1 rule (the validator's proof is ``light_clients.ethereum.rollup``): a rollup height is
final once an output root covering it sits in the L1's finalized block (by the L1's own finality rule) and, under the
``optimistic`` rule, that block's timestamp is at least ``challenge_window_s`` past the output's. Each poll reads the
oracle at that L1 block with ``eth_call`` (``nextOutputIndex``, then ``getL2Output`` in a binary search for the newest
output old enough), and the rollup height it returns is that output's ``l2BlockNumber``.

Before a height counts, the output root is recomputed from the rollup's own block (``keccak256(0^32 | stateRoot |
storage root of the message passer | blockHash)``, ``light_clients.ethereum.output_roots.output_root_v0``). An output
root that does not match the rollup's blocks is a ``FinalityViolation``: the indexer halts the origin as for a reorg
deeper than its finality, and nothing more is indexed, signed or delivered from it (operator action needed). Each
output is recomputed once (by its L2 block number and root).

``lag`` reads what the proposer has posted at the L1's latest block: how many rollup blocks the newest output is
behind the rollup's tip (``relayer_rollup_output_lag_blocks``) and how old it is
(``relayer_rollup_output_age_seconds``); past ``max_output_lag_blocks`` the proposer is lagging
(``proposer_lagging`` logged once, ``proposer_caught_up`` when it is back).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from eth_abi import decode, encode
from eth_utils import keccak

from adapters.base import FinalityViolation, Height, RpcError
from adapters.evm import abi
from config.settings import RollupSettlement

log = structlog.get_logger("adapters.evm.settlement")

RpcCall = Callable[[str, list[Any]], Awaitable[Any]]

NEXT_OUTPUT_INDEX = abi.selector("nextOutputIndex()")
GET_L2_OUTPUT = abi.selector("getL2Output(uint256)")
PROPOSE_L2_OUTPUT = abi.selector("proposeL2Output(bytes32,uint256)")
OUTPUT_VERSION_V0 = bytes(32)


def output_root_v0(state_root: bytes, message_passer_storage_root: bytes, block_hash: bytes) -> bytes:
    """``keccak256(version 0 | stateRoot | messagePasserStorageRoot | blockHash)``, every part 32 bytes: the one
    definition, used by the proposer, the relayer's check here and the validator's proof (light_clients)."""
    parts = (state_root, message_passer_storage_root, block_hash)
    if any(len(part) != 32 for part in parts):
        raise ValueError("output root parts must be 32 bytes each")
    return keccak(OUTPUT_VERSION_V0 + b"".join(parts))


@dataclass(frozen=True, slots=True)
class PostedOutput:
    """One output as the oracle holds it (read with eth_call: the relayer's view, not a proof)."""

    index: int
    output_root: bytes
    timestamp: int
    l2_block_number: int


@dataclass(frozen=True, slots=True)
class L1Block:
    number: int
    timestamp: int


def encode_propose(output_root: bytes, l2_block_number: int) -> bytes:
    """Calldata of ``OutputOracle.proposeL2Output(outputRoot, l2BlockNumber)`` (the devnet proposer's call)."""
    return PROPOSE_L2_OUTPUT + encode(["bytes32", "uint256"], [output_root, l2_block_number])


async def rollup_output_root(rollup_rpc: RpcCall, message_passer: str, l2_block_number: int) -> bytes:
    """The output root of the rollup's block ``l2_block_number`` as its node serves it (what a proposer posts)."""
    tag = hex(l2_block_number)
    block = await rollup_rpc("eth_getBlockByNumber", [tag, False])
    if block is None:
        raise RpcError(f"the rollup node has no block {l2_block_number}", reason="missing block")
    proof = await rollup_rpc("eth_getProof", [message_passer, [], tag])
    return output_root_v0(_bytes32(block["stateRoot"]), _bytes32(proof["storageHash"]), _bytes32(block["hash"]))


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise RpcError(f"expected 32 bytes, got {value!r}", reason="malformed answer")
    return raw


class RollupOutputFinality:
    """The finalized height of rollup ``name`` by ``settlement``; reads the L1 through ``l1_rpc`` (its finalized
    height by its own rule through ``l1_finalized``) and the rollup through ``rollup_rpc``."""

    def __init__(self, name: str, settlement: RollupSettlement, *, l1_rpc: RpcCall,
                 l1_finalized: Callable[[], Awaitable[Height]], rollup_rpc: RpcCall) -> None:
        self.name = name
        self.settlement = settlement
        self._l1_rpc = l1_rpc
        self._l1_finalized = l1_finalized
        self._rollup_rpc = rollup_rpc
        self._checked: set[tuple[int, bytes]] = set()  # (l2 block number, output root) recomputed and matching
        self._violation: FinalityViolation | None = None  # a mismatch found: raised again, logged once
        self._lagging = False

    async def finalized_height(self) -> Height:
        """The highest rollup height an output root final on the L1 covers (0 before the first)."""
        if self._violation is not None:
            raise self._violation
        l1 = await self._l1_block(hex(int(await self._l1_finalized())))
        newest = await self._newest_final(l1)
        if newest is None:
            return Height(0)
        await self._check_root(newest)
        return Height(newest.l2_block_number)

    async def lag(self, rollup_latest: int, now: float) -> dict[str, float]:
        """The proposer's lag behind the rollup at the L1's latest block: ``output_lag_blocks`` and
        ``output_age_s`` (of the newest output; rollup blocks since genesis and -1 before the first)."""
        count = await self._count("latest")
        newest = await self._output(count - 1, "latest") if count else None
        behind = rollup_latest - (newest.l2_block_number if newest else 0)
        lagging = behind > self.settlement.max_output_lag_blocks
        if lagging != self._lagging:
            self._lagging = lagging
            event = log.warning if lagging else log.info
            event("proposer_lagging" if lagging else "proposer_caught_up", chain=self.name, lag_blocks=behind,
                  newest_output_block=newest.l2_block_number if newest else None,
                  max_output_lag_blocks=self.settlement.max_output_lag_blocks)
        return {"output_lag_blocks": float(behind),
                "output_age_s": round(now - newest.timestamp, 3) if newest else -1.0}

    async def _l1_block(self, tag: str) -> L1Block:
        block = await self._l1_rpc("eth_getBlockByNumber", [tag, False])
        if block is None:
            raise RpcError(f"the L1 ({self.settlement.l1}) has no block {tag}", chain=self.name, reason="missing block")
        return L1Block(int(block["number"], 16), int(block["timestamp"], 16))

    async def _newest_final(self, l1: L1Block) -> PostedOutput | None:
        """The newest output in L1 block ``l1`` that counts under the rule (binary search on the optimistic one:
        timestamps only grow with the index)."""
        tag = hex(l1.number)
        count = await self._count(tag)
        if count == 0:
            return None
        if self.settlement.rule == "posted":
            return await self._output(count - 1, tag)
        window = self.settlement.challenge_window_s
        low, high, found = 0, count - 1, None
        while low <= high:
            middle = (low + high) // 2
            output = await self._output(middle, tag)
            if output.timestamp + window <= l1.timestamp:
                found, low = output, middle + 1
            else:
                high = middle - 1
        return found

    async def _count(self, tag: str) -> int:
        (count,) = decode(["uint256"], await self._oracle_call(NEXT_OUTPUT_INDEX, tag))
        return int(count)

    async def _output(self, index: int, tag: str) -> PostedOutput:
        root, timestamp, number = decode(["bytes32", "uint128", "uint128"],
                                         await self._oracle_call(GET_L2_OUTPUT + encode(["uint256"], [index]), tag))
        return PostedOutput(index, bytes(root), int(timestamp), int(number))

    async def _oracle_call(self, data: bytes, tag: str) -> bytes:
        result = await self._l1_rpc("eth_call", [{"to": self.settlement.output_oracle, "data": "0x" + data.hex()}, tag])
        answer = bytes.fromhex(str(result).removeprefix("0x"))
        if not answer:
            raise RpcError(f"no OutputOracle answers at {self.settlement.output_oracle} on {self.settlement.l1} at "
                           f"block {tag} (chains.{self.name}.settlement.output_oracle: not deployed there yet, or "
                           "another contract)", chain=self.name, reason="no output oracle")
        return answer

    async def _check_root(self, output: PostedOutput) -> None:
        key = (output.l2_block_number, output.output_root)
        if key in self._checked:
            return
        computed = await rollup_output_root(self._rollup_rpc, self.settlement.message_passer, output.l2_block_number)
        if computed != output.output_root:
            detail = (f"output {output.index} on {self.settlement.l1} ({self.settlement.output_oracle}) posts root "
                      f"0x{output.output_root.hex()} for rollup block {output.l2_block_number}, whose state the "
                      f"rollup serves as 0x{computed.hex()}: the proposer posted an output root that does not match "
                      "the rollup's blocks")
            log.error("output_root_mismatch", chain=self.name, index=output.index, l2_block=output.l2_block_number,
                      posted="0x" + output.output_root.hex(), computed="0x" + computed.hex())
            self._violation = FinalityViolation(detail, chain=self.name, reason="output root mismatch",
                                                height=output.l2_block_number)
            raise self._violation
        self._checked.add(key)
