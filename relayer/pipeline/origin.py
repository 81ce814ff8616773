"""``OriginLoop``: one origin chain's loop: index its finalized dispatches, attest them (a validator), and wake the
destinations that got new messages.

Each round runs the indexer, then this process's attester of that origin if it has one, then wakes the processors of
the destinations the new messages are for (after our own attester signed, so they find a checkpoint covering them).
A round that found messages is followed at once by the next; otherwise the loop waits the chain's poll interval,
or, while rounds fail (the chain, the light client or the store does not answer), the outage backoff
(``relayer.pipeline.outcome.outage_backoff``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Protocol

import structlog

from config.errors import RelayerError
from relayer.daemon.metrics import Metrics
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.outcome import outage_backoff
from relayer.pipeline.validator import OriginAttester

log = structlog.get_logger("relayer.pipeline.origin")

OUTAGE_BACKOFF_MAX_S = 30.0


class Wakeable(Protocol):
    def wake(self) -> None: ...


class OriginLoop:
    def __init__(self, indexer: OriginIndexer, attester: OriginAttester | None, processors: Mapping[int, Wakeable],
                 metrics: Metrics, *, interval_s: float) -> None:
        self.indexer = indexer
        self.attester = attester
        self.processors = processors
        self.metrics = metrics
        self.interval_s = interval_s
        self.backoff = outage_backoff(interval_s, OUTAGE_BACKOFF_MAX_S)

    async def poll_once(self) -> int:
        """One round; the number of new messages indexed."""
        new = await self.indexer.poll_once()
        if self.attester is not None:
            await self.attester.poll_once()
        for destination in self.indexer.take_fresh_destinations():
            if (processor := self.processors.get(destination)) is not None:
                processor.wake()
        if new:
            self.metrics.inc("relayer_messages_indexed_total", new, origin=self.indexer.adapter.name)
        return new

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                new = await self.poll_once()
                failures = 0
            except RelayerError as exc:
                failures += 1
                new = 0
                log.warning("origin_poll_failed", chain=self.indexer.adapter.name, error=str(exc)[:300],
                            failures=failures)
            if new:
                continue
            delay = self.interval_s if failures == 0 else self.backoff(failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
