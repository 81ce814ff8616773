"""The endpoints a validator's light client reads from, in fallback order.

A light client checks everything it reads (EVM: headers hashed and linked to a trusted anchor or to the block the
sync committee finalized, receipts rebuilt against the header's ``receiptsRoot``; Cosmos: commits verified against the
trusted validators, txs and results against the header's hashes; beacon: every update through the sync protocol), so
one endpoint of a chain is as good as another: when the first is dead, hung or erroring the reads go on at the next.

``FallbackReads`` tries a chain's endpoints (``rpc_url`` then ``fallback_rpc_urls``; ``beacon_url`` then
``fallback_beacon_urls``) in the order, and with the health tracking, of ``adapters.endpoints.Endpoints``, the rules
the adapters follow. A transport failure (``is_transport_failure``: no connection, a reset, no answer within the
request timeout (``EndpointHttp``), HTTP 429 or 5xx, an answer that is not JSON or not the protocol's envelope:
``NotAnAnswer``) demotes the endpoint for its cool-down (5 s, doubling while it keeps failing, up to 60 s) and the read
moves on to the next endpoint; the first read after the cool-down probes it. So a dead or hung endpoint costs one
request timeout per cool-down. When every endpoint failed, the read raises ``EveryEndpointFailed``. Any other
exception is the node's own answer (a JSON-RPC error, a block it does not have yet, an HTTP 4xx) and is raised as it
is, without asking another endpoint (as in ``adapters.endpoints.first_answer``).

Verification failures are never papered over. When a check refuses what an endpoint served (a header that does not
hash to itself or does not link, receipts that do not rebuild the root, a commit that does not verify, an update the
sync protocol refuses), the light client refuses at once: ``InclusionRefused``, which the attester logs as
``checkpoint_refused`` and counts in ``validator_checkpoint_refused_total{reason}``. It does not ask the next endpoint
in the same read. ``refused(endpoint)`` logs ``light_client_endpoint_refused`` (by index) and demotes that endpoint
as a failure would. The attester asks again on its next poll, and then the next endpoint serves. The demoted one is
asked again after its cool-down, and each time it serves something false that is one more refusal. Why refuse rather
than try the next endpoint at once and refuse only when none verifies:

- a refusal is the alarm. A lying or forked node must show as refusals an operator is alerted on. Trying the
  next endpoint at once would let one honest fallback silence an attack on the first, leaving a log line;
- it costs one poll of delay per cool-down of the lying endpoint (at most one refusal a minute once it is demoted
  for 60 s), so the validator keeps attesting;
- nothing unverified is signed either way: a signature needs every check to pass, whichever endpoint served.

Endpoints are named by their configuration keys and index (``rpc_url and fallback_rpc_urls index 1``), never by URL:
a provider's URL often holds its API key. ``Endpoint``'s ``str`` and ``repr`` never show it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
import structlog

from adapters.base import InclusionRefused, RpcUnavailable
from adapters.endpoints import (
    Endpoints,
    EndpointStatus,
    is_endpoint_failure,
    is_failing_status,
    once_more_on_reset,
)

log = structlog.get_logger("light_clients.fallback")
T = TypeVar("T")

VERIFY_ENDPOINTS = "verify_rpc_urls"


class NotAnAnswer(Exception):
    """An endpoint answered something that is no answer of the protocol (not JSON; a JSON-RPC batch answered with an
    object): a failure of that endpoint, like a timeout."""


class EveryEndpointFailed(Exception):
    """Every endpoint failed a read with a transport failure; ``failures``: endpoint index -> the error's type."""

    def __init__(self, names: str, what: str, failures: Mapping[int, str]) -> None:
        self.failures = dict(failures)
        listed = ", ".join(f"index {i}: {error}" for i, error in sorted(self.failures.items()))
        super().__init__(f"{what}: every endpoint of {names} failed ({listed})")


def is_transport_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the endpoint could not answer (demote it, ask the next) rather than what it answered."""
    return isinstance(exc, NotAnAnswer) or is_endpoint_failure(exc)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One configured endpoint: its index among ``names`` (the configuration keys) and its URL (never shown)."""

    index: int
    url: str = field(repr=False)
    names: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.names} index {self.index}"


@dataclass(frozen=True, slots=True)
class Served(Generic[T]):
    """An answer and the endpoint that served it (to blame when a check refuses the answer)."""

    answer: T
    endpoint: Endpoint


def urls_of(urls: str | Sequence[str]) -> list[str]:
    """One URL, or the endpoints in order, without trailing slashes."""
    return [u.rstrip("/") for u in ([urls] if isinstance(urls, str) else urls)]


class FallbackReads:
    """Reads from the first of ``endpoints`` that answers (see the module docstring); ``names`` are the configuration
    keys the endpoints come from (e.g. "rpc_url and fallback_rpc_urls"), for logs and messages."""

    def __init__(self, chain: str, names: str, endpoints: Endpoints) -> None:
        self.chain = chain
        self.names = names
        self._endpoints = endpoints
        self._serving: int | None = None

    def endpoint(self, index: int) -> Endpoint:
        return Endpoint(index, self._endpoints.urls[index], self.names)

    def healthy(self) -> list[bool]:
        """Per endpoint: True unless its last read failed or what it served was refused."""
        return self._endpoints.healthy()

    async def read(self, what: str, ask: Callable[[Endpoint], Awaitable[T]]) -> Served[T]:
        """``ask(endpoint)`` of the endpoints in ``Endpoints.order`` until one answers; ``what`` names the read in
        logs (never a URL). Raises ``EveryEndpointFailed``, or the node's own answer as it is."""
        order = self._endpoints.order()
        failures: dict[int, str] = {}
        for k, i in enumerate(order):
            endpoint = self.endpoint(i)
            try:
                answer = await ask(endpoint)
            except Exception as exc:
                if not is_transport_failure(exc):
                    raise
                failures[i] = type(exc).__name__
                self._failed(endpoint, what, exc, order[k + 1] if k + 1 < len(order) else None)
                continue
            self._endpoints.succeeded(i)
            self._note_serving(endpoint)
            return Served(answer, endpoint)
        raise EveryEndpointFailed(self.names, what, failures)

    async def read_or_unavailable(self, what: str, ask: Callable[[Endpoint], Awaitable[T]]) -> Served[T]:
        """``read``, with ``RpcUnavailable`` (reason "rpc unavailable") when no endpoint answers."""
        try:
            return await self.read(what, ask)
        except EveryEndpointFailed as exc:
            raise RpcUnavailable(str(exc), chain=self.chain, reason="rpc unavailable") from exc

    def refusal(self, endpoint: Endpoint, message: str, reason: str) -> InclusionRefused:
        """The refusal of what ``endpoint`` served (``refused``: it is demoted, the next poll reads the next one)."""
        self.refused(endpoint, reason)
        return InclusionRefused(message, chain=self.chain, reason=reason)

    def refused(self, endpoint: Endpoint, reason: str) -> None:
        """A check refused what ``endpoint`` served: demoted like a failing endpoint (the caller refuses; the next
        read goes to the next endpoint)."""
        self._endpoints.failed(endpoint.index)
        log.error("light_client_endpoint_refused", chain=self.chain, endpoints=self.names, endpoint=endpoint.index,
                  reason=reason, action="refused now; demoted, the next read goes to the next endpoint")

    def _failed(self, endpoint: Endpoint, what: str, exc: Exception, next_index: int | None) -> None:
        self._endpoints.failed(endpoint.index)
        log.warning("light_client_endpoint_failed", chain=self.chain, endpoints=self.names, endpoint=endpoint.index,
                    read=what, error=type(exc).__name__, next_endpoint=next_index)

    def _note_serving(self, endpoint: Endpoint) -> None:
        if endpoint.index != self._serving:
            log.info("light_client_endpoint_serving", chain=self.chain, endpoints=self.names,
                     endpoint=endpoint.index, previous=self._serving)
            self._serving = endpoint.index


async def ask_verify_endpoint(chain: str, endpoint: Endpoint, ask: Callable[[Endpoint], Awaitable[T]]) -> T:
    """``ask(endpoint)`` of one ``verify_rpc_urls`` endpoint, which must answer (they are a cross-check, not a
    fallback): a transport failure raises ``RpcUnavailable`` saying which one was unreachable (reason "verify endpoint
    unreachable"), unlike one that answers and disagrees (the caller's "endpoints disagree")."""
    try:
        return await ask(endpoint)
    except Exception as exc:
        if not is_transport_failure(exc):
            raise
        log.warning("verify_endpoint_unreachable", chain=chain, endpoints=endpoint.names, endpoint=endpoint.index,
                    error=type(exc).__name__)
        raise RpcUnavailable(f"{endpoint} is unreachable ({type(exc).__name__}): every verify endpoint must agree, "
                             "so nothing is proven without it", chain=chain,
                             reason="verify endpoint unreachable") from exc


class EndpointHttp:
    """HTTP requests, each to one endpoint within ``timeout_s`` in all (connecting, waiting, reading: a hung endpoint
    costs one timeout, a ``TimeoutError``); a pooled connection the endpoint had closed is tried once more on a fresh
    one (``once_more_on_reset``: it cost no wait)."""

    def __init__(self, http: httpx.AsyncClient, timeout_s: float) -> None:
        self._http = http
        self.timeout_s = timeout_s

    async def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        return await self._within(lambda: self._http.get(url, params=params))

    async def post(self, url: str, body: Any) -> httpx.Response:
        return await self._within(lambda: self._http.post(url, json=body))

    async def _within(self, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        async with asyncio.timeout(self.timeout_s):
            return await once_more_on_reset(send)

    async def aclose(self) -> None:
        await self._http.aclose()


def raise_for_endpoint_status(response: httpx.Response) -> None:
    """``EndpointStatus`` (a transport failure) for HTTP 429 or 5xx."""
    if is_failing_status(response.status_code):
        raise EndpointStatus(response.status_code)


def json_of(response: httpx.Response) -> Any:
    """The answer's JSON; ``NotAnAnswer`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise NotAnAnswer(f"HTTP {response.status_code}: the answer is not JSON") from None
