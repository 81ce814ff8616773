"""A request's slot in ``api.max_requests_in_flight`` (``RequestGuard``) is given back once its whole answer is sent:
a route run on the relay loop (``RelayLoopRoutes``, a real second loop on its own thread here) returns only when that
loop gets round to it, and counted until then each client's next request overlapped its last."""

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


def guarded(app: Any, relay_loop: asyncio.AbstractEventLoop) -> tuple[RequestGuard, FrontLimits]:
    limits = FrontLimits(max_requests_in_flight=4, max_requests_in_flight_per_client=4)
    return RequestGuard(RelayLoopRoutes(app, relay_loop, limits, 1000.0, 1000.0), limits=limits), limits


async def call(guard: RequestGuard, sent: list[dict[str, Any]]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await guard(dict(SCOPE), receive, send)


async def until(predicate, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def test_a_request_leaves_the_count_in_flight_once_answered_while_its_route_still_runs(relay_loop):
    release = threading.Event()

    async def route(scope: Any, receive: Any, send: Any) -> None:  # on the relay loop
        assert threading.current_thread().name == "relay"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 10)  # the relay loop, busy elsewhere

    async def main() -> None:
        guard, limits = guarded(route, relay_loop)
        sent: list[dict[str, Any]] = []
        request = asyncio.create_task(call(guard, sent))
        await until(lambda: len(sent) == 2)
        assert limits.requests.in_flight == 0 and not request.done()  # answered: no longer counted
        assert limits.requests.acquire("other") is None  # another client's request, still in flight
        release.set()
        await asyncio.wait_for(request, 5)
        assert limits.requests.in_flight == 1  # the first request's slot was given back once, not twice

    asyncio.run(main())


def test_a_request_that_fails_before_answering_gives_its_slot_back_when_it_ends(relay_loop):
    async def route(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("route failed")

    async def main() -> None:
        guard, limits = guarded(route, relay_loop)
        with pytest.raises(RuntimeError, match="route failed"):
            await asyncio.wait_for(call(guard, []), 5)
        assert limits.requests.in_flight == 0

    asyncio.run(main())
