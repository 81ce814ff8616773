"""The daemon's payer of queued inbound transfers (relayer/daemon/bridge_queue.py), on a fake bridge: per bucket in
queue order while there is room (a later transfer never overtakes an earlier one that waits), one larger than the
capacity once the bucket is full, no limit: all of them; a release the chain refuses stops that bucket."""

from __future__ import annotations

from adapters.base import TxReverted
from adapters.capabilities import QueuedTransfer
from relayer.daemon.bridge_queue import QueuedTransferReleaser
from relayer.daemon.metrics import Metrics


class FakeBridge:
    def __init__(self, queue: list[QueuedTransfer], rooms: dict[tuple[int, str], tuple[int, int]],
                 refuse: set[int] | None = None) -> None:
        self.queue, self.rooms, self.refuse = queue, rooms, refuse or set()
        self.released: list[int] = []

    def can_release(self) -> bool:
        return True

    async def queued_transfers(self, from_id: int) -> list[QueuedTransfer]:
        return [q for q in self.queue if q.queue_id >= from_id and q.queue_id not in self.released]

    async def inbound_room(self, origin: int, token: str) -> tuple[int, int]:
        return self.rooms[(origin, token)]

    async def release_queued(self, queue_id: int) -> str:
        if queue_id in self.refuse:
            raise TxReverted("RateLimited(...)", chain="a", reason="RateLimited(...)")
        self.released.append(queue_id)
        return "0x" + "ab" * 32


def _q(i: int, origin: int, token: str, amount: int) -> QueuedTransfer:
    return QueuedTransfer(i, origin, token, "0x" + "01" * 20, amount)


async def test_each_bucket_releases_in_order_while_it_has_room() -> None:
    queue = [_q(1, 1, "t", 30), _q(2, 1, "t", 50), _q(3, 1, "t", 10), _q(4, 2, "t", 500), _q(5, 3, "u", 7)]
    bridge = FakeBridge(queue, {(1, "t"): (60, 100), (2, "t"): (100, 100), (3, "u"): (2**256 - 1, 0)})
    metrics = Metrics()
    releaser = QueuedTransferReleaser({"a": bridge}, metrics)  # type: ignore[dict-item]
    assert await releaser.run_once() == 3
    # bucket (1, t): 30 fits, 50 does not (30 left), so 10 waits behind it; (2, t) is full: 500 > capacity goes;
    # (3, u) has no limit
    assert bridge.released == [1, 4, 5]
    assert metrics.value("relayer_bridge_queued_transfers", chain="a") == 2
    assert metrics.value("relayer_bridge_queued_released_total", chain="a") == 3
    assert releaser.scan_from["a"] == 1


async def test_a_refused_release_stops_its_bucket_only() -> None:
    queue = [_q(1, 1, "t", 10), _q(2, 1, "t", 10), _q(3, 2, "t", 10)]
    bridge = FakeBridge(queue, {(1, "t"): (100, 100), (2, "t"): (100, 100)}, refuse={1})
    assert await QueuedTransferReleaser({"a": bridge}, Metrics()).run_once() == 1  # type: ignore[dict-item]
    assert bridge.released == [3]
