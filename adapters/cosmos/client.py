"""HTTP access to one Cosmos chain: CometBFT RPC (``GET /<method>``) and the Cosmos REST gateway, each over its
endpoints in fallback order or by quorum (``rpc_mode``), and the mapping of what goes wrong onto the ``AdapterError``
family.

Endpoints. RPC requests go to ``rpc_url``, then ``fallback_rpc_urls``; REST reads and broadcasts to ``rest_url``, then
``fallback_rest_urls`` (the shared rules of ``adapters.endpoints``: ``first_answer``; one that fails to connect, times
out or answers HTTP 429/5xx is demoted). CometBFT answers every JSON-RPC error with HTTP 500 and the gateway a gRPC
error with its HTTP status, so a 5xx carrying such a JSON answer is the node's answer, not a failing endpoint; 429,
502, 503 and 504 always are (rate limited, or a gateway without its node). ``endpoint_health`` numbers them all: the
RPC endpoints from 0, then the REST ones.

Quorum mode (``rpc_mode = "quorum"``; the vote of ``adapters.endpoints.QuorumVote``, by EVM's rules in
``adapters.evm.quorum``): each request goes to every ready endpoint of its kind at once, RPC and REST voting
separately (each with its own quorum). Reads are accepted when a quorum answered identically (HTTP status and JSON,
less the JSON-RPC ``id``); the others are outvoted and counted (``relayer_rpc_quorum_disagreements_total``: the RPC
method, or the REST path's first four segments, never an address); without a quorum, ``RpcUnavailable`` ("no
quorum"), which the pipeline retries. ``status``: the answer of an endpoint at the quorum-th highest
``latest_block_height`` (``quorum_height``). ``commit``, ``block``, ``block_results`` and ``validators`` without a
height (the latest): a quorum's identical answer, else pinned at the quorum-th highest of the heights returned and
read again there, by agreement. Balances and accounts at the latest height are by agreement only, not pinned (they
change only when the account does): a lagging endpoint's answer fails the read now and then, and its retry agrees.
Broadcasts go to every ready REST endpoint, accepted when any accepts (code 0, or 19: already known).

    httpx transport error, timeout, 429/5xx from the last endpoint  -> RpcUnavailable
    JSON-RPC error, other HTTP error status, bad JSON               -> RpcError (CometBFT's "... not found":
                                                                       TxNotFound)
    broadcast refused: code 5                     -> InsufficientFunds
                       code 19                    -> accepted (already in the mempool or the chain: e.g. sent before
                                                     through an endpoint that then timed out)
                       code 32                    -> SequenceMismatch (``expected``: the sequence the chain wants)
                       any other code             -> TxReverted (reason "code N: raw_log")
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from google.protobuf.message import DecodeError

from adapters.base import (
    AdapterError,
    InsufficientFunds,
    RpcError,
    RpcUnavailable,
    SequenceMismatch,
    TxNotFound,
    TxReverted,
)
from adapters.endpoints import (
    Endpoints,
    EndpointStatus,
    QuorumVote,
    first_answer,
    is_failing_status,
    once_more_on_reset,
)

SDK_INSUFFICIENT_FUNDS = 5
SDK_TX_IN_MEMPOOL_CACHE = 19
GATEWAY_FAILURES = frozenset({429, 502, 503, 504})  # never a node's answer, whatever the body
SDK_UNAUTHORIZED = 4
SDK_SEQUENCE_MISMATCH = 32
SEARCH_PAGE = 100
Answer = tuple[Any, int]  # (JSON answer, HTTP status) of one endpoint
LATEST_HEIGHT_OF: dict[str, Callable[[dict[str, Any]], Any]] = {  # RPC reads at the latest height when not given one
    "commit": lambda r: r["signed_header"]["header"]["height"],
    "block": lambda r: r["block"]["header"]["height"],
    "block_results": lambda r: r["height"],
    "validators": lambda r: r["block_height"],
}


class RpcAnswerError(RpcError):
    """The node answered a JSON-RPC error (``data`` holds CometBFT's text, e.g. "tx (...) not found")."""


def map_exception(exc: BaseException, *, chain: str, context: str) -> AdapterError:
    """The ``AdapterError`` for an exception raised below the adapter's boundary."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, EndpointStatus):  # every endpoint failed, the last with HTTP 429/5xx
        return RpcUnavailable(f"{context}: {exc}", chain=chain, reason="http status")
    if isinstance(exc, (httpx.TimeoutException, httpx.TransportError)):
        return RpcUnavailable(f"{context}: {type(exc).__name__}: {exc}", chain=chain, reason="unavailable")
    if isinstance(exc, httpx.HTTPStatusError):
        return RpcError(f"{context}: HTTP {exc.response.status_code}", chain=chain, reason="http status")
    if isinstance(exc, (ValueError, KeyError, TypeError, IndexError, DecodeError)):
        return RpcError(f"{context}: unexpected answer: {type(exc).__name__}: {exc}", chain=chain,
                        reason="bad answer")
    return RpcError(f"{context}: {type(exc).__name__}: {exc}", chain=chain, reason="unexpected error")


def broadcast_error(code: int, codespace: str, raw_log: str, *, chain: str) -> AdapterError:
    text = f"code {code} ({codespace}): {raw_log}"
    if code == SDK_INSUFFICIENT_FUNDS:
        return InsufficientFunds(text, chain=chain, reason="insufficient funds")
    if code == SDK_SEQUENCE_MISMATCH:  # "account sequence mismatch, expected 7, got 5: incorrect account sequence"
        expected = re.search(r"expected (\d+), got", raw_log)
        return SequenceMismatch(text, chain=chain, expected=int(expected.group(1)) if expected else None)
    return TxReverted(text, chain=chain, reason=f"code {code}: {raw_log}")


def node_answer(response: httpx.Response) -> Any:
    """The JSON the node answered; ``EndpointStatus`` when the endpoint failed instead: HTTP 429, 502, 503 or 504, or
    another 5xx without a node's JSON answer (a JSON-RPC error, or the gateway's gRPC error)."""
    status = response.status_code
    try:
        document = response.json()
    except ValueError:
        if is_failing_status(status):
            raise EndpointStatus(status) from None
        raise
    if is_failing_status(status) and (status in GATEWAY_FAILURES or not _from_node(document)):
        raise EndpointStatus(status)
    return document


def _from_node(document: Any) -> bool:
    return isinstance(document, dict) and ("jsonrpc" in document or {"code", "message"} <= document.keys())


def _urls(urls: str | Sequence[str]) -> list[str]:
    return [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]


class CosmosHttp:
    """CometBFT RPC and REST calls of one chain, each over its endpoints in fallback order, or by quorum with
    ``quorums`` (how many RPC, and REST, endpoints must agree); every failure comes out as an ``AdapterError``.
    ``rpc_urls``, ``rest_urls``: one URL, or the endpoints in order."""

    def __init__(self, chain: str, rpc_urls: str | Sequence[str], rest_urls: str | Sequence[str], *,
                 timeout_s: float, http: httpx.AsyncClient | None = None,
                 quorums: tuple[int, int] | None = None) -> None:
        self.chain = chain
        self._rpc = Endpoints(_urls(rpc_urls))
        self._rest = Endpoints(_urls(rest_urls))
        self._votes = None if quorums is None else (
            QuorumVote(chain, self._rpc, quorums[0]),
            QuorumVote(chain, self._rest, quorums[1], first_index=len(self._rpc.urls)))
        self.rpc_url = self._rpc.urls[0]
        self.rest_url = self._rest.urls[0]
        self._http = http or httpx.AsyncClient(timeout=timeout_s)

    def endpoint_health(self) -> list[bool]:
        """Per endpoint, True unless its last request failed: the RPC endpoints (0 is rpc_url), then the REST ones."""
        return [*self._rpc.healthy(), *self._rest.healthy()]

    def take_quorum_disagreements(self) -> dict[tuple[str, int], int]:
        """In quorum mode, answers outvoted per (method, endpoint index) since the last call; else none."""
        if self._votes is None:
            return {}
        return {**self._votes[0].take_disagreements(), **self._votes[1].take_disagreements()}

    async def _request(self, rest: bool, method: str, path: str, context: str, *,
                       params: dict[str, Any] | None = None, body: Any = None) -> tuple[Any, int]:
        """(JSON answer, HTTP status) of the first endpoint of its kind that answers."""
        endpoints, first_index = (self._rest, len(self._rpc.urls)) if rest else (self._rpc, 0)

        def asker(request_params: dict[str, Any] | None) -> Callable[[int], Awaitable[Answer]]:
            async def ask(i: int) -> Answer:
                response = await once_more_on_reset(
                    lambda: self._http.request(method, endpoints.urls[i] + path, params=request_params, json=body))
                return node_answer(response), response.status_code
            return ask

        try:
            if self._votes is not None:
                return await self._voted(self._votes[int(rest)], method == "POST", path, params, asker)
            return await first_answer(endpoints, asker(params), chain=self.chain, first_index=first_index)
        except Exception as exc:
            raise map_exception(exc, chain=self.chain, context=context) from exc

    async def _voted(self, vote: QuorumVote, send: bool, path: str, params: dict[str, Any] | None,
                     asker: Callable[[dict[str, Any] | None], Callable[[int], Awaitable[Answer]]]) -> Answer:
        """What a quorum of ``vote``'s endpoints answered (the rules are in the module docstring)."""
        if send:
            asked = await vote.broadcast(asker(params))
            if not asked.answers:
                raise next(iter(asked.failures.values()))
            answers = [a for _, a in sorted(asked.answers.items())]
            return next((a for a in answers if _broadcast_accepted(a)), answers[0])
        label = _label(path)
        asked = await vote.voters(label, asker(params))
        if label == "status":
            height = vote.height(label, asked, lambda a: _height(a, _status_height), canonical)
            return next(a for _, a in sorted(asked.answers.items()) if _height(a, _status_height) == height)
        answer = vote.winner(label, asked, canonical)
        if answer is not None:
            return answer
        height_of = LATEST_HEIGHT_OF.get(label)
        if height_of is None or (params or {}).get("height") is not None:
            raise vote.no_quorum(label, asked, vote.tally(asked, canonical)[0])
        height = vote.height(label, asked, lambda a: _height(a, height_of), canonical)
        pinned = {**(params or {}), "height": height}
        return vote.agreed(label, await vote.voters(label, asker(pinned)), canonical)

    async def rpc(self, method: str, **params: Any) -> dict[str, Any]:
        document, status = await self._request(False, "GET", f"/{method}", method, params=params)
        if isinstance(document, dict) and "error" in document:
            error = document["error"]
            # "tx (HASH) not found": no code of its own
            if method == "tx" and "not found" in str(error.get("data") or ""):
                raise TxNotFound(f"{method}: {error.get('data')}", chain=self.chain, reason="not found")
            raise RpcAnswerError(f"{method}: {error.get('message')}: {error.get('data')}", chain=self.chain,
                                 reason=str(error.get("data") or error.get("message")))
        if status >= 400 or not isinstance(document, dict) or not isinstance(document.get("result"), dict):
            raise RpcError(f"{method}: HTTP {status}: no result", chain=self.chain, reason="bad answer")
        return dict(document["result"])

    async def rest(self, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of a REST GET; the caller decides what a 404 means."""
        document, status = await self._request(True, "GET", path, path, params=params or None)
        if not isinstance(document, dict):
            raise RpcError(f"{path}: not a JSON object", chain=self.chain, reason="bad answer")
        return status, document

    async def tx_search(self, query: str, *, stop: Callable[[int], bool] | None = None) -> list[dict[str, Any]]:
        """All txs matching ``query`` in chain order (every page)."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            result = await self.rpc("tx_search", query=f'"{query}"', page=page, per_page=SEARCH_PAGE,
                                    order_by='"asc"')
            txs = list(result.get("txs") or [])
            out.extend(txs)
            if not txs or len(out) >= int(result.get("total_count", 0)):
                return out
            page += 1

    async def broadcast(self, raw: bytes) -> str:
        """Broadcast (sync mode, REST); the tx hash once the node accepted it into its mempool (or already had it)."""
        document, status = await self._request(True, "POST", "/cosmos/tx/v1beta1/txs", "broadcast", body={
            "tx_bytes": base64.b64encode(raw).decode(), "mode": "BROADCAST_MODE_SYNC"})
        answer = document.get("tx_response") if isinstance(document, dict) else None
        if not isinstance(answer, dict):
            raise RpcError(f"broadcast: HTTP {status}: {document}", chain=self.chain, reason="bad answer")
        code = int(answer.get("code") or 0)
        if code == SDK_TX_IN_MEMPOOL_CACHE:
            return hashlib.sha256(raw).hexdigest().upper()
        if code != 0:
            raise broadcast_error(code, str(answer.get("codespace", "")), str(answer.get("raw_log", "")),
                                  chain=self.chain)
        return str(answer["txhash"]).upper()

    async def close(self) -> None:
        await self._http.aclose()


def canonical(answer: Answer) -> str:
    """What endpoints must agree on: the HTTP status and the JSON answer, keys sorted, less a JSON-RPC ``id``."""
    document, status = answer
    if isinstance(document, dict):
        document = {k: v for k, v in document.items() if k != "id"}
    return json.dumps([status, document], sort_keys=True, separators=(",", ":"))


def _label(path: str) -> str:
    """The metric's method: the RPC method, or a REST path's first four segments (never the address after them)."""
    parts = path.strip("/").split("/")
    return parts[0] if len(parts) == 1 else "/" + "/".join(parts[:4])


def _status_height(result: dict[str, Any]) -> Any:
    return result["sync_info"]["latest_block_height"]


def _height(answer: Answer, height_of: Callable[[dict[str, Any]], Any]) -> int | None:
    """The height ``height_of`` finds in a JSON-RPC answer's result; None when it has none."""
    document, _status = answer
    try:
        return int(height_of(document["result"]))
    except (KeyError, TypeError, ValueError):
        return None


def _broadcast_accepted(answer: Answer) -> bool:
    document, _status = answer
    response = document.get("tx_response") if isinstance(document, dict) else None
    return isinstance(response, dict) and int(response.get("code") or 0) in (0, SDK_TX_IN_MEMPOOL_CACHE)
