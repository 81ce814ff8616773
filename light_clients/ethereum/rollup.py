"""The validator's proof for a rollup that settles on an L1 (``chains.<rollup>.settlement``): it signs a dispatch only
when the whole chain from a finalized L1 header down to the Dispatch log is proven.

``RollupInclusionVerifier.verify_dispatches`` proves, for the highest claimed height ``h``:

1. the L1 header: the L1's finalized block as its own light client verified it (``EvmInclusionVerifier`` of the L1:
   the sync-committee client with ``beacon_url``, else the header chain from its anchor, agreed by its
   ``verify_rpc_urls``);
2. the output: ``outputs[i]`` of the oracle, by an ``eth_getProof`` storage proof under that header's state root
   (``light_clients.ethereum.output_roots.verify_posted_output``). ``i`` comes from the L1 node
   (``getL2OutputIndexAfter(h)``), a hint only: the proven output must cover ``h``, and under the ``optimistic`` rule
   its L1 timestamp plus ``challenge_window_s`` must not be after the finalized L1 header's (``InclusionPending``
   until then: nothing signed, no refusal counted);
3. the rollup block: its header and the message passer's storage root (``eth_getProof`` on the rollup) must hash to
   the posted output root (``verify_output_preimage``); a mismatch is refused with reason ``output root mismatch``
   (the relayer's indexer halts the origin on the same finding: adapters.evm.settlement);
4. the headers from ``min(claimed heights)`` up to that block, linked by parent hashes (``link_down``);
5. each claimed block's receipts: they must rebuild its ``receiptsRoot`` and hold a successful Dispatch of the
   claimed message by the mailbox (``EvmInclusionVerifier.dispatched_in_block``).

Every refusal is an ``InclusionRefused`` whose reason names the link that failed. An L1 reorg under a posted root is
covered by step 1: only an output in the L1's finalized block counts, and a root the L1 lost is no longer there.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from eth_abi import decode, encode

from adapters.base import DispatchClaim, Height, InclusionPending, InclusionRefused
from adapters.evm import abi
from config.settings import RollupSettlement
from light_clients.ethereum.execution import BlockHeader
from light_clients.ethereum.inclusion import EvmInclusionVerifier
from light_clients.ethereum.output_roots import (
    OutputRootRefused,
    PostedOutput,
    count_slot,
    link_down,
    output_slots,
    verify_output_preimage,
    verify_posted_output,
)

log = structlog.get_logger("light_clients.ethereum.rollup")
OUTPUT_INDEX_AFTER = abi.selector("getL2OutputIndexAfter(uint256)")


class RollupInclusionVerifier:
    """Proves dispatch claims of rollup ``name`` from its L1: ``rollup`` reads the rollup's endpoints (its own
    header chain is never trusted on its own), ``l1`` is the L1's verifier, ``l1_finality`` the L1's rule (used only
    when ``l1`` has no beacon source)."""

    def __init__(self, name: str, rollup: EvmInclusionVerifier, l1: EvmInclusionVerifier, l1_finality: str | int,
                 settlement: RollupSettlement) -> None:
        self.name = name
        self.rollup = rollup
        self.l1 = l1
        self.l1_finality = l1_finality
        self.settlement = settlement
        self._oracle = bytes.fromhex(settlement.output_oracle.removeprefix("0x"))
        self._passer = bytes.fromhex(settlement.message_passer.removeprefix("0x"))

    async def verify_dispatches(self, claims: Sequence[DispatchClaim], finalized: Height) -> None:
        if not claims:
            return
        heights = sorted({int(c.height) for c in claims})
        try:
            l1_header = await self.l1.verified_finalized_header(await self._l1_finalized())
            output = await self._final_output(l1_header, heights[-1])
            top = await self._proven_block(output)
            below = await self.rollup.headers(heights[0], top.number - 1) if heights[0] < top.number else []
            link_down([*below, top], top.hash())
        except OutputRootRefused as exc:
            self._log_refused(exc)
            raise InclusionRefused(str(exc), chain=self.name, reason=exc.reason) from exc
        by_height = {h.number: h for h in [*below, top]}
        for h in heights:
            proven = await self.rollup.dispatched_in_block(by_height[h])
            for claim in (c for c in claims if int(c.height) == h):
                if claim.raw not in proven:
                    log.error("dispatch_not_proven", chain=self.name, height=h, tx=claim.tx_hash)
                    raise InclusionRefused(f"no successful Dispatch of the claimed message (tx {claim.tx_hash}) in "
                                           f"rollup block {h}, proven from output {output.index} on "
                                           f"{self.settlement.l1}", chain=self.name, reason="dispatch not in block")

    async def _l1_finalized(self) -> Height:
        if self.l1.beacon is not None:
            return Height(0)  # the L1's sync-committee light client decides
        return await self.l1.node_finalized_height(self.l1_finality)

    async def _final_output(self, l1_header: BlockHeader, height: int) -> PostedOutput:
        """The output covering ``height`` proven under ``l1_header``, final under the rule."""
        count = await self._proven_count(l1_header)
        if count == 0:
            raise InclusionPending(f"no output root posted in the finalized L1 block {l1_header.number}",
                                   chain=self.name, reason="no output root yet")
        index = await self._index_hint(l1_header.number, height)
        if index is None or index >= count:
            raise InclusionPending(f"no output root in the finalized L1 block {l1_header.number} covers rollup block "
                                   f"{height}", chain=self.name, reason="no output root yet")
        output = await self._proven_output(l1_header, index)
        if output.l2_block_number < height:
            raise InclusionRefused(f"the L1 node named output {index} (of block {output.l2_block_number}) for rollup "
                                   f"block {height}", chain=self.name, reason="output does not cover")
        ready_at = output.timestamp + self.settlement.challenge_window_s
        if self.settlement.rule == "optimistic" and ready_at > l1_header.timestamp:
            raise InclusionPending(f"output {index}'s challenge window is open until {ready_at}; the finalized L1 "
                                   f"block {l1_header.number} is at {l1_header.timestamp}", chain=self.name,
                                   reason="challenge window open")
        return output

    async def _proven_count(self, l1_header: BlockHeader) -> int:
        proof = await self.l1.get_proof(self.settlement.output_oracle, [count_slot(), *output_slots(0)],
                                        l1_header.number)
        try:
            return verify_posted_output(l1_header.state_root, self._oracle, 0, proof).count
        except OutputRootRefused as exc:
            if exc.reason == "no such output":
                return 0
            raise

    async def _index_hint(self, l1_number: int, height: int) -> int | None:
        """The L1 node's answer to ``getL2OutputIndexAfter(height)`` (None when it reverts: no output covers)."""
        try:
            data = await self.l1.call(self.settlement.output_oracle,
                                      OUTPUT_INDEX_AFTER + encode(["uint256"], [height]), l1_number)
        except InclusionRefused:
            return None
        if len(data) != 32:
            return None
        (index,) = decode(["uint256"], data)
        return int(index)

    async def _proven_output(self, l1_header: BlockHeader, index: int) -> PostedOutput:
        proof = await self.l1.get_proof(self.settlement.output_oracle, [count_slot(), *output_slots(index)],
                                        l1_header.number)
        return verify_posted_output(l1_header.state_root, self._oracle, index, proof)

    async def _proven_block(self, output: PostedOutput) -> BlockHeader:
        """The rollup header the output root commits to (its preimage checked)."""
        (header,) = await self.rollup.headers(output.l2_block_number, output.l2_block_number)
        proof = await self.rollup.get_proof(self.settlement.message_passer, [], output.l2_block_number)
        verify_output_preimage(output, header, self._passer, proof)
        return header

    def _log_refused(self, exc: OutputRootRefused) -> None:
        log.error("output_root_refused", chain=self.name, l1=self.settlement.l1, reason=exc.reason,
                  detail=str(exc)[:400])

    async def close(self) -> None:
        await self.rollup.close()
        await self.l1.close()
