"""The typed client (router.client), sync and async alike.

Its logic (retries and backoff, Retry-After, typed errors, server-sent events, reconnecting) against scripted answers
(``httpx.MockTransport``), with an injected sleep that records the delays instead of sleeping; then against the real
apps, no devnet: the routing API over a SQLite store and a recording fake chain (tests/unit/test_router_limits.py's
``Api``) in-process (``httpx.ASGITransport``) and under uvicorn on a loopback port, and the daemon's whole app
(``relayer.api.server.create_api`` over fake chains) for the relayer's reads, where every answer must fit the client's
models with no field left undeclared."""

from __future__ import annotations

import asyncio
import email.utils
import inspect
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from config.loader import load_settings
from relayer.api.server import _store_unavailable, create_api
from relayer.daemon.daemon import RelayerDaemon
from relayer.store import Store, StoreError
from router.client import (
    AsyncRoutingClient,
    BadRequest,
    BatchEvent,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    RoutingClient,
    RoutingError,
    SseParser,
    Unauthorized,
    Unavailable,
    parse_retry_after,
)
from router.client_models import ApiModel, IntentView, SubmitAnswer
from router.errors import install_error_handlers
from router.schemas import IntentRequest
from tests.fakes.chain import FakeChain
from tests.unit.loopback_endpoints import LoopbackServers
from tests.unit.test_explorer_api import dispatched
from tests.unit.test_router_limits import DAPP, Api

BASE = "http://router.test"
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "devnet.toml"
Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def _json(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _sse(*events: tuple[str, Any] | str) -> httpx.Response:
    """A text/event-stream answer: (event, data) pairs rendered as the API does, or raw text."""
    text = "".join(e if isinstance(e, str) else f"event: {e[0]}\ndata: {json.dumps(e[1])}\n\n" for e in events)
    return httpx.Response(200, content=text.encode(), headers={"content-type": "text/event-stream"})


def _intent(intent_id: str, status: str, reason: str | None = None, **over: Any) -> dict[str, Any]:
    """An intent's view, every field as ``router.intents.intent_view`` answers it."""
    return {"id": intent_id, "batch": "bat_1", "status": status, "reason": reason, "kind": "transfer", "token": "TST",
            "amount": "1", "recipient": "0x" + "ab" * 20, "integrator": None, "from_chain": None, "chain": "l1",
            "origin": "l1", "tx_hash": None, "message_id": None, "fee_estimate_usd": 0.01, "latency_estimate_s": 1.0,
            "height": None, "calldata": None, "fee_paid": None, "fee_paid_usd": None, "signer": None,
            "operator": "0x" + "0a" * 20, "nonce": None, "executor": None, "included_at": None, "deadline_at": None,
            "replaced_tx_hashes": [], "created_at": 1.0, "updated_at": 2.0} | over


SUBMITTED = {"batch": "bat_1", "ids": ["int_1", None], "statuses": ["planned", "unserved"],
             "reasons": [None, "latency"]}


class Scripted:
    """A server that answers from a script, one reply per request (the last one again when the script runs out), and
    keeps the requests."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        request.read()
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply(request) if callable(reply) else reply


class Driver:
    """One client, sync or async, over ``handler``; ``call(name, ...)`` runs a method to its result (a stream to the
    list of its events) the same way for both; ``sleeps``: the delays it asked for."""

    def __init__(self, kind: str, handler: Callable[[httpx.Request], httpx.Response], **opts: Any) -> None:
        self.kind = kind
        self.sleeps: list[float] = []
        transport = httpx.MockTransport(handler)
        if kind == "sync":
            self.client: RoutingClient | AsyncRoutingClient = RoutingClient(BASE, transport=transport,
                                                                             sleep=self.sleeps.append, **opts)
        else:
            async def sleep(seconds: float) -> None:
                self.sleeps.append(seconds)

            self.client = AsyncRoutingClient(BASE, transport=transport, sleep=sleep, **opts)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        if self.kind == "sync":
            return list(result) if isinstance(result, Iterator) else result

        async def run() -> Any:
            if inspect.isawaitable(result):
                return await result
            return [e async for e in result]

        return asyncio.run(run())


KINDS = ["sync", "async"]


# ---- retries

@pytest.mark.parametrize("kind", KINDS)
def test_429_and_503_are_retried_after_their_retry_after_then_answered(kind: str) -> None:
    server = Scripted(_json(429, {"detail": {"error": "over", "limit": "router.intents_per_s"}},
                            **{"Retry-After": "2"}),
                      _json(503, {"detail": "full"}, **{"Retry-After": "0.5"}),
                      _json(202, SUBMITTED))
    d = Driver(kind, server)
    answer = d.call("submit_batch", [{"amount": "1", "recipient": "0x" + "ab" * 20}])
    assert isinstance(answer, SubmitAnswer) and answer.ids == ["int_1", None] and answer.batch == "bat_1"
    assert d.sleeps == [2.0, 0.5]
    assert len(server.requests) == 3 and len({r.content for r in server.requests}) == 1  # the same body each time


@pytest.mark.parametrize("kind", KINDS)
def test_retry_after_as_an_http_date(kind: str) -> None:
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    d = Driver(kind, Scripted(_json(429, {"detail": "slow down"}, **{"Retry-After": later}),
                              _json(200, {"status": "ok"})))
    assert d.call("health").status == "ok"
    assert len(d.sleeps) == 1 and 18 <= d.sleeps[0] <= 20.5


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("3") == 3.0 and parse_retry_after(" 1.5 ") == 1.5 and parse_retry_after("0") == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 42, usegmt=True), now=now) == pytest.approx(42, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 42, usegmt=True), now=now) == 0.0  # past: at once
    for bad in (None, "", "soon", "-1", "nan", "inf"):
        assert parse_retry_after(bad) is None, bad


@pytest.mark.parametrize("kind", KINDS)
def test_gives_up_after_max_retries_with_rate_limited_carrying_retry_after(kind: str) -> None:
    server = Scripted(_json(429, {"detail": {"error": "over this client's limit", "limit": "router.intents_per_s",
                                             "retry_after_s": 2.5}}, **{"Retry-After": "3"}))
    d = Driver(kind, server, max_retries=2)
    with pytest.raises(RateLimited) as err:
        d.call("submit", [{"amount": "1", "recipient": "0x" + "ab" * 20}])
    assert err.value.status == 429 and err.value.retry_after_s == 3.0 and err.value.limit == "router.intents_per_s"
    assert err.value.error == "over this client's limit"
    assert d.sleeps == [3.0, 3.0] and len(server.requests) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_after_longer_than_max_delay_is_not_waited_for(kind: str) -> None:
    server = Scripted(_json(429, {"detail": {"error": "a day's value spent", "limit": "router.value_per_day.TST"}},
                            **{"Retry-After": "8640"}))
    d = Driver(kind, server, max_delay_s=30)
    with pytest.raises(RateLimited) as err:
        d.call("submit_batch", [{"amount": "1", "recipient": "0x" + "ab" * 20}])
    assert err.value.retry_after_s == 8640.0 and d.sleeps == [] and len(server.requests) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_without_retry_after_the_backoff_doubles_jittered_and_capped(kind: str) -> None:
    server = Scripted(*[_json(503, {"detail": {"error": "chain capacity not sampled yet"}})] * 4,
                      _json(200, {"chains": []}))
    d = Driver(kind, server, backoff_s=1.0, max_delay_s=3.0, max_retries=4)
    assert d.call("chains") == []
    assert [lo <= s <= hi for s, (lo, hi) in zip(d.sleeps, [(0.5, 1), (1, 2), (1.5, 3), (1.5, 3)], strict=True)] == [
        True] * 4


def _store_503() -> httpx.Response:
    """The store's own 503, as ``relayer.api.server`` answers it."""
    answer = asyncio.run(_store_unavailable(None, StoreError("db restarting")))  # type: ignore[arg-type]
    return httpx.Response(answer.status_code, headers=dict(answer.headers), content=bytes(answer.body))


@pytest.mark.parametrize("kind", KINDS)
def test_the_stores_503_is_not_retried_for_a_post_which_it_may_follow(kind: str) -> None:
    server = Scripted(_store_503(), _json(202, SUBMITTED))
    d = Driver(kind, server)
    with pytest.raises(Unavailable) as err:
        d.call("submit", [{"amount": "1", "recipient": "0x" + "ab" * 20}])
    assert "store is unavailable" in err.value.error and err.value.retry_after_s == 2.0
    assert len(server.requests) == 1 and d.sleeps == []
    # a read is retried on it
    server = Scripted(_store_503(), _json(200, _intent("int_1", "planned")))
    d = Driver(kind, server)
    assert d.call("status", "int_1").status == "planned" and d.sleeps == [2.0]


@pytest.mark.parametrize("kind", KINDS)
def test_connection_errors_are_retried_for_gets_only(kind: str) -> None:
    refused = httpx.ConnectError("connection refused")
    server = Scripted(refused, httpx.ReadTimeout("slow"), _json(200, _intent("int_1", "included")))
    d = Driver(kind, server, backoff_s=0.1)
    assert d.call("status", "int_1").status == "included" and len(d.sleeps) == 2
    server = Scripted(refused, _json(202, SUBMITTED))
    d = Driver(kind, server)
    with pytest.raises(httpx.ConnectError):
        d.call("submit", [{"amount": "1", "recipient": "0x" + "ab" * 20}])
    assert len(server.requests) == 1 and d.sleeps == []
    d = Driver(kind, Scripted(refused), max_retries=2, backoff_s=0.1)
    with pytest.raises(httpx.ConnectError):
        d.call("health")
    assert len(d.sleeps) == 2


# ---- typed errors

@pytest.mark.parametrize(("status", "body", "cls", "field"), [
    (400, {"detail": {"field": "intents[2].amount", "error": "not a decimal number"}}, BadRequest, "intents[2].amount"),
    (413, {"detail": {"field": "intents", "limit": "router.intents_burst", "error": "at most 50"}}, BadRequest,
     "intents"),
    (415, {"detail": "the request body is not JSON"}, BadRequest, None),
    (401, {"detail": {"error": "a valid X-API-Key header is required"}}, Unauthorized, None),
    (403, {"detail": {"field": "intents[0].calldata", "error": "not allowed"}}, Forbidden, "intents[0].calldata"),
    (404, {"detail": {"error": "no intent 'x'"}}, NotFound, None),
    (409, {"detail": {"field": "intent_id", "error": "intent is planned, not unsigned"}}, Conflict, "intent_id"),
    (431, {"detail": "headers too large"}, RoutingError, None),
    (500, "Internal Server Error", RoutingError, None),
])
@pytest.mark.parametrize("kind", KINDS)
def test_error_answers_raise_their_typed_errors(kind: str, status: int, body: Any, cls: type[RoutingError],
                                                field: str | None) -> None:
    reply = _json(status, body) if isinstance(body, dict) else httpx.Response(status, text=body)
    d = Driver(kind, Scripted(reply))
    with pytest.raises(RoutingError) as err:
        d.call("broadcast", "int_1", "0x" + "11" * 32)
    assert type(err.value) is cls and err.value.status == status and err.value.field == field
    assert err.value.detail == (body["detail"] if isinstance(body, dict) else body)
    assert isinstance(err.value, Unauthorized) == (status in (401, 403))
    assert d.sleeps == []


def test_the_old_constructor_still_works() -> None:
    err = RoutingError(409, {"field": "tx_hash", "error": "taken"}, 1.0)
    assert (err.status, err.field, err.retry_after_s, err.error) == (409, "tx_hash", 1.0, "taken")
    assert str(err) == "HTTP 409: {'field': 'tx_hash', 'error': 'taken'}"


@pytest.mark.parametrize("kind", KINDS)
def test_wait_polls_until_the_status_and_refuses_a_final_other(kind: str) -> None:
    server = Scripted(_json(200, _intent("int_1", "planned")), _json(200, _intent("int_1", "submitted")),
                      _json(200, _intent("int_1", "included", tx_hash="0x" + "cd" * 32)))
    d = Driver(kind, server)
    done = d.call("wait", "int_1", until={"included"}, interval=0.3)
    assert done.status == "included" and done["tx_hash"] == "0x" + "cd" * 32 and d.sleeps == [0.3, 0.3]
    d = Driver(kind, Scripted(_json(200, _intent("int_1", "expired", "no room before the deadline"))))
    with pytest.raises(Conflict, match="ended expired: no room"):
        d.call("wait", "int_1")


# ---- answers

def test_answers_are_typed_and_read_like_the_json_they_came_from() -> None:
    raw = _intent("int_1", "included", height=7) | {"a_new_field": {"x": 1}}
    view = IntentView.from_json(raw)
    assert view.height == 7 and view.status == "included" and view.fee_paid is None
    assert view["height"] == 7 and view.get("nothing", "none") == "none" and "chain" in view
    assert view["a_new_field"] == {"x": 1} and view.model_extra == {"a_new_field": {"x": 1}}  # kept, not refused
    assert view == raw and dict(view) == raw and {**view} == raw
    assert SubmitAnswer.from_json(SUBMITTED) == SubmitAnswer(**SUBMITTED) != IntentView.from_json(_intent("a", "x"))
    built = SubmitAnswer(batch=None, ids=[None], statuses=["unserved"], reasons=["fee"])
    assert built["ids"] == [None] and built.raw == {"batch": None, "ids": [None], "statuses": ["unserved"],
                                                    "reasons": ["fee"], "transactions": None}


# ---- server-sent events

def test_the_sse_parser_reads_every_field_form() -> None:
    text = ("retry: 2000\n\n: a comment\nevent: intent\ndata: {\"id\": \"a\",\ndata: \"status\": \"planned\"}\n\n"
            "id: 5.5/7\r\nevent:samples\r\ndata:{}\r\n\r\n"
            "event: nothing\n\n"           # no data: not an event
            "data: plain\n\n"              # no event name: "message"
            "event: done\ndata: {\"batch\": \"b\", \"settled\": 1}\n\n")
    parser = SseParser()
    events = [e for line in text.replace("\r\n", "\n").split("\n") if (e := parser.feed(line)) is not None]
    assert [(e.event, e.id) for e in events] == [("intent", None), ("samples", "5.5/7"), ("message", "5.5/7"),
                                                  ("done", "5.5/7")]
    assert json.loads(events[0].data) == {"id": "a", "status": "planned"} and events[2].data == "plain"
    assert parser.retry_ms == 2000 and parser.last_id == "5.5/7"


@pytest.mark.parametrize("kind", KINDS)
def test_batch_events_are_typed_pairs(kind: str) -> None:
    server = Scripted(_sse(("intent", _intent("int_1", "planned")), ("intent", _intent("int_2", "planned")),
                           ("intent", _intent("int_1", "included")), ("done", {"batch": "bat_1", "settled": 2})))
    d = Driver(kind, server)
    events = d.call("events", "bat_1", timeout=60)
    assert [e for e, _data in events] == ["intent", "intent", "intent", "done"]
    assert all(isinstance(e, BatchEvent) for e in events)
    assert [(e.intent.id, e.intent.status) for e in events[:3] if e.intent] == [
        ("int_1", "planned"), ("int_2", "planned"), ("int_1", "included")]
    assert events[3].done is not None and events[3].done.settled == 2 and events[3].intent is None
    assert server.requests[0].url.path == "/v1/batches/bat_1/events"
    assert float(server.requests[0].url.params["timeout_s"]) == pytest.approx(60, abs=1)


@pytest.mark.parametrize("kind", KINDS)
def test_a_dropped_batch_stream_is_reopened_without_repeating_what_was_yielded(kind: str) -> None:
    server = Scripted(
        _sse(("intent", _intent("int_1", "planned")), ("intent", _intent("int_2", "planned"))),  # dropped: no done
        httpx.ConnectError("refused"),  # the reopening fails once, and is retried
        _sse(("intent", _intent("int_1", "planned")), ("intent", _intent("int_2", "submitted")),  # the batch's state
             ("intent", _intent("int_1", "included")), ("done", {"batch": "bat_1", "settled": 2})))
    d = Driver(kind, server, backoff_s=0.1)
    events = d.call("events", "bat_1", timeout=60)
    assert [(e, data["id"], data["status"]) for e, data in events[:-1]] == [
        ("intent", "int_1", "planned"), ("intent", "int_2", "planned"), ("intent", "int_2", "submitted"),
        ("intent", "int_1", "included")]
    assert events[-1][0] == "done" and len(server.requests) == 3 and len(d.sleeps) == 2
    # without reconnect: the stream that ends early ends the iteration
    d = Driver(kind, Scripted(_sse(("intent", _intent("int_1", "planned")))))
    assert [e for e, _ in d.call("events", "bat_1", reconnect=False)] == ["intent"]
    # a stream dropped again and again with nothing new: reopened max_retries times in a row, then over
    server = Scripted(_sse(("intent", _intent("int_1", "planned"))))
    d = Driver(kind, server, max_retries=2, backoff_s=0.1)
    assert [e for e, _ in d.call("events", "bat_1")] == ["intent"] and len(server.requests) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_the_explorer_stream_resumes_from_its_last_event_id(kind: str) -> None:
    server = Scripted(
        _sse("retry: 1500\n\n", ("hello", {"cursor": 5.0, "seq": 1}),
             'id: 6.5/2\nevent: samples\ndata: {"seq": 2, "samples": []}\n\n'),  # dropped before "end"
        _sse('id: 7.5/3\nevent: samples\ndata: {"seq": 3, "samples": []}\n\n',
             'id: 7.5/3\nevent: end\ndata: {"cursor": 7.5, "seq": 3}\n\n'))
    d = Driver(kind, server)
    events = d.call("explorer_events", since=5.0, max_s=60)
    assert [(e.event, e.id) for e in events] == [("hello", None), ("samples", "6.5/2"), ("samples", "7.5/3"),
                                                 ("end", "7.5/3")]
    first, second = server.requests
    assert "last-event-id" not in first.headers and first.url.params["since"] == "5.0"
    assert second.headers["last-event-id"] == "6.5/2" and d.sleeps == [1.5]  # the server's retry hint


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_refused_at_first_raises_the_typed_error(kind: str) -> None:
    d = Driver(kind, Scripted(_json(404, {"detail": {"error": "no batch 'nope'"}})))
    with pytest.raises(NotFound):
        d.call("events", "nope")


# ---- the real routing API (router.api over SQLite and a recording fake chain)

def _transfer(**over: Any) -> dict[str, Any]:
    return {"amount": "1", "token": "TST", "recipient": "0x" + "ab" * 20, "chains": ["l1"]} | over


def undeclared(value: Any, where: str = "") -> list[str]:
    """Fields of a server's answer that the client's models do not declare (``model_extra``), by path."""
    out: list[str] = []
    if isinstance(value, ApiModel):
        out += [f"{where}.{k}".lstrip(".") for k in value.model_extra or {}]
        for name in type(value).model_fields:
            out += undeclared(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += undeclared(v, f"{where}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            out += undeclared(v, f"{where}.{k}")
    return out


def _routing_app(tmp: Path, **opts: Any) -> Api:
    api = Api(tmp, **opts)
    assert isinstance(api.client.app, FastAPI)
    install_error_handlers(api.client.app)  # as the daemon's app: FastAPI's own validation answers 400 too
    return api


async def test_the_routing_api_in_process(tmp_path: Path) -> None:
    api = _routing_app(tmp_path)
    transport = httpx.ASGITransport(app=api.client.app)
    async with AsyncRoutingClient("http://router", transport=transport) as client:
        answers: list[ApiModel] = []
        quote = await client.quote("1", chains=["l1"])
        chains = await client.capacity()
        assert quote.route is not None and quote.route.chain == "l1" and quote["route"]["chain"] == "l1"
        assert [c.name for c in chains.chains] == ["l1"] and (await client.chains())[0]["name"] == "l1"
        submitted = await client.submit_batch([IntentRequest(**_transfer()), _transfer(max_latency_s=1e-6)])
        assert submitted.statuses == ["planned", "unserved"] and submitted.ids[1] is None
        assert submitted.batch is not None and submitted.ids[0] is not None
        status = await client.status(submitted.ids[0])
        batch = await client.batch(submitted.batch)
        assert status.status == "planned" and status["chain"] == "l1" and batch.intents == [status]
        events = [e async for e in client.events(submitted.batch, timeout=0.6)]
        assert [e.event for e in events] == ["intent", "timeout"] and events[0].intent == status
        unsigned = await client.submit_unsigned([_transfer()], DAPP)
        assert unsigned.statuses == ["unsigned"] and unsigned.transactions and unsigned.transactions[0]
        assert unsigned.ids[0] is not None
        reported = await client.broadcast(unsigned.ids[0], "0x" + "22" * 32)
        assert reported.status == "submitted"  # not mined yet: followed
        report = await client.report("nobody")
        answers += [quote, chains, submitted, status, batch, unsigned, reported, report]
        assert [u for a in answers for u in undeclared(a)] == []

        with pytest.raises(NotFound):
            await client.status("int_" + "0" * 32)
        with pytest.raises(BadRequest) as bad:
            await client.submit([_transfer(), _transfer(recipient="0x12")])
        assert bad.value.field == "intents[1].recipient"
        with pytest.raises(BadRequest) as bad:  # FastAPI's own validation, in the one shape
            await client.quote("1", colour="blue")
        assert bad.value.field == "colour"
        with pytest.raises(Conflict) as conflict:
            await client.broadcast(submitted.ids[0], "0x" + "33" * 32)
        assert conflict.value.field == "intent_id"
    assert api.rows() == 2


async def test_the_apis_retry_after_is_waited_out_with_the_clients_clock(tmp_path: Path) -> None:
    """A real 429 of ``router.intents_per_s`` (Retry-After 2, for 1.5 s rounded up): the client waits it out (the
    sleep moves the API's clock) and the batch is taken; with no retries left it is ``RateLimited`` carrying the
    wait."""
    api = _routing_app(tmp_path, rate=2.0, burst=5)
    slow = _transfer(max_latency_s=1e-6)  # unserved: nothing stored, but counted against the rate
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        api.now[0] += seconds

    transport = httpx.ASGITransport(app=api.client.app)
    async with AsyncRoutingClient("http://router", transport=transport, sleep=sleep) as client:
        assert await client.submit([slow] * 5) == [None] * 5
        assert await client.submit([slow] * 3) == [None] * 3
        assert sleeps == [2.0]
    async with AsyncRoutingClient("http://router", transport=transport, max_retries=0) as client:
        with pytest.raises(RateLimited) as err:
            await client.submit([slow] * 5)
    # 1 token left of the 4 refilled while it waited: 4 more at 2/s
    assert err.value.retry_after_s == 2.0 and err.value.limit == "router.intents_per_s"
    assert err.value.detail["retry_after_s"] == 2.0 and api.refusals == ["rate_limit", "rate_limit"]


def test_sync_and_async_clients_answer_alike_over_a_real_server(tmp_path: Path) -> None:
    """The routing API under uvicorn on a loopback port: both clients, over real HTTP (a real event stream)."""
    api = _routing_app(tmp_path)
    servers = LoopbackServers()
    try:
        url = servers.asgi(api.client.app)
        with RoutingClient(url) as client:
            sync_answer = client.submit_batch([_transfer()])
            batch, intent_id = sync_answer.batch, sync_answer.ids[0]
            assert batch is not None and intent_id is not None
            sync_reads = (client.status(intent_id), client.batch(batch))
            sync_events = list(client.events(batch, timeout=0.6))
            with pytest.raises(BadRequest) as sync_bad:
                client.submit([_transfer(amount="-1")])
            with pytest.raises(NotFound):
                next(client.events("no-such-batch"))

        async def run() -> tuple[Any, ...]:
            async with AsyncRoutingClient(url) as aclient:
                reads = (await aclient.status(intent_id), await aclient.batch(batch))
                events = [e async for e in aclient.events(batch, timeout=0.6)]
                answer = await aclient.submit_batch([_transfer()])
                with pytest.raises(BadRequest) as bad:
                    await aclient.submit([_transfer(amount="-1")])
                with pytest.raises(NotFound):
                    await anext(aclient.events("no-such-batch"))
                return reads, events, answer, bad.value

        async_reads, async_events, async_answer, async_bad = asyncio.run(run())
    finally:
        servers.close()
    assert async_reads == sync_reads
    assert async_events == sync_events and [e.event for e in sync_events] == ["intent", "timeout"]
    assert async_answer.statuses == sync_answer.statuses == ["planned"]
    assert (async_bad.status, async_bad.field, async_bad.detail) == (sync_bad.value.status, sync_bad.value.field,
                                                                     sync_bad.value.detail)
    assert sync_bad.value.field == "intents[0].amount"


# ---- the relayer's reads (the daemon's whole app over fake chains)

@pytest.fixture
def daemon_app() -> Iterator[tuple[Any, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(EXAMPLE, env={}, overrides={"store.url": f"sqlite:///{tmp}/client.db",
                                                              "validator.verify_inclusion": False})
        adapters = {n: FakeChain(n, c.domain) for n, c in settings.chains.items()}
        store = Store(settings.store.url, owner="client")
        sent = dispatched(1000, 2000, 1, time.time() - 10)
        store.record_dispatched([sent], cursor=("l1", 100), known_destinations={1000, 2000, 3000})
        daemon = RelayerDaemon(settings, "all", adapters, store, [], httpx.AsyncClient())  # type: ignore[arg-type]
        try:
            yield create_api(daemon), "0x" + sent.id.hex()
        finally:
            store.close()


async def test_the_relayers_reads_fit_the_models(daemon_app: tuple[Any, str]) -> None:
    app, message_id = daemon_app
    async with AsyncRoutingClient("http://daemon", transport=httpx.ASGITransport(app=app), max_retries=0) as client:
        health, ready, status = await client.health(), await client.ready(), await client.daemon_status()
        page, found, gas = await client.messages(limit=10), await client.message(message_id), await client.message_gas(
            message_id)
        detail, throughput = await client.message_detail(message_id), await client.throughput(600, 60)
        answers: list[ApiModel] = [health, ready, status, page, found, gas, detail, throughput,
                                   await client.route_profits(), await client.samples(60), await client.report("x")]
        assert [u for a in answers for u in undeclared(a)] == []
        assert health.status == "ok" and ready.ready is False  # chains not checked yet: 503, returned, not raised
        assert set(status.chains) == {"l1", "rollup_a", "rollup_b"}
        assert [m.id for m in page.messages] == [message_id] == [m.id for m in found.messages]
        assert gas.id == detail.message.id == message_id and throughput.bucket_s == 60
        events = [e async for e in client.explorer_events(since=0.0, max_s=0.3)]
        assert events[0].event == "hello" and events[-1].event == "end"
        assert [m.id for e in events for m in e.messages] == [message_id]
        with pytest.raises(BadRequest) as bad:
            await client.message_gas(message_id, refund_to="0x12")
        assert bad.value.field == "refund_to"
        with pytest.raises(NotFound):
            await client.message_detail("0x" + "00" * 32)
        with pytest.raises(Unavailable):  # capacity not sampled: the daemon is not running
            await client.capacity()
