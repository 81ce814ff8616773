"""Fallback mode shared by every family (adapters.endpoints: what demotes an endpoint, the order, one retry of a reset
connection), and its two transports beyond EVM: Solana (adapters.solana.transport, under solana-py) and Cosmos
(adapters.cosmos.client, CometBFT RPC and REST each with its fallbacks). No network: mock transports."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import aiohttp
import httpx
import httpx2
import pytest
from structlog.testing import capture_logs

from adapters.base import RpcUnavailable
from adapters.cosmos.client import CosmosHttp, RpcAnswerError
from adapters.endpoints import (
    Endpoints,
    EndpointStatus,
    first_answer,
    is_endpoint_failure,
    is_reset,
    once_more_on_reset,
)
from adapters.solana.errors import map_exception as solana_map_exception
from adapters.solana.transport import FallbackTransport, fallback_client


def _aiohttp_status(status: int) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(None, (), status=status)  # type: ignore[arg-type]


def _httpx_status(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://a")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(status, request=request))


def _httpx2_status(status: int) -> httpx2.HTTPStatusError:
    request = httpx2.Request("POST", "http://a")
    return httpx2.HTTPStatusError("x", request=request, response=httpx2.Response(status, request=request))


@pytest.mark.parametrize("exc", [
    EndpointStatus(503), _aiohttp_status(500), _aiohttp_status(429), _httpx_status(502), _httpx2_status(429),
    aiohttp.ClientConnectionError(), aiohttp.ClientPayloadError(), TimeoutError(), ConnectionRefusedError(),
    httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx2.ConnectError("refused"),
    httpx2.ReadTimeout("slow"), httpx2.RemoteProtocolError("closed"),
], ids=lambda e: type(e).__name__)
def test_down_or_overloaded_endpoints_are_failures_in_every_http_client(exc: BaseException) -> None:
    assert is_endpoint_failure(exc)


@pytest.mark.parametrize("exc", [
    _aiohttp_status(400), _aiohttp_status(404), _httpx_status(404), _httpx2_status(413), ValueError("bad json"),
    KeyError("result"), RpcAnswerError("tx not found", chain="c"),
], ids=lambda e: type(e).__name__)
def test_the_nodes_own_answers_are_no_endpoint_failure(exc: BaseException) -> None:
    assert not is_endpoint_failure(exc)


def test_only_a_connection_failure_that_cost_no_wait_is_a_reset() -> None:
    assert is_reset(httpx.ConnectError("x")) and is_reset(httpx2.RemoteProtocolError("x"))
    assert is_reset(aiohttp.ClientConnectionError()) and is_reset(ConnectionResetError())
    assert not is_reset(httpx.ReadTimeout("x")) and not is_reset(httpx2.PoolTimeout("x"))
    assert not is_reset(TimeoutError()) and not is_reset(EndpointStatus(503))


async def test_a_reset_is_tried_once_more_and_a_timeout_never() -> None:
    calls: list[int] = []

    async def reset_once() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("server closed the pooled connection")
        return "answer"

    assert await once_more_on_reset(reset_once) == "answer" and len(calls) == 2

    timeouts: list[int] = []

    async def hung() -> str:
        timeouts.append(1)
        raise httpx.ReadTimeout("hung")

    with pytest.raises(httpx.ReadTimeout):
        await once_more_on_reset(hung)
    assert len(timeouts) == 1  # a hung endpoint costs one timeout


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_first_answer_demotes_a_failing_endpoint_and_logs_it_by_index_never_by_url() -> None:
    clock = Clock()
    eps = Endpoints(["http://key-a.example/SECRET", "http://b", "http://c"], clock=clock)
    asked: list[int] = []

    async def ask(i: int) -> str:
        asked.append(i)
        if i == 0:
            raise httpx.ConnectError("refused")
        return f"answer {i}"

    with capture_logs() as logs:
        assert await first_answer(eps, ask, chain="cosmos", first_index=3) == "answer 1"
    assert asked == [0, 1] and eps.healthy() == [False, True, True]
    assert logs == [{"event": "rpc_endpoint_failed", "log_level": "warning", "chain": "cosmos", "endpoint": 3,
                     "next_endpoint": 4, "error": "ConnectError"}]
    assert "SECRET" not in repr(logs)
    asked.clear()
    assert await first_answer(eps, ask, chain="cosmos") == "answer 1" and asked == [1]  # skipped while demoted
    clock.now = 5.0
    asked.clear()
    assert await first_answer(eps, ask, chain="cosmos") == "answer 1" and asked == [0, 1]  # probed, failed again
    clock.now = 14.0
    assert eps.order()[0] == 1  # 10 s this time


async def test_first_answer_raises_the_nodes_answer_at_once_and_the_last_failure_when_all_fail() -> None:
    eps = Endpoints(["http://a", "http://b"])

    async def wrong(i: int) -> str:
        raise ValueError("the node refused the request")

    with pytest.raises(ValueError):
        await first_answer(eps, wrong, chain="c")
    assert eps.healthy() == [True, True]  # it answered

    async def down(i: int) -> str:
        raise EndpointStatus(502 + i)

    with pytest.raises(EndpointStatus) as raised:
        await first_answer(eps, down, chain="c")
    assert raised.value.status == 503 and eps.healthy() == [False, False]


# --- Solana: solana-py over FallbackTransport ---------------------------------------------------------------------

def _slot_answer(request: httpx2.Request, slot: int) -> httpx2.Response:
    body = json.loads(request.content)
    return httpx2.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": slot})


async def test_solana_requests_go_on_through_the_next_endpoint_and_follow_its_host() -> None:
    seen: list[tuple[str, str]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((request.url.host, request.headers["host"]))
        if request.url.host == "first":
            return httpx2.Response(503, text="<html>bad gateway</html>")
        return _slot_answer(request, 42)

    eps = Endpoints(["http://first:8899", "http://second:8899"])
    client = fallback_client("solana", eps, timeout_s=2, inner=httpx2.MockTransport(handler))
    try:
        assert (await client.get_slot()).value == 42
        assert seen == [("first", "first:8899"), ("second", "second:8899")]
        assert eps.healthy() == [False, True]
        seen.clear()
        assert (await client.get_slot()).value == 42 and seen == [("second", "second:8899")]
    finally:
        await client.close()


async def test_solana_with_every_endpoint_failing_is_rpc_unavailable() -> None:
    calls: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.url.host)
        if request.url.host == "first":
            raise httpx2.ReadTimeout("hung", request=request)
        return httpx2.Response(429, text="slow down")

    eps = Endpoints(["http://first", "http://second"])
    client = fallback_client("solana", eps, timeout_s=2, inner=httpx2.MockTransport(handler))
    try:
        with pytest.raises(Exception) as raised:
            await client.get_slot()
        mapped = solana_map_exception(raised.value, chain="solana", context="getSlot")
        assert isinstance(mapped, RpcUnavailable)
        assert calls == ["first", "second"]  # the timeout not retried, solana-py's own retry off
        assert eps.healthy() == [False, False]
    finally:
        await client.close()


async def test_solana_a_json_rpc_error_is_the_nodes_answer() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        return httpx2.Response(200, json={"jsonrpc": "2.0", "id": body["id"],
                                          "error": {"code": -32602, "message": "Invalid params"}})

    transport = FallbackTransport("solana", eps := Endpoints(["http://a", "http://b"]), httpx2.MockTransport(handler))
    async with httpx2.AsyncClient(transport=transport) as http:
        response = await http.post("http://a", content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getSlot"}))
    assert response.status_code == 200 and eps.healthy() == [True, True]


# --- Cosmos: CometBFT RPC and REST, each with its fallbacks --------------------------------------------------------

def _cosmos(handler: Any) -> CosmosHttp:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return CosmosHttp("cosmos", ["http://rpc0", "http://rpc1/"], ["http://rest0", "http://rest1"], timeout_s=2,
                      http=http)


async def test_cosmos_rpc_and_rest_each_fall_back_and_health_numbers_rpc_then_rest() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "rpc0":
            raise httpx.ConnectError("refused", request=request)
        if host == "rest0":
            return httpx.Response(503, json={"code": 14, "message": "unavailable", "details": []})
        if host == "rpc1":
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": -1, "result": {"node_info": {}}})
        return httpx.Response(404, json={"code": 5, "message": "account not found", "details": []})

    http = _cosmos(handler)
    try:
        assert await http.rpc("status") == {"node_info": {}}
        assert await http.rest("/cosmos/auth/v1beta1/accounts/x") == (404, {"code": 5, "message": "account not found",
                                                                             "details": []})
        assert http.endpoint_health() == [False, True, False, True]
    finally:
        await http.close()


async def test_cosmos_a_json_rpc_error_with_http_500_is_the_nodes_answer_not_a_failing_endpoint() -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(500, json={"jsonrpc": "2.0", "id": -1,
                                         "error": {"code": -32603, "message": "Internal error",
                                                   "data": "height 99 must be less than or equal to 5"}})

    http = _cosmos(handler)
    try:
        with pytest.raises(RpcAnswerError):
            await http.rpc("block", height=99)
        assert hosts == ["rpc0"] and http.endpoint_health() == [True, True, True, True]
    finally:
        await http.close()


async def test_cosmos_every_endpoint_failing_is_rpc_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "rpc0":
            raise httpx.ReadTimeout("hung", request=request)
        return httpx.Response(502, text="<html>bad gateway</html>")

    http = _cosmos(handler)
    try:
        with pytest.raises(RpcUnavailable, match="HTTP 502"):
            await http.rpc("status")
        assert http.endpoint_health() == [False, False, True, True]
    finally:
        await http.close()


async def test_cosmos_a_broadcast_goes_on_through_the_next_endpoint_and_already_known_counts_as_sent() -> None:
    raw = b"signed tx bytes"
    bodies: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.url.host, json.loads(request.content)))
        if request.url.host == "rest0":
            raise httpx.ReadTimeout("hung", request=request)  # it may have taken the tx before it hung
        return httpx.Response(200, json={"tx_response": {"code": 19, "codespace": "sdk", "txhash": "",
                                                         "raw_log": "tx already exists in cache"}})

    http = _cosmos(handler)
    try:
        assert await http.broadcast(raw) == hashlib.sha256(raw).hexdigest().upper()
        expected = {"tx_bytes": base64.b64encode(raw).decode(), "mode": "BROADCAST_MODE_SYNC"}
        assert bodies == [("rest0", expected), ("rest1", expected)]
        assert http.endpoint_health() == [True, True, False, True]
    finally:
        await http.close()
