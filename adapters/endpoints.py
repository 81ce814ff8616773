"""Several RPC endpoints for one chain, tried in order with health-based demotion (Hyperlane's fallback provider).

A request goes to the first endpoint that is not demoted. One that fails to connect, times out, or answers HTTP 429
or 5xx is demoted: it is skipped for ``cool_down_s``, doubled on each failure in a row up to ``max_cool_down_s``,
and the request moves on to the next. Once its cool-down ends, the next request to reach it probes it: an answer
restores it, another failure demotes it again for longer. So a dead or hung endpoint costs at most one timeout per
cool-down. When every endpoint is demoted they are all tried anyway, the soonest back first: the chain is never given
up for want of a healthy endpoint.

Endpoints are known by their index in the configuration (0 is ``rpc_url``), never by URL: a provider's URL often
holds its API key, and metrics and logs must not.

Quorum mode (Hyperlane's ``rpcConsensusType``): a read goes to every endpoint that is ``ready`` (not demoted, or its
cool-down over: that request is its probe) and ``tally`` counts the identical answers; the answer at least ``quorum``
endpoints gave wins and those that answered otherwise are outvoted. With ``quorum`` more than half of all endpoints
two different answers can never both win, so a minority of lying or stale endpoints cannot choose the answer; without
a quorum there is no answer. The transport (which requests, what counts as identical) is the adapter's.

What every family shares: ``is_endpoint_failure`` (what demotes an endpoint: a failure to connect, a timeout, HTTP 429
or 5xx, from aiohttp (EVM), httpx (Cosmos) or httpx2 (solana-py); any other answer, an HTTP 4xx included, is the
node's: the request is wrong and another endpoint would say the same) and ``first_answer``, the fallback order
(Solana: ``adapters.solana.transport``; Cosmos: ``adapters.cosmos.client``; EVM: ``EvmChain._post``, the same rules).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import httpx
import httpx2
import structlog

log = structlog.get_logger("adapters.endpoints")

T = TypeVar("T")


class Endpoints:
    def __init__(self, urls: Sequence[str], *, cool_down_s: float = 5.0, max_cool_down_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError("at least one endpoint is required")
        self.urls = list(urls)
        self._cool_down_s = cool_down_s
        self._max_cool_down_s = max_cool_down_s
        self._clock = clock
        self._failures = [0] * len(self.urls)
        self._demoted_until = [0.0] * len(self.urls)

    def order(self) -> list[int]:
        """The endpoints to try, in order: those not demoted as configured, then the demoted ones, soonest back
        first."""
        now = self._clock()
        ready = [i for i, until in enumerate(self._demoted_until) if until <= now]
        demoted = sorted((i for i, until in enumerate(self._demoted_until) if until > now),
                         key=lambda i: self._demoted_until[i])
        return ready + demoted

    def failed(self, i: int) -> None:
        self._failures[i] += 1
        wait = min(self._max_cool_down_s, self._cool_down_s * 2 ** (self._failures[i] - 1))
        self._demoted_until[i] = self._clock() + wait

    def succeeded(self, i: int) -> None:
        self._failures[i] = 0
        self._demoted_until[i] = 0.0

    def ready(self) -> list[int]:
        """The endpoints that may be asked now, in order: those not demoted, or whose cool-down is over."""
        now = self._clock()
        return [i for i, until in enumerate(self._demoted_until) if until <= now]

    def healthy(self) -> list[bool]:
        """Per endpoint: True unless it failed its last request (demoted, or waiting for its probe)."""
        return [failures == 0 for failures in self._failures]


class EndpointStatus(Exception):
    """An endpoint answered HTTP 429 or 5xx instead of the node (a proxy's or gateway's page, an overloaded
    provider): raised by an adapter's transport so that ``is_endpoint_failure`` demotes it; mapped at the adapter's
    boundary to ``RpcUnavailable``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def is_failing_status(status: int) -> bool:
    """HTTP 429 (rate limited) or 5xx: the endpoint is down or overloaded."""
    return status == 429 or status >= 500


_TIMEOUTS = (TimeoutError, httpx.TimeoutException, httpx2.TimeoutException)  # aiohttp's are TimeoutErrors
_CONNECTION_FAILURES = (ConnectionError, aiohttp.ClientConnectionError, httpx.TransportError, httpx2.TransportError)
_TRANSPORT_FAILURES = (*_TIMEOUTS, *_CONNECTION_FAILURES, aiohttp.ClientPayloadError)


def is_endpoint_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the endpoint is down or overloaded (demote it), rather than that the request is wrong."""
    if isinstance(exc, EndpointStatus):
        return True
    if isinstance(exc, aiohttp.ClientResponseError):
        return is_failing_status(exc.status)
    if isinstance(exc, httpx.HTTPStatusError | httpx2.HTTPStatusError):
        return is_failing_status(exc.response.status_code)
    return isinstance(exc, _TRANSPORT_FAILURES)


def is_reset(exc: BaseException) -> bool:
    """A failed connection that a fresh one may not repeat (a pooled connection the node closed while idle), and that
    cost no wait: not a timeout (a hung endpoint must cost one timeout only), not an HTTP status."""
    return isinstance(exc, _CONNECTION_FAILURES) and not isinstance(exc, _TIMEOUTS)


async def once_more_on_reset(send: Callable[[], Awaitable[T]]) -> T:
    """``send()``, and once more when it failed with ``is_reset``: a read, or the same signed transaction again (the
    node knows it by its hash), is safe to send twice."""
    try:
        return await send()
    except Exception as exc:
        if not is_reset(exc):
            raise
    return await send()


async def first_answer(endpoints: Endpoints, ask: Callable[[int], Awaitable[T]], *, chain: str,
                       first_index: int = 0) -> T:
    """Fallback mode: ``ask(i)`` of the endpoints in ``Endpoints.order``, until one answers. An endpoint failure
    (``is_endpoint_failure``) demotes that endpoint and moves on; the last one's is raised. Any other exception is
    the node's answer (the endpoint is up) and is raised at once. ``first_index``: the index the chain's metric and
    logs give ``endpoints``' first (Cosmos: its REST endpoints come after its RPC ones)."""
    order = endpoints.order()
    for k, i in enumerate(order):
        try:
            answer = await ask(i)
        except Exception as exc:
            if not is_endpoint_failure(exc):
                endpoints.succeeded(i)
                raise
            endpoints.failed(i)
            if k == len(order) - 1:
                raise
            log.warning("rpc_endpoint_failed", chain=chain, endpoint=first_index + i,
                        next_endpoint=first_index + order[k + 1], error=type(exc).__name__)
            continue
        endpoints.succeeded(i)
        return answer
    raise AssertionError("unreachable: Endpoints holds at least one endpoint")


@dataclass(frozen=True, slots=True)
class Tally:
    """One vote: for each distinct answer (its canonical text) the endpoints that gave it, and the quorum."""

    votes: Mapping[str, tuple[int, ...]]
    quorum: int

    @property
    def winner(self) -> str | None:
        """The answer at least ``quorum`` endpoints gave (at most one can, since the quorum is a majority)."""
        return next((answer for answer, who in self.votes.items() if len(who) >= self.quorum), None)

    def outvoted(self) -> list[int]:
        """The endpoints that answered something other than the winner (none without a winner)."""
        winner = self.winner
        if winner is None:
            return []
        return sorted(i for answer, who in self.votes.items() if answer != winner for i in who)

    def describe(self) -> str:
        """How the endpoints split, by index, largest group first (never the answers: they can be large)."""
        groups = sorted(self.votes.values(), key=lambda who: (-len(who), who))
        split = "; ".join(f"{len(who)} agreed (endpoints {', '.join(map(str, who))})" for who in groups)
        return f"{split or 'no answers'}; {self.quorum} needed"


def tally(answers: Mapping[int, str], quorum: int) -> Tally:
    """Group the endpoints' answers (endpoint index -> canonical answer) by identical answer."""
    votes: dict[str, list[int]] = {}
    for i, answer in sorted(answers.items()):
        votes.setdefault(answer, []).append(i)
    return Tally({answer: tuple(who) for answer, who in votes.items()}, quorum)


def quorum_height(heights: Mapping[int, int], quorum: int) -> int | None:
    """The highest height at least ``quorum`` endpoints have reached: the ``quorum``-th highest answer (None when
    fewer answered). Honest nodes differ by a block or two at the tip, so exact agreement would fail often; this
    needs none, and since at most ``quorum - 1`` answers lie above it, a minority claiming a height no honest node
    has reached cannot raise it."""
    if len(heights) < quorum:
        return None
    return sorted(heights.values(), reverse=True)[quorum - 1]
