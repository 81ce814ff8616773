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

Endpoints. Headers and receipts are read from ``rpc_url``, then ``fallback_rpc_urls`` in order
(``light_clients.fallback.FallbackReads``): an endpoint that fails to connect, times out (``request_timeout_s``),
answers 429/5xx or not JSON is demoted and the read goes on at the next, so a dead or hung endpoint costs one timeout
per cool-down and the validator keeps attesting. A range of headers is one read, all from one endpoint, so a range
that does not link is that endpoint's. When a check refuses what an endpoint served (``header hash mismatch``,
``header chain broken``, ``not linked to finalized``, ``header not in verified chain``, ``malformed receipts``,
``receipts root mismatch``, ``anchor mismatch``), the claim is refused at once, never retried at another endpoint in
the same call, and that endpoint is demoted (``light_client_endpoint_refused``): the next poll reads from the next
one, and the refusal stays counted. Why is in ``light_clients.fallback``. What a claim itself gets wrong (``dispatch
not in block``, ``not final``, ``below anchor``) is no endpoint's fault and demotes none. Without a beacon source,
whichever of these endpoints serves is trusted for the chain past the anchor, as the adapter's own reads of them are;
``verify_rpc_urls`` stay the independent check: every one must serve the verified hash (fail-closed), and a refusal
says which one (by index) was unreachable (``verify endpoint unreachable``) or disagreed (``endpoints disagree``).
Endpoints are logged by index, never by URL.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import structlog

from adapters.base import DispatchClaim, Height, InclusionPending, InclusionRefused, RpcUnavailable
from adapters.capabilities import LightClientFollower
from adapters.endpoints import Endpoints
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
from light_clients.fallback import (
    VERIFY_ENDPOINTS,
    Endpoint,
    EndpointHttp,
    FallbackReads,
    NotAnAnswer,
    Served,
    ask_verify_endpoint,
    json_of,
    raise_for_endpoint_status,
    urls_of,
)

log = structlog.get_logger("light_clients.ethereum.inclusion")
DISPATCH_TOPIC = bytes.fromhex(abi.DISPATCH_TOPIC.removeprefix("0x"))
RPC_ENDPOINTS = "rpc_url and fallback_rpc_urls"
T = TypeVar("T")

HEADER_BATCH = 200


@dataclass(frozen=True, slots=True)
class TrustedAnchor:
    height: int
    hash: bytes


class EvmInclusionVerifier(LightClientFollower):
    """Verifies dispatch claims of one EVM origin; keeps the verified header hashes it has walked.

    ``rpc_urls``: the chain's endpoints in order (``rpc_url``, then ``fallback_rpc_urls``), or one URL;
    ``other_rpc_urls``: its ``verify_rpc_urls``; ``timeout_s``: the chain's ``request_timeout_s``, what one request to
    one endpoint may take."""

    def __init__(self, name: str, rpc_urls: str | Sequence[str], mailbox: str, *, other_rpc_urls: Sequence[str] = (),
                 anchor: TrustedAnchor | None = None, http: httpx.AsyncClient | None = None,
                 timeout_s: float = 15.0, beacon: BeaconLightClient | None = None,
                 beacon_refresh_s: float = 0.1) -> None:
        self.name = name
        self.beacon = beacon
        self.beacon_refresh_s = beacon_refresh_s
        self._beacon_synced_at = -1e9
        self.rpc = FallbackReads(name, RPC_ENDPOINTS, Endpoints(urls_of(rpc_urls)))
        self.verify_endpoints = [Endpoint(k, url, VERIFY_ENDPOINTS) for k, url in enumerate(urls_of(other_rpc_urls))]
        self.mailbox = bytes.fromhex(mailbox.removeprefix("0x").lower())
        self._anchor = anchor
        self._requests = EndpointHttp(http or httpx.AsyncClient(timeout=timeout_s), timeout_s)
        self._base: int | None = None          # height of _hashes[0:32]
        self._hashes = bytearray()              # verified header hashes from _base on
        self._tip: BlockHeader | None = None    # highest verified header
        self._low: BlockHeader | None = None    # lowest verified header (beacon mode: the range grows down too)

    # ------------------------------------------------------------------ JSON-RPC
    async def _batch(self, endpoint: Endpoint, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """One JSON-RPC batch to ``endpoint``: the results in order. A transport failure is raised as it is (the
        fallback moves on); HTTP 4xx and a JSON-RPC error are the node's answers."""
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        response = await self._requests.post(endpoint.url, body)
        raise_for_endpoint_status(response)
        if response.status_code >= 400:
            raise RpcUnavailable(f"{endpoint}: HTTP {response.status_code}", chain=self.name,
                                 reason="rpc unavailable")
        answers = json_of(response)
        if not isinstance(answers, list):
            raise NotAnAnswer(f"{endpoint} answered a batch with {type(answers).__name__}")
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        out = []
        for i, (method, _p) in enumerate(calls):
            a = by_id.get(i)
            if a is None or "error" in a:
                raise InclusionRefused(f"{endpoint}: {method} failed: {a.get('error') if a else 'no answer'}",
                                       chain=self.name, reason="rpc error")
            out.append(a.get("result"))
        return out

    async def _headers(self, first: int, last: int) -> Served[list[BlockHeader]]:
        """Headers ``first..last`` (at least one), all from one endpoint, each hash recomputed from its fields."""
        return await self.rpc.read_or_unavailable(
            f"headers {first}..{last}", lambda endpoint: self._headers_from(endpoint, first, last))

    async def _header(self, height: int) -> Served[BlockHeader]:
        served = await self._headers(height, height)
        return Served(served.answer[0], served.endpoint)

    async def _headers_from(self, endpoint: Endpoint, first: int, last: int) -> list[BlockHeader]:
        headers: list[BlockHeader] = []
        for start in range(first, last + 1, HEADER_BATCH):
            end = min(last, start + HEADER_BATCH - 1)
            blocks = await self._batch(endpoint,
                                       [("eth_getBlockByNumber", [hex(h), False]) for h in range(start, end + 1)])
            for h, block in zip(range(start, end + 1), blocks, strict=True):
                if block is None:
                    raise InclusionRefused(f"{endpoint} has no block {h}", chain=self.name, reason="missing header")
                try:
                    headers.append(header_from_rpc_checked(block))
                except LightClientError as exc:
                    raise self.rpc.refusal(endpoint, f"header {h} from {endpoint} does not hash to what the node says: "
                                           f"{exc}", "header hash mismatch") from exc
        return headers

    async def _receipts(self, height: int) -> Served[list[Receipt]]:
        return await self.rpc.read_or_unavailable(
            f"receipts of block {height}", lambda endpoint: self._receipts_from(endpoint, height))

    async def _receipts_from(self, endpoint: Endpoint, height: int) -> list[Receipt]:
        (raw_receipts,) = await self._batch(endpoint, [("eth_getBlockReceipts", [hex(height)])])
        try:
            return [Receipt.from_rpc(r) for r in raw_receipts or []]
        except (LightClientError, TypeError) as exc:
            raise self.rpc.refusal(endpoint, f"receipts of block {height} from {endpoint}: {exc}",
                                   "malformed receipts") from exc

    # ------------------------------------------------------------------ header chain
    def verified_hash(self, height: int) -> bytes | None:
        if self._base is None or height < self._base:
            return None
        i = (height - self._base) * 32
        return bytes(self._hashes[i:i + 32]) if i + 32 <= len(self._hashes) else None

    async def _start(self) -> None:
        anchor = self._anchor
        if anchor is None:
            genesis = await self._header(0)
            anchor = TrustedAnchor(0, genesis.answer.hash())
            log.warning("light_client_anchor", chain=self.name, height=0, hash="0x" + anchor.hash.hex(),
                        endpoint=genesis.endpoint.index,
                        note="no trusted_checkpoint configured: anchored on the genesis this node serves")
        header = await self._header(anchor.height)
        if header.answer.hash() != anchor.hash:
            raise self.rpc.refusal(header.endpoint, f"block {anchor.height} from {header.endpoint} hashes to "
                                   f"0x{header.answer.hash().hex()}, the trusted checkpoint is 0x{anchor.hash.hex()}",
                                   "anchor mismatch")
        self._base, self._hashes, self._tip = anchor.height, bytearray(header.answer.hash()), header.answer

    async def advance(self, finalized: Height) -> None:
        """Verify the header chain up to ``finalized`` and that every other endpoint agrees on its hash."""
        if self._tip is None:
            await self._start()
        assert self._tip is not None
        if finalized > self._tip.number:
            served = await self._headers(self._tip.number + 1, int(finalized))
            try:
                verify_header_chain(self._tip, served.answer)
            except LightClientError as exc:
                raise self.rpc.refusal(served.endpoint, f"headers {self._tip.number + 1}..{finalized} from "
                                       f"{served.endpoint} do not link to the verified chain: {exc}",
                                       "header chain broken") from exc
            for header in served.answer:
                self._hashes += header.hash()
            self._tip = served.answer[-1]
        await self._check_other_endpoints(int(finalized))

    async def _check_other_endpoints(self, height: int) -> None:
        """Every ``verify_rpc_urls`` endpoint must serve the verified hash at ``height``."""
        ours = "0x" + (self.verified_hash(height) or b"").hex()
        for verify in self.verify_endpoints:
            theirs = await ask_verify_endpoint(self.name, verify, lambda e: self._hash_served_by(e, height))
            if ours == "0x" or theirs is None or theirs.lower() != ours:
                log.error("rpc_endpoints_disagree", chain=self.name, height=height, primary_hash=ours,
                          other_endpoints=VERIFY_ENDPOINTS, other=verify.index, other_hash=theirs)
                raise InclusionRefused(f"endpoints disagree on block {height}: {verify} serves {theirs}, the verified "
                                       f"chain has {ours}", chain=self.name, reason="endpoints disagree")

    async def _hash_served_by(self, endpoint: Endpoint, height: int) -> str | None:
        (block,) = await self._batch(endpoint, [("eth_getBlockByNumber", [hex(height), False])])
        found = block.get("hash") if isinstance(block, dict) else None
        return found if isinstance(found, str) else None

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
                raise InclusionRefused(f"a beacon endpoint served what the sync-committee light client refuses: {exc}",
                                       chain=self.name, reason="beacon update refused") from exc
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
            log.warning("beacon_sync_failed", chain=self.name, error=str(exc)[:300])
            return self.beacon.finalized

    def _not_linked(self, endpoint: Endpoint | None, height: int, served: bytes, finalized: ExecutionCheckpoint,
                    why: str) -> InclusionRefused:
        """``not linked to finalized``: what ``endpoint`` served (None: what was verified before) does not link to
        the block the sync committee finalized."""
        log.error("not_linked_to_finalized", chain=self.name, height=height, endpoints=RPC_ENDPOINTS,
                  endpoint=None if endpoint is None else endpoint.index, served="0x" + served.hex(),
                  finalized_number=finalized.number, finalized_hash="0x" + finalized.block_hash.hex(), detail=why)
        message = (f"block {height} from {endpoint or 'the verified chain'} does not link to the block the sync "
                   f"committee finalized ({finalized.number}, 0x{finalized.block_hash.hex()}): {why}")
        if endpoint is None:
            return InclusionRefused(message, chain=self.name, reason="not linked to finalized")
        return self.rpc.refusal(endpoint, message, "not linked to finalized")

    async def _link_to_finalized(self, finalized: ExecutionCheckpoint, lowest: int) -> None:
        """Verified headers from ``lowest`` (or lower) up to the light-client-finalized block, linked to its hash."""
        number = finalized.number
        top: Served[BlockHeader] | None = None
        if self._tip is None or number > self._tip.number:
            top = await self._header(number)  # one call first: a fork fails here cheaply
            if top.answer.hash() != finalized.block_hash:
                raise self._not_linked(top.endpoint, number, top.answer.hash(), finalized,
                                       "another block at the finalized height")
        if self._tip is None:
            assert top is not None
            await self._start_below(top, finalized, min(lowest, number))
        elif top is not None:
            await self._extend_to(top)
        elif self.verified_hash(number) != finalized.block_hash:
            raise self._not_linked(None, number, self.verified_hash(number) or b"", finalized,
                                   "the verified chain has another block at the finalized height")
        assert self._base is not None and self._low is not None
        if lowest < self._base:
            await self._extend_down_to(lowest, finalized)

    async def _start_below(self, top: Served[BlockHeader], finalized: ExecutionCheckpoint, first: int) -> None:
        """The first verified range: ``first`` up to the finalized block ``top``, linked by parent hashes."""
        number = top.answer.number
        below = await self._headers(first, number - 1) if first < number else Served([], top.endpoint)
        headers = [*below.answer, top.answer]
        try:
            verify_header_chain(headers[0], headers[1:])
        except LightClientError as exc:
            raise self._not_linked(below.endpoint, number, headers[-1].hash(), finalized,
                                   f"broken parent links: {exc}") from exc
        self._base, self._hashes = first, bytearray(b"".join(h.hash() for h in headers))
        self._low, self._tip = headers[0], headers[-1]
        log.info("light_client_anchor", chain=self.name, height=number, hash="0x" + finalized.block_hash.hex(),
                 lowest=first, source="beacon")

    async def _extend_to(self, top: Served[BlockHeader]) -> None:
        """The range grown up to the new finalized block ``top``: the headers between must link to the tip."""
        assert self._tip is not None
        number = top.answer.number
        between = (await self._headers(self._tip.number + 1, number - 1) if self._tip.number + 1 < number
                   else Served([], top.endpoint))
        try:
            verify_header_chain(self._tip, [*between.answer, top.answer])
        except LightClientError as exc:
            raise self.rpc.refusal(between.endpoint, f"the finalized chain up to {number} from {between.endpoint} does "
                                   f"not extend the verified chain: {exc}", "header chain broken") from exc
        for header in [*between.answer, top.answer]:
            self._hashes += header.hash()
        self._tip = top.answer

    async def _extend_down_to(self, lowest: int, finalized: ExecutionCheckpoint) -> None:
        """The range grown down to ``lowest``, linked up to the lowest verified header."""
        assert self._base is not None and self._low is not None
        below = await self._headers(lowest, self._base - 1)
        try:
            verify_header_chain(below.answer[0], [*below.answer[1:], self._low])
        except LightClientError as exc:
            raise self._not_linked(below.endpoint, lowest, below.answer[0].hash(), finalized,
                                   f"does not link up to the verified headers: {exc}") from exc
        self._hashes[0:0] = b"".join(h.hash() for h in below.answer)
        self._base, self._low = lowest, below.answer[0]

    # ------------------------------------------------------------------ reads for other provers (rollups on this L1)
    async def verified_finalized_header(self, finalized: Height) -> BlockHeader:
        """The header of this chain's finalized block, verified: the block the sync committee finalized (with a
        beacon source; ``finalized`` is then unused) or the block at ``finalized`` on the header chain walked from
        the anchor and agreed by every ``verify_rpc_urls`` endpoint (without one)."""
        if self.beacon is not None:  # synced first (at most every beacon_refresh_s): the newest finalized block
            known = self.beacon.finalized
            checkpoint = await self._finalized_by_light_client(known.number + 1 if known is not None else 0)
            await self._link_to_finalized(checkpoint, checkpoint.number)
            number = checkpoint.number
            await self._check_other_endpoints(number)
        else:
            number = int(finalized)
            await self.advance(finalized)  # the other endpoints are asked there
        header = await self._header(number)
        if header.answer.hash() != self.verified_hash(number):
            raise self.rpc.refusal(header.endpoint, f"block {number} from {header.endpoint} is not the verified one",
                                   "header not in verified chain")
        return header.answer

    async def node_finalized_height(self, finality: str | int) -> Height:
        """The finalized height the node serves by the chain's rule (``"finalized"``: the tag; a number: that many
        confirmations below its latest), for callers without a beacon source, who trust it as ``advance`` does."""
        tag = "finalized" if finality == "finalized" else "latest"
        served = await self.rpc.read_or_unavailable(
            f"the {tag} block", lambda endpoint: self._batch(endpoint, [("eth_getBlockByNumber", [tag, False])]))
        (block,) = served.answer
        if not isinstance(block, dict) or not isinstance(block.get("number"), str):
            raise self.rpc.refusal(served.endpoint, f"{served.endpoint} has no {tag} block", "missing header")
        number = int(block["number"], 16)
        return Height(number if finality == "finalized" else max(0, number - int(finality)))

    async def get_proof(self, address: str, slots: Sequence[int], height: int) -> dict[str, Any]:
        """``eth_getProof(address, slots, height)`` as an endpoint serves it (unchecked: the caller verifies it
        against a verified state root)."""
        keys = ["0x" + slot.to_bytes(32, "big").hex() for slot in slots]
        served = await self.rpc.read_or_unavailable(
            f"eth_getProof of {address} at {height}",
            lambda endpoint: self._batch(endpoint, [("eth_getProof", [address, keys, hex(height)])]))
        (proof,) = served.answer
        if not isinstance(proof, dict):
            raise self.rpc.refusal(served.endpoint, f"{served.endpoint} answered eth_getProof with {proof!r}",
                                   "malformed proof")
        return proof

    async def call(self, to: str, data: bytes, height: int) -> bytes:
        """``eth_call`` at ``height`` as an endpoint answers it (unchecked: a hint the caller proves or discards)."""
        served = await self.rpc.read_or_unavailable(
            f"eth_call to {to} at {height}",
            lambda endpoint: self._batch(endpoint, [("eth_call", [{"to": to, "data": "0x" + data.hex()},
                                                                  hex(height)])]))
        (result,) = served.answer
        return bytes.fromhex(str(result).removeprefix("0x"))

    async def headers(self, first: int, last: int) -> list[BlockHeader]:
        """Headers ``first..last`` from one endpoint, each hash recomputed from its fields (not linked here)."""
        return (await self._headers(first, last)).answer

    async def dispatched_in_block(self, header: BlockHeader) -> set[bytes]:
        """The messages of the mailbox's successful Dispatch logs in the block of ``header`` (a header the caller
        verified): its receipts must rebuild the header's receiptsRoot."""
        receipts = await self._receipts(header.number)
        rebuilt = receipts_root(receipts.answer)
        if rebuilt != header.receipts_root:
            log.error("receipts_root_mismatch", chain=self.name, height=header.number, endpoints=RPC_ENDPOINTS,
                      endpoint=receipts.endpoint.index, header_root="0x" + header.receipts_root.hex(),
                      rebuilt_root="0x" + rebuilt.hex())
            raise self.rpc.refusal(receipts.endpoint, f"the receipts {receipts.endpoint} serves for block "
                                   f"{header.number} do not rebuild its receiptsRoot", "receipts root mismatch")
        return self._dispatched_in(receipts.answer)

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
            proven = await self._dispatched_at(h)
            for claim in (c for c in claims if int(c.height) == h):
                if claim.raw not in proven:
                    log.error("dispatch_not_proven", chain=self.name, height=h, tx=claim.tx_hash,
                              message="0x" + claim.raw[:64].hex())
                    raise InclusionRefused(f"no successful Dispatch of the claimed message (tx {claim.tx_hash}) in the "
                                           f"verified block {h}", chain=self.name, reason="dispatch not in block")

    async def _dispatched_at(self, height: int) -> set[bytes]:
        """The messages of the mailbox's successful Dispatch logs in the verified block at ``height``."""
        trusted = self.verified_hash(height)
        if trusted is None:
            raise InclusionRefused(f"height {height} is below the light client's anchor", chain=self.name,
                                   reason="below anchor")
        header = await self._header(height)
        if header.answer.hash() != trusted:
            raise self.rpc.refusal(header.endpoint, f"block {height} from {header.endpoint} is "
                                   f"0x{header.answer.hash().hex()}, the verified chain has 0x{trusted.hex()}",
                                   "header not in verified chain")
        return await self.dispatched_in_block(header.answer)

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
        await self._requests.aclose()
        if self.beacon is not None:
            await self.beacon.close()
