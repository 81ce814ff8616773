"""Several JSON-RPC endpoints for one Solana cluster (``rpc_url``, then ``fallback_rpc_urls``), in fallback mode.

solana-py's ``AsyncClient`` posts every request to one URL through an httpx2 client. ``fallback_client`` gives it an
httpx2 client whose transport, ``FallbackTransport``, sends each request to the endpoints in the order
``adapters.endpoints.Endpoints`` keeps (the shared rules: ``first_answer``, ``is_endpoint_failure``): one that fails
to connect, times out (``request_timeout_s``) or answers HTTP 429/5xx is demoted and the request moves on to the
next. Every role of the adapter (reads, sends, the validators' co-sign checks) goes through it unchanged. A pooled
connection the node closed is retried once on a fresh one, a timeout never (a hung endpoint costs one timeout), so
solana-py's own transport retry is off. The last endpoint's ``EndpointStatus`` reaches the adapter's boundary as
``RpcUnavailable`` (``adapters.solana.errors``). Endpoints are named by index, never by URL.

``verify_rpc_urls`` (the validators' cross-check of a Solana origin) are separate clients, not fallbacks.
"""

from __future__ import annotations

import httpx2
from solana.rpc.async_api import AsyncClient

from adapters.endpoints import Endpoints, EndpointStatus, first_answer, is_failing_status, once_more_on_reset


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
    client = AsyncClient(endpoints.urls[0], timeout=timeout_s, max_transport_retries=0)
    # solana-py builds its httpx2 client itself and takes no transport: swapped before its first request
    client._provider.session = httpx2.AsyncClient(
        transport=FallbackTransport(chain, endpoints, inner), timeout=httpx2.Timeout(timeout_s))
    return client
