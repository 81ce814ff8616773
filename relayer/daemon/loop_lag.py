"""How long an event loop is blocked: a timer due every 100 ms, and how late it fires.

Synchronous work on a loop (a store query, a CPU-bound proof) delays every timer and I/O callback behind it; the
lateness of a periodic timer measures that delay as the loop's other tasks feel it. Recorded in the histogram
``relayer_event_loop_lag_seconds{loop}`` and the gauge ``relayer_event_loop_lag_max_seconds{loop}``.
"""

from __future__ import annotations

import asyncio
import contextlib

from relayer.daemon.metrics import Metrics

INTERVAL_S = 0.1


async def watch_loop_lag(metrics: Metrics, loop_name: str, stop: asyncio.Event, interval_s: float = INTERVAL_S) -> None:
    """Until ``stop``: every ``interval_s``, record how late the timer fired on the running loop."""
    loop = asyncio.get_running_loop()
    longest = 0.0
    while not stop.is_set():
        due = loop.time() + interval_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        lag = max(0.0, loop.time() - due)
        metrics.observe("relayer_event_loop_lag_seconds", lag, loop=loop_name)
        if lag > longest:
            longest = lag
            metrics.set("relayer_event_loop_lag_max_seconds", longest, loop=loop_name)
