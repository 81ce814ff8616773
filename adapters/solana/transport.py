"""Several JSON-RPC endpoints for one Solana cluster (``rpc_url``, then ``fallback_rpc_urls``), in fallback or quorum
mode (``rpc_mode``).

solana-py's ``AsyncClient`` posts every request to one URL through an httpx2 client. ``fallback_client`` gives it an
httpx2 client whose transport, ``FallbackTransport``, sends each request to the endpoints in the order
``adapters.endpoints.Endpoints`` keeps (the shared rules: ``first_answer``, ``is_endpoint_failure``): one that fails
to connect, times out (``request_timeout_s``) or answers HTTP 429/5xx is demoted and the request moves on to the
next. Every role of the adapter (reads, sends, the validators' co-sign checks) goes through it unchanged. A pooled
connection the node closed is retried once on a fresh one, a timeout never (a hung endpoint costs one timeout), so
solana-py's own transport retry is off. The last endpoint's ``EndpointStatus`` reaches the adapter's boundary as
``RpcUnavailable`` (``adapters.solana.errors``). Endpoints are named by index, never by URL.

Quorum mode (``QuorumTransport``, the vote of ``adapters.endpoints.QuorumVote``, by EVM's rules in
``adapters.evm.quorum``): each request goes to every ready endpoint at once.

* **Reads, by agreement**: the HTTP status and each call's ``error`` or ``result`` must be identical at a quorum of
  endpoints, less what honest nodes legitimately differ on: a result's ``context`` (the slot the node answered at,
  its version) and ``getSignatureStatuses``' ``confirmations`` (how deep a landed transaction is). The others are
  outvoted and counted (``relayer_rpc_quorum_disagreements_total{method}``). Without a quorum: ``RpcUnavailable``
  ("no quorum"), which the pipeline retries.
* **Heights** (``getSlot``, ``getBlockHeight``): the quorum-th highest (``quorum_height``), as ``eth_blockNumber``.
* **The latest blockhash** moves every slot: a quorum's identical answer, else the answer with the quorum-th highest
  ``lastValidBlockHeight`` (a minority cannot stretch a transaction's lifetime past every honest node's; a bad
  blockhash costs a refused send, retried).
* **Sends** (``sendTransaction``): to every ready endpoint, accepted when any accepts.

``verify_rpc_urls`` (the validators' cross-check of a Solana origin) are separate clients, not fallbacks.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from solana.rpc.async_api import AsyncClient

from adapters.endpoints import (
    Asked,
    Endpoints,
    EndpointStatus,
    QuorumVote,
    first_answer,
    is_failing_status,
    once_more_on_reset,
)

HEIGHT_METHODS = frozenset({"getSlot", "getBlockHeight"})
SEND_METHODS = frozenset({"sendTransaction"})


class FallbackTransport(httpx2.AsyncBaseTransport):
    """httpx2 transport sending each request to the first endpoint of ``endpoints`` that answers (the request's own
    URL is replaced by the endpoint's)."""

    def __init__(self, chain: str, endpoints: Endpoints, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._chain = chain
        self._endpoints = endpoints
        self._inner = inner or httpx2.AsyncHTTPTransport(http2=True)  # what solana-py's own client uses

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        async def ask(i: int) -> httpx2.Response:
            return await self._send(retarget(request, self._endpoints.urls[i]))

        return await first_answer(self._endpoints, ask, chain=self._chain)

    async def _send(self, request: httpx2.Request) -> httpx2.Response:
        response = await once_more_on_reset(lambda: self._inner.handle_async_request(request))
        if is_failing_status(response.status_code):
            await response.aclose()
            raise EndpointStatus(response.status_code)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def retarget(request: httpx2.Request, url: str) -> httpx2.Request:
    """``request`` (its body already read) addressed to ``url``: its Host header follows the new URL."""
    headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"host"]
    return httpx2.Request(request.method, url, headers=headers, content=request.content,
                          extensions=request.extensions)


def fallback_client(chain: str, endpoints: Endpoints, *, timeout_s: float,
                    inner: httpx2.AsyncBaseTransport | None = None) -> AsyncClient:
    """A solana-py client whose requests go to ``endpoints`` in fallback order."""
    return _client_over(endpoints, FallbackTransport(chain, endpoints, inner), timeout_s)


def quorum_client(vote: QuorumVote, *, timeout_s: float,
                  inner: httpx2.AsyncBaseTransport | None = None) -> AsyncClient:
    """A solana-py client whose requests a quorum of ``vote``'s endpoints answers."""
    return _client_over(vote.endpoints, QuorumTransport(vote, inner), timeout_s)


def _client_over(endpoints: Endpoints, transport: httpx2.AsyncBaseTransport, timeout_s: float) -> AsyncClient:
    client = AsyncClient(endpoints.urls[0], timeout=timeout_s, max_transport_retries=0)
    # solana-py builds its httpx2 client itself and takes no transport: swapped before its first request
    client._provider.session = httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(timeout_s))
    return client


@dataclass(frozen=True, slots=True)
class Reply:
    """One endpoint's answer: its HTTP status, body, and the body's JSON (None when it is not JSON)."""

    status: int
    content: bytes
    doc: Any


class QuorumTransport(httpx2.AsyncBaseTransport):
    """httpx2 transport sending each request to every ready endpoint and answering what a quorum of them said (the
    rules are in the module docstring)."""

    def __init__(self, vote: QuorumVote, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self._vote = vote
        self._inner = inner or httpx2.AsyncHTTPTransport(http2=True)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        method = _method_of(body)
        ask = self._asker(request)
        if method in SEND_METHODS:
            return _response(request, await self._broadcast(ask))
        asked = await self._vote.voters(method, ask)
        if method in HEIGHT_METHODS and isinstance(body, dict):
            height = self._vote.height(method, asked, _int_result, self._key(method))
            return _response(request, _json_reply({"jsonrpc": "2.0", "id": body.get("id"), "result": height}))
        answer = self._vote.winner(method, asked, self._key(method))
        if answer is None and method == "getLatestBlockhash":
            answer = self._freshest_a_quorum_backs(method, asked)
        if answer is None:
            raise self._vote.no_quorum(method, asked, self._vote.tally(asked, self._key(method))[0])
        return _response(request, answer)

    def _asker(self, request: httpx2.Request) -> Callable[[int], Awaitable[Reply]]:
        async def ask(i: int) -> Reply:
            response = await once_more_on_reset(
                lambda: self._inner.handle_async_request(retarget(request, self._vote.endpoints.urls[i])))
            try:
                if is_failing_status(response.status_code):
                    raise EndpointStatus(response.status_code)
                content = await response.aread()
            finally:
                await response.aclose()
            return Reply(response.status_code, content, _json_or_none(content))
        return ask

    @staticmethod
    def _key(method: str) -> Callable[[Reply], str]:
        return lambda reply: canonical(method, reply)

    async def _broadcast(self, ask: Callable[[int], Awaitable[Reply]]) -> Reply:
        asked = await self._vote.broadcast(ask)
        if not asked.answers:
            raise next(iter(asked.failures.values()))
        replies = [r for _, r in sorted(asked.answers.items())]
        return next((r for r in replies if _accepted(r)), replies[0])

    def _freshest_a_quorum_backs(self, method: str, asked: Asked[Reply]) -> Reply | None:
        """Of differing latest blockhashes, one with the quorum-th highest ``lastValidBlockHeight``."""
        height = self._vote.height(method, asked, _last_valid_height, self._key(method))
        return next(r for _, r in sorted(asked.answers.items()) if _last_valid_height(r) == height)

    async def aclose(self) -> None:
        await self._inner.aclose()


def canonical(method: str, reply: Reply) -> str:
    """What endpoints must agree on: the HTTP status and each call's error or result, less the answer's ``context``
    (and a signature status's ``confirmations``), keys sorted, a batch ordered by id."""
    if reply.doc is None:
        return json.dumps([reply.status, reply.content.decode(errors="replace")])
    calls = reply.doc if isinstance(reply.doc, list) else [reply.doc]
    outcomes = sorted((_outcome(method, c) for c in calls), key=lambda o: json.dumps(o.get("id")))
    return json.dumps([reply.status, outcomes], sort_keys=True, separators=(",", ":"))


def _outcome(method: str, call: Any) -> dict[str, Any]:
    if not isinstance(call, dict):
        return {"other": call}
    if call.get("error") is not None:
        return {"id": call.get("id"), "error": call["error"]}
    result = call.get("result")
    if isinstance(result, dict) and "context" in result:
        result = result.get("value")
    if method == "getSignatureStatuses" and isinstance(result, list):
        result = [{k: v for k, v in s.items() if k != "confirmations"} if isinstance(s, dict) else s
                  for s in result]
    return {"id": call.get("id"), "result": result}


def _method_of(body: Any) -> str:
    first = body[0] if isinstance(body, list) and body else body
    return str(first.get("method", "batch")) if isinstance(first, dict) else "batch"


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _json_reply(doc: Any) -> Reply:
    return Reply(200, json.dumps(doc).encode(), doc)


def _int_result(reply: Reply) -> int | None:
    result = reply.doc.get("result") if isinstance(reply.doc, dict) else None
    return result if isinstance(result, int) and not isinstance(result, bool) else None


def _last_valid_height(reply: Reply) -> int | None:
    result = reply.doc.get("result") if isinstance(reply.doc, dict) else None
    value = result.get("value") if isinstance(result, dict) else None
    height = value.get("lastValidBlockHeight") if isinstance(value, dict) else None
    return height if isinstance(height, int) else None


def _accepted(reply: Reply) -> bool:
    return reply.status < 400 and isinstance(reply.doc, dict) and reply.doc.get("error") is None \
        and "result" in reply.doc


def _response(request: httpx2.Request, reply: Reply) -> httpx2.Response:
    return httpx2.Response(reply.status, headers={"content-type": "application/json"}, content=reply.content,
                           request=request)
