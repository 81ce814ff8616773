"""HTTP access to one Cosmos node: CometBFT RPC (``GET /<method>``) and the Cosmos REST gateway, and the
mapping of what goes wrong onto the ``AdapterError`` family.

    httpx transport error, timeout               -> RpcUnavailable
    JSON-RPC error, HTTP error status, bad JSON   -> RpcError (CometBFT's "... not found": TxNotFound)
    broadcast refused: code 5                     -> InsufficientFunds
                       code 32                    -> SequenceMismatch (``expected``: the sequence the chain wants)
                       any other code             -> TxReverted (reason "code N: raw_log")
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
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

SDK_INSUFFICIENT_FUNDS = 5
SDK_UNAUTHORIZED = 4
SDK_SEQUENCE_MISMATCH = 32
SEARCH_PAGE = 100


class RpcAnswerError(RpcError):
    """The node answered a JSON-RPC error (``data`` holds CometBFT's text, e.g. "tx (...) not found")."""


def map_exception(exc: BaseException, *, chain: str, context: str) -> AdapterError:
    """The ``AdapterError`` for an exception raised below the adapter's boundary."""
    if isinstance(exc, AdapterError):
        return exc
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


class CosmosHttp:
    """CometBFT RPC and REST calls of one node; every failure comes out as an ``AdapterError``."""

    def __init__(self, chain: str, rpc_url: str, rest_url: str, *, timeout_s: float,
                 http: httpx.AsyncClient | None = None) -> None:
        self.chain = chain
        self.rpc_url = rpc_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=timeout_s)

    async def _get(self, url: str, params: dict[str, Any] | None, context: str) -> Any:
        try:
            response = await self._http.get(url, params=params)
            document = response.json()
        except Exception as exc:
            raise map_exception(exc, chain=self.chain, context=context) from exc
        return document, response.status_code

    async def rpc(self, method: str, **params: Any) -> dict[str, Any]:
        document, status = await self._get(f"{self.rpc_url}/{method}", params, method)
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
        document, status = await self._get(f"{self.rest_url}{path}", params or None, path)
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
        """Broadcast (sync mode, REST); the tx hash once the node accepted it into its mempool."""
        try:
            response = await self._http.post(f"{self.rest_url}/cosmos/tx/v1beta1/txs", json={
                "tx_bytes": base64.b64encode(raw).decode(), "mode": "BROADCAST_MODE_SYNC"})
            document = response.json()
        except Exception as exc:
            raise map_exception(exc, chain=self.chain, context="broadcast") from exc
        answer = document.get("tx_response") if isinstance(document, dict) else None
        if not isinstance(answer, dict):
            raise RpcError(f"broadcast: HTTP {response.status_code}: {document}", chain=self.chain,
                           reason="bad answer")
        code = int(answer.get("code") or 0)
        if code != 0:
            raise broadcast_error(code, str(answer.get("codespace", "")), str(answer.get("raw_log", "")),
                                  chain=self.chain)
        return str(answer["txhash"]).upper()

    async def close(self) -> None:
        await self._http.aclose()
