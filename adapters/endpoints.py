"""Several RPC endpoints for one chain, tried in order with health-based demotion (Hyperlane's fallback provider).

A request goes to the first endpoint that is not demoted. One that fails to connect, times out, or answers HTTP 429
or 5xx is demoted: it is skipped for ``cool_down_s``, doubled on each failure in a row up to ``max_cool_down_s``,
and the request moves on to the next. Once its cool-down ends, the next request to reach it probes it: an answer
restores it, another failure demotes it again for longer. So a dead or hung endpoint costs at most one timeout per
cool-down. When every endpoint is demoted they are all tried anyway, the soonest back first: the chain is never given
up for want of a healthy endpoint.

Endpoints are known by their index in the configuration (0 is ``rpc_url``), never by URL: a provider's URL often
holds its API key, and metrics and logs must not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


class Endpoints:
    def __init__(self, urls: Sequence[str], *, cool_down_s: float = 5.0, max_cool_down_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError("at least one endpoint is required")
        self.urls = list(urls)
        self._cool_down_s = cool_down_s
        self._max_cool_down_s = max_cool_down_s
        self._clock = clock
        self._failures = [0] * len(self.urls)
        self._demoted_until = [0.0] * len(self.urls)

    def order(self) -> list[int]:
        """The endpoints to try, in order: those not demoted as configured, then the demoted ones, soonest back
        first."""
        now = self._clock()
        ready = [i for i, until in enumerate(self._demoted_until) if until <= now]
        demoted = sorted((i for i, until in enumerate(self._demoted_until) if until > now),
                         key=lambda i: self._demoted_until[i])
        return ready + demoted

    def failed(self, i: int) -> None:
        self._failures[i] += 1
        wait = min(self._max_cool_down_s, self._cool_down_s * 2 ** (self._failures[i] - 1))
        self._demoted_until[i] = self._clock() + wait

    def succeeded(self, i: int) -> None:
        self._failures[i] = 0
        self._demoted_until[i] = 0.0

    def healthy(self) -> list[bool]:
        """Per endpoint: True unless it failed its last request (demoted, or waiting for its probe)."""
        return [failures == 0 for failures in self._failures]
