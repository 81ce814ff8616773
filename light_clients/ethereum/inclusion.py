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

What the anchor rests on: on a proof-of-stake chain the anchor and the finalized head come from the
sync-committee light client (``light_clients.ethereum.consensus``: the finalized header's execution block
hash); anvil has no consensus to follow, so on the devnet the anchor is the pinned checkpoint or genesis, and
the finalized height is the node's ``finalized`` tag or confirmations, cross-checked against the other
endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from adapters.base import DispatchClaim, Height, InclusionRefused, RpcUnavailable
from adapters.evm import abi
from adapters.message import MessageFormatError
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


class EvmInclusionVerifier:
    """Verifies dispatch claims of one EVM origin; keeps the verified header hashes it has walked."""

    def __init__(self, name: str, rpc_url: str, mailbox: str, *, other_rpc_urls: Sequence[str] = (),
                 anchor: TrustedAnchor | None = None, http: httpx.AsyncClient | None = None,
                 timeout_s: float = 15.0) -> None:
        self.name = name
        self.rpc_url = rpc_url
        self.other_rpc_urls = list(other_rpc_urls)
        self.mailbox = bytes.fromhex(mailbox.removeprefix("0x").lower())
        self._anchor = anchor
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        self._base: int | None = None          # height of _hashes[0:32]
        self._hashes = bytearray()              # verified header hashes from _base on
        self._tip: BlockHeader | None = None    # highest verified header

    # ------------------------------------------------------------------ JSON-RPC
    async def _batch(self, url: str, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        try:
            resp = await self._http.post(url, json=body)
            resp.raise_for_status()
            answers = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RpcUnavailable(f"{url}: {type(exc).__name__}: {exc}", chain=self.name, reason="rpc unavailable") from exc
        if not isinstance(answers, list):
            raise InclusionRefused(f"{url} answered a batch with {type(answers).__name__}", chain=self.name,
                                   reason="malformed rpc answer")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        out = []
        for i, (method, _p) in enumerate(calls):
            a = by_id.get(i)
            if a is None or "error" in a:
                raise InclusionRefused(f"{url}: {method} failed: {a.get('error') if a else 'no answer'}", chain=self.name,
                                       reason="rpc error")
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

    @property
    def verified_height(self) -> int | None:
        return None if self._tip is None else self._tip.number

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
        ours = self.verified_hash(int(finalized))
        for url in self.other_rpc_urls:
            (block,) = await self._batch(url, [("eth_getBlockByNumber", [hex(int(finalized)), False])])
            theirs = (block or {}).get("hash")
            if ours is None or theirs is None or theirs.lower() != "0x" + ours.hex():
                log.error("rpc_endpoints_disagree", chain=self.name, height=int(finalized), primary=self.rpc_url,
                          primary_hash="0x" + (ours or b"").hex(), other=url, other_hash=theirs)
                raise InclusionRefused(f"endpoints disagree on block {finalized}: {self.rpc_url} 0x{(ours or b'').hex()}, "
                                       f"{url} {theirs}", chain=self.name, reason="endpoints disagree")

    # ------------------------------------------------------------------ claims
    async def verify_dispatches(self, claims: Sequence[DispatchClaim], finalized: Height) -> None:
        """Raise ``InclusionRefused`` unless every claimed message is a successful Dispatch log of the mailbox in
        a verified block at or below ``finalized``."""
        if not claims:
            return
        await self.advance(finalized)
        heights = sorted({int(c.height) for c in claims})
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
                raise InclusionRefused(f"receipts of block {h}: {exc}", chain=self.name, reason="malformed receipts") from exc
            if receipts_root(receipts) != header.receipts_root:
                log.error("receipts_root_mismatch", chain=self.name, height=h,
                          header_root="0x" + header.receipts_root.hex(), rebuilt_root="0x" + receipts_root(receipts).hex())
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
