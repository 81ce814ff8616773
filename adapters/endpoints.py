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
a quorum there is no answer. ``QuorumVote`` holds the vote every family shares (who is asked, the tally, the
quorum-th highest height, the outvoted count and log, the "no quorum" error); the transport (which requests, what
counts as identical, what is a height) is the adapter's: EVM ``adapters.evm.quorum``, Solana
``adapters.solana.transport``, Cosmos ``adapters.cosmos.client``.

What every family shares: ``is_endpoint_failure`` (what demotes an endpoint: a failure to connect, a timeout, HTTP 429
or 5xx, from aiohttp (EVM), httpx (Cosmos) or httpx2 (solana-py); any other answer, an HTTP 4xx included, is the
node's: the request is wrong and another endpoint would say the same) and ``first_answer``, the fallback order
(Solana: ``adapters.solana.transport``; Cosmos: ``adapters.cosmos.client``; EVM: ``EvmChain._post``, the same rules).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import aiohttp
import httpx
import httpx2
import structlog

from adapters.base import RpcUnavailable

log = structlog.get_logger("adapters.endpoints")
OUTVOTED_LOG_EVERY_S = 30.0  # one rpc_quorum_outvoted line per (method, endpoint) this often: a liar lies every time

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


@dataclass(slots=True)
class Asked(Generic[T]):
    """What the endpoints asked said: answers and failures by endpoint index (within their ``Endpoints``)."""

    answers: dict[int, T] = field(default_factory=dict)
    failures: dict[int, Exception] = field(default_factory=dict)


class QuorumVote:
    """Quorum mode's vote, whatever the family's transport (EVM: ``adapters.evm.quorum``; Solana:
    ``adapters.solana.transport``; Cosmos: ``adapters.cosmos.client``). ``ask(i)`` is one request to endpoint ``i``;
    ``key(answer)`` its canonical text, what endpoints must agree on. The answers outvoted are counted per
    (method, endpoint index) for ``relayer_rpc_quorum_disagreements_total`` and logged by index, never by URL;
    ``first_index``: the index the metric and logs give the first of ``endpoints`` (Cosmos: REST after RPC)."""

    def __init__(self, chain: str, endpoints: Endpoints, quorum: int, *, first_index: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not len(endpoints.urls) / 2 < quorum <= len(endpoints.urls):
            raise ValueError(f"a quorum of {len(endpoints.urls)} endpoints is more than half of them, at most all")
        self.chain = chain
        self.endpoints = endpoints
        self.quorum = quorum
        self._first = first_index
        self._clock = clock
        self._disagreements: Counter[tuple[str, int]] = Counter()
        self._last_logged: dict[tuple[str, int], float] = {}

    async def ask(self, targets: Sequence[int], ask: Callable[[int], Awaitable[T]]) -> Asked[T]:
        """``ask`` each of ``targets`` at once; an endpoint failure (``is_endpoint_failure``) demotes it."""
        results = await asyncio.gather(*(ask(i) for i in targets), return_exceptions=True)
        asked: Asked[T] = Asked()
        for i, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # cancelled
            if not isinstance(result, Exception):
                self.endpoints.succeeded(i)
                asked.answers[i] = result
                continue
            asked.failures[i] = result
            if is_endpoint_failure(result):
                self.endpoints.failed(i)
                log.warning("rpc_endpoint_failed", chain=self.chain, endpoint=self._first + i,
                            error=type(result).__name__)
        return asked

    async def voters(self, method: str, ask: Callable[[int], Awaitable[T]]) -> Asked[T]:
        """The answers of every ready endpoint; ``RpcUnavailable`` when fewer than a quorum are ready."""
        ready = self.endpoints.ready()
        if len(ready) < self.quorum:
            n = len(self.endpoints.urls)
            demoted = ", ".join(str(self._first + i) for i in sorted(set(range(n)) - set(ready)))
            raise RpcUnavailable(f"{method}: no quorum: {len(ready)} of {n} endpoints healthy (endpoints {demoted} "
                                 f"demoted after failing), {self.quorum} needed", chain=self.chain,
                                 reason="no quorum")
        return await self.ask(ready, ask)

    async def broadcast(self, ask: Callable[[int], Awaitable[T]]) -> Asked[T]:
        """A send to every ready endpoint (all of them when none is ready)."""
        return await self.ask(self.endpoints.ready() or self.endpoints.order(), ask)

    def tally(self, asked: Asked[T], key: Callable[[T], str]) -> tuple[Tally, dict[int, str]]:
        """The vote on ``asked``'s answers, and each answer's canonical text."""
        keys = {i: key(a) for i, a in asked.answers.items()}
        return tally(keys, self.quorum), keys

    def winner(self, method: str, asked: Asked[T], key: Callable[[T], str]) -> T | None:
        """The answer a quorum gave (as the first endpoint in configured order gave it), the others counted as
        outvoted; None without a quorum."""
        votes, keys = self.tally(asked, key)
        if votes.winner is None:
            return None
        self.count_outvoted(method, votes)
        return next(asked.answers[i] for i in sorted(keys) if keys[i] == votes.winner)

    def agreed(self, method: str, asked: Asked[T], key: Callable[[T], str]) -> T:
        """``winner``, or ``no_quorum``'s error."""
        answer = self.winner(method, asked, key)
        if answer is None:
            raise self.no_quorum(method, asked, self.tally(asked, key)[0])
        return answer

    def height(self, method: str, asked: Asked[T], height_of: Callable[[T], int | None],
               key: Callable[[T], str]) -> int:
        """``quorum_height`` of the answers' heights (``height_of``: None for an answer without one)."""
        heights = {i: h for i, a in asked.answers.items() if (h := height_of(a)) is not None}
        height = quorum_height(heights, self.quorum)
        if height is None:
            raise self.no_quorum(method, asked, self.tally(asked, key)[0])
        return height

    def count_outvoted(self, method: str, votes: Tally) -> None:
        now = self._clock()
        for i in votes.outvoted():
            index = self._first + i
            self._disagreements[(method, index)] += 1
            last = self._last_logged.get((method, index))
            if last is None or now - last >= OUTVOTED_LOG_EVERY_S:
                self._last_logged[(method, index)] = now
                log.warning("rpc_quorum_outvoted", chain=self.chain, method=method, endpoint=index,
                            agreeing=len(votes.votes[votes.winner or ""]), quorum=self.quorum)

    def take_disagreements(self) -> dict[tuple[str, int], int]:
        """Outvoted answers per (method, endpoint index) since the last call (the metric's increments)."""
        taken, self._disagreements = dict(self._disagreements), Counter()
        return taken

    def no_quorum(self, method: str, asked: Asked[T], votes: Tally) -> Exception:
        """``RpcUnavailable`` saying how the endpoints split (by index); the request's own error when every endpoint
        refused it as wrong (HTTP 4xx, not JSON), as in fallback mode."""
        if not asked.answers and asked.failures and not any(map(is_endpoint_failure, asked.failures.values())):
            return next(iter(asked.failures.values()))
        failed = "".join(f"; endpoint {self._first + i} failed ({type(exc).__name__})"
                         for i, exc in sorted(asked.failures.items()))
        shifted = Tally({a: tuple(self._first + i for i in who) for a, who in votes.votes.items()}, votes.quorum)
        return RpcUnavailable(f"{method}: no quorum: {shifted.describe()}{failed}", chain=self.chain,
                              reason="no quorum")
