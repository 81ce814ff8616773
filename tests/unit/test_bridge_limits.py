"""The token bridges' rate limits before the user signs (router/bridge_limits.py): the wait arithmetic of each
direction and of a route, the reader's cache (one read per chain and TTL, an unreadable chain ``unknown``, never zero),
and ``/v1/quote`` and ``/v1/chains`` on a fake bridge. The devnet tests (tests/integration/test_bridge_limit_quotes.py)
check the same figures against the contract."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from adapters.base import AdapterError
from adapters.capabilities import BridgeQueue, BridgeRateLimit, BridgeRateLimits, QueuedTransfer, RateLimitBucket
from adapters.message import Domain
from router.api import IntentsBackend, create_routing_api
from router.bridge_limits import (
    BridgeLimitReader,
    fold_wait,
    inbound_leg,
    outbound_leg,
    quote_limits,
    route_wait,
    tokens,
    units,
)
from router.capacity import CapacityModel, ChainProfile
from router.intents import IntentStore

T = 10**18
UNLIMITED = RateLimitBucket(0, 0, 0)


def test_outbound_wait_is_the_deficit_over_the_refill_rate_rounded_up() -> None:
    b = RateLimitBucket(capacity=100 * T, rate_per_s=2 * T, room=20 * T)
    assert outbound_leg(b, 20 * T).wait_s == 0.0  # within the room: at once
    assert outbound_leg(b, 21 * T).wait_s == 1.0  # 1 missing at 2 a second: 0.5 s, rounded up as the contract does
    assert outbound_leg(b, 100 * T).wait_s == 40.0
    above = outbound_leg(b, 100 * T + 1)
    assert above.possible is False and above.wait_s is None and "capacity" in (above.reason or "")
    dry = outbound_leg(RateLimitBucket(100 * T, 0, 5 * T), 6 * T)
    assert dry.possible is False and dry.wait_s is None
    assert outbound_leg(UNLIMITED, 10**30).status == "unlimited" and outbound_leg(UNLIMITED, 10**30).wait_s == 0.0


def test_inbound_wait_counts_what_is_queued_before_it_and_passes_a_full_bucket_whatever_the_amount() -> None:
    b = RateLimitBucket(capacity=50 * T, rate_per_s=2 * T, room=10 * T)
    assert inbound_leg(b, 10 * T, 0).wait_s == 0.0
    assert inbound_leg(b, 10 * T, 30 * T).wait_s == 15.0  # 30 queued + 10 = 40, room 10: 30 missing at 2 a second
    assert inbound_leg(b, 500 * T, 0).wait_s == 20.0  # above the capacity: paid once the bucket is full (50)
    full = RateLimitBucket(50 * T, 2 * T, 50 * T)
    assert inbound_leg(full, 500 * T, 0).wait_s == 0.0 and inbound_leg(full, 500 * T, 0).possible
    never = inbound_leg(RateLimitBucket(50 * T, 0, 10 * T), 11 * T, 0)
    assert never.possible is False and never.wait_s is None and "queued" in (never.reason or "")


def test_a_route_waits_for_the_origin_then_for_what_the_destination_has_not_refilled_on_arrival() -> None:
    out = outbound_leg(RateLimitBucket(100 * T, T, 70 * T), 80 * T)  # 10 s before it can be sent
    inn = inbound_leg(RateLimitBucket(50 * T, T, 0), 40 * T, 0)  # 40 s before the destination has room
    assert route_wait(out, inn, latency_s=12.0) == (28.0, True, None)  # arrives at 22 s, paid at 40 s
    assert route_wait(out, inbound_leg(UNLIMITED, 80 * T, 0), 12.0) == (10.0, True, None)
    assert route_wait(outbound_leg(UNLIMITED, 1, ), inn, 60.0) == (0.0, True, None)  # refilled while it travels
    wait, possible, reason = route_wait(outbound_leg(RateLimitBucket(T, T, T), 2 * T), inn, 1.0)
    assert (wait, possible) == (None, False) and reason


def test_amounts_convert_exactly_and_the_quote_wait_folds_in() -> None:
    assert units(Decimal("1.5"), 18) == 15 * 10**17 and units(Decimal("0.0000000001"), 9) == 1
    assert tokens(123456789012345678901, 18) == "123.456789012345678901" and tokens(100 * T, 18) == "100"
    assert fold_wait(2.0, {"wait_s": 30.0}) == 30.0 and fold_wait(40.0, {"wait_s": 30.0}) == 40.0
    assert fold_wait(2.0, {"wait_s": None}) is None and fold_wait(None, {"wait_s": 3.0}) is None
    assert fold_wait(2.0, None) == 2.0


class FakeBridge(BridgeRateLimits, BridgeQueue):
    """One chain's TokenBridge: buckets by (remote domain, symbol), a queue, reads counted, failures on demand."""

    def __init__(self, buckets: dict[tuple[int, str], tuple[RateLimitBucket, RateLimitBucket]],
                 queue: Sequence[QueuedTransfer] = ()) -> None:
        self.buckets, self.queue = buckets, list(queue)
        self.reads = 0
        self.fail = False
        self.hang: asyncio.Event | None = None  # set: the read waits for it (a chain that does not answer)

    def bridge_tokens(self) -> list[str]:
        return ["TST"]

    async def bridge_rate_limits(self, remote_domains: Sequence[int], symbols: Sequence[str]) -> list[BridgeRateLimit]:
        self.reads += 1
        if self.hang is not None:
            await self.hang.wait()
        if self.fail:
            raise AdapterError("connection refused", chain="x", reason="rpc down")
        return [BridgeRateLimit(d, s, "0xt", *self.buckets.get((d, s), (UNLIMITED, UNLIMITED)))
                for d in remote_domains for s in symbols]

    def can_release(self) -> bool:
        return False

    async def queued_transfers(self, from_id: int) -> list[QueuedTransfer]:
        return [q for q in self.queue if q.queue_id >= from_id]

    async def inbound_room(self, origin: int, token: str) -> tuple[int, int]:
        raise NotImplementedError

    async def release_queued(self, queue_id: int) -> str:
        raise NotImplementedError


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


DOMAINS = {"a": 1, "b": 2}


def _world() -> tuple[FakeBridge, FakeBridge, BridgeLimitReader, Clock]:
    a = FakeBridge({(2, "TST"): (RateLimitBucket(100 * T, T, 20 * T), UNLIMITED)})
    b = FakeBridge({(1, "TST"): (UNLIMITED, RateLimitBucket(50 * T, 2 * T, 10 * T))},
                   [QueuedTransfer(1, 1, "0xt", "0x" + "01" * 20, 30 * T)])
    clock = Clock()
    return a, b, BridgeLimitReader({"a": a, "b": b, "c": object()}, DOMAINS | {"c": 3}, lambda _c, _s: 18,
                                   ttl_s=3.0, clock=clock), clock


async def test_a_quote_reads_each_chain_once_per_ttl_and_an_unreadable_limit_is_unknown() -> None:
    a, b, reader, clock = _world()
    limits = await quote_limits(reader, "a", "b", "TST", Decimal(50), latency_s=10.0)
    assert limits["outbound"] == {"status": "limited", "limited": True, "capacity": "100", "refill_per_s": "1",
                                       "room": "20", "wait_s": 30.0, "possible": True, "reason": None}
    assert limits["inbound"]["queued"] == "30" and limits["inbound"]["wait_s"] == 35.0  # 30 + 50 (cap) - 10, at 2/s
    assert limits["wait_s"] == 30.0 and limits["possible"] is True  # max(30, 35 - 10)
    await quote_limits(reader, "a", "b", "TST", Decimal(1), latency_s=10.0)
    assert (a.reads, b.reads) == (1, 1)
    clock.t = 3.5
    a.fail = True
    limits = await quote_limits(reader, "a", "b", "TST", Decimal(1), latency_s=10.0)
    assert (a.reads, b.reads) == (2, 2)
    assert limits["outbound"]["status"] == "unknown" and limits["outbound"]["wait_s"] is None
    assert limits["wait_s"] is None and limits["possible"] is None and "connection refused" in limits["reason"]
    clock.t, a.fail = 7.0, False
    none = await quote_limits(reader, "a", "c", "TST", Decimal(1), latency_s=1.0)
    assert none["inbound"]["status"] == "none" and none["wait_s"] == 0.0


async def test_the_chains_view_lists_limited_pairs_with_their_queue_and_says_unknown_when_unread() -> None:
    a, _b, reader, clock = _world()
    view = await reader.chain_view("b")
    assert view == {"status": "ok", "limits": [{
        "remote": "a", "remote_domain": 1, "token": "TST", "outbound": {"limited": False},
        "inbound": {"limited": True, "capacity": "50", "refill_per_s": "2", "room": "10", "queued": "30",
                    "queued_transfers": 1}}]}
    assert (await reader.chain_view("c")) == {"status": "none", "limits": []}
    a.fail = True
    unknown = await reader.chain_view("a")
    assert unknown["status"] == "unknown" and "connection refused" in unknown["error"] and unknown["limits"] == []


async def test_a_chain_that_does_not_answer_is_unknown_after_the_read_timeout() -> None:
    a = FakeBridge({(2, "TST"): (RateLimitBucket(100 * T, T, 20 * T), UNLIMITED)})
    a.hang = asyncio.Event()
    reader = BridgeLimitReader({"a": a}, DOMAINS, lambda _c, _s: 18, read_timeout_s=0.05)
    view = await reader.chain_view("a")
    assert view["status"] == "unknown" and "no answer within 0.05 s" in view["error"]
    assert (await reader.chain_view("a"))["status"] == "unknown" and a.reads == 1  # cached: not asked again at once


@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, FakeBridge]:
    a, b, reader, _clock = _world()
    profiles = [ChainProfile(name=n, domain=Domain(d), family="evm", block_time_s=1.0, gas_limit=30e6,
                             transfer_gas=50_000, finality_s=2.0, base_fee=1e-9, native_usd=2000.0)
                for n, d in DOMAINS.items()]
    model = CapacityModel(profiles, now_s=0.0)
    store = IntentStore(create_engine(f"sqlite:///{tmp_path / 'intents.db'}"))
    backend = IntentsBackend(store, None, {"TST": 18}, {"TST": {"a", "b"}}, bridge_limits=reader)
    app = FastAPI()
    app.include_router(create_routing_api(lambda: model, clock=lambda: 0.0, intents=backend))
    return TestClient(app), a


def _quote(client: TestClient, amount: str) -> dict[str, Any]:
    res = client.post("/v1/quote", json={"kind": "xchain", "amount": amount, "token": "TST", "from_chain": "a",
                                         "chains": ["b"]})
    assert res.status_code == 200, res.text
    return dict(res.json())


def test_quote_and_chains_carry_the_bridge_limits(api: tuple[TestClient, FakeBridge]) -> None:
    client, _a = api
    below = _quote(client, "5")
    assert below["bridge_limit"]["outbound"]["wait_s"] == 0.0
    assert below["route"]["bridge_limit"] == below["bridge_limit"]
    above = _quote(client, "50")
    assert above["bridge_limit"]["outbound"]["wait_s"] == 30.0 and above["route"] is not None
    impossible = _quote(client, "101")
    assert impossible["route"] is None and impossible["unserved_reason"] == "bridge_limit"
    assert impossible["options"][0]["bridge_limit"]["possible"] is False
    assert "capacity" in impossible["bridge_limit"]["reason"]
    same_chain = client.post("/v1/quote", json={"amount": "5", "token": "TST"}).json()
    assert same_chain["bridge_limit"] is None
    chains = {c["name"]: c for c in client.get("/v1/chains").json()["chains"]}
    assert chains["a"]["bridge_limits"]["limits"][0]["outbound"]["room"] == "20"
    assert chains["b"]["bridge_limits"]["limits"][0]["inbound"]["queued"] == "30"
