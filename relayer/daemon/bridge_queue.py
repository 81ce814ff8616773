"""Pays out the inbound transfers the token bridges queued for want of rate-limit room (``TokenBridge``'s inbound
buckets): every 2 s, per chain whose bridge this relayer can send to, the open queued transfers are read and, per
(origin, token) in queue order, released while the bucket has room for them (one larger than the capacity once the
bucket is full). Anyone may release a queued transfer and only its recipient gains; the relayer does it so that
recipients need not. ``relayer_bridge_queued_transfers{chain}`` is what waits now,
``relayer_bridge_queued_released_total{chain}`` what this relayer paid out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import structlog

from adapters.base import AdapterError, ChainAdapter, TxReverted
from adapters.capabilities import BridgeQueue, QueuedTransfer
from relayer.daemon.metrics import Metrics

log = structlog.get_logger("relayer.daemon.bridge_queue")


class QueuedTransferReleaser:
    def __init__(self, adapters: Mapping[str, ChainAdapter], metrics: Metrics) -> None:
        self.bridges = {n: a for n, a in adapters.items() if isinstance(a, BridgeQueue) and a.can_release()}
        self.metrics = metrics
        self.scan_from = dict.fromkeys(self.bridges, 1)  # per chain: no open queued transfer below this id

    async def run_once(self) -> int:
        """Release what fits on every chain; the number released."""
        released = 0
        for name, bridge in self.bridges.items():
            try:
                released += await self._release(name, bridge)
            except AdapterError as exc:
                log.warning("queued_transfers_unavailable", chain=name, error=str(exc)[:300])
        return released

    async def _release(self, name: str, bridge: BridgeQueue) -> int:
        waiting = await bridge.queued_transfers(self.scan_from[name])
        self.scan_from[name] = waiting[0].queue_id if waiting else self.scan_from[name]
        by_bucket: dict[tuple[int, str], list[QueuedTransfer]] = defaultdict(list)
        for q in waiting:
            by_bucket[(q.origin, q.token)].append(q)
        released = 0
        for (origin, token), queue in by_bucket.items():
            released += await self._release_bucket(name, bridge, origin, token, queue)
        self.metrics.set("relayer_bridge_queued_transfers", len(waiting) - released, chain=name)
        if released:
            self.metrics.inc("relayer_bridge_queued_released_total", released, chain=name)
        return released

    async def _release_bucket(self, name: str, bridge: BridgeQueue, origin: int, token: str,
                              queue: list[QueuedTransfer]) -> int:
        """Release ``queue`` (one bucket's, oldest first) while it fits: a later transfer never overtakes an earlier
        one that waits for room."""
        room, capacity = await bridge.inbound_room(origin, token)
        released = 0
        for q in queue:
            if capacity and q.amount > room and room < capacity:
                break
            try:
                tx = await bridge.release_queued(q.queue_id)
            except TxReverted as exc:  # the bucket changed since it was read (another releaser, a new payout)
                log.info("queued_transfer_not_released", chain=name, queue_id=q.queue_id, reason=exc.reason[:200])
                break
            room = max(0, room - q.amount)
            released += 1
            log.info("queued_transfer_released", chain=name, queue_id=q.queue_id, origin=origin, token=token,
                     recipient=q.recipient, amount=str(q.amount), tx=tx)
        return released
