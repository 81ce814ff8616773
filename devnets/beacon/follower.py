"""Following one anvil: every new block becomes the next slot of its devnet beacon chain.

Each poll reads the node's latest block (and, for a chain whose finality is the ``finalized`` tag, that tag),
checks that the block the beacon chain holds at the node's height is still the node's (a reorg or a rollback
otherwise: the slots from the last common block on are rebuilt), then builds the new slots in batches. Every
execution header is parsed with its hash recomputed from its fields (``header_from_rpc_checked``), so the
payload a slot carries is exactly the node's block.

The beacon chain is the node's consensus here: it finalizes what the node treats as final. If the node replaces
a block the beacon chain had finalized (only a test does that: ``anvil_reorg``/``anvil_rollback`` deeper than
the finality rule), the follower logs ``beacon_finality_reverted`` and follows the node; a light client that
verified the old block then refuses what does not link to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from devnets.beacon.chain import BeaconChainError, DevnetBeaconChain, execution_payload_header
from light_clients.ethereum.execution import BlockHeader, LightClientError, header_from_rpc_checked

log = structlog.get_logger("devnets.beacon")

BUILD_BATCH = 200
REORG_SCAN = 64


class NodeError(Exception):
    """The execution node did not answer, or answered something that is not a valid block."""


@dataclass(frozen=True)
class ChainSpec:
    """One chain the server follows: ``finality`` is ``"finalized"`` (the node's tag, ``finality_depth`` blocks
    behind its head) or a number of confirmations."""

    name: str
    chain_id: int
    rpc_url: str
    finality: str | int
    finality_depth: int
    port: int = 0


class ChainFollower:
    def __init__(self, spec: ChainSpec, http: httpx.AsyncClient, committee_secret: bytes,
                 poll_interval_s: float = 0.1) -> None:
        self.spec = spec
        self._committee_secret = committee_secret
        self.http = http
        self.poll_interval_s = poll_interval_s
        self.chain: DevnetBeaconChain | None = None
        self.synced = False  # reached the node's head at least once
        self._rule_warned = False

    # ------------------------------------------------------------------ node access
    async def _batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        try:
            resp = await self.http.post(self.spec.rpc_url, json=body)
            resp.raise_for_status()
            answers = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NodeError(f"{self.spec.rpc_url}: {type(exc).__name__}: {exc}") from exc
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)} if isinstance(answers, list) else {}
        out = []
        for i, (method, _params) in enumerate(calls):
            answer = by_id.get(i)
            if answer is None or "error" in answer:
                raise NodeError(f"{method}: {answer.get('error') if answer else 'no answer'}")
            out.append(answer.get("result"))
        return out

    async def blocks(self, numbers: Sequence[int | str]) -> list[BlockHeader]:
        """Headers by number (or tag), each hash recomputed from its fields."""
        found = await self._maybe_blocks(numbers)
        for number, header in zip(numbers, found, strict=True):
            if header is None:
                raise NodeError(f"no block {number}")
        return [h for h in found if h is not None]

    async def _maybe_blocks(self, numbers: Sequence[int | str]) -> list[BlockHeader | None]:
        raw = await self._batch([("eth_getBlockByNumber", [n if isinstance(n, str) else hex(n), False])
                                 for n in numbers])
        headers: list[BlockHeader | None] = []
        for number, block in zip(numbers, raw, strict=True):
            try:
                headers.append(None if block is None else header_from_rpc_checked(block))
            except LightClientError as exc:
                raise NodeError(f"block {number}: {exc}") from exc
        return headers

    # ------------------------------------------------------------------ following
    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self.poll_once()
                failures = 0
            except (NodeError, BeaconChainError) as exc:
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("beacon_follow_failed", chain=self.spec.name, error=str(exc)[:300], failures=failures)
            delay = self.poll_interval_s if failures == 0 else min(2.0, self.poll_interval_s * 2 ** min(failures, 6))
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass

    async def poll_once(self) -> None:
        """One round: the node's head (and ``finalized`` tag), our tip still the node's, then the new slots."""
        chain = self.chain
        asked: list[int | str] = ["latest"]
        if self.spec.finality == "finalized":
            asked.append("finalized")
        if chain is not None and chain.length > 0:
            asked.append(chain.length - 1)
        found = await self._maybe_blocks(asked)
        if found[0] is None:
            raise NodeError("no latest block")
        latest = found[0].number
        if self.spec.finality == "finalized" and found[1] is not None:
            self._check_finality_rule(latest, found[1].number)
        if chain is None:
            (genesis,) = await self.blocks([0])
            chain = self.chain = DevnetBeaconChain(self.spec.chain_id, self.spec.finality_depth, genesis.timestamp,
                                                   self._committee_secret)
            log.info("beacon_chain_started", chain=self.spec.name, chain_id=self.spec.chain_id,
                     genesis_time=genesis.timestamp, finality_depth=chain.finality_depth)
        elif chain.length > 0:
            tip = found[-1]
            if tip is None or tip.hash() != chain.execution_hash(chain.length - 1):
                await self._follow_reorg(chain, latest)
                if self.chain is None:
                    return  # rebuilt from the new genesis on the next poll
        while chain.length <= latest:
            first = chain.length
            for header in await self.blocks(list(range(first, min(latest, first + BUILD_BATCH - 1) + 1))):
                chain.append(header)  # BeaconChainError if the node reorged meanwhile: the next poll handles it
        if not self.synced:
            self.synced = True
            log.info("beacon_chain_synced", chain=self.spec.name, slots=chain.length)

    def _check_finality_rule(self, latest: int, finalized: int) -> None:
        expected = max(0, latest - self.spec.finality_depth)
        if finalized not in (expected, expected + 1) and not self._rule_warned:  # +1: a block mined mid-batch
            self._rule_warned = True
            log.warning("beacon_finality_rule_mismatch", chain=self.spec.name, latest=latest, node_finalized=finalized,
                        beacon_finalized=expected, finality_depth=self.spec.finality_depth)

    async def _follow_reorg(self, chain: DevnetBeaconChain, latest: int) -> None:
        """Truncate the slots whose blocks the node no longer has (a reorg, or a node back at a lower height)."""
        if chain.length == 0:
            return
        top = min(chain.length - 1, latest)
        (theirs,) = await self.blocks([top])
        keep = top + 1
        if theirs.hash() != chain.execution_hash(top):
            keep = await self._common_length(chain, top)
        if keep == 0:  # not even the genesis block: another chain on this port (a node started afresh)
            log.warning("beacon_chain_restarted", chain=self.spec.name, dropped_slots=chain.length)
            self.chain, self.synced = None, False
            return
        if keep < chain.length:
            finalized = chain.finalized_slot(chain.length - 1)
            event = "beacon_finality_reverted" if keep <= finalized else "beacon_reorg"
            (log.warning if event == "beacon_finality_reverted" else log.info)(
                event, chain=self.spec.name, kept_slots=keep, dropped_slots=chain.length - keep,
                finalized_slot=finalized)
            chain.truncate(keep)

    async def _common_length(self, chain: DevnetBeaconChain, top: int) -> int:
        """How many slots from genesis carry blocks the node still has (scanning down from ``top``)."""
        high = top
        while high > 0:
            low = max(0, high - REORG_SCAN + 1)
            headers = await self.blocks(list(range(low, high + 1)))
            for header in reversed(headers):
                if header.hash() == chain.execution_hash(header.number):
                    return header.number + 1
            high = low - 1
        return 0

    # ------------------------------------------------------------------ serving
    def head(self, now: float | None = None) -> int | None:
        """The published head: the last slot built whose time the clock has reached (None before slot 1)."""
        chain = self.chain
        if chain is None or chain.length < 2:
            return None
        head = min(chain.length - 1, chain.clock.slot_at(time.time() if now is None else now))
        return head if head >= 1 else None

    def signature_slot(self, now: float | None = None) -> int | None:
        """The signature slot of the newest update: the committee signs the head as soon as it is built, its
        aggregate dated to the next slot (in Ethereum it rides in the next block; here no block has to exist for
        it, only the clock must have reached that slot). None before a slot 1 is attested."""
        chain = self.chain
        if chain is None or chain.length < 2:
            return None
        signature_slot = min(chain.length, chain.clock.slot_at(time.time() if now is None else now))
        return signature_slot if signature_slot >= 2 else None

    async def load_executions(self, slots: Sequence[int]) -> None:
        """Read again the execution headers of ``slots`` the chain no longer caches (checked against it)."""
        chain = self.chain
        assert chain is not None
        missing = chain.missing_executions(list(slots))
        if missing:
            for header in await self.blocks(missing):
                chain.remember(execution_payload_header(header))  # BeaconChainError if the node's block changed
