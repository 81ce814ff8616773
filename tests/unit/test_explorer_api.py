"""The explorer's JSON endpoints and event stream on a real SQLite store (FastAPI TestClient, no chains)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.base import ChainHealth, ChainStats, DispatchedMessage
from adapters.message import Domain, Message, MessageId
from relayer.api.server import message_view
from relayer.explorer import (
    ChainSampleBuffer,
    ExplorerChain,
    ExplorerQueries,
    PageCursor,
    create_explorer_api,
)
from relayer.store import CheckpointRecord, FailureReason, Store, message_id
from router.errors import install_error_handlers

T0 = 1_800_000_000.0
CHAINS = [ExplorerChain("l1", 1, "evm"), ExplorerChain("rollup_a", 2, "evm"), ExplorerChain("rollup_b", 3, "evm")]
NAMES = {c.domain: c.name for c in CHAINS}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def dispatched(origin: int, dest: int, nonce: int, at: float) -> DispatchedMessage:
    msg = Message(3, nonce, Domain(origin), b"\x01" * 32, Domain(dest), b"\x02" * 32, f"m{origin}-{nonce}".encode())
    tx = "0x" + f"{origin:02x}{nonce:062x}"
    return DispatchedMessage(msg, msg.encode(), msg.id, 100 + nonce, tx, 0, at)  # type: ignore[arg-type]


@dataclass
class World:
    clock: Clock
    store: Store
    samples: ChainSampleBuffer
    client: TestClient
    ids: dict[str, str]


@pytest.fixture
def world(tmp_path):
    clock = Clock(T0)
    store = Store(f"sqlite:///{tmp_path / 'explorer.db'}", owner="test", clock=clock)
    ids: dict[str, str] = {}  # as the API shows them
    mids: dict[str, MessageId] = {}  # as the store takes them
    # l1 -> rollup_a: 4 messages dispatched at T0 - 100 .. T0 - 70; rollup_a -> rollup_b: 2
    for n in range(4):
        d = dispatched(1, 2, n, T0 - 100 + 10 * n)
        clock.now = T0 - 60 + n
        store.record_dispatched([d], cursor=("l1", 100 + n), known_destinations={1, 2, 3})
        ids[f"a{n}"], mids[f"a{n}"] = "0x" + d.id.hex(), d.id
    for n in range(2):
        d = dispatched(2, 3, n, T0 - 50)
        clock.now = T0 - 50 + n
        store.record_dispatched([d], cursor=("rollup_a", 100 + n), known_destinations={1, 2, 3})
        ids[f"b{n}"], mids[f"b{n}"] = "0x" + d.id.hex(), d.id
    clock.now = T0 - 40
    store.mark_attested([mids["a0"], mids["a1"]], 1)
    store.save_checkpoint(CheckpointRecord(validator="0x" + "11" * 20, origin=1, index=1,
                                           origin_mailbox="0x" + "22" * 20,
                                           root="0x" + "33" * 32, signature="0x", signed_at=T0 - 41))
    clock.now = T0 - 35
    store.record_submission(tx_hash="0x" + "dd" * 32, destination=2, origin=1, sender="0x" + "44" * 20, nonce=7,
                            ids=[mids["a0"], mids["a1"]], gas_limit=1, max_fee=1)
    clock.now = T0 - 25  # bucket [T0-30, T0-20)
    store.mark_delivered([mids["a0"], mids["a1"]], tx_hash="0x" + "dd" * 32, height=55, at=T0 - 25)
    clock.now = T0 - 5   # bucket [T0-10, T0)
    store.mark_delivered([mids["b0"]], tx_hash="0x" + "ee" * 32, height=9, at=T0 - 5)
    clock.now = T0 - 3
    store.drop([mids["b1"]], FailureReason.MALFORMED, "bad body")
    clock.now = T0
    samples = ChainSampleBuffer(max_rounds=5, clock=clock)
    app = FastAPI()
    install_error_handlers(app)  # as the daemon's app (relayer.api.server.create_api): bad input is 400 {field, error}
    app.include_router(create_explorer_api(ExplorerQueries(store.engine), samples, CHAINS,
                                           view=lambda r: message_view(r, NAMES), poll_s=0.05, clock=clock))
    with TestClient(app) as client:
        yield World(clock, store, samples, client, ids)
    store.close()


def test_messages_newest_change_first_with_state_and_chain_filters(world):
    c, ids = world.client, world.ids
    body = c.get("/v1/messages").json()
    got = [m["id"] for m in body["messages"]]
    # a0 and a1 were delivered in one statement: ties are ordered by id, descending
    assert got[:4] == [ids["b1"], ids["b0"], *sorted([ids["a0"], ids["a1"]], reverse=True)] and len(got) == 6
    assert body["latest_change"] == T0 - 3 and body["next_before"] is None
    delivered = c.get("/v1/messages", params={"state": "delivered"}).json()["messages"]
    assert {m["id"] for m in delivered} == {ids["a0"], ids["a1"], ids["b0"]}
    assert all(m["state"] == "DELIVERED" for m in delivered)
    # a chain filter matches messages from it and to it
    to_or_from_b = c.get("/v1/messages", params={"chain": "rollup_b"}).json()["messages"]
    assert {m["id"] for m in to_or_from_b} == {ids["b0"], ids["b1"]}
    from_or_to_a = c.get("/v1/messages", params={"chain": "rollup_a"}).json()["messages"]
    assert len(from_or_to_a) == 6
    only = c.get("/v1/messages", params={"chain": "l1", "state": "DISPATCHED"}).json()["messages"]
    assert {m["id"] for m in only} == {ids["a2"], ids["a3"]}


def test_paging_with_before_visits_every_message_once_in_order(world):
    c = world.client
    everything = [m["id"] for m in c.get("/v1/messages", params={"limit": 100}).json()["messages"]]
    seen: list[str] = []
    before = None
    for _ in range(10):
        params: dict[str, str | int] = {"limit": 4}
        if before:
            params["before"] = before
        page = c.get("/v1/messages", params=params).json()
        seen += [m["id"] for m in page["messages"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == everything and len(seen) == 6


def test_rows_changed_in_the_same_instant_page_without_loss(world):
    """Keyset paging: several rows with one updated_at split across pages (record_dispatched stamps a batch once)."""
    world.clock.now = T0 + 10
    batch = [dispatched(3, 1, n, T0) for n in range(5)]
    world.store.record_dispatched(batch, cursor=("rollup_b", 500), known_destinations={1, 2, 3})
    ids = []
    before = None
    while True:
        params: dict[str, str | int] = {"limit": 2, "chain": "rollup_b", "state": "DISPATCHED"}
        if before:
            params["before"] = before
        page = world.client.get("/v1/messages", params=params).json()
        ids += [m["id"] for m in page["messages"]]
        before = page["next_before"]
        if before is None:
            break
    assert sorted(ids) == sorted("0x" + d.id.hex() for d in batch) and len(ids) == 5


@pytest.mark.parametrize(("params", "status", "names"), [
    ({"state": "LIMBO"}, 400, "state 'LIMBO'"),
    ({"chain": "mars"}, 400, "chain 'mars'"),
    ({"before": "yesterday"}, 400, "before 'yesterday'"),
    ({"before": "12.5~0x12"}, 400, "32-byte hex"),
    ({"before": "nan~0x" + "ab" * 32}, 400, "finite"),
    ({"limit": 0}, 400, "limit"),
    ({"limit": "many"}, 400, "limit"),
])
def test_bad_message_list_parameters_are_4xx_naming_the_parameter(world, params, status, names):
    r = world.client.get("/v1/messages", params=params)
    assert r.status_code == status
    assert names in json.dumps(r.json()) and set(r.json()["detail"]) == {"field", "error"}


def test_page_cursor_round_trips():
    cursor = PageCursor(1_800_000_000.123456, "0x" + "ab" * 32)
    assert PageCursor.decode(cursor.encode()) == cursor


def test_throughput_buckets_deliveries_per_destination_and_dispatches_per_origin(world):
    body = world.client.get("/v1/explorer/throughput", params={"window_s": 120, "bucket_s": 10}).json()
    assert body["bucket_s"] == 10 and len(body["buckets"]) == 12
    assert body["end"] == T0 + 10 and body["start"] == T0 - 110  # aligned; the last bucket [T0, T0+10) is filling
    assert set(body["delivered"]) == {"l1", "rollup_a", "rollup_b"}
    a = body["delivered"]["rollup_a"]
    assert a[body["buckets"].index(T0 - 30)] == 2 and sum(a) == 2
    b = body["delivered"]["rollup_b"]
    assert b[body["buckets"].index(T0 - 10)] == 1 and sum(b) == 1
    assert sum(body["delivered"]["l1"]) == 0
    # dispatches by origin block time: l1 at T0-100, -90, -80, -70; rollup_a twice at T0-50
    assert body["dispatched"]["l1"][body["buckets"].index(T0 - 100)] == 1
    assert body["totals"]["dispatched"] == {"l1": 4, "rollup_a": 2, "rollup_b": 0}
    assert body["totals"]["delivered"] == {"l1": 0, "rollup_a": 2, "rollup_b": 1}
    short = world.client.get("/v1/explorer/throughput", params={"window_s": 20, "bucket_s": 10}).json()
    assert short["totals"]["delivered"] == {"l1": 0, "rollup_a": 0, "rollup_b": 1}


@pytest.mark.parametrize(("params", "status", "names"), [
    ({"window_s": 5}, 400, "window_s"),
    ({"window_s": "soon"}, 400, "window_s"),
    ({"bucket_s": 0}, 400, "bucket_s"),
    ({"window_s": 60, "bucket_s": 120}, 400, "bucket_s (120) is larger than window_s (60)"),
    ({"window_s": 86_400, "bucket_s": 1}, 400, "86400 buckets"),
])
def test_bad_throughput_parameters_are_4xx_naming_the_parameter(world, params, status, names):
    r = world.client.get("/v1/explorer/throughput", params=params)
    assert r.status_code == status
    assert names in json.dumps(r.json()) and set(r.json()["detail"]) == {"field", "error"}


@dataclass
class Status:
    name: str
    domain: int
    health: ChainHealth | None
    stats: ChainStats | None


def chain_round(healthy_b: bool = True) -> list[Status]:
    stats = ChainStats(height=120, blocks=10, block_time_s=1.0, gas_limit=30_000_000, gas_used_ratio=0.25,
                       base_fee=1_000_000_000, base_fee_trend=1.0)
    return [Status("l1", 1, ChainHealth(True, 120, 110, 0.01), stats),
            Status("rollup_a", 2, ChainHealth(True, 50, 50, 0.01), stats),
            Status("rollup_b", 3, ChainHealth(healthy_b, None, None, 0.0, detail="down") if not healthy_b else
                   ChainHealth(True, 7, 5, 0.01), None if not healthy_b else stats)]


def test_sample_buffer_keeps_the_last_rounds_and_the_samples_endpoint_returns_them(world):
    for i in range(7):
        world.clock.now = T0 + 2 * i
        world.samples.record(chain_round(healthy_b=i != 6), capacity=None, queue={2: {"DELIVERED": i}})
    assert world.samples.last_seq == 7
    assert {s.seq for s in world.samples.window(3600)} == {3, 4, 5, 6, 7}  # 5 rounds kept
    body = world.client.get("/v1/explorer/samples", params={"window_s": 60}).json()
    assert [c["name"] for c in body["chains"]] == ["l1", "rollup_a", "rollup_b"] and body["last_seq"] == 7
    last = [s for s in body["samples"] if s["seq"] == 7]
    by_chain = {s["chain"]: s for s in last}
    assert by_chain["l1"]["finalized_lag"] == 10
    assert by_chain["l1"]["height"] == 120 and by_chain["l1"]["utilisation"] == 0.25
    assert by_chain["rollup_a"]["queue"] == {"DELIVERED": 6}
    assert by_chain["rollup_b"]["healthy"] is False and by_chain["rollup_b"]["utilisation"] is None
    assert {s.seq for s in world.samples.after(5)} == {6, 7}
    assert world.client.get("/v1/explorer/samples", params={"window_s": 1}).status_code == 400


def test_message_detail_has_its_timeline(world):
    c, ids = world.client, world.ids
    body = c.get(f"/v1/explorer/messages/{ids['a0']}").json()
    assert body["message"]["state"] == "DELIVERED" and body["message"]["origin"] == "l1"
    steps = {s["step"]: s for s in body["timeline"]}
    assert [s["step"] for s in body["timeline"]] == ["dispatched", "attested", "submitted", "delivered"]
    assert steps["dispatched"]["at"] == T0 - 100 and steps["dispatched"]["chain"] == "l1"
    assert steps["attested"]["at"] == T0 - 41 and steps["attested"]["checkpoint_index"] == 1
    assert steps["submitted"]["at"] == T0 - 35 and steps["submitted"]["tx"] == "0x" + "dd" * 32
    assert steps["delivered"]["at"] == T0 - 25 and steps["delivered"]["height"] == 55
    waiting = c.get(f"/v1/explorer/messages/{ids['a3']}").json()
    assert [s["step"] for s in waiting["timeline"]] == ["dispatched", "attested"]
    assert waiting["timeline"][1]["at"] is None  # no checkpoint covers nonce 3
    dropped = c.get(f"/v1/explorer/messages/{ids['b1']}").json()
    assert dropped["timeline"][-1] == {"step": "dropped", "at": T0 - 3, "reason": "malformed"}
    bad = c.get("/v1/explorer/messages/0x1234")
    assert bad.status_code == 400 and bad.json()["detail"]["field"] == "message_id"
    assert c.get("/v1/explorer/messages/0x" + "ab" * 32).status_code == 404


def read_events(lines, until: str) -> list[tuple[str, dict]]:
    """SSE events from an iterator of lines, up to and including the first ``until`` event."""
    events: list[tuple[str, dict]] = []
    name, data = "", ""
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and name:
            events.append((name, json.loads(data)))
            if name == until:
                return events
            name, data = "", ""
    return events


def test_event_stream_pushes_changed_messages_and_new_samples(world):
    c, ids, store = world.client, world.ids, world.store
    world.samples.record(chain_round(), capacity=None, queue={})
    with c.stream("GET", "/v1/explorer/events", params={"since": T0 - 3, "after_seq": 1, "max_s": 30}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        (hello,) = read_events(lines, "hello")
        assert hello[1]["cursor"] == T0 - 3 and hello[1]["seq"] == 1
        # the overlap re-reads rows just before the cursor once: the dropped message at T0-3
        first = read_events(lines, "messages")[-1][1]
        assert [m["id"] for m in first["messages"]] == [ids["b1"]]
        world.clock.now = T0 + 1
        store.mark_delivered([message_id(ids["a3"])], tx_hash="0x" + "ff" * 32, height=60, at=T0 + 1)
        world.samples.record(chain_round(), capacity=None, queue={2: {"DELIVERED": 3}})
        got = read_events(lines, "messages")
        changed = got[-1][1]
        assert [m["id"] for m in changed["messages"]] == [ids["a3"]]
        assert changed["messages"][0]["state"] == "DELIVERED" and changed["cursor"] == T0 + 1
        samples = [e for e in got if e[0] == "samples"] or [read_events(lines, "samples")[-1]]
        assert (samples[-1][1]["seq"] == 2
                and {s["chain"] for s in samples[-1][1]["samples"]} == {"l1", "rollup_a", "rollup_b"})


def test_event_stream_resumes_from_last_event_id_and_ends(world):
    c, ids = world.client, world.ids
    with c.stream("GET", "/v1/explorer/events", params={"max_s": 0.3},
                  headers={"Last-Event-ID": f"{T0 - 10!r}/0"}) as r:
        events = read_events(r.iter_lines(), "end")
    names = [e[0] for e in events]
    assert names[0] == "hello" and names[-1] == "end"
    sent = [m["id"] for e in events if e[0] == "messages" for m in e[1]["messages"]]
    assert sorted(sent) == sorted([ids["b0"], ids["b1"]])  # changed at T0-5 and T0-3, after T0-10 - 2 s overlap
    assert events[-1][1]["cursor"] == T0 - 3


def test_event_stream_ends_when_the_daemon_stops(world):
    stopping = threading.Event()
    app = FastAPI()
    app.include_router(create_explorer_api(ExplorerQueries(world.store.engine), world.samples, CHAINS,
                                           view=lambda r: message_view(r, NAMES), poll_s=0.05, clock=world.clock,
                                           stopping=stopping.is_set))
    with TestClient(app) as c, c.stream("GET", "/v1/explorer/events", params={"max_s": 120}) as r:
        lines = r.iter_lines()
        read_events(lines, "hello")
        started = time.monotonic()
        stopping.set()
        events = read_events(lines, "end")
    assert events[-1][0] == "end" and time.monotonic() - started < 10


@pytest.mark.parametrize(("params", "headers", "names"), [
    ({"since": "later"}, {}, "since"),
    ({"since": "inf"}, {}, "since"),
    ({"after_seq": -1}, {}, "after_seq"),
    ({"max_s": 0}, {}, "max_s"),
    ({}, {"Last-Event-ID": "garbage"}, "Last-Event-ID"),
])
def test_bad_event_stream_parameters_are_4xx_naming_the_parameter(world, params, headers, names):
    r = world.client.get("/v1/explorer/events", params=params, headers=headers)
    assert 400 <= r.status_code < 500
    assert names in json.dumps(r.json())


def test_page_and_assets_are_served_without_any_outside_origin(world):
    c = world.client
    root = c.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/explorer"
    page = c.get("/explorer")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<script src="/explorer/app.js"' in page.text and "http://" not in page.text and "https://" not in page.text
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = c.get(f"/explorer/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind) and len(r.content) > 1000
        assert "https://" not in r.text and "http://" not in r.text
    assert c.get("/explorer/secrets.txt").status_code == 404


def test_openapi_documents_the_explorer_endpoints(world):
    paths = world.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/messages", "/v1/explorer/messages/{message_id}", "/v1/explorer/throughput",
                 "/v1/explorer/samples", "/v1/explorer/events"):
        assert path in paths, path
    params = {p["name"] for p in paths["/v1/messages"]["get"]["parameters"]}
    assert params == {"state", "chain", "limit", "before"}
    assert {p["name"] for p in paths["/v1/explorer/throughput"]["get"]["parameters"]} == {"window_s", "bucket_s"}
    assert "/explorer" not in paths and "/" not in paths
