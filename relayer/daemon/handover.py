"""Several daemon instances on one store: each beats a heartbeat row (``beat``, every
``relayer.instance_lease_s / 5``), and a relayer takes over the messages and deliveries of instances whose heartbeat
is older than a lease (hand-over). Also the orphan sweep of the destination processors, and ``store_status``: whether
the last heartbeat reached the store (``/readyz``).

The keeper jobs (chain calls anyone may make, made by the relayer for everyone: gas oracle updates, releases of
queued bridge transfers, pool settlements) run on one instance of a store, the *keeper*: the first by name of the live
relayer instances (``InstanceTable.keeper_instance``), read at every beat. Two instances doing them both would race
one updater key's nonces and pay for calls the contracts then refuse as already done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from config.settings import Settings
from relayer.daemon.metrics import Metrics
from relayer.pipeline.processor import DestinationProcessor
from relayer.store import Store, StoreError

log = structlog.get_logger("relayer.daemon.handover")

KEEPER_ROLES = ("relayer", "all")  # the roles whose daemons run keeper jobs


@dataclass
class Handover:
    """Heartbeat and hand-over of one instance (``store.owner``)."""

    settings: Settings
    store: Store
    metrics: Metrics
    processors: dict[int, DestinationProcessor]
    store_status: str = "ok"  # "ok" or why the last heartbeat could not reach the store (in /readyz)
    _store_ok_since: float | None = None  # monotonic time of the first good heartbeat after start or an outage
    keeper: str | None = None  # the keeper instance as the last beat read it
    _keeper_read: bool = False

    async def is_keeper(self) -> bool:
        """Whether this instance runs the keeper jobs: as the last beat read it (asked of the store before the first
        beat; while the store is down, as last read: the chain calls need no database)."""
        if not self._keeper_read:
            await self._read_keeper()
        return self.keeper == self.store.owner

    async def _read_keeper(self) -> None:
        try:
            keeper = await self.store.aio.keeper_instance(self.settings.relayer.instance_lease_s, KEEPER_ROLES)
        except StoreError as exc:
            log.warning("keeper_unknown", reason=exc.reason, error=str(exc)[:300], keeper_as_last_read=self.keeper)
            return
        if keeper != self.keeper or not self._keeper_read:
            log.info("keeper_instance", keeper=keeper, this_instance=self.store.owner)
        self.keeper, self._keeper_read = keeper, True
        self.metrics.set("relayer_keeper_instance", 1.0 if keeper == self.store.owner else 0.0)

    def started(self) -> None:
        """The instance registered itself: its hand-over clock starts now."""
        self._store_ok_since = time.monotonic()

    async def sweep_orphans(self) -> None:
        try:
            for p in self.processors.values():
                await p.sweep_orphans()
        except StoreError as exc:
            log.warning("orphan_sweep_failed", reason=exc.reason, error=str(exc)[:300])

    async def beat(self) -> None:
        """Heartbeat (every ``relayer.instance_lease_s / 5``); a relayer then takes over dead instances' work."""
        lease = self.settings.relayer.instance_lease_s
        now = time.monotonic()
        try:
            was_dead = await self.store.aio.heartbeat()
            alive = await self.store.aio.alive_instances(lease)
        except StoreError as exc:
            if self._store_ok_since is not None:
                log.warning("store_unavailable", reason=exc.reason, error=str(exc)[:300])
            self._store_ok_since = None
            self.store_status = f"{exc.reason}: {str(exc)[:200]}"
            self.metrics.set("relayer_store_up", 0.0)
            self.metrics.inc("relayer_store_errors_total", reason=exc.reason, where="heartbeat")
            return
        if self._store_ok_since is None:
            if self.store_status != "ok":
                log.info("store_available_again")
            self._store_ok_since = now
        self.store_status = "ok"
        self.metrics.set("relayer_store_up", 1.0)
        self.metrics.set("relayer_instances_alive", alive)
        await self._read_keeper()
        if was_dead is not None:
            log.warning("instance_was_declared_dead", instance=self.store.owner, handed_over_to=was_dead.handed_over_to,
                        reason="heartbeat late by more than relayer.instance_lease_s")
        # only after a whole lease of our own good beats: after a store outage every peer looks silent at first
        if not self.processors or now - self._store_ok_since < lease:
            return
        try:
            handovers = await self.store.aio.adopt_dead_instances(lease)
        except StoreError as exc:
            log.warning("handover_failed", reason=exc.reason, error=str(exc)[:300])
            return
        if any(h.deliveries or h.messages for h in handovers):
            for processor in self.processors.values():
                processor.wake()
        for h in handovers:
            if not h.deliveries and not h.messages:  # it left nothing in hand: only note that it is gone
                log.info("instance_gone", instance=h.from_instance, reason=h.reason.value,
                         silent_s=round(h.silent_s, 1))
                continue
            self.metrics.inc("relayer_handovers_total", from_instance=h.from_instance, reason=h.reason.value)
            self.metrics.inc("relayer_messages_handed_over_total", h.messages, from_instance=h.from_instance,
                             reason=h.reason.value)
            log.warning("instance_handover", from_instance=h.from_instance, to_instance=self.store.owner,
                        reason=h.reason.value, silent_s=round(h.silent_s, 1), deliveries=len(h.deliveries),
                        submitted=h.submitted, released=h.released)
