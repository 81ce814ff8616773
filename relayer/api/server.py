"""The daemon's HTTP API (FastAPI): validator checkpoints, message status, health, readiness, metrics.

    GET /healthz                                       process is up
    GET /readyz                                        200 only when every configured chain answers
    GET /metrics                                       Prometheus text
    GET /v1/status                                     chains, queue depths by state, failure reasons
    GET /v1/messages?state=&chain=&limit=&before=      recent messages, filtered and paged (relayer.explorer)
    GET /v1/messages/{id or tx hash}                   one message's pipeline record
    GET /validators/{address}/checkpoints/{origin}/latest | /{index}    a signed checkpoint (public; rate limited)
    POST /validators/{address}/cosign                                   co-sign a Solana/Cosmos delivery (checked;
                                                                        allow-listed relayers only:
                                                                        relayer.api.relayer_auth)
    GET /v1/chains, POST /v1/quote, POST /v1/intents, GET /v1/intents/{id}, GET /v1/integrators/{code}/report
                                                       routing (router.api)
    GET /explorer, GET /v1/explorer/...                the operator's explorer page and its data (relayer.explorer)
    /admin/v1/...                                      the operator's: message filters, stuck messages (retry,
                                                       drop), route pause / resume; admin keys only
                                                       (relayer.api.routes.admin)

Routes by area: ``relayer.api.routes.health`` (health, readiness, metrics, status), ``.messages``, ``.validators``
(checkpoints, co-signing, their admission), the explorer and the routing API (``router.api``), mounted here. Every
error has one shape (``router.errors.ErrorBody``; bad input is 400 naming the field). The API reads the daemon only
through ``relayer.api.daemon_view.DaemonView``: it never imports ``relayer.daemon``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from relayer.api.daemon_view import DaemonView
from relayer.api.http_front import guarded_protocol
from relayer.api.ratelimit import KeyedRateLimiter, TokenBucket
from relayer.api.relayer_auth import ANONYMOUS, ValidatorEndpointGuard
from relayer.api.request_guard import (
    Cap,
    FrontLimits,
    RequestGuard,
    cap_answer,
    client_key,
    send_answer,
    stream_route_patterns,
)
from relayer.api.routes.admin import admin_routes
from relayer.api.routes.health import health_routes
from relayer.api.routes.messages import message_routes
from relayer.api.routes.validators import (
    ADMITTED_SCOPE_KEY,
    ValidatorAdmission,
    validator_routes,
)
from relayer.api.schemas import FRONT_ANSWERS, message_view
from relayer.explorer import ExplorerChain, ExplorerQueries, create_explorer_api
from relayer.store import StoreError
from router.api import create_routing_api
from router.errors import ERROR_BODY_REF, document_error_shape, install_error_handlers

log = structlog.get_logger("relayer.api.server")


def _document_front_answers(app: FastAPI) -> None:
    """Every operation in ``/openapi.json`` lists the answers the front can give it (the routes' own stay), and bad
    input as the one 400 shape (``router.errors.document_error_shape``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = document_error_shape(build())
        for operations in schema.get("paths", {}).values():
            for op in operations.values():
                responses = op.setdefault("responses", {})
                for status, text in FRONT_ANSWERS.items():
                    responses.setdefault(str(status), {"description": text, "content": ERROR_BODY_REF})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The database is down or restarting: 503 with the reason (retry later), never a 500."""
    reason = exc.reason if isinstance(exc, StoreError) else "store_unavailable"
    return JSONResponse({"detail": f"the store is unavailable, retry later ({reason})", "reason": reason},
                        status_code=503, headers={"Retry-After": "2"})


def create_api(daemon: DaemonView, stop: asyncio.Event | None = None, *, limits: FrontLimits | None = None) -> FastAPI:
    """The app; ``limits``: the HTTP front's, whose load ``/metrics`` shows."""
    app = FastAPI(title="xchain relayer", version="0.1.0",
                  description="Validator checkpoints, message status and health of a relayer daemon.")
    names = {c.domain: n for n, c in daemon.settings.chains.items()}
    for label in ("chain", "origin", "destination"):  # a request naming any other chain adds no series
        daemon.metrics.close_label(label, daemon.settings.chains)
    app.add_exception_handler(StoreError, _store_unavailable)
    app.add_exception_handler(SQLAlchemyError, _store_unavailable)
    install_error_handlers(app)
    guard = ValidatorEndpointGuard.from_settings(daemon.settings.validator, daemon.metrics)
    app.state.validator_guard = guard  # ValidatorAdmission (serve_app) admits with it before the relay loop
    app.include_router(health_routes(daemon, limits))
    app.include_router(message_routes(daemon))
    app.include_router(admin_routes(daemon))
    app.include_router(validator_routes(daemon, guard))
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


# Routes whose handlers use the relay loop's own objects (the chain adapters' sessions, the intent executor, the
# capacity model, the attesters' signing state, the gas policy's oracle reads, the processors): with the API on its
# own thread, the whole request runs on the relay loop (``RelayLoopRoutes``), as it always did. Everything else
# (health, metrics, the explorer, message and batch reads, event streams) and all of the front (connections, headers,
# caps, body checks) runs on the API's own loop.
RELAY_LOOP_ROUTES = (
    ("POST", r"/v1/quote"), ("POST", r"/v1/intents"), ("POST", r"/v1/intents/[^/]+/broadcast"),
    ("GET", r"/v1/intents/[^/]+"), ("GET", r"/v1/chains"), ("GET", r"/v1/status"),
    ("POST", r"/validators/[^/]+/cosign"), ("GET", r"/validators/[^/]+/checkpoints/.*"),
    ("GET", r"/v1/messages/[^/]+/gas"), ("POST", r"/admin/v1/messages/[^/]+/execute"),
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

    def __init__(self, app: Any, relay_loop: asyncio.AbstractEventLoop | None, limits: FrontLimits, max_per_s: float,
                 max_per_s_per_client: float) -> None:
        # None until ``PreparedApi.bind``: an app built before its daemon's loop runs
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
            await send_answer(send, *cap_answer(cap, "requests for the relay loop"))
            return
        api_loop = asyncio.get_running_loop()

        async def on_api_loop(coro: Any) -> Any:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, api_loop))

        async def relay_receive() -> Any:
            return await on_api_loop(receive())

        async def relay_send(message: Any) -> None:
            await on_api_loop(send(message))

        if self.relay_loop is None:
            raise RuntimeError("RelayLoopRoutes served before PreparedApi.bind gave it the relay loop")
        done = asyncio.run_coroutine_threadsafe(self.app(scope, relay_receive, relay_send), self.relay_loop)
        try:
            await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            done.cancel()
            raise



def api_host_port(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)


@dataclass
class PreparedApi:
    """The daemon's API built and not yet served: the guarded app, its uvicorn config and, when it is to be served on
    its own thread (``api.own_thread``), the routes to run on the relay loop, bound to that loop when served. Building
    it (FastAPI's routes and their pydantic models, the OpenAPI document) takes a few hundred milliseconds: a daemon
    started from a warm standby (``relayer.testing``) builds it ahead of time."""

    app: RequestGuard
    config: uvicorn.Config
    relay_routes: RelayLoopRoutes | None

    @property
    def own_thread(self) -> bool:
        return self.relay_routes is not None

    def bind(self, relay_loop: asyncio.AbstractEventLoop) -> None:
        if self.relay_routes is not None:
            self.relay_routes.relay_loop = relay_loop


def prepare_api(daemon: DaemonView, stop: asyncio.Event | None = None, *,
                own_thread: bool | None = None) -> PreparedApi:
    """The guarded app and the uvicorn config the daemon serves it with (``api.*`` limits, the guarded protocol).
    ``own_thread`` (default ``api.own_thread``): the API is served on another loop, and ``RELAY_LOOP_ROUTES`` are run
    on the relay loop (``PreparedApi.bind``)."""
    api = daemon.settings.api
    host, port = api_host_port(api.url)
    limits = FrontLimits.from_settings(api, daemon.metrics)
    inner = create_api(daemon, stop, limits=limits)
    relay_routes = None
    if api.own_thread if own_thread is None else own_thread:
        relay_routes = RelayLoopRoutes(inner, None, limits, api.max_relay_requests_per_s,
                                       api.max_relay_requests_per_s_per_client)
    routed = ValidatorAdmission(relay_routes or inner, inner.state.validator_guard, cosigns=daemon.cosign is not None)
    app = RequestGuard(routed, limits=limits, stream_routes=stream_route_patterns(inner.openapi()))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
                            http=guarded_protocol(limits), ws="none",  # no websockets: an upgrade would leave the front
                            timeout_keep_alive=api.keep_alive_s,
                            proxy_headers=False,  # a client is who connects: X-Forwarded-For would let it pick its key
                            backlog=2048, timeout_graceful_shutdown=3)  # an open event stream must not hold up a stop
    return PreparedApi(app, config, relay_routes)


def serve_app(daemon: DaemonView, stop: asyncio.Event | None = None,
              relay_loop: asyncio.AbstractEventLoop | None = None) -> tuple[RequestGuard, uvicorn.Config]:
    """``prepare_api``'s app and config; ``relay_loop``: served on another loop, these routes run on this one."""
    prepared = prepare_api(daemon, stop, own_thread=relay_loop is not None)
    if relay_loop is not None:
        prepared.bind(relay_loop)
    return prepared.app, prepared.config


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



# records the running loop's lag until the event is set
LagWatcher = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


async def _serve_watching_lag(server: uvicorn.Server, watch_lag: LagWatcher | None) -> None:
    """``server.serve()`` on the API's own loop, with that loop's lag recorded (``watch_lag``, ``loop="api"``)."""
    if watch_lag is None:
        await server.serve()
        return
    served = asyncio.Event()
    watcher = asyncio.create_task(watch_lag(served))
    try:
        await server.serve()
    finally:
        served.set()
        await watcher


async def serve_api(daemon: DaemonView, stop: asyncio.Event, *, watch_lag: LagWatcher | None = None,
                    prepared: PreparedApi | None = None) -> None:
    """Serve the API until ``stop``: on its own thread and event loop (``api.own_thread``, the default), so the relay
    loops are never queued behind HTTP work, or on this loop. ``watch_lag``: records the API loop's lag (the daemon's
    ``relayer.daemon.loop_lag.watch_loop_lag``). ``prepared``: the API built ahead (``prepare_api`` with this
    ``stop``), else built now."""
    _enough_file_descriptors(daemon.settings.api.max_connections)
    if prepared is None:
        prepared = prepare_api(daemon, stop)
    prepared.bind(asyncio.get_running_loop())
    own_thread, config = prepared.own_thread, prepared.config
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # the daemon owns SIGINT/SIGTERM
    failed: list[BaseException] = []
    if own_thread:
        def run() -> None:
            try:
                asyncio.run(_serve_watching_lag(server, watch_lag))
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
