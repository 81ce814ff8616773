"""The explorer: an operator's page served by the daemon, and the JSON it reads.

    GET /                                     redirect to /explorer
    GET /explorer                             the page (static HTML, CSS and JS of this package; no CDN)
    GET /v1/messages?state=&chain=&limit=&before=    messages by most recent change, filtered, paged
    GET /v1/explorer/messages/{id}            one message and its timeline (dispatched, attested, submitted, delivered)
    GET /v1/explorer/throughput?window_s=&bucket_s=  deliveries per destination and dispatches per origin, per bucket
    GET /v1/explorer/samples?window_s=        chain samples (health, height, lag, utilisation, fee, queue) over time
    GET /v1/explorer/events?since=&after_seq= server-sent events: changed messages and new chain samples

The page reads two more things of the same daemon, and adds no endpoint for them: ``/metrics`` for the chain cards'
RPC endpoint health (``relayer_rpc_endpoint_up{chain,endpoint}``, the adapters' ``EndpointHealth`` by endpoint index,
never a URL), and, in its "Stuck" view, the admin API (``relayer.api.routes.admin``: stuck messages, retry, drop with a
note, pause and resume a route) with the operator's admin key, which the page keeps in the tab's ``sessionStorage``
only and sends as ``Authorization: Bearer``; without a key that view sends nothing.

The event streams share one feed (``ExplorerFeed``): while anyone listens it polls the store, once per
``poll_s`` whatever the number of streams, for rows whose ``updated_at`` moved past its cursor (re-reading a short
overlap, so a row committed late by another instance is not missed; rows already sent are not re-sent), and the
sample buffer for rounds past its sequence number, and hands each event (rendered once) to every stream. A
stream that starts from an older cursor (``since``, ``Last-Event-ID``) first gets what changed since then (one
read of its own). Each ``messages`` event carries ``id: <cursor>/<seq>`` so a browser that reconnects resumes
where it was. A stream ends after ``max_s``, when the daemon stops, or when it falls too far behind (its queue
is bounded), with an ``end`` event. Before, every stream polled the store itself.

Identical ``/v1/messages`` requests under way share one read of the store, rendered to JSON once
(``relayer.explorer.shared_reads.SharedReads``): a request that arrives while the same page is being read waits for
the next read, so its answer is never older than the request.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from relayer.explorer.queries import ExplorerQueries, PageCursor
from relayer.explorer.samples import ChainSample, ChainSampleBuffer
from relayer.explorer.shared_reads import SharedReads
from relayer.store import MessageRecord, MessageState
from router.api import SSE_RESPONSE, error_responses
from router.events import Fanout, Subscription

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
OVERLAP_S = 2.0          # re-read this much before the cursor: rows committed late by a concurrent writer
MAX_EVENT_ROWS = 500     # rows per ``messages`` event; more in one poll sets ``truncated`` (reload the list)
KEEPALIVE_S = 15.0
_ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
           "style.css": "text/css; charset=utf-8", "integrators.js": "text/javascript; charset=utf-8"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


@dataclass(frozen=True, slots=True)
class ExplorerChain:
    name: str
    domain: int
    family: str


def _bad(field: str, problem: str, status: int = 400) -> HTTPException:
    return HTTPException(status, {"field": field, "error": problem})


def _sse(event: str, data: Any, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One event as the feed rendered it, with the ``<cursor>/<seq>`` it moves a stream to."""

    text: str
    cursor: float
    seq: int


class ExplorerFeed:
    """The one poller behind every ``/v1/explorer/events`` stream (see the module docstring)."""

    def __init__(self, queries: ExplorerQueries, samples: ChainSampleBuffer,
                 view: Callable[[MessageRecord], dict[str, Any]], *, poll_s: float, max_queue: int = 256) -> None:
        self.queries = queries
        self.samples = samples
        self.view = view
        self.poll_s = poll_s
        self.fanout = Fanout(max_queue)
        self.cursor = 0.0
        self.seq = 0
        self.reads = 0  # store reads made by the feed, for tests: one per interval whatever the streams
        self._sent: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    def messages_event(self, rows: list[MessageRecord], cursor: float, seq: int, truncated: bool) -> FeedEvent:
        return FeedEvent(_sse("messages", {"cursor": cursor, "truncated": truncated,
                                           "messages": [self.view(r) | {"updated_at": r.updated_at} for r in rows]},
                              event_id=f"{cursor!r}/{seq}"), cursor, seq)

    @staticmethod
    def samples_event(new: list[ChainSample], cursor: float) -> FeedEvent:
        seq = new[-1].seq
        return FeedEvent(_sse("samples", {"seq": seq, "samples": [s.view() for s in new]},
                              event_id=f"{cursor!r}/{seq}"),
                         cursor, seq)

    async def subscribe(self) -> Subscription:
        """A place among the feed's streams; the feed starts (from the store's latest change) if it was idle."""
        sub = self.fanout.add()
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.create_task(self._run(self._ready), name="explorer-feed")
        assert self._ready is not None
        ready = self._ready
        await ready.wait()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.fanout.remove(sub)

    async def _run(self, ready: asyncio.Event) -> None:
        try:
            self.cursor = await run_in_threadpool(self.queries.latest_change)
            self.seq = self.samples.last_seq
            rows = await run_in_threadpool(self.queries.changed_since, self.cursor - OVERLAP_S, MAX_EVENT_ROWS)
            self._sent = {r.id: r.updated_at for r in rows}  # what a stream's own catch-up read covers
            ready.set()
            while len(self.fanout):
                await asyncio.sleep(self.poll_s)  # the feed's pacing: one read per interval, whatever the streams
                self._poll_samples()
                await self._poll_messages()
        finally:
            ready.set()

    async def _poll_messages(self) -> None:
        self.reads += 1
        rows = await run_in_threadpool(self.queries.changed_since, self.cursor - OVERLAP_S, MAX_EVENT_ROWS)
        fresh = [r for r in rows if self._sent.get(r.id) != r.updated_at]
        if not fresh:
            return
        for r in fresh:
            self._sent[r.id] = r.updated_at
        self.cursor = max(self.cursor, max(r.updated_at for r in fresh))
        self._sent = {k: v for k, v in self._sent.items() if v >= self.cursor - OVERLAP_S}
        self.fanout.publish(self.messages_event(fresh, self.cursor, self.seq, len(rows) == MAX_EVENT_ROWS))

    def _poll_samples(self) -> None:
        new = self.samples.after(self.seq)
        if new:
            self.seq = new[-1].seq
            self.fanout.publish(self.samples_event(new, self.cursor))


def _load_assets() -> dict[str, bytes]:
    static = resources.files("relayer.explorer").joinpath("static")
    return {name: static.joinpath(name).read_bytes() for name in _ASSETS}


@dataclass
class _Explorer:
    """What the explorer's routes share: the read-only queries, the chain samples, the configured chains, the
    message view and the one feed every event stream reads."""

    queries: ExplorerQueries
    samples: ChainSampleBuffer
    chains: Sequence[ExplorerChain]
    view: Callable[[MessageRecord], dict[str, Any]]
    feed: ExplorerFeed
    poll_s: float
    clock: Callable[[], float]
    stopping: Callable[[], bool] | None
    pages: SharedReads[bytes]  # /v1/messages: identical page requests under way share one read (and its JSON)

    @functools.cached_property
    def by_name(self) -> dict[str, ExplorerChain]:
        return {c.name: c for c in self.chains}

    @functools.cached_property
    def names(self) -> dict[int, str]:
        return {c.domain: c.name for c in self.chains}


def create_explorer_api(queries: ExplorerQueries, samples: ChainSampleBuffer, chains: Sequence[ExplorerChain],
                        view: Callable[[MessageRecord], dict[str, Any]], *, poll_s: float = 0.75,
                        clock: Callable[[], float] = time.time,
                        stopping: Callable[[], bool] | None = None) -> APIRouter:
    """``stopping``: true once the daemon is stopping; open event streams then end (``end`` event) so the
    server can close their connections instead of cancelling them."""
    api = APIRouter(tags=["explorer"])
    ex = _Explorer(queries, samples, chains, view, ExplorerFeed(queries, samples, view, poll_s=poll_s), poll_s, clock,
                   stopping, SharedReads(run_in_threadpool))
    _page_routes(api, _load_assets())
    _message_routes(api, ex)
    _chart_routes(api, ex)
    _event_routes(api, ex)
    return api


def _page_routes(api: APIRouter, assets: dict[str, bytes]) -> None:
    """The page itself: ``/`` redirects to ``/explorer``, and its static files."""

    def asset(name: str) -> Response:
        return Response(assets[name], media_type=_ASSETS[name],
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP,
                                 "X-Content-Type-Options": "nosniff"})

    @api.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/explorer", status_code=307)

    @api.get("/explorer", include_in_schema=False)
    async def page() -> Response:
        return asset("index.html")

    @api.get("/explorer/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in _ASSETS or name == "index.html":
            raise HTTPException(404, {"error": f"no explorer file {name!r}"})
        return asset(name)


_STATES = list(MessageState.__members__)


def _message_routes(api: APIRouter, ex: _Explorer) -> None:
    """The message list (paged by most recent change) and one message's detail and timeline."""

    @api.get("/v1/messages", tags=["messages"], responses=error_responses(400), response_model=dict[str, Any])
    async def list_messages(
        state: str | None = Query(None, description=f"pipeline state: {', '.join(_STATES)}"),
        chain: str | None = Query(None, description="a configured chain name: messages from or to it"),
        limit: int = Query(50, ge=1, le=1000),
        before: str | None = Query(None, description="paging: the next_before of the previous page"),
    ) -> Response:
        """Messages by most recent change, newest first. ``next_before`` pages on; ``latest_change`` is the
        cursor to start ``/v1/explorer/events`` from."""
        return await _message_page(ex, state, chain, limit, before)

    @api.get("/v1/explorer/messages/{message_id}", responses=error_responses(400, 404))
    async def message_detail(message_id: str) -> dict[str, Any]:
        """One message by id, with its timeline and every delivery transaction that carried it."""
        return await _message_detail(ex, message_id)


async def _message_page(ex: _Explorer, state: str | None, chain: str | None, limit: int,
                        before: str | None) -> Response:
    if state is not None and state.upper() not in MessageState.__members__:
        raise _bad("state", f"state {state!r} is not one of {', '.join(_STATES)}")
    by_name = ex.by_name
    if chain is not None and chain not in by_name:
        raise _bad("chain", f"chain {chain!r} is not one of {', '.join(by_name)}")
    cursor = None
    if before is not None:
        try:
            cursor = PageCursor.decode(before)
        except ValueError as exc:
            raise _bad("before", f"before {before!r}: {exc}") from None
    state_value, domain = state.upper() if state else None, by_name[chain].domain if chain else None
    body = await ex.pages.read((state_value, domain, cursor, limit),
                               lambda: _read_page(ex, state_value, domain, cursor, limit))
    return Response(body, media_type="application/json")


def _read_page(ex: _Explorer, state: str | None, domain: int | None, before: PageCursor | None, limit: int) -> bytes:
    """One page and the latest change (on one thread, one after the other), as the route's JSON."""
    latest = ex.queries.latest_change()
    rows = ex.queries.page(state=state, domain=domain, before=before, limit=limit)
    next_before = PageCursor(rows[-1].updated_at, rows[-1].id).encode() if len(rows) == limit else None
    return bytes(JSONResponse({"messages": [ex.view(r) | {"updated_at": r.updated_at} for r in rows],
                               "next_before": next_before, "latest_change": latest}).body)


async def _message_detail(ex: _Explorer, message_id: str) -> dict[str, Any]:
    if not _HEX32.match(message_id):
        raise _bad("message_id", f"{message_id!r} is not a 0x-prefixed 32-byte hex message id")
    key = message_id.lower()

    def load() -> tuple[MessageRecord | None, list[Any], float | None]:
        rec = ex.queries.get(key)
        if rec is None:
            return None, [], None
        return rec, ex.queries.deliveries_of(key), ex.queries.first_signed_at(rec.origin, rec.nonce)

    rec, deliveries, signed_at = await run_in_threadpool(load)
    if rec is None:
        raise _bad("message_id", f"no message with id {key}", 404)
    return {"message": ex.view(rec), "updated_at": rec.updated_at,
            "timeline": _timeline(rec, deliveries, signed_at, ex.names),
            "deliveries": [{"tx": d.tx_hash, "state": d.state, "submitted_at": d.submitted_at,
                            "replaced_by": d.replaced_by, "gas_used": d.gas_used, "fee_paid": d.fee_paid,
                            "height": d.height, "owner": d.owner} for d in deliveries]}


def _timeline(rec: MessageRecord, deliveries: list[Any], signed_at: float | None,
              names: dict[int, str]) -> list[dict[str, Any]]:
    """A message's steps: dispatched, attested, each delivery transaction, then delivered or dropped."""
    timeline: list[dict[str, Any]] = [
        {"step": "dispatched", "at": rec.dispatched_at, "chain": names.get(rec.origin, str(rec.origin)),
         "tx": rec.origin_tx, "height": rec.origin_height}]
    # the signing time is known to a process that signs (role validator or all); a relayer only sees the index
    timeline.append({"step": "attested", "at": signed_at, "checkpoint_index": rec.checkpoint_index})
    for d in deliveries:
        timeline.append({"step": "submitted", "at": d.submitted_at,
                         "chain": names.get(d.destination, str(d.destination)),
                         "tx": d.tx_hash, "state": d.state, "replaced_by": d.replaced_by})
    if rec.state == MessageState.DELIVERED.value:
        timeline.append({"step": "delivered", "at": rec.delivered_at,
                         "chain": names.get(rec.destination, str(rec.destination)),
                         "tx": rec.delivery_tx, "height": rec.delivered_height})
    elif rec.state == MessageState.DROPPED.value:
        timeline.append({"step": "dropped", "at": rec.updated_at, "reason": rec.last_reason})
    return timeline


def _chart_routes(api: APIRouter, ex: _Explorer) -> None:
    """The charts' data: throughput buckets from the store, chain samples from the health job."""

    @api.get("/v1/explorer/throughput", responses=error_responses(400))
    async def throughput(window_s: int = Query(600, ge=10, le=86_400, description="how far back, seconds"),
                         bucket_s: int = Query(10, ge=1, le=3600,
                                               description="bucket width, seconds")) -> dict[str, Any]:
        """Deliveries per destination (by ``delivered_at``) and dispatches per origin (by origin block time)
        per bucket. Buckets are aligned to multiples of ``bucket_s``; the last one is still filling."""
        return await _throughput(ex, window_s, bucket_s)

    @api.get("/v1/explorer/samples")
    async def chain_samples(window_s: int = Query(900, ge=10, le=86_400, description="how far back, seconds")
                            ) -> dict[str, Any]:
        """What the daemon's health job saw of every chain over the window (every ~2 s; kept for an hour)."""
        return {"chains": [{"name": c.name, "domain": c.domain, "family": c.family} for c in ex.chains],
                "last_seq": ex.samples.last_seq, "samples": [s.view() for s in ex.samples.window(window_s)]}


async def _throughput(ex: _Explorer, window_s: int, bucket_s: int) -> dict[str, Any]:
    if bucket_s > window_s:
        raise _bad("bucket_s", f"bucket_s ({bucket_s}) is larger than window_s ({window_s})")
    n = math.ceil(window_s / bucket_s)
    if n > 1440:
        raise _bad("bucket_s", f"window_s / bucket_s is {n} buckets; at most 1440 (use a wider bucket)")
    end = (math.floor(ex.clock() / bucket_s) + 1) * bucket_s
    start = end - n * bucket_s
    delivered_rows = await run_in_threadpool(ex.queries.delivered_since, start)
    dispatched_rows = await run_in_threadpool(ex.queries.dispatched_since, start)
    names = ex.names

    def bucketed(rows: list[tuple[int, float]]) -> dict[str, list[int]]:
        out = {c.name: [0] * n for c in ex.chains}
        for domain, at in rows:
            i = int((at - start) // bucket_s)
            if 0 <= i < n:
                out.setdefault(names.get(domain, str(domain)), [0] * n)[i] += 1
        return out

    delivered = bucketed(delivered_rows)
    dispatched = bucketed(dispatched_rows)
    return {"window_s": window_s, "bucket_s": bucket_s, "start": start, "end": end,
            "buckets": [start + i * bucket_s for i in range(n)], "delivered": delivered, "dispatched": dispatched,
            "totals": {"delivered": {k: sum(v) for k, v in delivered.items()},
                       "dispatched": {k: sum(v) for k, v in dispatched.items()}}}


def _event_routes(api: APIRouter, ex: _Explorer) -> None:
    """``/v1/explorer/events``: server-sent events from the one shared feed."""

    @api.get("/v1/explorer/events", response_class=StreamingResponse,
             responses={**SSE_RESPONSE, **error_responses(400)})
    async def events(since: float | None = Query(None, description="message cursor (latest_change of /v1/messages)"),
                     after_seq: int | None = Query(None, ge=0, description="chain samples after this sequence number"),
                     max_s: float = Query(300.0, gt=0, le=3600, description="the stream ends after this long"),
                     last_event_id: str | None = Header(None)) -> StreamingResponse:
        """Server-sent events: ``hello`` (cursor, seq), ``messages`` (rows changed since the cursor),
        ``samples`` (new chain samples), ``end``. Resumes from a ``Last-Event-ID`` of ``<cursor>/<seq>``."""
        if since is not None and not math.isfinite(since):
            raise _bad("since", "must be a finite number")
        if last_event_id:
            head, _, tail = last_event_id.partition("/")
            try:
                since, after_seq = float(head), int(tail)
            except ValueError:
                raise _bad("Last-Event-ID", f"{last_event_id!r} is not <cursor>/<seq>") from None
        sub = await ex.feed.subscribe()
        start = (since if since is not None else ex.feed.cursor, after_seq if after_seq is not None else ex.feed.seq)
        body = _event_stream(ex, sub, start, since is not None, max_s)
        weakref.finalize(body, ex.feed.unsubscribe, sub)  # a stream dropped before it started leaves the feed too
        return StreamingResponse(body, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _catch_up(ex: _Explorer, cursor: float, seq: int, with_messages: bool) -> list[FeedEvent]:
    """What changed between a stream's own cursor and the feed's (one read of its own)."""
    feed, out = ex.feed, []
    if with_messages:
        rows = await run_in_threadpool(ex.queries.changed_since, cursor - OVERLAP_S, MAX_EVENT_ROWS)
        if rows:
            cursor = max(cursor, max(r.updated_at for r in rows))
            out.append(feed.messages_event(rows, cursor, seq, len(rows) == MAX_EVENT_ROWS))
    new = [s for s in ex.samples.after(seq) if s.seq <= feed.seq] if seq < feed.seq else []
    if new:
        out.append(feed.samples_event(new, cursor))
    return out


async def _event_stream(ex: _Explorer, sub: Subscription, start: tuple[float, int],
                        with_messages: bool, max_s: float) -> AsyncIterator[str]:
    cursor, seq = start
    try:
        yield "retry: 2000\n\n"
        yield _sse("hello", {"cursor": cursor, "seq": seq, "server_time": ex.clock()})
        deadline = time.monotonic() + max_s
        quiet_since = time.monotonic()
        events: list[FeedEvent] = await _catch_up(ex, cursor, seq, with_messages)
        while True:
            for event in events:
                cursor, seq = max(cursor, event.cursor), max(seq, event.seq)
                yield event.text
                quiet_since = time.monotonic()
            if time.monotonic() >= deadline or (ex.stopping is not None and ex.stopping()):
                break
            if time.monotonic() - quiet_since > KEEPALIVE_S:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            try:  # woken by the feed, or after poll_s to look at the deadline and the daemon's stop
                got = await asyncio.wait_for(sub.queue.get(),
                                             max(0.0, min(ex.poll_s, deadline - time.monotonic())))
            except TimeoutError:
                got = ()
            if got is None:
                break  # too far behind: the client resumes with Last-Event-ID
            events = [got] if got else []
        yield _sse("end", {"cursor": cursor, "seq": seq}, event_id=f"{cursor!r}/{seq}")
    finally:
        ex.feed.unsubscribe(sub)
