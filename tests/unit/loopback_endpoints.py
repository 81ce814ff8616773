"""Real HTTP endpoints on loopback for the light clients' fallback tests (no network beyond 127.0.0.1).

``LoopbackServers`` runs aiohttp apps (and ASGI apps under uvicorn: the devnets' own Beacon API and CometBFT RPC) on
free loopback ports, each server in a thread of its own. ``FaultyEndpoint`` stands in front of an honest endpoint and
is honest until told otherwise: it then resets every connection, hangs without answering, answers HTTP 503, answers
what is not JSON, or passes the honest answer through a rewrite (a lie). That proxy is the only fake: what it forwards
is a real endpoint's answer, and the light client under test talks HTTP to it. ``dead_url`` is a port nobody listens
on (connection refused).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import httpx
import uvicorn
from aiohttp import web

Rewrite = Callable[[str, Any], Any]  # (path, decoded JSON answer) -> the JSON to send instead


class Fault(Enum):
    HONEST = "honest"
    RESET = "reset"        # the connection is closed without an answer
    HANG = "hang"          # no answer, ever (until the server closes)
    STATUS_503 = "503"     # a gateway without its node
    GARBAGE = "garbage"    # HTTP 200, not JSON
    LIE = "lie"            # the honest answer, rewritten


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def dead_url() -> str:
    """A loopback URL nobody listens on: every request is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.01)


class _AioServer:
    """One aiohttp app on a loopback port, its event loop in a thread of its own."""

    def __init__(self, app: web.Application) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._sock = _bound_socket()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)

        async def start() -> None:
            await self._runner.setup()
            await web.SockSite(self._runner, self._sock).start()

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)

    def call(self, fn: Callable[[], None]) -> None:
        """``fn()`` on the server's loop (what its handlers share)."""
        self._loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class _AsgiServer:
    """An ASGI app (FastAPI) under uvicorn on a loopback port, in a thread of its own."""

    def __init__(self, app: Any) -> None:
        sock = _bound_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        wait_until(lambda: self._server.started, 10, "uvicorn to serve")

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


class FaultyEndpoint:
    """An endpoint in front of ``upstream`` that fails as ``fault`` says (see ``Fault``); ``requests`` counts what
    reached it, ``lie`` rewrites honest answers in ``Fault.LIE``."""

    def __init__(self, upstream: str, servers: LoopbackServers) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault = Fault.HONEST
        self.lie: Rewrite = lambda _path, doc: doc
        self.requests = 0
        self._released: asyncio.Event | None = None
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = servers.aiohttp(app)
        self.url = self._server.url

    def set(self, fault: Fault, lie: Rewrite | None = None) -> None:
        self.fault = fault
        if lie is not None:
            self.lie = lie

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        fault = self.fault
        if fault is Fault.RESET:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never sent: the connection is gone
        if fault is Fault.HANG:
            if self._released is None:
                self._released = asyncio.Event()
            await self._released.wait()
            return web.Response(status=500)
        if fault is Fault.STATUS_503:
            return web.Response(status=503, text="Service Unavailable")
        if fault is Fault.GARBAGE:
            return web.Response(status=200, text="<html>the provider's maintenance page</html>")
        return await self._forward(request, lie=fault is Fault.LIE)

    async def _forward(self, request: web.Request, *, lie: bool) -> web.Response:
        body = await request.read()
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.request(request.method, self.upstream + request.path_qs, content=body,
                                          headers={"content-type": request.headers.get("content-type", "")})
        content = answer.content
        if lie and answer.status_code == 200:
            content = json.dumps(self.lie(request.path_qs, answer.json())).encode()
        return web.Response(status=answer.status_code, body=content, content_type="application/json")

    def close(self) -> None:
        released = self._released
        if released is not None:
            self._server.call(released.set)


class LoopbackServers:
    """The servers of one test; ``close`` stops them all."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], None]] = []

    def aiohttp(self, app: web.Application) -> _AioServer:
        server = _AioServer(app)
        self._closers.append(server.close)
        return server

    def asgi(self, app: Any) -> str:
        server = _AsgiServer(app)
        self._closers.append(server.close)
        return server.url

    def faulty(self, upstream: str) -> FaultyEndpoint:
        endpoint = FaultyEndpoint(upstream, self)
        self._closers.append(endpoint.close)
        return endpoint

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
