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
"endpoints disagree", "above finalized".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from cosmpy.protos.tendermint.abci.types_pb2 import ExecTxResult

from adapters.base import DispatchClaim, Height, InclusionRefused, RpcUnavailable
from adapters.cosmos.transactions import DispatchRules, TokenRule
from adapters.message import Domain
from light_clients.tendermint.bisection import verify_to_height
from light_clients.tendermint.blocks import Header, LightBlock, TrustedState, ValidatorSet
from light_clients.tendermint.errors import LightBlockUnavailable, TendermintLightClientError
from light_clients.tendermint.hashing import header_hash, merkle_root, validator_set_hash
from light_clients.tendermint.rpc_json import (
    parse_block_response,
    parse_commit_response,
    parse_validators_response,
)
from light_clients.tendermint.verifier import Success, VerifyOptions, verify_commit

log = structlog.get_logger("light_clients.tendermint.inclusion")
FETCH_CHUNK = 16


class _RpcLightBlocks:
    """A synchronous ``LightBlockProvider`` over CometBFT RPC (``verify_to_height`` runs in a thread)."""

    def __init__(self, rpc_url: str, timeout_s: float) -> None:
        self._client = httpx.Client(timeout=timeout_s)
        self._url = rpc_url.rstrip("/")

    def _get(self, method: str, height: int) -> Any:
        params: dict[str, Any] = {"height": height}
        if method == "validators":
            params["per_page"] = 100
        try:
            document = self._client.get(f"{self._url}/{method}", params=params).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise LightBlockUnavailable(height, f"{method}: {exc}") from exc
        if "result" not in document:
            raise LightBlockUnavailable(height, f"{method}: {document.get('error')}")
        return document

    def validators(self, height: int) -> ValidatorSet:
        return parse_validators_response(self._get("validators", height))

    def light_block(self, height: int) -> LightBlock:
        signed_header = parse_commit_response(self._get("commit", height))
        validators = self.validators(height)
        if validator_set_hash(validators) == signed_header.header.next_validators_hash:
            next_validators = validators
        else:
            next_validators = self.validators(height + 1)
        return LightBlock(signed_header, validators, next_validators)

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True, slots=True)
class _SeenTx:
    height: int
    raw: bytes | None  # the canonical message when the tx is a successful valid dispatch
    problem: str       # why it is not (reason for InclusionRefused), or ""


class CosmosInclusionVerifier:
    """Verifies dispatch claims of one Cosmos origin (``adapters.base.InclusionVerifier``).

    ``tokens`` must be the origin's ``TokenRule``s (``adapters.cosmos.transactions.tokens_from_config``), the
    same the adapter uses, so both build the same message from a tx."""

    def __init__(self, name: str, rpc_url: str, vault: str, domain: int, *, other_rpc_urls: Sequence[str] = (),
                 trusting_period_s: float, tokens: Sequence[TokenRule] = (), clock_drift_s: float = 10.0,
                 timeout_s: float = 15.0, http: httpx.AsyncClient | None = None) -> None:
        self.name = name
        self.rpc_url = rpc_url.rstrip("/")
        self.other_rpc_urls = [u.rstrip("/") for u in other_rpc_urls]
        self.rules = DispatchRules(Domain(domain), vault, tuple(tokens))
        self.options = VerifyOptions.from_seconds(trusting_period_s, clock_drift_s)
        self._http = http or httpx.AsyncClient(timeout=timeout_s)
        self._provider = _RpcLightBlocks(rpc_url, timeout_s)
        self._trusted: TrustedState | None = None
        self._walked = 0                  # blocks 1..walked are verified and their dispatches counted
        self._walked_hash = b""           # header hash of block ``walked``
        self._count = 0                   # valid dispatches in blocks 1..walked
        self._seen: dict[str, _SeenTx] = {}  # tx hash (upper hex) -> what it is, for txs that parse as dispatches
        self._anchor_hash = b""            # header hash of block 1, the anchor
        self._lock = asyncio.Lock()

    async def _rpc(self, url: str, method: str, **params: Any) -> dict[str, Any]:
        try:
            response = await self._http.get(f"{url}/{method}", params=params)
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RpcUnavailable(f"{method}: {exc}", chain=self.name, reason="unavailable") from exc
        if not isinstance(document, dict) or "result" not in document:
            raise InclusionRefused(f"{method} at {params}: {document.get('error')}", chain=self.name,
                                   reason="header not verified")
        return dict(document["result"])

    async def _anchor(self) -> TrustedState:
        if self._trusted is None:
            try:
                block = await asyncio.to_thread(self._provider.light_block, 1)
            except TendermintLightClientError as exc:
                raise InclusionRefused(f"genesis block: {exc}", chain=self.name, reason="header not verified") from exc
            verdict = verify_commit(block.signed_header, block.validators)
            if verdict != Success() or validator_set_hash(block.validators) != block.header.validators_hash:
                raise InclusionRefused(f"genesis commit does not verify: {verdict}", chain=self.name,
                                       reason="header not verified")
            self._trusted = TrustedState.of(block)
            self._anchor_hash = header_hash(block.header)
            log.info("light_client_anchor", chain=self.name, height=1, hash=header_hash(block.header).hex(),
                     validators_hash=block.header.validators_hash.hex())
        return self._trusted

    async def _verified_header(self, height: int) -> Header:
        trusted = await self._anchor()
        if height == trusted.height:
            return trusted.header
        try:
            blocks = await asyncio.to_thread(verify_to_height, trusted, height, self._provider, self.options)
        except TendermintLightClientError as exc:
            raise InclusionRefused(f"height {height}: {exc}", chain=self.name, reason="header not verified") from exc
        self._trusted = TrustedState.of(blocks[-1])
        return blocks[-1].header

    async def _block(self, height: int) -> tuple[Header, list[bytes], list[dict[str, Any]]]:
        block, results = await asyncio.gather(self._rpc(self.rpc_url, "block", height=height),
                                              self._rpc(self.rpc_url, "block_results", height=height))
        _, header = parse_block_response(block)
        txs = [base64.b64decode(tx) for tx in (block["block"]["data"].get("txs") or [])]
        return header, txs, list(results.get("txs_results") or [])

    @staticmethod
    def _results_root(results: Sequence[dict[str, Any]]) -> bytes:
        return merkle_root([ExecTxResult(
            code=int(r.get("code") or 0), data=base64.b64decode(r.get("data") or ""),
            gas_wanted=int(r.get("gas_wanted") or 0), gas_used=int(r.get("gas_used") or 0),
        ).SerializeToString() for r in results])

    async def _walk_to(self, height: int) -> None:
        """Verify and count every block up to ``height`` (needs ``height + 1`` for its results hash)."""
        if height <= self._walked:
            return
        top = await self._verified_header(height + 1)
        await self._check_other_endpoints(height + 1, header_hash(top))
        heights = list(range(self._walked + 1, height + 1))
        fetched: dict[int, tuple[Header, list[bytes], list[dict[str, Any]]]] = {}
        for start in range(0, len(heights), FETCH_CHUNK):
            chunk = heights[start:start + FETCH_CHUNK]
            for h, block in zip(chunk, await asyncio.gather(*(self._block(h) for h in chunk)), strict=True):
                fetched[h] = block
        child = top
        for h in reversed(heights):  # link every header to the verified one above it
            header = fetched[h][0]
            if header.height != h or header_hash(header) != child.last_block_id.hash:
                raise InclusionRefused(f"header {h} is not the parent of verified header {h + 1}",
                                       chain=self.name, reason="header not verified")
            child = header
        if not self._walked:
            anchor = await self._anchor() if self._anchor_hash == b"" else None
            if anchor is not None:
                self._anchor_hash = header_hash(anchor.header)
        if (self._walked and child.last_block_id.hash != self._walked_hash) or (
                not self._walked and header_hash(child) != self._anchor_hash):
            raise InclusionRefused(f"header {heights[0]} does not follow the walked chain", chain=self.name,
                                   reason="header not verified")
        for h in heights:
            header, txs, results = fetched[h]
            results_header = fetched[h + 1][0] if h + 1 in fetched else top
            if merkle_root([hashlib.sha256(tx).digest() for tx in txs]) != header.data_hash:
                raise InclusionRefused(f"block {h}: txs do not hash to data_hash", chain=self.name,
                                       reason="data hash mismatch")
            if len(results) != len(txs) or self._results_root(results) != results_header.last_results_hash:
                raise InclusionRefused(f"block {h}: results do not hash to last_results_hash of {h + 1}",
                                       chain=self.name, reason="results hash mismatch")
            for tx, result in zip(txs, results, strict=True):
                parsed = self.rules.parse(tx)
                if parsed is None:
                    continue
                tx_hash = hashlib.sha256(tx).hexdigest().upper()
                if int(result.get("code") or 0) != 0:
                    self._seen[tx_hash] = _SeenTx(h, None, "tx failed")
                    continue
                message = parsed.message(self._count, self.rules.domain)
                self._seen[tx_hash] = _SeenTx(h, message.encode(), "")
                self._count += 1
        self._walked, self._walked_hash = height, header_hash(fetched[height][0])

    async def _check_other_endpoints(self, height: int, expected: bytes) -> None:
        for url in self.other_rpc_urls:
            commit = await self._rpc(url, "commit", height=height)
            theirs = header_hash(parse_commit_response(commit).header)
            if theirs != expected:
                log.warning("rpc_endpoints_disagree", chain=self.name, height=height, url=url,
                            ours=expected.hex(), theirs=theirs.hex())
                raise InclusionRefused(f"{url} serves another header at {height}", chain=self.name,
                                       reason="endpoints disagree")

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
        await self._http.aclose()
        self._provider.close()
