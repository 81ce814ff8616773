"""Token buckets, keyed limiters and in-flight caps: exact refill arithmetic and bounded memory."""

from __future__ import annotations

import math

import pytest

from relayer.api.ratelimit import InFlightLimiter, KeyedRateLimiter, TokenBucket, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_grants_its_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3.0, tokens=3.0, updated=0.0)
    assert [bucket.take(1, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(1, 0.0) == pytest.approx(0.5)
    assert bucket.take(1, 0.25) == pytest.approx(0.25)  # half refilled: a quarter second more
    assert bucket.take(1, 0.5) == 0.0
    assert bucket.take(4, 10.0) == math.inf  # more than the burst is never granted


def test_keyed_limiter_keeps_clients_apart() -> None:
    clock = Clock()
    limiter = KeyedRateLimiter(1.0, 2.0, clock=clock)
    assert limiter.take("a") == 0.0 and limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(1.0)
    assert limiter.take("b") == 0.0  # another client has its own bucket
    clock.now += 1.0
    assert limiter.take("a") == 0.0


def test_keyed_limiter_memory_is_bounded_whatever_the_keys() -> None:
    limiter = KeyedRateLimiter(1.0, 1.0, max_keys=100, clock=Clock())
    for i in range(10_000):
        limiter.take(f"client-{i}")
    assert len(limiter) == 100


def test_in_flight_caps_per_key_and_total() -> None:
    caps = InFlightLimiter(per_key=2, total=3)
    assert caps.acquire("a") is None and caps.acquire("a") is None
    assert caps.acquire("a") == "per_key"
    assert caps.acquire("b") is None
    assert caps.acquire("c") == "total"
    caps.release("a")
    assert caps.acquire("c") is None
    for key in ("a", "b", "c"):
        caps.release(key)
    caps.release("nobody")  # an unpaired release changes nothing
    assert caps.in_flight == 0 and caps.held_by("a") == 0


@pytest.mark.parametrize(("seconds", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")])
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header
