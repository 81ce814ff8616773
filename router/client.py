"""A typed client of the daemon's public HTTP API for dApps (httpx): ``RoutingClient`` (sync) and
``AsyncRoutingClient`` (async), one method per public route, with the same names and arguments.

    with RoutingClient("http://127.0.0.1:8900", api_key="...") as client:
        ids = client.submit([{"amount": "5", "recipient": "0x...", "integrator": "mydapp"}])
        final = client.wait(ids[0], until={"included", "delivered"}, timeout=60)
        final.chain, final["tx_hash"]          # typed attribute, or the JSON as sent

    async with AsyncRoutingClient(url) as client:
        answer = await client.submit_batch(intents)
        async for event in client.events(answer.batch):
            ...

Routes (``ROUTES``: method -> HTTP method and path; tests/unit/test_routing_client_openapi.py fails when the app's
``/openapi.json`` has a public route that is in neither ``ROUTES`` nor ``NOT_COVERED``, or when a route's parameters,
body or answer no longer agree with the client's):

    capacity / chains      GET  /v1/chains                       live capacity and fees per chain
    quote                  POST /v1/quote                        route options and the planner's choice
    submit_batch / submit / submit_unsigned
                           POST /v1/intents                      a batch to plan and execute (or to sign yourself)
    broadcast              POST /v1/intents/{intent_id}/broadcast    the hash of the transaction you signed
    status / wait          GET  /v1/intents/{intent_id}          one intent
    batch                  GET  /v1/batches/{batch}              every intent of a batch, counts by status
    events                 GET  /v1/batches/{batch}/events       server-sent events of a batch (iterator)
    report                 GET  /v1/integrators/{code}/report    an integrator code's intents, volume, fees, rewards
    health                 GET  /healthz                         the process is up
    ready                  GET  /readyz                          every chain and the store answer (503: not ready,
                                                                 returned as ``ready`` false, not raised)
    daemon_status          GET  /v1/status                       chains, queue depths, failure reasons, validators
    messages               GET  /v1/messages                     messages by most recent change, filtered, paged
    message                GET  /v1/messages/{key}               a message by id, or those of an origin transaction
    message_gas            GET  /v1/messages/{message_id}/gas    what a message owes its paymaster, the call to pay
    route_profits          GET  /v1/routes/profit                per route: fees collected against gas spent
    message_detail         GET  /v1/explorer/messages/{message_id}   a message's timeline and delivery transactions
    throughput             GET  /v1/explorer/throughput          deliveries and dispatches per bucket
    samples                GET  /v1/explorer/samples             the chains' health samples over a window
    explorer_events        GET  /v1/explorer/events              server-sent events: changed messages, new samples

Not covered, on purpose (``NOT_COVERED``): ``GET /metrics`` (Prometheus text for a scraper, not JSON for a dApp);
``/admin/v1/*`` (the operator's API, behind the admin key: ``relayer.api.routes.admin``); ``/validators/*`` (the
relayer-to-validator protocol, signed requests of allow-listed relayers: its clients are
``relayer.pipeline.checkpoints`` and ``relayer.pipeline.cosign``). The explorer's page and static files (``/``,
``/explorer``, ``/explorer/{name}``) and FastAPI's ``/docs``, ``/redoc``, ``/openapi.json`` are not in the OpenAPI
document's paths at all.

Answers are models (``router.client_models``): typed attributes, unknown fields kept, and readable by key as the JSON
the server sent (``done["chain"]``, ``.get``), so code written for the dict-returning client keeps working. ``chains()``
and ``submit()`` still answer plain lists (``capacity()`` is the typed ``/v1/chains``); ``events()`` yields
``BatchEvent`` pairs ``(event, data)`` with typed ``.intent`` and ``.done``. Requests take the API's own models
(``router.schemas``: ``QuoteRequest``, ``IntentRequest``) or plain dicts, sent as they are: the server validates.

Errors (the one shape of ``router.errors``: ``{"detail": "a sentence"}`` or ``{"detail": {"field", "error", ...}}``)
raise ``RoutingError`` with ``status``, ``detail``, ``field`` (bad input: what was wrong, e.g. ``intents[2].amount``),
``error``, ``limit`` and ``retry_after_s`` (from ``Retry-After``, else the detail's own), as one of its subclasses:
``BadRequest`` (400; also 413 too large, 415 not JSON), ``Unauthorized`` (401; ``Forbidden``, its subclass, 403),
``NotFound`` (404), ``Conflict`` (409), ``RateLimited`` (429), ``Unavailable`` (503). An intent the router did not
take (``unserved``) is no error: its id is ``None`` and nothing of it is kept. Connection failures raise httpx's own.

Retries (``max_retries``, default 3; ``max_delay_s``, default 30): a 429 or 503 is retried after its ``Retry-After``
(seconds, or an HTTP date), or without one after an exponential backoff from ``backoff_s`` (jittered, at most
``max_delay_s``); when the server asks for longer than ``max_delay_s`` the client gives up at once (waiting less would
only be refused again) and the error carries ``retry_after_s``. After ``max_retries`` retries the last error is
raised. Connection errors and timeouts are retried for GETs only. POSTs are retried on 429 and 503 only, because the
API answers those before it takes anything: every 429 (the front's per-client caps; ``router.intents_per_s`` and
``router.value_per_day``, checked before any row is written, the value budget taken all or none) and every 503 the
API decides itself (the front's server-wide caps, the relay loop's share, the daemon-wide intent rate, capacity not
sampled yet, ``router.max_open_unsigned``) come before any intent is stored. The one exception is the store's own 503
(``{"detail": "the store is unavailable ...", "reason": ...}``, ``relayer.api.server``): raised by a database error
anywhere, it can come after ``POST /v1/intents`` stored the batch (its value budget is given back in a second
transaction), so a POST is not retried on it (``Unavailable`` is raised: look the batch up before sending it again).

Event streams (``events``, ``explorer_events``) are generators (async iterators on ``AsyncRoutingClient``). A stream
that breaks or ends before its last event (the server drops a reader that falls too far behind) is reopened, up to
``max_retries`` times in a row: the explorer's with ``Last-Event-ID`` (it resumes where it was); a batch's stream has
no event ids (``router.events``: a new stream starts with the batch's current state), so the client skips the intent
events it already yielded unchanged. ``reconnect=False``: a broken stream raises, an ended one stops.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, NamedTuple, Self, TypeVar
from urllib.parse import quote as _quote_segment

import httpx
from pydantic import BaseModel

from router.client_models import (
    ApiModel,
    BatchDone,
    BatchView,
    ChainSamples,
    ChainsAnswer,
    GasOwed,
    Health,
    IntegratorReport,
    IntentBatchRequest,
    IntentView,
    MessageDetail,
    MessageLookup,
    MessagePage,
    MessageView,
    Quote,
    Readiness,
    RelayerStatus,
    RouteProfits,
    SubmitAnswer,
    Throughput,
)
from router.schemas import BroadcastRequest, IntentRequest, QuoteRequest

T = TypeVar("T")
E = TypeVar("E")
FINAL = frozenset({"delivered", "failed", "unserved", "expired"})  # router.intents.FINAL_STATUSES
Intent = IntentRequest | Mapping[str, Any]


# ---- errors

class RoutingError(Exception):
    """An error answer of the API (see the module docstring); ``body``: the whole JSON body, when it was JSON."""

    def __init__(self, status: int, detail: Any, retry_after_s: float | None = None, *, body: Any = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s  # from Retry-After (429: over the limit; 503: not ready or full)
        self.body = body
        self.field: str | None = detail.get("field") if isinstance(detail, dict) else None  # bad input: the field
        super().__init__(f"HTTP {status}: {detail}")

    @property
    def error(self) -> str:
        """What went wrong, as a sentence."""
        return str(self.detail.get("error", self.detail)) if isinstance(self.detail, dict) else str(self.detail)

    @property
    def limit(self) -> str | None:
        """The setting a refusal names (``router.intents_per_s``, ``router.value_per_day.TST``, ...), if any."""
        return self.detail.get("limit") if isinstance(self.detail, dict) else None


class BadRequest(RoutingError):
    """400 bad input (``field`` names it); also 413 (too large: body or batch) and 415 (not JSON)."""


class Unauthorized(RoutingError):
    """401: a valid ``X-API-Key`` is required; 403 (``Forbidden``): refused for this client."""


class Forbidden(Unauthorized):
    """403: refused (a call outside ``router.call_allowlist``, a token without a daily limit, another client's
    intent)."""


class NotFound(RoutingError):
    """404: no such intent, batch or message."""


class Conflict(RoutingError):
    """409: not possible in this state (an intent not unsigned, a hash already claimed, intents not enabled)."""


class RateLimited(RoutingError):
    """429: over a limit of this client; ``retry_after_s`` says when to try again."""


class Unavailable(RoutingError):
    """503: not ready yet, not enabled, full, over the daemon-wide rate, or the store is unavailable."""


ERRORS: dict[int, type[RoutingError]] = {400: BadRequest, 413: BadRequest, 415: BadRequest, 401: Unauthorized,
                                         403: Forbidden, 404: NotFound, 409: Conflict, 429: RateLimited,
                                         503: Unavailable}


def error_for(status: int, detail: Any, retry_after_s: float | None = None, *, body: Any = None) -> RoutingError:
    """The ``RoutingError`` subclass for ``status`` (``RoutingError`` itself for the others: 408, 431, 5xx)."""
    return ERRORS.get(status, RoutingError)(status, detail, retry_after_s, body=body)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: a number of seconds, or an HTTP date (seconds from ``now``, at least 0); None when
    absent or not understood."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _json_of(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _retry_after_of(resp: httpx.Response, detail: Any) -> float | None:
    after = parse_retry_after(resp.headers.get("retry-after"))
    if after is None and isinstance(detail, dict) and isinstance(detail.get("retry_after_s"), int | float):
        after = float(detail["retry_after_s"])
    return after


def error_of(resp: httpx.Response) -> RoutingError:
    """The error an answer stands for (its body read)."""
    body = _json_of(resp)
    detail = body.get("detail", body) if isinstance(body, dict) else (resp.text if body is None else body)
    return error_for(resp.status_code, detail, _retry_after_of(resp, detail), body=body)


def _store_unavailable(resp: httpx.Response) -> bool:
    """The store's own 503 (``relayer.api.server``): a top-level ``reason`` next to ``detail``."""
    body = _json_of(resp)
    return isinstance(body, dict) and "reason" in body


# ---- the routes

@dataclass(frozen=True, eq=False)
class Route:
    """One route of the API as the client calls it: the answer's model (None: not a model), the body's, the query
    parameters (name -> required), the header parameters it sends (lower-case), the success status; ``stream``:
    server-sent events; ``also_answers``: other statuses whose body is the answer (``/readyz``'s 503)."""

    method: str
    path: str
    answer: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    query: Mapping[str, bool] = field(default_factory=dict)
    headers: frozenset[str] = frozenset()
    status: int = 200
    stream: bool = False
    also_answers: frozenset[int] = frozenset()

    @property
    def idempotent(self) -> bool:
        return self.method == "GET"

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"\{([^}]+)\}", self.path)

    def url(self, params: Mapping[str, str]) -> str:
        if sorted(params) != sorted(self.path_params):
            raise ValueError(f"{self.path} takes {self.path_params}, not {sorted(params)}")
        return re.sub(r"\{([^}]+)\}", lambda m: _quote_segment(str(params[m.group(1)]), safe=""), self.path)


_KEY = frozenset({"x-api-key"})
ROUTES: dict[str, Route] = {
    # the routing API (router.api)
    "capacity": Route("GET", "/v1/chains", ChainsAnswer),
    "quote": Route("POST", "/v1/quote", Quote, body=QuoteRequest, headers=_KEY),
    "submit_batch": Route("POST", "/v1/intents", SubmitAnswer, body=IntentBatchRequest, headers=_KEY, status=202),
    "broadcast": Route("POST", "/v1/intents/{intent_id}/broadcast", IntentView, body=BroadcastRequest, headers=_KEY),
    "status": Route("GET", "/v1/intents/{intent_id}", IntentView),
    "batch": Route("GET", "/v1/batches/{batch}", BatchView),
    "events": Route("GET", "/v1/batches/{batch}/events", query={"timeout_s": False}, stream=True),
    "report": Route("GET", "/v1/integrators/{code}/report", IntegratorReport),
    # the relayer's reads (relayer.api.routes) and the explorer's data (relayer.explorer)
    "health": Route("GET", "/healthz", Health),
    "ready": Route("GET", "/readyz", Readiness, also_answers=frozenset({503})),
    "daemon_status": Route("GET", "/v1/status", RelayerStatus),
    "messages": Route("GET", "/v1/messages", MessagePage,
                      query={"state": False, "chain": False, "limit": False, "before": False}),
    "message": Route("GET", "/v1/messages/{key}", MessageLookup),
    "message_gas": Route("GET", "/v1/messages/{message_id}/gas", GasOwed, query={"refund_to": False}),
    "route_profits": Route("GET", "/v1/routes/profit", RouteProfits),
    "message_detail": Route("GET", "/v1/explorer/messages/{message_id}", MessageDetail),
    "throughput": Route("GET", "/v1/explorer/throughput", Throughput, query={"window_s": False, "bucket_s": False}),
    "samples": Route("GET", "/v1/explorer/samples", ChainSamples, query={"window_s": False}),
    "explorer_events": Route("GET", "/v1/explorer/events", query={"since": False, "after_seq": False, "max_s": False},
                             headers=frozenset({"last-event-id"}), stream=True),
}
# methods over a route of ROUTES that answer it differently (a plain list, one field, a poll)
CONVENIENCE: dict[str, str] = {"chains": "capacity", "submit": "submit_batch", "submit_unsigned": "submit_batch",
                               "wait": "status"}
# public routes the clients leave out: "METHOD /path", or a path prefix ending in "/", with the reason
NOT_COVERED: dict[str, str] = {
    "GET /metrics": "Prometheus text for a scraper, not JSON for a dApp",
    "/admin/v1/": "the operator's API, behind the admin key (relayer.api.routes.admin)",
    "/validators/": "the relayer-to-validator protocol, signed requests of allow-listed relayers (its clients: "
                    "relayer.pipeline.checkpoints, relayer.pipeline.cosign)",
}


def not_covered_reason(method: str, path: str) -> str | None:
    """Why the clients leave ``method path`` out (``NOT_COVERED``), or None."""
    exact = NOT_COVERED.get(f"{method.upper()} {path}")
    if exact is not None:
        return exact
    return next((why for prefix, why in NOT_COVERED.items() if prefix.endswith("/") and path.startswith(prefix)), None)


def uncovered_routes(openapi: Mapping[str, Any]) -> list[str]:
    """``METHOD /path`` of every operation of an OpenAPI document that no client method calls and ``NOT_COVERED``
    does not leave out."""
    covered = {(r.method, r.path) for r in ROUTES.values()}
    return [f"{method.upper()} {path}" for path, ops in openapi.get("paths", {}).items() for method in ops
            if (method.upper(), path) not in covered and not_covered_reason(method, path) is None]


# ---- events

class ServerSentEvent(NamedTuple):
    event: str
    data: str
    id: str | None


class SseParser:
    """Server-sent events from a stream's lines (the WHATWG rules: ``event``/``data``/``id``/``retry`` fields,
    ``:`` comments, multi-line data, an event per blank line; an event without data is not dispatched)."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            event, data, self._event, self._data = self._event, self._data, "", []
            return ServerSentEvent(event or "message", "\n".join(data), self.last_id) if data else None
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


class BatchEvent(NamedTuple):
    """An event of a batch's stream, a pair ``(event, data)``: ``intent`` (``data`` is the intent's view, typed in
    ``.intent``) per status change, then ``done`` (``.done``), or ``timeout``."""

    event: str
    data: dict[str, Any]

    @property
    def intent(self) -> IntentView | None:
        return IntentView.from_json(self.data) if self.event == "intent" else None

    @property
    def done(self) -> BatchDone | None:
        return BatchDone.from_json(self.data) if self.event == "done" else None


class ExplorerEvent(NamedTuple):
    """An event of ``/v1/explorer/events``: ``hello`` (cursor, seq), ``messages`` (``.messages``), ``samples``,
    ``end`` (cursor, seq: where to start another stream); ``id``: ``<cursor>/<seq>``."""

    event: str
    data: dict[str, Any]
    id: str | None = None

    @property
    def messages(self) -> list[MessageView]:
        return [MessageView.from_json(m) for m in self.data.get("messages", [])] if self.event == "messages" else []


@dataclass(eq=False)
class _Call(Generic[T]):
    """One request: the route (a key of ``ROUTES``), its path and query parameters, body and extra headers, and how
    its JSON answer becomes the method's result."""

    route: str
    decode: Callable[[Any], T]
    path: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class _Follow(Generic[E]):
    """What following an event stream takes, for both clients: the call that (re)opens it, the typed events of its
    lines, whether it is over, and whether (and after how long) to reopen it."""

    final: frozenset[str] = frozenset()

    def __init__(self, client: _Base, max_s: float, reconnect: bool) -> None:
        self.client = client
        self.deadline = time.monotonic() + max_s
        self.reconnect = reconnect
        self.parser = SseParser()
        self.over = False
        self.failures = 0  # reopenings in a row without a new event

    def left_s(self) -> float:
        return self.deadline - time.monotonic()

    def call(self) -> _Call[None]:
        raise NotImplementedError

    def typed(self, event: ServerSentEvent) -> E | None:
        raise NotImplementedError

    def feed(self, line: str) -> E | None:
        event = self.parser.feed(line)
        if event is None:
            return None
        self.over = event.event in self.final
        typed = self.typed(event)
        if typed is not None:  # something new: the stream makes progress (a replayed state does not count)
            self.failures = 0
        return typed

    def reopen_after(self) -> float | None:
        """The delay before reopening a stream that broke or ended before its last event; None: stop (or raise)."""
        if self.over or not self.reconnect or self.failures >= self.client.max_retries or self.left_s() <= 0.01:
            return None
        self.failures += 1
        hint = self.parser.retry_ms / 1000 if self.parser.retry_ms is not None else None
        return min(self.client.max_delay_s, hint) if hint is not None else self.client._backoff(self.failures - 1)


class _BatchFollow(_Follow[BatchEvent]):
    final = frozenset({"done", "timeout"})

    def __init__(self, client: _Base, batch: str, timeout: float, reconnect: bool) -> None:
        super().__init__(client, timeout, reconnect)
        self.batch = batch
        self.seen: dict[str, tuple[Any, Any]] = {}  # intent id -> (status, reason) yielded last

    def call(self) -> _Call[None]:
        return _Call("events", _none, {"batch": self.batch}, {"timeout_s": round(max(self.left_s(), 0.001), 3)})

    def typed(self, event: ServerSentEvent) -> BatchEvent | None:
        data = json.loads(event.data)
        if event.event == "intent" and isinstance(data, dict):
            key, state = str(data.get("id")), (data.get("status"), data.get("reason"))
            if self.seen.get(key) == state:
                return None  # a reopened stream starts with the batch's state: already yielded
            self.seen[key] = state
        return BatchEvent(event.event, data)


class _ExplorerFollow(_Follow[ExplorerEvent]):
    final = frozenset({"end"})

    def __init__(self, client: _Base, since: float | None, after_seq: int | None, max_s: float,
                 reconnect: bool) -> None:
        super().__init__(client, max_s, reconnect)
        self.since = since
        self.after_seq = after_seq

    def call(self) -> _Call[None]:
        last = self.parser.last_id
        params = _present(since=self.since, after_seq=self.after_seq, max_s=round(max(self.left_s(), 0.001), 3))
        return _Call("explorer_events", _none, {}, params, headers={"Last-Event-ID": last} if last else {})

    def typed(self, event: ServerSentEvent) -> ExplorerEvent:
        return ExplorerEvent(event.event, json.loads(event.data), event.id)


def _none(_body: Any) -> None:
    return None


def _present(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _intents_body(intents: Sequence[Intent], signer: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"intents": [i.model_dump(mode="json", exclude_unset=True) if isinstance(i, BaseModel)
                                        else dict(i) for i in intents]}
    if signer is not None:
        body["signer"] = signer
    return body


def _quote_body(amount: str | int | Decimal | QuoteRequest, fields: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(amount, QuoteRequest):
        return amount.model_dump(mode="json", exclude_unset=True) | dict(fields)
    return {"amount": str(amount), **fields}


def _finished(intent_id: str, st: IntentView, until: Collection[str], deadline: float, timeout: float) -> bool:
    """``wait``: whether ``st`` is what was waited for; raises when it never will be (``Conflict``) or time is up."""
    if st.status in until:
        return True
    if st.status in FINAL:
        raise Conflict(409, f"intent {intent_id} ended {st.status}: {st.reason}")
    if time.monotonic() > deadline:
        raise TimeoutError(f"intent {intent_id} still {st.status} after {timeout:.0f}s")
    return False


# the calls, shared by both clients
class _Calls:
    @staticmethod
    def capacity() -> _Call[ChainsAnswer]:
        return _Call("capacity", ChainsAnswer.from_json)

    @staticmethod
    def chains() -> _Call[list[dict[str, Any]]]:
        return _Call("capacity", lambda body: list(body["chains"]))

    @staticmethod
    def quote(amount: str | int | Decimal | QuoteRequest, fields: Mapping[str, Any]) -> _Call[Quote]:
        return _Call("quote", Quote.from_json, body=_quote_body(amount, fields))

    @staticmethod
    def submit_batch(intents: Sequence[Intent], signer: str | None) -> _Call[SubmitAnswer]:
        return _Call("submit_batch", SubmitAnswer.from_json, body=_intents_body(intents, signer))

    @staticmethod
    def submit(intents: Sequence[Intent]) -> _Call[list[str | None]]:
        return _Call("submit_batch", lambda body: list(body["ids"]), body=_intents_body(intents))

    @staticmethod
    def broadcast(intent_id: str, tx_hash: str) -> _Call[IntentView]:
        return _Call("broadcast", IntentView.from_json, {"intent_id": intent_id}, body={"tx_hash": tx_hash})

    @staticmethod
    def status(intent_id: str) -> _Call[IntentView]:
        return _Call("status", IntentView.from_json, {"intent_id": intent_id})

    @staticmethod
    def batch(batch: str) -> _Call[BatchView]:
        return _Call("batch", BatchView.from_json, {"batch": batch})

    @staticmethod
    def report(code: str) -> _Call[IntegratorReport]:
        return _Call("report", IntegratorReport.from_json, {"code": code})

    @staticmethod
    def health() -> _Call[Health]:
        return _Call("health", Health.from_json)

    @staticmethod
    def ready() -> _Call[Readiness]:
        return _Call("ready", Readiness.from_json)

    @staticmethod
    def daemon_status() -> _Call[RelayerStatus]:
        return _Call("daemon_status", RelayerStatus.from_json)

    @staticmethod
    def messages(state: str | None, chain: str | None, limit: int | None, before: str | None) -> _Call[MessagePage]:
        return _Call("messages", MessagePage.from_json, params=_present(state=state, chain=chain, limit=limit,
                                                                        before=before))

    @staticmethod
    def message(key: str) -> _Call[MessageLookup]:
        return _Call("message", MessageLookup.from_json, {"key": key})

    @staticmethod
    def message_gas(message_id: str, refund_to: str | None) -> _Call[GasOwed]:
        return _Call("message_gas", GasOwed.from_json, {"message_id": message_id}, _present(refund_to=refund_to))

    @staticmethod
    def route_profits() -> _Call[RouteProfits]:
        return _Call("route_profits", RouteProfits.from_json)

    @staticmethod
    def message_detail(message_id: str) -> _Call[MessageDetail]:
        return _Call("message_detail", MessageDetail.from_json, {"message_id": message_id})

    @staticmethod
    def throughput(window_s: int | None, bucket_s: int | None) -> _Call[Throughput]:
        return _Call("throughput", Throughput.from_json, params=_present(window_s=window_s, bucket_s=bucket_s))

    @staticmethod
    def samples(window_s: int | None) -> _Call[ChainSamples]:
        return _Call("samples", ChainSamples.from_json, params=_present(window_s=window_s))


class _Base:
    """What both clients share: the base URL and key, the retry policy, how a call becomes a request and an answer
    its result, an error or a retry."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float, max_retries: int, max_delay_s: float,
                 backoff_s: float) -> None:
        if max_retries < 0 or max_delay_s < 0 or backoff_s < 0:
            raise ValueError("max_retries, max_delay_s and backoff_s must not be negative")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_delay_s = max_delay_s
        self.backoff_s = backoff_s
        self._headers = {"X-API-Key": api_key} if api_key else {}

    def _backoff(self, attempt: int) -> float:
        """The wait before retry ``attempt`` (0, 1, ...) when the server said nothing: doubling, jittered, capped."""
        return min(self.max_delay_s, self.backoff_s * 2 ** attempt) * (0.5 + random.random() / 2)

    def _request(self, call: _Call[Any]) -> tuple[Route, str, str, dict[str, Any]]:
        route = ROUTES[call.route]
        unknown = set(call.params) - set(route.query)
        if unknown:
            raise ValueError(f"{route.method} {route.path} takes no query parameter {sorted(unknown)}")
        kwargs: dict[str, Any] = {"headers": {**self._headers, **call.headers}}
        if call.params:
            kwargs["params"] = dict(call.params)
        if call.body is not None:
            kwargs["json"] = call.body
        return route, route.method, self.base_url + route.url(call.path), kwargs

    @staticmethod
    def _is_answer(route: Route, resp: httpx.Response) -> bool:
        if resp.is_success:
            return True
        body = _json_of(resp) if resp.status_code in route.also_answers else None
        return isinstance(body, dict) and "detail" not in body

    def _retry_delay(self, route: Route, attempt: int, resp: httpx.Response | None) -> float | None:
        """How long to wait before retrying (``resp`` None: a connection error or timeout); None: do not."""
        if attempt >= self.max_retries:
            return None
        if resp is None:
            return self._backoff(attempt) if route.idempotent else None
        if resp.status_code not in (429, 503):
            return None
        if resp.status_code == 503 and not route.idempotent and _store_unavailable(resp):
            return None  # may come after the request was taken (see the module docstring)
        body = _json_of(resp)
        after = _retry_after_of(resp, body.get("detail") if isinstance(body, dict) else None)
        if after is None:
            return self._backoff(attempt)
        return after if after <= self.max_delay_s else None

    def _delay_or_raise(self, route: Route, attempt: int, resp: httpx.Response) -> float:
        delay = self._retry_delay(route, attempt, resp)
        if delay is None:
            raise error_of(resp)
        return delay

    def _stream_timeout(self, follow: _Follow[Any]) -> httpx.Timeout:
        # a batch's stream is silent until something changes: wait for a chunk as long as the stream may last
        return httpx.Timeout(self.timeout, read=max(self.timeout, follow.left_s() + 10))


class RoutingClient(_Base):
    """The synchronous client (see the module docstring). ``http``: an ``httpx.Client`` of your own to send with
    (not closed by ``close``); ``sleep``: what waits between retries and polls (``time.sleep``)."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None, http: httpx.Client | None = None,
                 max_retries: int = 3, max_delay_s: float = 30.0, backoff_s: float = 0.25,
                 sleep: Callable[[float], None] | None = None) -> None:
        super().__init__(base_url, api_key, timeout=timeout, max_retries=max_retries, max_delay_s=max_delay_s,
                         backoff_s=backoff_s)
        self._own = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout, transport=transport)
        self._sleep = sleep if sleep is not None else time.sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self._http.close()

    def _run(self, call: _Call[T]) -> T:
        route, method, url, kwargs = self._request(call)
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, url, **kwargs)
            except httpx.TransportError:
                delay = self._retry_delay(route, attempt, None)
                if delay is None:
                    raise
            else:
                if self._is_answer(route, resp):
                    return call.decode(resp.json())
                delay = self._delay_or_raise(route, attempt, resp)
            self._sleep(delay)
            attempt += 1

    def _open(self, call: _Call[Any], timeout: httpx.Timeout) -> httpx.Response:
        """A stream's answer, open (the caller closes it), after the retries any request gets."""
        route, method, url, kwargs = self._request(call)
        attempt = 0
        while True:
            try:
                resp = self._http.send(self._http.build_request(method, url, timeout=timeout, **kwargs), stream=True)
            except httpx.TransportError:
                delay = self._retry_delay(route, attempt, None)
                if delay is None:
                    raise
            else:
                if resp.is_success:
                    return resp
                resp.read()
                resp.close()
                delay = self._delay_or_raise(route, attempt, resp)
            self._sleep(delay)
            attempt += 1

    def _follow(self, follow: _Follow[E]) -> Iterator[E]:
        while True:
            resp = self._open(follow.call(), self._stream_timeout(follow))
            try:
                try:
                    for line in resp.iter_lines():
                        event = follow.feed(line)
                        if event is not None:
                            yield event
                        if follow.over:
                            return
                except httpx.TransportError:  # broke: reopened, or raised
                    delay = follow.reopen_after()
                    if delay is None:
                        raise
                else:  # ended before its last event: reopened, or over
                    delay = follow.reopen_after()
                    if delay is None:
                        return
            finally:
                resp.close()
            self._sleep(delay)

    # ---- the routing API
    def capacity(self) -> ChainsAnswer:
        """Per chain: health, capacity, fees and (where read) the token bridges' rate limits."""
        return self._run(_Calls.capacity())

    def chains(self) -> list[dict[str, Any]]:
        """``capacity().chains`` as the JSON objects the server sent."""
        return self._run(_Calls.chains())

    def quote(self, amount: str | int | Decimal | QuoteRequest, **fields: Any) -> Quote:
        """The route options for one intent (``QuoteRequest``'s fields), cheapest first, and the planner's route."""
        return self._run(_Calls.quote(amount, fields))

    def submit_batch(self, intents: Sequence[Intent], *, signer: str | None = None) -> SubmitAnswer:
        """Submit a batch; the whole answer: ``batch`` (for ``events``; None when nothing was taken), ``ids`` (None
        where unserved), ``statuses`` and ``reasons``; with ``signer``: ``transactions`` too (see
        ``submit_unsigned``)."""
        return self._run(_Calls.submit_batch(intents, signer))

    def submit(self, intents: Sequence[Intent]) -> list[str | None]:
        """Submit a batch; the ids, in order, None for an intent left unserved (the others run in the background:
        poll ``status``)."""
        return self._run(_Calls.submit(intents))

    def submit_unsigned(self, intents: Sequence[Intent], signer: str) -> SubmitAnswer:
        """Plan a batch for ``signer`` to sign itself: ``ids``, ``statuses`` and ``transactions`` (one per intent,
        None where unserved); after broadcasting one, report its hash with ``broadcast``."""
        return self._run(_Calls.submit_batch(intents, signer))

    def broadcast(self, intent_id: str, tx_hash: str) -> IntentView:
        return self._run(_Calls.broadcast(intent_id, tx_hash))

    def status(self, intent_id: str) -> IntentView:
        return self._run(_Calls.status(intent_id))

    def wait(self, intent_id: str, until: Collection[str] = ("included", "delivered"), timeout: float = 60.0,
             interval: float = 0.2) -> IntentView:
        """Poll until the intent's status is in ``until`` (returned) or final otherwise (``Conflict``, 409), or
        ``timeout`` passes (``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(intent_id)
            if _finished(intent_id, st, until, deadline, timeout):
                return st
            self._sleep(interval)

    def batch(self, batch: str) -> BatchView:
        """Every intent of ``batch`` and counts by status."""
        return self._run(_Calls.batch(batch))

    def events(self, batch: str, timeout: float = 300.0, *, reconnect: bool = True) -> Iterator[BatchEvent]:
        """The batch's server-sent events as ``(event, data)`` pairs: ``intent`` per status change, then ``done``
        (or ``timeout`` after ``timeout`` seconds)."""
        return self._follow(_BatchFollow(self, batch, timeout, reconnect))

    def report(self, code: str) -> IntegratorReport:
        return self._run(_Calls.report(code))

    # ---- the relayer's reads
    def health(self) -> Health:
        return self._run(_Calls.health())

    def ready(self) -> Readiness:
        return self._run(_Calls.ready())

    def daemon_status(self) -> RelayerStatus:
        return self._run(_Calls.daemon_status())

    def messages(self, *, state: str | None = None, chain: str | None = None, limit: int | None = None,
                 before: str | None = None) -> MessagePage:
        return self._run(_Calls.messages(state, chain, limit, before))

    def message(self, key: str) -> MessageLookup:
        """The message with id ``key``, or the messages dispatched by the origin transaction ``key``."""
        return self._run(_Calls.message(key))

    def message_gas(self, message_id: str, refund_to: str | None = None) -> GasOwed:
        return self._run(_Calls.message_gas(message_id, refund_to))

    def route_profits(self) -> RouteProfits:
        return self._run(_Calls.route_profits())

    def message_detail(self, message_id: str) -> MessageDetail:
        return self._run(_Calls.message_detail(message_id))

    def throughput(self, window_s: int | None = None, bucket_s: int | None = None) -> Throughput:
        return self._run(_Calls.throughput(window_s, bucket_s))

    def samples(self, window_s: int | None = None) -> ChainSamples:
        return self._run(_Calls.samples(window_s))

    def explorer_events(self, *, since: float | None = None, after_seq: int | None = None, max_s: float = 300.0,
                        reconnect: bool = True) -> Iterator[ExplorerEvent]:
        """The explorer's server-sent events until ``end`` (after ``max_s``, or when the daemon stops)."""
        return self._follow(_ExplorerFollow(self, since, after_seq, max_s, reconnect))


class AsyncRoutingClient(_Base):
    """The asynchronous client: ``RoutingClient``'s methods as coroutines (the event streams as async iterators).
    ``http``: an ``httpx.AsyncClient`` of your own (not closed by ``aclose``); ``sleep``: ``asyncio.sleep``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None, http: httpx.AsyncClient | None = None,
                 max_retries: int = 3, max_delay_s: float = 30.0, backoff_s: float = 0.25,
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        super().__init__(base_url, api_key, timeout=timeout, max_retries=max_retries, max_delay_s=max_delay_s,
                         backoff_s=backoff_s)
        self._own = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout, transport=transport)
        self._sleep = sleep if sleep is not None else asyncio.sleep

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        route, method, url, kwargs = self._request(call)
        attempt = 0
        while True:
            try:
                resp = await self._http.request(method, url, **kwargs)
            except httpx.TransportError:
                delay = self._retry_delay(route, attempt, None)
                if delay is None:
                    raise
            else:
                if self._is_answer(route, resp):
                    return call.decode(resp.json())
                delay = self._delay_or_raise(route, attempt, resp)
            await self._sleep(delay)
            attempt += 1

    async def _open(self, call: _Call[Any], timeout: httpx.Timeout) -> httpx.Response:
        route, method, url, kwargs = self._request(call)
        attempt = 0
        while True:
            try:
                resp = await self._http.send(self._http.build_request(method, url, timeout=timeout, **kwargs),
                                             stream=True)
            except httpx.TransportError:
                delay = self._retry_delay(route, attempt, None)
                if delay is None:
                    raise
            else:
                if resp.is_success:
                    return resp
                await resp.aread()
                await resp.aclose()
                delay = self._delay_or_raise(route, attempt, resp)
            await self._sleep(delay)
            attempt += 1

    async def _follow(self, follow: _Follow[E]) -> AsyncIterator[E]:
        while True:
            resp = await self._open(follow.call(), self._stream_timeout(follow))
            try:
                try:
                    async for line in resp.aiter_lines():
                        event = follow.feed(line)
                        if event is not None:
                            yield event
                        if follow.over:
                            return
                except httpx.TransportError:  # broke: reopened, or raised
                    delay = follow.reopen_after()
                    if delay is None:
                        raise
                else:  # ended before its last event: reopened, or over
                    delay = follow.reopen_after()
                    if delay is None:
                        return
            finally:
                await resp.aclose()
            await self._sleep(delay)

    # ---- the routing API
    async def capacity(self) -> ChainsAnswer:
        return await self._run(_Calls.capacity())

    async def chains(self) -> list[dict[str, Any]]:
        return await self._run(_Calls.chains())

    async def quote(self, amount: str | int | Decimal | QuoteRequest, **fields: Any) -> Quote:
        return await self._run(_Calls.quote(amount, fields))

    async def submit_batch(self, intents: Sequence[Intent], *, signer: str | None = None) -> SubmitAnswer:
        return await self._run(_Calls.submit_batch(intents, signer))

    async def submit(self, intents: Sequence[Intent]) -> list[str | None]:
        return await self._run(_Calls.submit(intents))

    async def submit_unsigned(self, intents: Sequence[Intent], signer: str) -> SubmitAnswer:
        return await self._run(_Calls.submit_batch(intents, signer))

    async def broadcast(self, intent_id: str, tx_hash: str) -> IntentView:
        return await self._run(_Calls.broadcast(intent_id, tx_hash))

    async def status(self, intent_id: str) -> IntentView:
        return await self._run(_Calls.status(intent_id))

    async def wait(self, intent_id: str, until: Collection[str] = ("included", "delivered"), timeout: float = 60.0,
                   interval: float = 0.2) -> IntentView:
        deadline = time.monotonic() + timeout
        while True:
            st = await self.status(intent_id)
            if _finished(intent_id, st, until, deadline, timeout):
                return st
            await self._sleep(interval)

    async def batch(self, batch: str) -> BatchView:
        return await self._run(_Calls.batch(batch))

    def events(self, batch: str, timeout: float = 300.0, *, reconnect: bool = True) -> AsyncIterator[BatchEvent]:
        return self._follow(_BatchFollow(self, batch, timeout, reconnect))

    async def report(self, code: str) -> IntegratorReport:
        return await self._run(_Calls.report(code))

    # ---- the relayer's reads
    async def health(self) -> Health:
        return await self._run(_Calls.health())

    async def ready(self) -> Readiness:
        return await self._run(_Calls.ready())

    async def daemon_status(self) -> RelayerStatus:
        return await self._run(_Calls.daemon_status())

    async def messages(self, *, state: str | None = None, chain: str | None = None, limit: int | None = None,
                       before: str | None = None) -> MessagePage:
        return await self._run(_Calls.messages(state, chain, limit, before))

    async def message(self, key: str) -> MessageLookup:
        return await self._run(_Calls.message(key))

    async def message_gas(self, message_id: str, refund_to: str | None = None) -> GasOwed:
        return await self._run(_Calls.message_gas(message_id, refund_to))

    async def route_profits(self) -> RouteProfits:
        return await self._run(_Calls.route_profits())

    async def message_detail(self, message_id: str) -> MessageDetail:
        return await self._run(_Calls.message_detail(message_id))

    async def throughput(self, window_s: int | None = None, bucket_s: int | None = None) -> Throughput:
        return await self._run(_Calls.throughput(window_s, bucket_s))

    async def samples(self, window_s: int | None = None) -> ChainSamples:
        return await self._run(_Calls.samples(window_s))

    def explorer_events(self, *, since: float | None = None, after_seq: int | None = None, max_s: float = 300.0,
                        reconnect: bool = True) -> AsyncIterator[ExplorerEvent]:
        return self._follow(_ExplorerFollow(self, since, after_seq, max_s, reconnect))


__all__ = ["CONVENIENCE", "ERRORS", "FINAL", "NOT_COVERED", "ROUTES", "ApiModel", "AsyncRoutingClient", "BadRequest",
           "BatchEvent", "Conflict", "ExplorerEvent", "Forbidden", "NotFound", "RateLimited", "Route",
           "RoutingClient", "RoutingError", "ServerSentEvent", "SseParser", "Unauthorized", "Unavailable",
           "error_for", "error_of", "not_covered_reason", "parse_retry_after", "uncovered_routes"]
