"""Proof that a Dispatch log is in a verified, final block: the validator's check before it signs (issue 4).

``EvmInclusionVerifier`` trusts nothing an RPC node says about the origin chain except what it can check with
``light_clients.ethereum.execution``:

1. Headers. From a trusted anchor (``chains.<name>.trusted_checkpoint = {height, hash}``; without one, the
   genesis block the node serves, logged as ``light_client_anchor`` so an operator can pin it) every header
   up to the finalized height is fetched, its hash recomputed from its fields (a node that alters a field is
   caught: the hash no longer matches) and linked by ``parent_hash`` to the previous verified one. The hashes
   are kept (32 bytes a height) so any later claim is checked against them.
2. Other endpoints. With ``verify_rpc_urls`` set, each must serve the same hash at the finalized height; a
   disagreement is an alert (``rpc_endpoints_disagree``) and nothing is proven.
3. Receipts. For each block holding a claimed dispatch, the block's receipts (``eth_getBlockReceipts``) must
   rebuild the verified header's ``receiptsRoot``; the claimed message must then be the data of a
   ``Dispatch`` log emitted by the mailbox in one of those receipts, and that receipt must have succeeded.

What the anchor rests on. With a beacon light-client source (``beacon``: a ``BeaconLightClient`` following
``chains.<name>.beacon_url`` from ``trusted_block_root``) the RPC node decides nothing: the sync-committee client
derives the finalized execution block (number F, hash H) and

- a claim above F waits (``InclusionPending``: not signed, not counted as a refusal) until the light client
  finalizes its block;
- the headers the node serves are walked *back from* the finalized block: block F must hash to H and every
  header below it must be the parent of the one above, down to the lowest claimed height. The light-client
  finalized block is the anchor; a node that serves another block at any of those heights (a fork, an altered
  header, a forged log consistent across every method) breaks that link and is refused with reason
  ``not linked to finalized``. Walking back rather than forward from some older anchor means no second trust
  input: claims below the bootstrap block are proven too, by their links up to a finalized hash.
- later, the range grows upward: the headers from the verified tip to the new F must link to the tip
  (``header chain broken`` otherwise: the finalized chain no longer extends what was verified, a finality
  violation) and end at the new H (``not linked to finalized`` otherwise); and downward for a claim below the
  range, linked to the lowest verified header.
- an update that fails a sync-protocol check (signature, branch, period) is refused (``beacon update refused``)
  and nothing moves; an endpoint that does not answer is ``beacon unavailable``.

Without a beacon source (anvil alone, or a chain whose consensus is not followed) the anchor is the pinned
``trusted_checkpoint`` or the genesis the node serves, and the finalized height is the node's own (``finalized``
tag or confirmations), cross-checked against ``verify_rpc_urls``: the validator's start-up rule
(relayer/daemon/daemon.py) then requires at least one other endpoint or an explicit ``trust_single_rpc``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from adapters.base import DispatchClaim, Height, InclusionPending, InclusionRefused, RpcUnavailable
from adapters.capabilities import LightClientFollower
from adapters.evm import abi
from adapters.message import MessageFormatError
from light_clients.ethereum.consensus.beacon_client import (
    BeaconLightClient,
    BeaconUnavailable,
    ExecutionCheckpoint,
)
from light_clients.ethereum.consensus.errors import LightClientError as ConsensusError
from light_clients.ethereum.execution import (
    BlockHeader,
    LightClientError,
    Receipt,
    header_from_rpc_checked,
    receipts_root,
    verify_header_chain,
)

log = structlog.get_logger("light_clients.ethereum.inclusion")
DISPATCH_TOPIC = bytes.fromhex(abi.DISPATCH_TOPIC.removeprefix("0x"))

HEADER_BATCH = 200


@dataclass(frozen=True, slots=True)
class TrustedAnchor:
    height: int
    hash: bytes


class EvmInclusionVerifier(LightClientFollower):
    """Verifies dispatch claims of one EVM origin; keeps the verified header hashes it has walked."""

    def __init__(self, name: str, rpc_url: str, mailbox: str, *, other_rpc_urls: Sequence[str] = (),
                 anchor: TrustedAnchor | None = None, http: httpx.AsyncClient | None = None,
                 timeout_s: float = 15.0, beacon: BeaconLightClient | None = None,
                 beacon_refresh_s: float = 0.1) -> None:
        self.name = name
        self.beacon = beacon
        self.beacon_refresh_s = beacon_refresh_s
        self._beacon_synced_at = -1e9
        self.rpc_url = rpc_url
        self.other_rpc_urls = list(other_rpc_urls)
        self.mailbox = bytes.fromhex(mailbox.removeprefix("0x").lower())
        self._anchor = anchor
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        self._base: int | None = None          # height of _hashes[0:32]
        self._hashes = bytearray()              # verified header hashes from _base on
        self._tip: BlockHeader | None = None    # highest verified header
        self._low: BlockHeader | None = None    # lowest verified header (beacon mode: the range grows down too)

    # ------------------------------------------------------------------ JSON-RPC
    async def _batch(self, url: str, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        try:
            resp = await self._http.post(url, json=body)
            resp.raise_for_status()
            answers = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RpcUnavailable(f"{url}: {type(exc).__name__}: {exc}", chain=self.name,
                                 reason="rpc unavailable") from exc
        if not isinstance(answers, list):
            raise InclusionRefused(f"{url} answered a batch with {type(answers).__name__}", chain=self.name,
                                   reason="malformed rpc answer")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        out = []
        for i, (method, _p) in enumerate(calls):
            a = by_id.get(i)
            if a is None or "error" in a:
                raise InclusionRefused(f"{url}: {method} failed: {a.get('error') if a else 'no answer'}",
                                       chain=self.name, reason="rpc error")
            out.append(a.get("result"))
        return out

    async def _headers(self, url: str, first: int, last: int) -> list[BlockHeader]:
        """Headers ``first..last`` from ``url``, each hash recomputed from its fields."""
        headers: list[BlockHeader] = []
        for start in range(first, last + 1, HEADER_BATCH):
            end = min(last, start + HEADER_BATCH - 1)
            blocks = await self._batch(url, [("eth_getBlockByNumber", [hex(h), False]) for h in range(start, end + 1)])
            for h, block in zip(range(start, end + 1), blocks, strict=True):
                if block is None:
                    raise InclusionRefused(f"{url} has no block {h}", chain=self.name, reason="missing header")
                try:
                    headers.append(header_from_rpc_checked(block))
                except LightClientError as exc:
                    raise InclusionRefused(f"header {h} from {url} does not hash to what the node says: {exc}",
                                           chain=self.name, reason="header hash mismatch") from exc
        return headers

    # ------------------------------------------------------------------ header chain
    def verified_hash(self, height: int) -> bytes | None:
        if self._base is None or height < self._base:
            return None
        i = (height - self._base) * 32
        return bytes(self._hashes[i:i + 32]) if i + 32 <= len(self._hashes) else None

    async def _start(self) -> None:
        anchor = self._anchor
        if anchor is None:
            (genesis,) = await self._headers(self.rpc_url, 0, 0)
            anchor = TrustedAnchor(0, genesis.hash())
            log.warning("light_client_anchor", chain=self.name, height=0, hash="0x" + anchor.hash.hex(),
                        note="no trusted_checkpoint configured: anchored on the genesis this node serves")
        (header,) = await self._headers(self.rpc_url, anchor.height, anchor.height)
        if header.hash() != anchor.hash:
            raise InclusionRefused(f"block {anchor.height} hashes to 0x{header.hash().hex()}, the trusted checkpoint "
                                   f"is 0x{anchor.hash.hex()}", chain=self.name, reason="anchor mismatch")
        self._base, self._hashes, self._tip = anchor.height, bytearray(header.hash()), header

    async def advance(self, finalized: Height) -> None:
        """Verify the header chain up to ``finalized`` and that every other endpoint agrees on its hash."""
        if self._tip is None:
            await self._start()
        assert self._tip is not None
        if finalized > self._tip.number:
            headers = await self._headers(self.rpc_url, self._tip.number + 1, int(finalized))
            try:
                verify_header_chain(self._tip, headers)
            except LightClientError as exc:
                raise InclusionRefused(f"headers {self._tip.number + 1}..{finalized} do not link to the verified "
                                       f"chain: {exc}", chain=self.name, reason="header chain broken") from exc
            for header in headers:
                self._hashes += header.hash()
            self._tip = headers[-1]
        await self._check_other_endpoints(int(finalized))

    async def _check_other_endpoints(self, height: int) -> None:
        """Every other configured endpoint must serve the verified hash at ``height``."""
        ours = self.verified_hash(height)
        for url in self.other_rpc_urls:
            (block,) = await self._batch(url, [("eth_getBlockByNumber", [hex(height), False])])
            theirs = (block or {}).get("hash")
            if ours is None or theirs is None or theirs.lower() != "0x" + ours.hex():
                log.error("rpc_endpoints_disagree", chain=self.name, height=height, primary=self.rpc_url,
                          primary_hash="0x" + (ours or b"").hex(), other=url, other_hash=theirs)
                raise InclusionRefused(f"endpoints disagree on block {height}: {self.rpc_url} 0x{(ours or b'').hex()}, "
                                       f"{url} {theirs}", chain=self.name, reason="endpoints disagree")

    # ------------------------------------------------------------------ beacon light-client source
    @property
    def light_client_finalized(self) -> ExecutionCheckpoint | None:
        """The finalized execution block the sync-committee client derived (None without one, or before it)."""
        return None if self.beacon is None else self.beacon.finalized

    async def _finalized_by_light_client(self, wanted: int) -> ExecutionCheckpoint:
        """The light client's finalized execution block, synced first if it is below ``wanted`` (at most once
        every ``beacon_refresh_s``)."""
        beacon = self.beacon
        assert beacon is not None
        known = beacon.finalized
        if known is None or (known.number < wanted
                             and time.monotonic() - self._beacon_synced_at >= self.beacon_refresh_s):
            self._beacon_synced_at = time.monotonic()
            try:
                known = await beacon.sync()
            except BeaconUnavailable as exc:
                raise RpcUnavailable(f"beacon endpoint: {exc}", chain=self.name, reason="beacon unavailable") from exc
            except ConsensusError as exc:
                raise InclusionRefused(f"the beacon endpoint {beacon.url} served what the sync-committee light client "
                                       f"refuses: {exc}", chain=self.name, reason="beacon update refused") from exc
        if known is None:
            raise InclusionPending("the light client has no finalized block yet", chain=self.name,
                                   reason="not finalized by light client")
        return known

    async def follow_light_client(self) -> ExecutionCheckpoint | None:
        """Sync the light client now (the daemon does it every health round: it stays caught up between claims and
        its finalized height is exported). A failure is only logged here; a claim that needs the light client is
        refused with the reason."""
        if self.beacon is None:
            return None
        self._beacon_synced_at = time.monotonic()
        try:
            return await self.beacon.sync()
        except ConsensusError as exc:
            log.warning("beacon_sync_failed", chain=self.name, url=self.beacon.url, error=str(exc)[:300])
            return self.beacon.finalized

    def _not_linked(self, height: int, served: bytes, finalized: ExecutionCheckpoint, why: str) -> InclusionRefused:
        log.error("not_linked_to_finalized", chain=self.name, height=height, rpc=self.rpc_url,
                  served="0x" + served.hex(),
                  finalized_number=finalized.number, finalized_hash="0x" + finalized.block_hash.hex(), detail=why)
        return InclusionRefused(f"block {height} from {self.rpc_url} does not link to the block the sync committee "
                                f"finalized ({finalized.number}, 0x{finalized.block_hash.hex()}): {why}",
                                chain=self.name, reason="not linked to finalized")

    async def _link_to_finalized(self, finalized: ExecutionCheckpoint, lowest: int) -> None:
        """Verified headers from ``lowest`` (or lower) up to the light-client-finalized block, linked to its hash."""
        number = finalized.number
        if self._tip is None or number > self._tip.number:
            (top,) = await self._headers(self.rpc_url, number, number)  # one call first: a fork fails here cheaply
            if top.hash() != finalized.block_hash:
                raise self._not_linked(number, top.hash(), finalized, "another block at the finalized height")
        if self._tip is None:
            first = min(lowest, number)
            headers = [*await self._headers(self.rpc_url, first, number - 1), top]
            try:
                verify_header_chain(headers[0], headers[1:])
            except LightClientError as exc:
                raise self._not_linked(number, headers[-1].hash(), finalized, f"broken parent links: {exc}") from exc
            self._base, self._hashes = first, bytearray(b"".join(h.hash() for h in headers))
            self._low, self._tip = headers[0], headers[-1]
            log.info("light_client_anchor", chain=self.name, height=number, hash="0x" + finalized.block_hash.hex(),
                     lowest=first, source="beacon")
        elif number > self._tip.number:
            headers = [*await self._headers(self.rpc_url, self._tip.number + 1, number - 1), top]
            try:
                verify_header_chain(self._tip, headers)
            except LightClientError as exc:
                raise InclusionRefused(f"the finalized chain up to {number} does not extend the verified chain: {exc}",
                                       chain=self.name, reason="header chain broken") from exc
            for header in headers:
                self._hashes += header.hash()
            self._tip = headers[-1]
        elif self.verified_hash(number) != finalized.block_hash:
            raise self._not_linked(number, self.verified_hash(number) or b"", finalized, "the verified chain has "
                                   "another block at the finalized height")
        assert self._base is not None and self._low is not None
        if lowest < self._base:
            below = await self._headers(self.rpc_url, lowest, self._base - 1)
            try:
                verify_header_chain(below[0], [*below[1:], self._low])
            except LightClientError as exc:
                raise self._not_linked(lowest, below[0].hash(), finalized, f"does not link up to the verified "
                                       f"headers: {exc}") from exc
            self._hashes[0:0] = b"".join(h.hash() for h in below)
            self._base, self._low = lowest, below[0]

    # ------------------------------------------------------------------ claims
    async def verify_dispatches(self, claims: Sequence[DispatchClaim], finalized: Height) -> None:
        """Raise ``InclusionRefused`` unless every claimed message is a successful Dispatch log of the mailbox in
        a verified block at or below ``finalized``."""
        if not claims:
            return
        heights = sorted({int(c.height) for c in claims})
        if self.beacon is None:
            await self.advance(finalized)
        elif heights[-1] <= finalized:
            checkpoint = await self._finalized_by_light_client(heights[-1])
            if heights[-1] > checkpoint.number:
                raise InclusionPending(f"a claimed dispatch is at height {heights[-1]}, the sync committee finalized "
                                       f"{checkpoint.number}", chain=self.name, reason="not finalized by light client")
            await self._link_to_finalized(checkpoint, heights[0])
            await self._check_other_endpoints(checkpoint.number)
        if heights[-1] > finalized:
            raise InclusionRefused(f"a claimed dispatch is at height {heights[-1]}, above the finalized {finalized}",
                                   chain=self.name, reason="not final")
        for h in heights:
            trusted = self.verified_hash(h)
            if trusted is None:
                raise InclusionRefused(f"height {h} is below the light client's anchor", chain=self.name,
                                       reason="below anchor")
            (header,) = await self._headers(self.rpc_url, h, h)
            if header.hash() != trusted:
                raise InclusionRefused(f"block {h} from {self.rpc_url} is 0x{header.hash().hex()}, the verified chain "
                                       f"has 0x{trusted.hex()}", chain=self.name, reason="header not in verified chain")
            (raw_receipts,) = await self._batch(self.rpc_url, [("eth_getBlockReceipts", [hex(h)])])
            try:
                receipts = [Receipt.from_rpc(r) for r in raw_receipts or []]
            except LightClientError as exc:
                raise InclusionRefused(f"receipts of block {h}: {exc}", chain=self.name,
                                       reason="malformed receipts") from exc
            if receipts_root(receipts) != header.receipts_root:
                log.error("receipts_root_mismatch", chain=self.name, height=h,
                          header_root="0x" + header.receipts_root.hex(),
                          rebuilt_root="0x" + receipts_root(receipts).hex())
                raise InclusionRefused(f"the receipts {self.rpc_url} serves for block {h} do not rebuild its "
                                       "receiptsRoot", chain=self.name, reason="receipts root mismatch")
            proven = self._dispatched_in(receipts)
            for claim in (c for c in claims if int(c.height) == h):
                if claim.raw not in proven:
                    log.error("dispatch_not_proven", chain=self.name, height=h, tx=claim.tx_hash,
                              message="0x" + claim.raw[:64].hex())
                    raise InclusionRefused(f"no successful Dispatch of the claimed message (tx {claim.tx_hash}) in the "
                                           f"verified block {h}", chain=self.name, reason="dispatch not in block")

    def _dispatched_in(self, receipts: Sequence[Receipt]) -> set[bytes]:
        found: set[bytes] = set()
        for r in receipts:
            if r.status != 1:
                continue
            for lg in r.logs:
                if lg.address == self.mailbox and lg.topics and lg.topics[0] == DISPATCH_TOPIC:
                    try:
                        found.add(abi.decode_single_bytes(lg.data))
                    except MessageFormatError:
                        continue
        return found

    async def close(self) -> None:
        await self._http.aclose()
        if self.beacon is not None:
            await self.beacon.close()
