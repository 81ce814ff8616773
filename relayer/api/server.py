"""The daemon's HTTP API (FastAPI): validator checkpoints, message status, health, readiness, metrics.

    GET /healthz                                       process is up
    GET /readyz                                        200 only when every configured chain answers
    GET /metrics                                       Prometheus text
    GET /v1/status                                     chains, queue depths by state, failure reasons
    GET /v1/messages?state=&chain=&limit=&before=      recent messages, filtered and paged (relayer.explorer)
    GET /v1/messages/{id or tx hash}                   one message's pipeline record
    GET /validators/{address}/checkpoints/{origin}/latest | /{index}    a signed checkpoint (public; rate limited)
    POST /validators/{address}/cosign                                   co-sign a Solana/Cosmos delivery (checked;
                                                                        allow-listed relayers only: relayer.api.relayer_auth)
    GET /v1/chains, POST /v1/quote, POST /v1/intents, GET /v1/intents/{id}, GET /v1/integrators/{code}/report
                                                       routing (router.api)
    GET /explorer, GET /v1/explorer/...                the operator's explorer page and its data (relayer.explorer)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import CosignRefused, CosignRequest
from relayer.api.http_front import guarded_protocol
from relayer.api.ratelimit import KeyedRateLimiter, TokenBucket, retry_after_header
from relayer.api.relayer_auth import ANONYMOUS, Endpoint, RequestRefused, ValidatorEndpointGuard
from relayer.api.relayer_auth import HEADERS as RELAYER_HEADERS
from relayer.api.request_guard import (
    Cap,
    FrontLimits,
    RequestGuard,
    cap_answer,
    client_key,
    stream_route_patterns,
)
from relayer.daemon.loop_lag import watch_loop_lag
from relayer.daemon.metrics import Metrics
from relayer.explorer import ExplorerChain, ExplorerQueries, create_explorer_api
from relayer.store import MessageRecord, StoreError
from router.api import BODY_ERRORS, ErrorBody, create_routing_api, error_responses

if TYPE_CHECKING:
    from relayer.daemon.daemon import RelayerDaemon

log = structlog.get_logger("relayer.api.server")

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "the relayer signature is missing, malformed, stale, over another "
                                             "request or body, or a replay: detail.reason says which "
                                             f"({', '.join(RELAYER_HEADERS)})"},
    429: {"model": ErrorBody, "description": "this client's budget is spent (a relayer's own, or the anonymous one of "
                                             "its address): retry after Retry-After seconds",
          "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
}
_COSIGN_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "a CosignRequest (adapters.base): chain, messages, payload, context"}}}}}


def message_view(rec: MessageRecord, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": rec.id,
        "state": rec.state,
        "origin": names.get(rec.origin, str(rec.origin)),
        "origin_domain": rec.origin,
        "destination": names.get(rec.destination, str(rec.destination)),
        "destination_domain": rec.destination,
        "nonce": rec.nonce,
        "sender": rec.sender,
        "recipient": rec.recipient,
        "origin_tx": rec.origin_tx,
        "origin_height": rec.origin_height,
        "dispatched_at": rec.dispatched_at,
        "attempts": rec.attempts,
        "last_reason": rec.last_reason,
        "last_error": rec.last_error,
        "next_attempt_at": rec.next_attempt_at or None,
        "checkpoint_index": rec.checkpoint_index,
        "delivery_tx": rec.delivery_tx,
        "delivered_height": rec.delivered_height,
        "delivered_at": rec.delivered_at,
        "lease_owner": rec.lease_owner,
        "handed_over_from": rec.handed_over_from,
    }


# what the HTTP front (relayer.api.http_front, relayer.api.request_guard) may answer to any request, before any route runs
FRONT_ANSWERS = {
    408: "the request's headers (api.header_timeout_s) or body (api.body_timeout_s) did not arrive in time",
    429: "a per-client cap (connections, requests in flight, event streams): detail names the api.* key; see Retry-After",
    431: "request line and headers over api.max_header_bytes",
    503: "a server-wide cap (connections, requests in flight, event streams): detail names the api.* key; see Retry-After",
}


def _document_front_answers(app: FastAPI) -> None:
    """Every operation in ``/openapi.json`` lists the answers the front can give it (the routes' own stay)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                for status, text in FRONT_ANSWERS.items():
                    responses.setdefault(str(status), {
                        "description": text,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_api(daemon: RelayerDaemon, stop: asyncio.Event | None = None, *, limits: FrontLimits | None = None) -> FastAPI:
    """The app; ``limits``: the HTTP front's, whose load ``/metrics`` shows."""
    app = FastAPI(title="xchain relayer", version="0.1.0",
                  description="Validator checkpoints, message status and health of a relayer daemon.")
    names = {c.domain: n for n, c in daemon.settings.chains.items()}
    for label in ("chain", "origin", "destination"):  # a request naming any other chain adds no series
        daemon.metrics.close_label(label, daemon.settings.chains)

    @app.exception_handler(StoreError)
    @app.exception_handler(SQLAlchemyError)
    async def store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        """The database is down or restarting: 503 with the reason (retry later), never a 500."""
        reason = exc.reason if isinstance(exc, StoreError) else "store_unavailable"
        return JSONResponse({"detail": f"the store is unavailable, retry later ({reason})", "reason": reason},
                            status_code=503, headers={"Retry-After": "2"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "a chain does not answer: {ready: false, chains: {name: detail}}"}})
    async def readyz() -> JSONResponse:
        ok, detail = daemon.ready()
        return JSONResponse({"ready": ok, "chains": detail, "store": daemon.store_status}, status_code=200 if ok else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        if limits is not None:
            limits.publish()
        # read live: a library imported late that raised it again would show here (relayer.cli pins it)
        daemon.metrics.set("relayer_python_recursion_limit", sys.getrecursionlimit())
        return daemon.metrics.render()

    @app.get("/v1/status")
    async def status() -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {}
        for (dest, state), n in (await daemon.store.aio.counts_by_state()).items():
            counts.setdefault(names.get(dest, str(dest)), {})[state] = n
        chains = {}
        for name, st in daemon.chain_status.items():
            h = st.health
            chains[name] = {"domain": st.domain, "healthy": bool(h and h.healthy),
                            "latest_height": h.latest_height if h else None,
                            "finalized_height": h.finalized_height if h else None,
                            "latency_s": h.latency_s if h else None, "detail": h.detail if h else "not checked yet",
                            "capacity": None if st.stats is None else {
                                "block_time_s": round(st.stats.block_time_s, 3), "gas_limit": st.stats.gas_limit,
                                "gas_per_s": round(st.stats.gas_per_s), "utilisation": round(st.stats.gas_used_ratio, 4),
                                "base_fee": st.stats.base_fee, "base_fee_trend": round(st.stats.base_fee_trend, 4),
                                "pending_txs": st.stats.pending_txs}}
        attest = {names.get(d, str(d)): a.latest_index for d, a in daemon.attesters.items()}
        return {"role": daemon.role, "chains": chains, "messages": counts, "reasons": await daemon.store.aio.reasons(),
                "validators": [s.address for s in daemon.signers], "latest_signed_index": attest}

    @app.get("/v1/messages/{key}", responses=error_responses(400, 404))
    async def show_message(key: str) -> dict[str, Any]:
        if not _HEX32.match(key):
            raise HTTPException(400, f"{key!r} is not a 0x-prefixed 32-byte hex message id or transaction hash")
        found = await daemon.store.aio.find(key)
        if not found:
            raise HTTPException(404, f"no message with id or transaction hash {key}")
        return {"messages": [message_view(r, names) for r in found]}

    async def _checkpoint(address: str, origin: int, index: int | None) -> dict[str, Any]:
        if not _ADDRESS.match(address):
            raise HTTPException(400, f"{address!r} is not a 0x-prefixed 20-byte address")
        attester = daemon.attesters.get(origin)
        if attester is None:
            raise HTTPException(404, f"this process does not attest origin domain {origin}")
        rec = await attester.signed(address, index)
        if rec is None:
            raise HTTPException(404, f"no checkpoint of origin {origin} at index {index if index is not None else 'latest'} "
                                     f"signed by {address}")
        return {"validator": rec.validator, "origin": rec.origin, "origin_mailbox": rec.origin_mailbox,
                "root": rec.root, "index": rec.index, "signature": rec.signature}

    guard = ValidatorEndpointGuard.from_settings(daemon.settings.validator, daemon.metrics)
    app.state.validator_guard = guard  # ValidatorAdmission (serve_app) admits with it before the relay loop

    def _admit(request: Request, endpoint: Endpoint, body: bytes) -> str:
        """Who may call (an allow-listed relayer's signature, or anonymous for checkpoints) and how often: the
        served client, or the HTTP refusal with its reason (401/403) or Retry-After (429). Already decided when the
        daemon's front (``ValidatorAdmission``) admitted the request; decided here otherwise."""
        admitted = request.scope.get(ADMITTED_SCOPE_KEY)
        if admitted is not None:
            return str(admitted)
        try:
            return guard.admit(endpoint, request.method, _target(request.scope), request.headers, body,
                               request.client.host if request.client else "")
        except RequestRefused as exc:
            headers = {"Retry-After": retry_after_header(exc.retry_after_s)} if exc.status == 429 else None
            raise HTTPException(exc.status, {"error": str(exc), "reason": exc.reason.value}, headers=headers) from None

    @app.post("/validators/{address}/cosign", openapi_extra=_COSIGN_BODY,
              responses={**error_responses(*BODY_ERRORS, 403, 404), **_AUTH_RESPONSES})
    async def cosign(address: str, request: Request) -> dict[str, Any]:
        """Co-sign a delivery to a Solana/Cosmos destination (``CosignRequest`` JSON), for an allow-listed relayer's
        signed request only (401/403 with the reason otherwise, before the body is even parsed); 403 with the reason
        when the validator's checks refuse the delivery."""
        if daemon.cosign is None:
            raise HTTPException(404, "this process co-signs no deliveries (validator.cosign_keys)")
        raw = await request.body()
        _admit(request, "cosign", raw)
        try:
            body = json.loads(raw)
            request_ = CosignRequest.from_json(body)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise HTTPException(400, {"error": f"not a cosign request: {type(exc).__name__}: {str(exc)[:200]}"}) from None
        try:
            signer, signature = await daemon.cosign.cosign(address, request_)
        except CosignRefused as exc:
            raise HTTPException(403, {"error": str(exc), "reason": exc.reason}) from None
        return {"signer": signer, "signature": signature.hex()}

    @app.get("/validators/{address}/checkpoints/{origin}/latest", responses={**error_responses(400, 404), **_AUTH_RESPONSES})
    async def latest_checkpoint(address: str, origin: int, request: Request) -> dict[str, Any]:
        """The latest checkpoint ``address`` signed for ``origin``: public; a relayer's signed request uses its budget."""
        _admit(request, "checkpoint", await request.body())
        return await _checkpoint(address, origin, None)

    @app.get("/validators/{address}/checkpoints/{origin}/{index}", responses={**error_responses(400, 404), **_AUTH_RESPONSES})
    async def checkpoint_at(address: str, origin: int, index: int, request: Request) -> dict[str, Any]:
        """The checkpoint ``address`` signed for ``origin`` at ``index``: public; a relayer's signed request uses its
        budget."""
        _admit(request, "checkpoint", await request.body())
        return await _checkpoint(address, origin, index)

    app.include_router(create_explorer_api(
        ExplorerQueries(daemon.store.engine), daemon.samples,
        [ExplorerChain(n, c.domain, c.family) for n, c in daemon.settings.chains.items()],
        view=lambda rec: message_view(rec, names), stopping=stop.is_set if stop is not None else None))
    app.include_router(create_routing_api(lambda: daemon.capacity, intents=daemon.intents,
                                          api_keys=daemon.settings.router.api_keys,
                                          admit_intents=limits.admit_intents if limits is not None else None,
                                          release_intents=limits.release_intents if limits is not None else None))
    _document_front_answers(app)
    return app


ADMITTED_SCOPE_KEY = "relayer.validator_admitted"  # set by ValidatorAdmission: who was served (server-side only)
_VALIDATOR_ENDPOINTS: tuple[tuple[str, re.Pattern[str], Endpoint], ...] = (
    ("POST", re.compile(r"^/validators/[^/]+/cosign$"), "cosign"),
    ("GET", re.compile(r"^/validators/[^/]+/checkpoints/.*$"), "checkpoint"),
)


def _target(scope: Any) -> bytes:
    """The request target as sent (path and query): what a relayer's signature covers."""
    target = bytes(scope.get("raw_path") or str(scope.get("path", "")).encode())
    if query := scope.get("query_string"):
        target += b"?" + bytes(query)
    return target


class ValidatorAdmission:
    """ASGI, on the API's own loop: the co-sign and checkpoint endpoints' admission (``ValidatorEndpointGuard``: an
    allow-listed relayer's signature, the budgets) decided before a request is handed to the relay loop, so an
    unauthenticated flood costs the relay loop nothing and cannot crowd out the relayers' requests there. The routes
    see who was admitted in the scope (``ADMITTED_SCOPE_KEY``) and do not decide again."""

    def __init__(self, app: Any, guard: ValidatorEndpointGuard, *, cosigns: bool = True) -> None:
        """``cosigns``: this process co-signs deliveries (else its co-sign route answers 404 unadmitted)."""
        self.app = app
        self.guard = guard
        self.cosigns = cosigns

    def endpoint(self, scope: Any) -> Endpoint | None:
        method, path = scope.get("method"), scope.get("path", "")
        found = next((e for m, p, e in _VALIDATOR_ENDPOINTS if m == method and p.match(path)), None)
        return None if found == "cosign" and not self.cosigns else found

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        endpoint = self.endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:  # the request guard in front has bounded and buffered the body already
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = (scope.get("client") or ("", 0))[0] or ""
        try:
            admitted = self.guard.admit(endpoint, str(scope.get("method")), _target(scope), headers, body, client)
        except RequestRefused as exc:
            extra = [(b"retry-after", retry_after_header(exc.retry_after_s).encode())] if exc.status == 429 else []
            answer = json.dumps({"detail": {"error": str(exc), "reason": exc.reason.value}}).encode()
            await send({"type": "http.response.start", "status": exc.status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(answer)).encode()), *extra]})
            await send({"type": "http.response.body", "body": answer})
            return
        scope[ADMITTED_SCOPE_KEY] = admitted
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


# Routes whose handlers use the relay loop's own objects (the chain adapters' sessions, the intent executor, the
# capacity model, the attesters' signing state): with the API on its own thread, the whole request runs on the
# relay loop (``RelayLoopRoutes``), as it always did. Everything else (health, metrics, the explorer, message and
# batch reads, event streams) and all of the front (connections, headers, caps, body checks) runs on the API's
# own loop.
RELAY_LOOP_ROUTES = (
    ("POST", r"/v1/quote"), ("POST", r"/v1/intents"), ("POST", r"/v1/intents/[^/]+/broadcast"),
    ("GET", r"/v1/intents/[^/]+"), ("GET", r"/v1/chains"), ("GET", r"/v1/status"),
    ("POST", r"/validators/[^/]+/cosign"), ("GET", r"/validators/[^/]+/checkpoints/.*"),
)
# ... of which these are not counted against the relay loop's share: the relayers' own lifeline (every relayer asks
# every validator for checkpoints several times a second), a lookup that costs the loop little. A flood of other
# requests must not make a validator refuse them (relaying would stop for want of a quorum).
UNCAPPED_RELAY_ROUTES = (("GET", r"/validators/[^/]+/checkpoints/.*"),)


class RelayLoopRoutes:
    """ASGI: requests to ``RELAY_LOOP_ROUTES`` run on ``relay_loop`` (their ``receive``/``send`` handed back to the
    API's loop); at most ``max_per_s`` a second in all (503 naming ``api.max_relay_requests_per_s``) and
    ``max_per_s_per_client`` from one client (429), so the API never takes more than that share of the relay loop
    and one client not all of it. Others run here."""

    def __init__(self, app: Any, relay_loop: asyncio.AbstractEventLoop, limits: FrontLimits, max_per_s: float,
                 max_per_s_per_client: float) -> None:
        self.app = app
        self.relay_loop = relay_loop
        self.limits = limits
        self.routes = [(m, re.compile(f"^{p}$")) for m, p in RELAY_LOOP_ROUTES]
        self.uncapped = [(m, re.compile(f"^{p}$")) for m, p in UNCAPPED_RELAY_ROUTES]
        self.rate = TokenBucket(max_per_s, max_per_s, max_per_s, time.monotonic())
        self.client_rate = KeyedRateLimiter(max_per_s_per_client, max_per_s_per_client)
        self.cap = Cap("max_relay_requests_per_s", int(max_per_s), False)
        self.client_cap = Cap("max_relay_requests_per_s_per_client", int(max_per_s_per_client), True)

    def on_relay_loop(self, scope: dict[str, Any]) -> bool:
        method, path = scope.get("method"), scope.get("path", "")
        return any(m == method and p.match(path) for m, p in self.routes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not self.on_relay_loop(scope):
            await self.app(scope, receive, send)
            return
        cap = None
        method, path = scope.get("method"), scope.get("path", "")
        if any(m == method and p.match(path) for m, p in self.uncapped):
            pass
        elif scope.get(ADMITTED_SCOPE_KEY) not in (None, ANONYMOUS):
            pass  # an allow-listed relayer's signed request (its own budget, ValidatorAdmission): its lifeline
        elif self.client_rate.take(client_key((scope.get("client") or (None, 0))[0])) > 0:
            cap = self.client_cap  # one client may not take the relay loop's whole share
        elif self.rate.take(1, time.monotonic()) > 0:
            cap = self.cap
        if cap is not None:
            self.limits.refused(cap.key, path=scope.get("path"))
            status, headers, body = cap_answer(cap, "requests for the relay loop")
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        api_loop = asyncio.get_running_loop()

        async def on_api_loop(coro: Any) -> Any:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, api_loop))

        async def relay_receive() -> Any:
            return await on_api_loop(receive())

        async def relay_send(message: Any) -> None:
            await on_api_loop(send(message))

        done = asyncio.run_coroutine_threadsafe(self.app(scope, relay_receive, relay_send), self.relay_loop)
        try:
            await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            done.cancel()
            raise


def serve_app(daemon: RelayerDaemon, stop: asyncio.Event | None = None,
              relay_loop: asyncio.AbstractEventLoop | None = None) -> tuple[RequestGuard, uvicorn.Config]:
    """The guarded app and the uvicorn config the daemon serves it with (``api.*`` limits, the guarded protocol).
    ``relay_loop``: the API is served on another loop, and ``RELAY_LOOP_ROUTES`` are run on this one."""
    from relayer.daemon.daemon import api_host_port

    api = daemon.settings.api
    host, port = api_host_port(api.url)
    limits = FrontLimits.from_settings(api, daemon.metrics)
    inner = create_api(daemon, stop, limits=limits)
    routed: Any = inner if relay_loop is None else RelayLoopRoutes(inner, relay_loop, limits, api.max_relay_requests_per_s,
                                                                   api.max_relay_requests_per_s_per_client)
    routed = ValidatorAdmission(routed, inner.state.validator_guard, cosigns=daemon.cosign is not None)
    app = RequestGuard(routed, limits=limits, stream_routes=stream_route_patterns(inner.openapi()))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
                            http=guarded_protocol(limits), ws="none",  # no websockets: an upgrade would leave the front
                            timeout_keep_alive=api.keep_alive_s,
                            proxy_headers=False,  # a client is who connects: X-Forwarded-For would let it pick its key
                            backlog=2048, timeout_graceful_shutdown=3)  # an open event stream must not hold up a stop
    return app, config


def _enough_file_descriptors(max_connections: int) -> None:
    """``api.max_connections`` sockets plus the daemon's own (RPC, store): raise the soft RLIMIT_NOFILE (often
    1,024) toward the hard one when it is lower, else say so (connections past it would fail to be accepted)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + 512
    if soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < wanted:
        log.warning("api_fd_limit_low", soft=resource.getrlimit(resource.RLIMIT_NOFILE)[0], wanted=wanted,
                    hint="raise the open files limit (ulimit -n) or lower api.max_connections")


async def _serve_watching_lag(server: uvicorn.Server, metrics: Metrics) -> None:
    """``server.serve()`` on the API's own loop, with that loop's lag recorded (``loop="api"``)."""
    served = asyncio.Event()
    watcher = asyncio.create_task(watch_loop_lag(metrics, "api", served))
    try:
        await server.serve()
    finally:
        served.set()
        await watcher


async def serve_api(daemon: RelayerDaemon, stop: asyncio.Event) -> None:
    """Serve the API until ``stop``: on its own thread and event loop (``api.own_thread``, the default), so the relay
    loops are never queued behind HTTP work, or on this loop."""
    own_thread = daemon.settings.api.own_thread
    _enough_file_descriptors(daemon.settings.api.max_connections)
    _app, config = serve_app(daemon, stop, relay_loop=asyncio.get_running_loop() if own_thread else None)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # the daemon owns SIGINT/SIGTERM
    failed: list[BaseException] = []
    if own_thread:
        def run() -> None:
            try:
                asyncio.run(_serve_watching_lag(server, daemon.metrics))
            except BaseException as exc:  # noqa: BLE001 - reported to the daemon's loop below
                failed.append(exc)

        thread = threading.Thread(target=run, name="api", daemon=True)
        thread.start()
        finished = lambda: not thread.is_alive()
    else:
        serve = asyncio.create_task(server.serve())
        finished = serve.done
    try:
        while not server.started and not finished():
            await asyncio.sleep(0.02)
        if finished():
            if not own_thread:
                serve.result()
            if failed:
                raise failed[0]
            raise OSError(f"the API could not listen on {config.host}:{config.port}")
        log.info("api_serving", url=daemon.settings.api.url, own_thread=own_thread)
        await stop.wait()
    finally:
        server.should_exit = True
        if own_thread:
            await asyncio.to_thread(thread.join, 10)
        else:
            with contextlib.suppress(Exception):
                await serve
