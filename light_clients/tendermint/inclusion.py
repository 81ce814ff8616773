"""Proof that a Cosmos dispatch is a successful tx in a verified block: the validator's check before it signs.

``CosmosInclusionVerifier`` believes nothing an RPC node says about the chain except what it checks:

1. Anchor. Genesis: the validators at height 1 (``/validators``) and the commit of block 1 (``/commit``), which
   they must have signed (``verify_commit``); logged as ``light_client_anchor`` so an operator can pin it.
2. Headers. From the highest verified block, ``verify_to_height`` (skipping verification, bisection) reaches
   height ``H + 1`` for the highest claim ``H``; every header below it down to the last block already walked
   is then verified by hash linkage (header ``h + 1``'s ``last_block_id`` is the hash of header ``h``).
3. Contents. For every block walked, its txs must hash to the header's ``data_hash`` (Merkle root of
   ``sha256(tx)``) and its ``/block_results`` to the next header's ``last_results_hash`` (Merkle root of the
   deterministic ``ExecTxResult{code, data, gas_wanted, gas_used}``). Every successful tx that is a valid
   dispatch (``adapters.cosmos.transactions.DispatchRules``, the adapter's own parser) gets the next nonce,
   so the verifier knows the complete, ordered list of dispatches, not only the claimed ones.
4. Claims. A claim's tx must be in block ``claim.height``, have succeeded, and its canonical message
   (nonce included) must equal ``claim.raw`` byte for byte.
5. Other endpoints (``other_rpc_urls``) must serve the same header hash at the highest verified height.

Refusals are ``InclusionRefused`` with ``reason`` one of: "header not verified", "data hash mismatch",
"results hash mismatch", "tx not in block" (or not a dispatch), "tx failed", "message mismatch",
"endpoints disagree", "above finalized"; ``RpcUnavailable`` when no endpoint answers ("rpc unavailable") or a
``verify_rpc_urls`` endpoint does not ("verify endpoint unreachable").

Endpoints. Everything is read from ``rpc_url``, then ``fallback_rpc_urls`` in order (``light_clients.fallback``): an
endpoint that fails to connect, times out (``request_timeout_s``), answers 429, 502-504 (or another 5xx that is not a
node's JSON-RPC answer) or not JSON is demoted and the read goes on at the next. A light block (commit and validators)
is one read, and a block with its results another, each from one endpoint, so what fails a check is one endpoint's:
a commit that does not verify, a header that is not the parent of the verified one above, txs or results that do not
hash to the header's, or an unreadable answer is refused at once and that endpoint demoted
(``light_client_endpoint_refused``): the next poll reads from the next endpoint; the refusal is not papered over by
asking another in the same call (why: ``light_clients.fallback``). The bisection (``verify_to_height``) runs in a
thread; its light blocks are read on the event loop through the same endpoints. ``verify_rpc_urls`` stay a
cross-check: each must serve the verified header, a refusal says which one (by index) was unreachable or disagreed.
Endpoints are logged by index, never by URL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import structlog
from cosmpy.protos.tendermint.abci.types_pb2 import ExecTxResult

from adapters.base import DispatchClaim, Height, InclusionRefused, RpcUnavailable
from adapters.cosmos.client import node_answer
from adapters.cosmos.transactions import DispatchRules, TokenRule
from adapters.endpoints import Endpoints
from adapters.message import Domain
from light_clients.fallback import (
    VERIFY_ENDPOINTS,
    Endpoint,
    EndpointHttp,
    FallbackReads,
    NotAnAnswer,
    Served,
    ask_verify_endpoint,
    urls_of,
)
from light_clients.tendermint.bisection import verify_to_height
from light_clients.tendermint.blocks import Header, LightBlock, TrustedState
from light_clients.tendermint.errors import LightBlockParseError, TendermintLightClientError, VerificationFailed
from light_clients.tendermint.hashing import header_hash, merkle_root, validator_set_hash
from light_clients.tendermint.rpc_json import (
    parse_block_response,
    parse_commit_response,
    parse_validators_response,
)
from light_clients.tendermint.verifier import Success, VerifyOptions, verify_commit

log = structlog.get_logger("light_clients.tendermint.inclusion")
FETCH_CHUNK = 16
RPC_ENDPOINTS = "rpc_url and fallback_rpc_urls"
REQUESTS_PER_LIGHT_BLOCK = 3  # commit, validators, the next validators
T = TypeVar("T")


class _RpcLightBlocks:
    """The ``LightBlockProvider`` of ``verify_to_height``, which runs in a thread: each light block is read on the
    verifier's event loop (``read``: the first endpoint that answers); ``served_by`` keeps the endpoint that served
    each height, so a block that fails verification is refused as that endpoint's."""

    def __init__(self, read: Callable[[int], Coroutine[Any, Any, Served[LightBlock]]],
                 loop: asyncio.AbstractEventLoop, wait_s: float) -> None:
        self._read = read
        self._loop = loop
        self._wait_s = wait_s
        self.served_by: dict[int, Endpoint] = {}

    def light_block(self, height: int) -> LightBlock:
        future = asyncio.run_coroutine_threadsafe(self._read(height), self._loop)
        try:
            served = future.result(self._wait_s)
        except TimeoutError:
            future.cancel()
            raise
        self.served_by[height] = served.endpoint
        return served.answer


@dataclass(frozen=True, slots=True)
class _Block:
    """A block's header, txs and their results, as one endpoint served them."""

    header: Header
    txs: list[bytes]
    results: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _SeenTx:
    height: int
    raw: bytes | None  # the canonical message when the tx is a successful valid dispatch
    problem: str       # why it is not (reason for InclusionRefused), or ""


class CosmosInclusionVerifier:
    """Verifies dispatch claims of one Cosmos origin (``adapters.base.InclusionVerifier``).

    ``rpc_urls``: the chain's CometBFT RPC endpoints in order (``rpc_url``, then ``fallback_rpc_urls``), or one URL;
    ``other_rpc_urls``: its ``verify_rpc_urls``; ``timeout_s``: what one request to one endpoint may take (the chain's
    ``request_timeout_s``). ``tokens`` must be the origin's ``TokenRule``s
    (``adapters.cosmos.transactions.tokens_from_config``), the same the adapter uses, so both build the same message
    from a tx."""

    def __init__(self, name: str, rpc_urls: str | Sequence[str], vault: str, domain: int, *,
                 other_rpc_urls: Sequence[str] = (), trusting_period_s: float, tokens: Sequence[TokenRule] = (),
                 clock_drift_s: float = 10.0, timeout_s: float = 15.0, http: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.rpc = FallbackReads(name, RPC_ENDPOINTS, Endpoints(urls_of(rpc_urls)))
        self.verify_endpoints = [Endpoint(k, url, VERIFY_ENDPOINTS) for k, url in enumerate(urls_of(other_rpc_urls))]
        self.rules = DispatchRules(Domain(domain), vault, tuple(tokens))
        self.options = VerifyOptions.from_seconds(trusting_period_s, clock_drift_s)
        self._requests = EndpointHttp(http or httpx.AsyncClient(timeout=timeout_s), timeout_s)
        # what a light block read may take at most, every endpoint failing its requests: the bisection thread's wait
        self._light_block_wait_s = len(self.rpc.healthy()) * REQUESTS_PER_LIGHT_BLOCK * timeout_s + 5.0
        self._trusted: TrustedState | None = None
        self._walked = 0                  # blocks 1..walked are verified and their dispatches counted
        self._walked_hash = b""           # header hash of block ``walked``
        self._count = 0                   # valid dispatches in blocks 1..walked
        self._seen: dict[str, _SeenTx] = {}  # tx hash (upper hex) -> what it is, for txs that parse as dispatches
        self._anchor_hash = b""            # header hash of block 1, the anchor
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ reads
    async def _rpc(self, endpoint: Endpoint, method: str, **params: Any) -> dict[str, Any]:
        """The ``result`` of one CometBFT RPC call to ``endpoint``. A transport failure is raised as it is (the
        fallback moves on); a JSON-RPC error (CometBFT's HTTP 500 with a JSON-RPC answer) is the node's answer."""
        response = await self._requests.get(f"{endpoint.url}/{method}", params=params)
        try:
            document = node_answer(response)  # EndpointStatus for 429, 502-504, and a 5xx that is not the node's
        except ValueError:
            raise NotAnAnswer(f"{endpoint} {method}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(document, dict):
            raise NotAnAnswer(f"{endpoint} {method}: answered with {type(document).__name__}")
        if "result" not in document:
            raise InclusionRefused(f"{endpoint}: {method} at {params}: {document.get('error')}", chain=self.name,
                                   reason="header not verified")
        return dict(document["result"])

    async def _light_block(self, height: int) -> Served[LightBlock]:
        return await self.rpc.read_or_unavailable(
            f"light block {height}", lambda endpoint: self._light_block_from(endpoint, height))

    async def _light_block_from(self, endpoint: Endpoint, height: int) -> LightBlock:
        commit = await self._rpc(endpoint, "commit", height=height)
        validators = await self._rpc(endpoint, "validators", height=height, per_page=100)
        try:
            signed_header = parse_commit_response(commit)
            current = parse_validators_response(validators)
            if validator_set_hash(current) == signed_header.header.next_validators_hash:
                return LightBlock(signed_header, current, current)
            following = await self._rpc(endpoint, "validators", height=height + 1, per_page=100)
            return LightBlock(signed_header, current, parse_validators_response(following))
        except LightBlockParseError as exc:
            raise self.rpc.refusal(endpoint, f"light block {height} from {endpoint}: {exc}",
                                   "header not verified") from exc

    async def _block(self, height: int) -> Served[_Block]:
        return await self.rpc.read_or_unavailable(
            f"block {height}", lambda endpoint: self._block_from(endpoint, height))

    async def _block_from(self, endpoint: Endpoint, height: int) -> _Block:
        block, results = await asyncio.gather(self._rpc(endpoint, "block", height=height),
                                              self._rpc(endpoint, "block_results", height=height))
        try:
            _, header = parse_block_response(block)
            txs = [base64.b64decode(tx) for tx in (block["block"]["data"].get("txs") or [])]
            return _Block(header, txs, list(results.get("txs_results") or []))
        except (LightBlockParseError, KeyError, TypeError, ValueError) as exc:
            raise self.rpc.refusal(endpoint, f"block {height} from {endpoint} is unreadable: {exc}",
                                   "header not verified") from exc

    # ------------------------------------------------------------------ headers
    async def _anchor(self) -> TrustedState:
        if self._trusted is None:
            served = await self._light_block(1)
            block = served.answer
            verdict = verify_commit(block.signed_header, block.validators)
            if verdict != Success() or validator_set_hash(block.validators) != block.header.validators_hash:
                raise self.rpc.refusal(served.endpoint, f"genesis commit from {served.endpoint} does not verify: "
                                       f"{verdict}", "header not verified")
            self._trusted = TrustedState.of(block)
            self._anchor_hash = header_hash(block.header)
            log.info("light_client_anchor", chain=self.name, height=1, hash=header_hash(block.header).hex(),
                     validators_hash=block.header.validators_hash.hex(), endpoint=served.endpoint.index)
        return self._trusted

    async def _verified_header(self, height: int) -> Header:
        trusted = await self._anchor()
        if height == trusted.height:
            return trusted.header
        provider = _RpcLightBlocks(self._light_block, asyncio.get_running_loop(), self._light_block_wait_s)
        try:
            blocks = await asyncio.to_thread(verify_to_height, trusted, height, provider, self.options)
        except VerificationFailed as exc:
            served = provider.served_by.get(exc.height)
            if served is None:
                raise InclusionRefused(f"height {height}: {exc}", chain=self.name,
                                       reason="header not verified") from exc
            raise self.rpc.refusal(served, f"height {height}: the light block {exc.height} from {served} does not "
                                   f"verify: {exc.verdict}", "header not verified") from exc
        except TendermintLightClientError as exc:
            raise InclusionRefused(f"height {height}: {exc}", chain=self.name, reason="header not verified") from exc
        except TimeoutError as exc:  # the event loop never answered the bisection thread
            raise RpcUnavailable(f"height {height}: no light block within {self._light_block_wait_s:.0f} s",
                                 chain=self.name, reason="rpc unavailable") from exc
        self._trusted = TrustedState.of(blocks[-1])
        return blocks[-1].header

    @staticmethod
    def _results_root(results: Sequence[dict[str, Any]]) -> bytes:
        return merkle_root([ExecTxResult(
            code=int(r.get("code") or 0), data=base64.b64decode(r.get("data") or ""),
            gas_wanted=int(r.get("gas_wanted") or 0), gas_used=int(r.get("gas_used") or 0),
        ).SerializeToString() for r in results])

    async def _fetch(self, heights: Sequence[int]) -> dict[int, Served[_Block]]:
        fetched: dict[int, Served[_Block]] = {}
        for start in range(0, len(heights), FETCH_CHUNK):
            chunk = heights[start:start + FETCH_CHUNK]
            for h, block in zip(chunk, await asyncio.gather(*(self._block(h) for h in chunk)), strict=True):
                fetched[h] = block
        return fetched

    async def _walk_to(self, height: int) -> None:
        """Verify and count every block up to ``height`` (needs ``height + 1`` for its results hash)."""
        if height <= self._walked:
            return
        top = await self._verified_header(height + 1)
        await self._check_other_endpoints(height + 1, header_hash(top))
        heights = list(range(self._walked + 1, height + 1))
        fetched = await self._fetch(heights)
        child = top
        for h in reversed(heights):  # link every header to the verified one above it
            served = fetched[h]
            header = served.answer.header
            if header.height != h or header_hash(header) != child.last_block_id.hash:
                raise self.rpc.refusal(served.endpoint, f"header {h} from {served.endpoint} is not the parent of "
                                       f"verified header {h + 1}", "header not verified")
            child = header
        if not self._walked:
            anchor = await self._anchor() if self._anchor_hash == b"" else None
            if anchor is not None:
                self._anchor_hash = header_hash(anchor.header)
        if (self._walked and child.last_block_id.hash != self._walked_hash) or (
                not self._walked and header_hash(child) != self._anchor_hash):
            raise InclusionRefused(f"header {heights[0]} does not follow the walked chain", chain=self.name,
                                   reason="header not verified")
        for h in heights:  # every block checked before any is counted: a refusal leaves the count as it was
            self._check_contents(h, fetched[h], fetched[h + 1].answer.header if h + 1 in fetched else top)
        for h in heights:
            self._count_dispatches(h, fetched[h].answer)
        self._walked, self._walked_hash = height, header_hash(fetched[height].answer.header)

    def _check_contents(self, height: int, served: Served[_Block], results_header: Header) -> None:
        """Block ``height``'s txs must hash to its header's data_hash, its results to the next header's
        last_results_hash (``results_header``, verified)."""
        block, endpoint = served.answer, served.endpoint
        if merkle_root([hashlib.sha256(tx).digest() for tx in block.txs]) != block.header.data_hash:
            raise self.rpc.refusal(endpoint, f"block {height} from {endpoint}: txs do not hash to data_hash",
                                   "data hash mismatch")
        try:
            results_root = self._results_root(block.results)
        except (AttributeError, TypeError, ValueError) as exc:
            raise self.rpc.refusal(endpoint, f"block {height} from {endpoint}: unreadable results: {exc}",
                                   "results hash mismatch") from exc
        if len(block.results) != len(block.txs) or results_root != results_header.last_results_hash:
            raise self.rpc.refusal(endpoint, f"block {height} from {endpoint}: results do not hash to "
                                      f"last_results_hash of {height + 1}", "results hash mismatch")

    def _count_dispatches(self, height: int, block: _Block) -> None:
        """Record the dispatches of a checked block, each successful valid one with the next nonce."""
        for tx, result in zip(block.txs, block.results, strict=True):
            parsed = self.rules.parse(tx)
            if parsed is None:
                continue
            tx_hash = hashlib.sha256(tx).hexdigest().upper()
            if int(result.get("code") or 0) != 0:
                self._seen[tx_hash] = _SeenTx(height, None, "tx failed")
                continue
            message = parsed.message(self._count, self.rules.domain)
            self._seen[tx_hash] = _SeenTx(height, message.encode(), "")
            self._count += 1

    async def _check_other_endpoints(self, height: int, expected: bytes) -> None:
        """Every ``verify_rpc_urls`` endpoint must serve the verified header at ``height``."""
        for verify in self.verify_endpoints:
            commit = await ask_verify_endpoint(self.name, verify, lambda e: self._rpc(e, "commit", height=height))
            try:
                theirs = header_hash(parse_commit_response(commit).header)
            except LightBlockParseError as exc:
                raise InclusionRefused(f"{verify} serves an unreadable commit at {height}: {exc}", chain=self.name,
                                       reason="endpoints disagree") from exc
            if theirs != expected:
                log.warning("rpc_endpoints_disagree", chain=self.name, height=height, other_endpoints=VERIFY_ENDPOINTS,
                            other=verify.index, ours=expected.hex(), theirs=theirs.hex())
                raise InclusionRefused(f"{verify} serves another header at {height}", chain=self.name,
                                       reason="endpoints disagree")

    # ------------------------------------------------------------------ claims
    async def verify_dispatches(self, claims: Sequence[DispatchClaim], finalized: Height) -> None:
        if not claims:
            return
        async with self._lock:
            highest = max(c.height for c in claims)
            # the adapter's finalized height is one below the latest commit, so header ``highest + 1`` (whose
            # last_results_hash proves the claim's results) exists for every claim at or below it
            if highest > finalized:
                raise InclusionRefused(f"claim at {highest} is above the finalized height {finalized}",
                                       chain=self.name, reason="above finalized")
            await self._walk_to(highest)
            for claim in claims:
                seen = self._seen.get(str(claim.tx_hash).upper().removeprefix("0X"))
                if seen is None or seen.height != claim.height:
                    raise InclusionRefused(f"tx {claim.tx_hash} is not a dispatch in block {claim.height}",
                                           chain=self.name, reason="tx not in block")
                if seen.raw is None:
                    raise InclusionRefused(f"tx {claim.tx_hash} failed", chain=self.name, reason=seen.problem)
                if seen.raw != claim.raw:
                    raise InclusionRefused(f"tx {claim.tx_hash} dispatched another message", chain=self.name,
                                           reason="message mismatch")

    async def close(self) -> None:
        await self._requests.aclose()
