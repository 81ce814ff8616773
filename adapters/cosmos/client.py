"""HTTP access to one Cosmos chain: CometBFT RPC (``GET /<method>``) and the Cosmos REST gateway, each over its
endpoints in fallback order, and the mapping of what goes wrong onto the ``AdapterError`` family.

Endpoints. RPC requests go to ``rpc_url``, then ``fallback_rpc_urls``; REST reads and broadcasts to ``rest_url``, then
``fallback_rest_urls`` (the shared rules of ``adapters.endpoints``: ``first_answer``; one that fails to connect, times
out or answers HTTP 429/5xx is demoted). CometBFT answers every JSON-RPC error with HTTP 500 and the gateway a gRPC
error with its HTTP status, so a 5xx carrying such a JSON answer is the node's answer, not a failing endpoint; 429,
502, 503 and 504 always are (rate limited, or a gateway without its node). ``endpoint_health`` numbers them all: the
RPC endpoints from 0, then the REST ones.

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
import re
from collections.abc import Callable, Sequence
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
from adapters.endpoints import Endpoints, EndpointStatus, first_answer, is_failing_status, once_more_on_reset

SDK_INSUFFICIENT_FUNDS = 5
SDK_TX_IN_MEMPOOL_CACHE = 19
GATEWAY_FAILURES = frozenset({429, 502, 503, 504})  # never a node's answer, whatever the body
SDK_UNAUTHORIZED = 4
SDK_SEQUENCE_MISMATCH = 32
SEARCH_PAGE = 100


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
    """CometBFT RPC and REST calls of one chain, each over its endpoints in fallback order; every failure comes out
    as an ``AdapterError``. ``rpc_urls``, ``rest_urls``: one URL, or the endpoints in order."""

    def __init__(self, chain: str, rpc_urls: str | Sequence[str], rest_urls: str | Sequence[str], *,
                 timeout_s: float, http: httpx.AsyncClient | None = None) -> None:
        self.chain = chain
        self._rpc = Endpoints(_urls(rpc_urls))
        self._rest = Endpoints(_urls(rest_urls))
        self.rpc_url = self._rpc.urls[0]
        self.rest_url = self._rest.urls[0]
        self._http = http or httpx.AsyncClient(timeout=timeout_s)

    def endpoint_health(self) -> list[bool]:
        """Per endpoint, True unless its last request failed: the RPC endpoints (0 is rpc_url), then the REST ones."""
        return [*self._rpc.healthy(), *self._rest.healthy()]

    async def _request(self, rest: bool, method: str, path: str, context: str, *,
                       params: dict[str, Any] | None = None, body: Any = None) -> tuple[Any, int]:
        """(JSON answer, HTTP status) of the first endpoint of its kind that answers."""
        endpoints, first_index = (self._rest, len(self._rpc.urls)) if rest else (self._rpc, 0)

        async def ask(i: int) -> tuple[Any, int]:
            response = await once_more_on_reset(
                lambda: self._http.request(method, endpoints.urls[i] + path, params=params, json=body))
            return node_answer(response), response.status_code

        try:
            return await first_answer(endpoints, ask, chain=self.chain, first_index=first_index)
        except Exception as exc:
            raise map_exception(exc, chain=self.chain, context=context) from exc

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
