"""``relayer.route_limits``: at most so many messages a second this relayer delivers on a route (origin ->
destination), to protect a destination. The processor's submit stage, once the destination said which messages are
already delivered (those take no room), lets through what a route's token bucket holds and the rest waits
(``rate_limited``: no attempt spent, looked at again shortly), oldest first. Each instance keeps
its own buckets (instances sharing a database each deliver up to the limit)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from config.settings import RouteLimit
from relayer.api.ratelimit import TokenBucket


class RouteLimiter:
    def __init__(self, limits: Sequence[RouteLimit], domains: Mapping[str, int],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``domains``: chain name -> domain (the limits name chains)."""
        self._limits = [(None if lim.origin == "*" else domains[lim.origin],
                         None if lim.destination == "*" else domains[lim.destination], i, lim)
                        for i, lim in enumerate(limits)]
        self._clock = clock
        self._buckets: dict[tuple[int, int], TokenBucket] = {}

    def limit_of(self, origin: int, destination: int) -> tuple[int, RouteLimit] | None:
        """(index, limit) of the first entry matching the route; None: unlimited."""
        for o, d, i, lim in self._limits:
            if (o is None or o == origin) and (d is None or d == destination):
                return i, lim
        return None

    def admit(self, origin: int, destination: int, n: int) -> tuple[int, float]:
        """How many of ``n`` messages on the route may go now (taken from its bucket), and the seconds until the
        next one may (0.0 when all may)."""
        found = self.limit_of(origin, destination)
        if found is None:
            return n, 0.0
        _i, lim = found
        now = self._clock()
        bucket = self._buckets.get((origin, destination))
        if bucket is None:
            bucket = self._buckets[(origin, destination)] = TokenBucket(lim.messages_per_s, lim.burst, lim.burst, now)
        granted = 0
        while granted < n and bucket.take(1, now) == 0.0:
            granted += 1
        return granted, 0.0 if granted == n else max(0.0, 1 - bucket.tokens) / lim.messages_per_s
