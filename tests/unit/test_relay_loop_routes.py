"""``RelayLoopRoutes`` (relayer/api/server.py): a request run on the relay loop is done for the API (and leaves the
request guard's count) once its whole answer is sent, not when the busy relay loop gets round to returning."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from relayer.api.request_guard import FrontLimits, RequestGuard
from relayer.api.server import RelayLoopRoutes

SCOPE = {"type": "http", "method": "GET", "path": "/v1/chains", "client": ("127.0.0.1", 5000), "headers": []}


@pytest.fixture
def relay_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="relay", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def served(app: Any, relay_loop: asyncio.AbstractEventLoop) -> tuple[RequestGuard, FrontLimits]:
    limits = FrontLimits()
    return RequestGuard(RelayLoopRoutes(app, relay_loop, limits, 1000.0, 1000.0), limits=limits), limits


async def call(guard: RequestGuard) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(dict(SCOPE), receive, send)
    return sent


def test_a_request_leaves_the_count_in_flight_when_answered_while_its_route_still_runs(relay_loop):
    release = threading.Event()
    route_ended = threading.Event()

    async def route(scope: Any, receive: Any, send: Any) -> None:  # on the relay loop
        assert threading.current_thread().name == "relay"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)  # the relay loop, busy elsewhere
        route_ended.set()

    async def main() -> None:
        guard, limits = served(route, relay_loop)
        sent = await asyncio.wait_for(call(guard), 5)
        assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
        assert limits.requests.in_flight == 0 and not route_ended.is_set()
        release.set()
        assert await asyncio.to_thread(route_ended.wait, 5)

    asyncio.run(main())


def test_an_error_before_the_answer_is_still_the_requests_error(relay_loop):
    async def route(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("route failed")

    async def main() -> None:
        guard, limits = served(route, relay_loop)
        with pytest.raises(RuntimeError, match="route failed"):
            await asyncio.wait_for(call(guard), 5)
        assert limits.requests.in_flight == 0

    asyncio.run(main())
