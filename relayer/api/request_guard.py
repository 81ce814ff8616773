"""Every request passes here before any route runs (so before any chain call or JSON parser): admission caps,
then the body checks. An ASGI middleware around the daemon's whole app.

Admission (``FrontLimits``, one per server; a client is its IP address, an IPv6 client its /64):

    429  a per-client cap: requests in flight (``api.max_requests_in_flight_per_client``), open event streams
         (``api.max_streams_per_client``)
    503  a server-wide cap: ``api.max_requests_in_flight``, ``api.max_streams``

    both with ``Retry-After`` and ``{"detail": {"error": ..., "cap": "api.<key>", "limit": N}}``. An event stream
    is a request to a route whose OpenAPI answer is ``text/event-stream`` (``stream_route_patterns``).

Body checks:

    413  body over ``api.max_body_bytes``: decided from Content-Length before reading anything, else (chunked) by
         counting the bytes as they stream in, stopping at the first byte over the limit
    415  a body whose Content-Type is not JSON (application/json or application/*+json)
    400  a JSON body that is not UTF-8, naming the byte offset
    400  a JSON body nested deeper than ``api.max_json_depth`` (``json_depth``: one linear pass over the raw bytes,
         before any parser; Python's JSON parser recurses once per level, and at ~70,000 levels that overran the C
         stack and killed the process)
    408  a body that has not fully arrived ``api.body_timeout_s`` after its headers

Each answer is JSON ``{"detail": {"error": ..., ...}}`` like the routes' own 4xx. Malformed JSON itself is left to
FastAPI, answered in the one shape (``router.errors``: 400, field ``body``, the character offset where it broke).

Refusals leave no trace per request: a counter per reason (``relayer_api_refused_total{reason}``) and at most one
log line per reason every ``LOG_EVERY_S`` seconds (with how many were not logged). Nothing is kept per client
beyond what is in flight.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from relayer.api.ratelimit import InFlightLimiter, TokenBucket, retry_after_header
from relayer.daemon.metrics import Metrics

log = structlog.get_logger("relayer.api.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_JSON_DEPTH = 64
LOG_EVERY_S = 10.0
CAP_RETRY_AFTER_S = 1.0
INTENTS_PATH = "/v1/intents"  # POST: intents admitted at a rate (IntentRate)

# ---------------------------------------------------------------- JSON depth, before any parser
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_QUOTE = ord('"')


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, from its raw bytes, in linear time (vectorised:
    ~10 ms for 1 MiB of any content).

    Escapes are neutralised first (``\\\\`` pairs, then ``\\"``, left to right as a JSON string reads them), so
    every ``"`` left opens or closes a string: a byte is inside a string when an odd number of quotes precede it.
    Of the bytes outside strings only brackets count. For a valid JSON prefix this is exactly the depth the parser
    reaches; an invalid tail may be miscounted, but the parser stops at the first error, before reaching it. UTF-8
    continuation bytes are never ASCII, so no multi-byte character is mistaken for a quote or a bracket."""
    plain = np.frombuffer(body.replace(b"\\\\", b"__").replace(b'\\"', b"__"), dtype=np.uint8)
    if plain.size == 0:
        return 0
    inside = np.cumsum(plain == _QUOTE, dtype=np.int32) & 1
    steps = np.where(inside == 0, _STEP[plain], 0).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


# ---------------------------------------------------------------- clients and caps
def client_key(host: str | None) -> str:
    """Who a request counts against: its IPv4 address, or the /64 of an IPv6 one (one host holds a whole /64)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True, slots=True)
class Cap:
    """One admission cap: the config key that sets it and its value; ``per_client`` answers 429, else 503."""

    key: str
    limit: int
    per_client: bool

    @property
    def status(self) -> int:
        return 429 if self.per_client else 503

    def refusal(self, what: str) -> dict[str, Any]:
        who = "from this client" if self.per_client else "on this server"
        return {"error": f"too many {what} {who}: the cap is {self.limit} (api.{self.key}); retry later",
                "cap": f"api.{self.key}", "limit": self.limit}


class Admission:
    """An ``InFlightLimiter`` with the caps that name it: ``acquire`` answers the refused ``Cap`` or ``None``."""

    def __init__(self, what: str, *, per_client: Cap, total: Cap) -> None:
        self.what = what
        self.caps = {"per_key": per_client, "total": total}
        self.limiter = InFlightLimiter(per_key=per_client.limit, total=total.limit)

    def acquire(self, client: str) -> Cap | None:
        refused = self.limiter.acquire(client)
        return None if refused is None else self.caps[refused]

    def release(self, client: str) -> None:
        self.limiter.release(client)

    @property
    def in_flight(self) -> int:
        return self.limiter.in_flight


class IntentRate:
    """Intents admitted per second by ``POST /v1/intents`` on this daemon, all clients together (a token bucket; a
    full batch of ``batch`` intents fits a full bucket). Each admitted intent is work for the daemon's event loop
    and its chains (signing, sending, following), so this rate is what keeps that work, not only the request count,
    bounded: 20 clients posting 1,000-intent batches back to back had the daemon sending for minutes and relaying
    stalled. Per-client quotas are the router's (``router.intents_per_s`` per API key, else per address).

    After a refusal, every request is refused at the door (``refused_at_door``) until the bucket has room again,
    before its body is read or parsed: a refused 1,000-intent batch cost ~15 ms of the event loop to read, scan
    and parse, and refusing those was most of what 20 clients posting in a loop still cost."""

    def __init__(self, per_s: float, *, batch: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        burst_total = max(float(batch), per_s)
        self.total = TokenBucket(per_s, burst_total, burst_total, clock())
        self.cap = Cap("max_intents_per_s", int(per_s), False)
        self._total_until = 0.0

    def admit(self, n: int) -> tuple[Cap, float] | None:
        """``None`` when ``n`` intents may go (tokens taken), else the cap and the seconds to wait."""
        now = self._clock()
        wait = self.total.take(n, now)
        if wait > 0:
            self._total_until = now + wait
            return self.cap, wait
        return None

    def reopen_door(self) -> None:
        """Tokens came back: the next request is asked of the bucket again instead of refused at the door."""
        self._total_until = 0.0

    def refused_at_door(self) -> tuple[Cap, float] | None:
        """The cap and the wait left while everyone was told to come back later."""
        now = self._clock()
        if now < self._total_until:
            return self.cap, self._total_until - now
        return None


class ThrottledLog:
    """At most one log line per reason every ``every_s``, carrying how many were not logged since."""

    def __init__(self, every_s: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def info(self, event: str, reason: str, **fields: Any) -> None:
        now = self._clock()
        if now - self._last.get(reason, -self.every_s) < self.every_s:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        log.info(event, reason=reason, not_logged_since=self._suppressed.pop(reason, 0), **fields)


@dataclass
class FrontLimits:
    """What the HTTP front and the request guard enforce, shared by every connection of one server (one event
    loop: not thread-safe, and needs no lock)."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    max_header_bytes: int = 16 << 10
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: int = 5
    max_connections: int = 1024
    max_connections_per_client: int = 64
    max_requests_in_flight: int = 256
    max_requests_in_flight_per_client: int = 32
    max_streams: int = 256
    max_streams_per_client: int = 8
    max_intents_per_s: float = 20.0
    metrics: Metrics | None = None
    connections: Admission = field(init=False)
    requests: Admission = field(init=False)
    streams: Admission = field(init=False)
    intents: IntentRate = field(init=False)
    log: ThrottledLog = field(default_factory=ThrottledLog)
    lingering: int = 0  # refused connections being read and dropped before their close (relayer.api.http_front)

    def __post_init__(self) -> None:
        def admission(what: str, key: str) -> Admission:
            return Admission(what, per_client=Cap(f"{key}_per_client", getattr(self, f"{key}_per_client"), True),
                             total=Cap(key, getattr(self, key), False))

        self.connections = admission("open connections", "max_connections")
        self.requests = admission("requests in flight", "max_requests_in_flight")
        self.streams = admission("open event streams", "max_streams")
        self.intents = IntentRate(self.max_intents_per_s)

    def admit_intents(self, host: str | None, n: int) -> None:
        """For ``router.api.create_routing_api``: raises 503 with ``Retry-After`` when ``n`` more intents would pass
        the daemon's rate (``host``: unused, per-client quotas are the router's)."""
        refused = self.intents.admit(n)
        if refused is None:
            return
        from fastapi import HTTPException

        cap, wait_s = refused
        self.refused(cap.key)
        status, headers, body = intent_rate_answer(cap, wait_s)
        raise HTTPException(status, json.loads(body)["detail"], headers={"Retry-After": headers[2][1].decode()})

    def release_intents(self, n: int) -> None:
        """For ``router.api.create_routing_api``: ``n`` admitted intents were not taken (refused by a later check,
        left unserved, or signed by the dApp itself): the daemon's rate counts only what its operators send, so one
        client's refused or unserved batches cannot spend everyone's budget."""
        bucket = self.intents.total
        if n > 0:
            bucket.tokens = min(bucket.burst, bucket.tokens + n)
            self.intents.reopen_door()

    @classmethod
    def from_settings(cls, api: Any, metrics: Metrics | None = None) -> FrontLimits:
        """From ``config.settings.ApiSettings`` (every field of the same name)."""
        names = [f for f in cls.__dataclass_fields__
                 if f not in ("metrics", "connections", "requests", "streams", "intents", "log", "lingering")]
        return cls(**{n: getattr(api, n) for n in names}, metrics=metrics)

    def refused(self, reason: str, **fields: Any) -> None:
        """Count a refusal (``relayer_api_refused_total{reason}``) and log it, throttled."""
        if self.metrics is not None:
            self.metrics.inc("relayer_api_refused_total", reason=reason)
        self.log.info("request_rejected", reason, **fields)

    def publish(self) -> None:
        """The current load, as gauges (called when ``/metrics`` is read)."""
        if self.metrics is None:
            return
        self.metrics.set("relayer_api_connections", self.connections.in_flight)
        self.metrics.set("relayer_api_requests_in_flight", self.requests.in_flight)
        self.metrics.set("relayer_api_streams", self.streams.in_flight)


def cap_answer(cap: Cap, what: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of a refusal by ``cap`` (429 per client, 503 server-wide), with Retry-After."""
    body = json.dumps({"detail": cap.refusal(what)}).encode()
    return cap.status, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", retry_after_header(CAP_RETRY_AFTER_S).encode()),
                        (b"connection", b"close")], body


def intent_rate_answer(cap: Cap, wait_s: float) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers (the third is Retry-After) and body of a refusal by the daemon's intent rate."""
    body = json.dumps({"detail": {"error": f"too many intents on this server: over the rate of {cap.limit} per "
                                           f"second (api.{cap.key}); retry in {wait_s:.1f} s",
                                  "cap": f"api.{cap.key}", "limit": cap.limit}}).encode()
    return cap.status, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", retry_after_header(wait_s).encode()), (b"connection", b"close")], body


def stream_route_patterns(openapi: dict[str, Any]) -> list[re.Pattern[str]]:
    """Paths (as regular expressions) of the operations whose 200 answer is ``text/event-stream``."""
    out = []
    for path, operations in openapi.get("paths", {}).items():
        for op in operations.values():
            content = op.get("responses", {}).get("200", {}).get("content", {})
            if "text/event-stream" in content:
                parts = re.split(r"(\{[^}]+\})", path)
                regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
                out.append(re.compile(f"^{regex}$"))
                break
    return out


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))



async def send_answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Answer a request from ASGI middleware (before any route): status, headers, body."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def json_answer(detail: dict[str, Any], *extra_headers: tuple[bytes, bytes]) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of the one error shape, ``{"detail": ...}``, as JSON."""
    body = json.dumps({"detail": detail}).encode()
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            *extra_headers], body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` for the app behind middleware that has read the whole body: the body once, then the real
    ``receive`` (which waits for the disconnect, as the server would)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class _SlotReleasingSend:
    """A request's ``send`` that gives its in-flight slot back once the answer's last byte is sent (or on ``release``,
    when the app returns, whichever comes first). A route run on the relay loop (``relayer.api.server.RelayLoopRoutes``)
    returns only when that busy loop gets round to it: counted until then, each client's next request was counted
    with its last one, and 200 clients of ``relayer bench api`` passed the 256 of ``api.max_requests_in_flight``
    (half the answers were 503)."""

    def __init__(self, send: Send, release: Callable[[], None]) -> None:
        self._send = send
        self._release: Callable[[], None] | None = release

    async def __call__(self, message: Message) -> None:
        await self._send(message)
        if message.get("type") == "http.response.body" and not message.get("more_body", False):
            self.release()

    def release(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release()


class RequestGuard:
    """Admits a request (in-flight and stream caps), buffers its body (at most ``max_body_bytes``) and hands it
    on only when it passes the checks."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int | None = None, limits: FrontLimits | None = None,
                 stream_routes: Iterable[re.Pattern[str]] = ()) -> None:
        self.app = app
        self.limits = limits or FrontLimits()
        if max_body_bytes is not None:
            self.limits.max_body_bytes = max_body_bytes
        self.stream_routes = list(stream_routes)

    @property
    def max_body_bytes(self) -> int:
        return self.limits.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = client_key((scope.get("client") or (None, 0))[0])
        cap = self.limits.requests.acquire(client)
        if cap is not None:
            await self._capped(send, scope, cap, self.limits.requests)
            return
        send = answer = _SlotReleasingSend(send, lambda: self.limits.requests.release(client))
        try:
            if scope.get("method") == "POST" and scope.get("path") == INTENTS_PATH:
                door = self.limits.intents.refused_at_door()
                if door is not None:  # everyone told to come back later: refused before the body is read
                    self.limits.refused(door[0].key, path=INTENTS_PATH)
                    await send_answer(send, *intent_rate_answer(*door))
                    return
            if scope.get("method") == "GET" and any(p.match(scope.get("path", "")) for p in self.stream_routes):
                cap = self.limits.streams.acquire(client)
                if cap is not None:
                    await self._capped(send, scope, cap, self.limits.streams)
                    return
                try:
                    await self._checked(scope, receive, send)
                finally:
                    self.limits.streams.release(client)
            else:
                await self._checked(scope, receive, send)
        finally:
            answer.release()

    async def _capped(self, send: Send, scope: Scope, cap: Cap, admission: Admission) -> None:
        self.limits.refused(cap.key, path=scope.get("path"))
        await send_answer(send, *cap_answer(cap, admission.what))

    async def _checked(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length_text = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length_text is not None:
            if not length_text.strip().isdigit():
                await self._reject(send, 400, "bad_content_length",
                                   f"Content-Length {length_text[:40]!r} is not a byte count", scope)
                return
            if int(length_text) > self.max_body_bytes:
                await self._too_large(send, scope, f"Content-Length {int(length_text)}")
                return
        has_body = chunked or (length_text is not None and int(length_text) > 0)
        if not has_body:
            await self.app(scope, receive, send)
            return
        content_type = headers.get("content-type", "")
        if not is_json_media_type(content_type):
            await self._reject(send, 415, "content_type",
                               f"a request body must be JSON (Content-Type: application/json), "
                               f"got {content_type[:80] or 'no Content-Type'!r}", scope, expected="application/json")
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), self.limits.body_timeout_s)
        except TimeoutError:
            await self._reject(send, 408, "body_timeout", f"the request body did not arrive within "
                               f"{self.limits.body_timeout_s:g} s (api.body_timeout_s)", scope,
                               limit=self.limits.body_timeout_s)
            return
        except _TooLarge:
            await self._too_large(send, scope, f"more than {self.max_body_bytes} bytes streamed")
            return
        if body is None:  # the client went away
            return
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await self._reject(send, 400, "not_utf8", f"the JSON body is not UTF-8 (byte {exc.start})", scope,
                               field="body")
            return
        depth = json_depth(body)
        if depth > self.limits.max_json_depth:
            await self._reject(send, 400, "json_depth", f"the JSON body nests {depth} levels deep; the limit is "
                               f"{self.limits.max_json_depth} (api.max_json_depth)", scope, field="body",
                               limit=self.limits.max_json_depth)
            return
        await self.app(scope, replaying(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send: Send, scope: Scope, seen: str) -> None:
        await self._reject(send, 413, "body_too_large", f"request body too large: {seen}; the limit is "
                           f"{self.max_body_bytes} bytes (api.max_body_bytes)", scope, limit=self.max_body_bytes)

    async def _reject(self, send: Send, status: int, reason: str, error: str, scope: Scope, **extra: Any) -> None:
        self.limits.refused(reason, status=status, method=scope.get("method"), path=scope.get("path"), error=error)
        await send_answer(send, status, *json_answer({"error": error, **extra}, (b"connection", b"close")))


class _TooLarge(Exception):
    """The streamed body passed ``max_body_bytes``."""
