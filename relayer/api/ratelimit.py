"""Admission limits shared by the HTTP endpoints: token buckets per client, in-flight caps, daily budgets.

Everything here is bounded in memory whatever the callers send: a limiter keeps at most ``max_keys`` clients
(the least recently seen one is forgotten first, and a forgotten client starts again with a full bucket, so
forgetting never refuses anyone), so an attacker who invents a new key per request grows nothing.

Each refusal says how long to wait (``retry_after_s``), which the HTTP layer answers as ``429`` (or ``503``
for a server-wide cap) with a ``Retry-After`` header (``retry_after_header``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


def retry_after_header(retry_after_s: float) -> str:
    """``Retry-After`` in whole seconds (RFC 9110: a non-negative integer), at least 1."""
    return str(max(1, math.ceil(retry_after_s)))


@dataclass(slots=True)
class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved up."""

    rate_per_s: float
    burst: float
    tokens: float
    updated: float

    def take(self, n: float, now: float) -> float:
        """Take ``n`` tokens: 0.0 when granted, else the seconds until ``n`` would be available (nothing taken).
        A request for more than ``burst`` can never be granted: it gets ``math.inf``."""
        if n > self.burst:
            return math.inf
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate_per_s if self.rate_per_s > 0 else math.inf


class KeyedRateLimiter:
    """A ``TokenBucket`` per key (client address, API key, relayer address), at most ``max_keys`` of them."""

    def __init__(self, rate_per_s: float, burst: float, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s < 0 or burst <= 0 or max_keys < 1:
            raise ValueError("rate_per_s >= 0, burst > 0 and max_keys >= 1 are required")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, n: float = 1.0) -> float:
        """0.0 when ``key`` may go on (``n`` tokens taken), else the seconds it should wait."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst, self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(n, now)

    def give_back(self, key: str, n: float) -> None:
        """Return ``n`` tokens ``key`` took for work that was then not done (a request refused by a later check, an
        intent the planner left unserved); never above the burst. A forgotten key has nothing to return to."""
        bucket = self._buckets.get(key)
        if bucket is not None and n > 0:
            bucket.tokens = min(bucket.burst, bucket.tokens + n)

    def __len__(self) -> int:
        return len(self._buckets)


class InFlightLimiter:
    """At most ``per_key`` concurrent operations per key and ``total`` overall (streams, requests, connections).

    ``acquire`` answers which cap refused (``"total"`` or ``"per_key"``) or ``None`` when admitted; every admitted
    ``acquire`` must be paired with one ``release``. Keys with nothing in flight are dropped, so the table holds
    at most ``total`` keys."""

    def __init__(self, *, per_key: int, total: int) -> None:
        if per_key < 1 or total < 1:
            raise ValueError("per_key and total must be at least 1")
        self.per_key = per_key
        self.total = total
        self._counts: dict[str, int] = {}
        self._in_flight = 0

    def acquire(self, key: str) -> str | None:
        if self._in_flight >= self.total:
            return "total"
        count = self._counts.get(key, 0)
        if count >= self.per_key:
            return "per_key"
        self._counts[key] = count + 1
        self._in_flight += 1
        return None

    def release(self, key: str) -> None:
        count = self._counts.get(key, 0)
        if count <= 0:
            return
        self._in_flight -= 1
        if count == 1:
            del self._counts[key]
        else:
            self._counts[key] = count - 1

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def held_by(self, key: str) -> int:
        return self._counts.get(key, 0)
