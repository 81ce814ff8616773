"""The netting keeper's decisions (relayer/daemon/netting.py), against pools held in memory: which epochs it settles
and on which side, which settlements it asks a pool to apply, when it releases deferred payouts, and where its scan
starts next round. The chain side is tested on the devnet (tests/integration/test_netting.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from adapters.capabilities import DeferredPayout, PoolEpoch, PoolState
from config.loader import load_settings_dict
from relayer.daemon.metrics import Metrics
from relayer.daemon.netting import LOOKBACK_EPOCHS, NettingKeeper, PoolSide


def _epoch(remote: int, e: int, **kw: Any) -> PoolEpoch:
    fields = {"sent": 0, "sent_count": 0, "received": 0, "received_count": 0, "settled_out": False,
              "settlement_in": "none", "remote_sent": 0, "remote_count": 0, "adjusted": 0, **kw}
    return PoolEpoch(remote, e, **fields)


class Pools:
    """One chain's USDC pool in memory; records the calls the keeper makes."""

    def __init__(self, epoch: int, *, balance: int = 100, owed: int = 0) -> None:
        self.state = PoolState("USDC", "0x" + "11" * 20, epoch, 8, balance, max(0, balance - owed), owed, 0)
        self.epochs: dict[tuple[int, int], PoolEpoch] = {}
        self.deferred: list[DeferredPayout] = []
        self.calls: list[tuple[str, int, int]] = []

    def pooled_tokens(self) -> list[str]:
        return ["USDC"]

    async def pool_state(self, symbol: str) -> PoolState:
        return self.state

    async def pool_epochs(self, symbol: str, remote: int, epochs: Sequence[int]) -> list[PoolEpoch]:
        return [self.epochs.get((remote, e), _epoch(remote, e)) for e in epochs]

    async def deferred_payouts(self, symbol: str, from_id: int = 1) -> list[DeferredPayout]:
        return list(self.deferred)

    async def pool_settle(self, symbol: str, remote: int, epoch: int) -> str:
        self.calls.append(("settle", remote, epoch))
        return "0xsettle"

    async def pool_complete(self, symbol: str, remote: int, epoch: int) -> str:
        self.calls.append(("complete", remote, epoch))
        return "0xcomplete"

    async def pool_release(self, symbol: str, payout_id: int) -> str:
        self.calls.append(("release", payout_id, 0))
        return "0xrelease"

    async def pool_deposit(self, *args: Any) -> Any:
        raise AssertionError("the keeper never deposits")


def _settings() -> Any:
    usdc = {"USDC": {"address": "0x" + "22" * 20, "decimals": 6, "bridged": False, "pool": "0x" + "11" * 20}}
    chain = {"family": "evm", "chain_id": 1, "rpc_url": "http://127.0.0.1:1", "mailbox": "0x" + "33" * 20,
             "signer": {"private_key": "0x" + "44" * 32}, "trust_single_rpc": True, "tokens": usdc}
    return load_settings_dict({
        "chains": {"a": {**chain, "domain": 1}, "b": {**chain, "domain": 2, "chain_id": 2}},
        "security": {"threshold": 1, "validators": [{"address": "0x" + "55" * 20, "url": "http://127.0.0.1:2"}]},
    })


def _keeper(a: Pools, b: Pools) -> NettingKeeper:
    keeper = NettingKeeper(_settings(), {}, Metrics())
    keeper.sides = {"USDC": [PoolSide("a", 1, a, 6), PoolSide("b", 2, b, 6)]}  # type: ignore[arg-type]
    return keeper


async def test_an_epoch_with_flow_either_way_is_settled_on_both_sides_once_closed() -> None:
    a, b = Pools(epoch=100), Pools(epoch=100)
    a.epochs[(2, 98)] = _epoch(2, 98, sent=5, sent_count=1)  # a deposit a -> b in epoch 98: flow for both
    a.epochs[(2, 100)] = _epoch(2, 100, sent=5, sent_count=1)  # epoch 100 is still open: not yet
    await _keeper(a, b).run_once()
    assert a.calls == [("settle", 2, 98)] and b.calls == [("settle", 1, 98)]


async def test_a_settlement_is_applied_only_once_every_deposit_it_counts_arrived() -> None:
    a, b = Pools(epoch=100), Pools(epoch=100)
    b.epochs[(1, 97)] = _epoch(1, 97, received_count=1, settled_out=True, settlement_in="pending", remote_count=2)
    b.epochs[(1, 98)] = _epoch(1, 98, received_count=2, settled_out=True, settlement_in="pending", remote_count=2)
    a.epochs[(2, 97)] = _epoch(2, 97, sent_count=2, settled_out=True, settlement_in="done")
    a.epochs[(2, 98)] = _epoch(2, 98, sent_count=2, settled_out=True, settlement_in="done")
    keeper = _keeper(a, b)
    await keeper.run_once()
    assert b.calls == [("complete", 1, 98)] and a.calls == []
    assert keeper.metrics.value("relayer_pool_settlements_waiting", chain="b", token="USDC") == 2


async def test_the_scan_starts_at_the_oldest_epoch_not_done() -> None:
    a, b = Pools(epoch=100), Pools(epoch=100)
    first = 100 - LOOKBACK_EPOCHS
    done = {"settled_out": True, "settlement_in": "done", "sent_count": 1}
    for e in range(first, 95):
        a.epochs[(2, e)] = _epoch(2, e, **done)
        b.epochs[(1, e)] = _epoch(1, e, **done)
    a.epochs[(2, 95)] = _epoch(2, 95, **{**done, "settlement_in": "pending", "remote_count": 3})
    keeper = _keeper(a, b)
    await keeper.run_once()
    assert keeper.scan_from[("USDC", "a", "b")] == 95  # 95 waits; 96..99 have no flow but come after it
    a.epochs[(2, 95)] = replace(a.epochs[(2, 95)], settlement_in="done")
    b.epochs[(1, 95)] = _epoch(1, 95, **done)
    await keeper.run_once()
    assert keeper.scan_from[("USDC", "a", "b")] == 100


async def test_deferred_payouts_are_released_only_when_the_pool_holds_everything_it_owes() -> None:
    a, b = Pools(epoch=10, balance=50, owed=80), Pools(epoch=10)
    a.deferred = [DeferredPayout(1, 2, "0x" + "66" * 20, 30), DeferredPayout(2, 2, "0x" + "77" * 20, 50)]
    keeper = _keeper(a, b)
    await keeper.run_once()
    assert not [c for c in a.calls if c[0] == "release"]
    a.state = replace(a.state, balance=80)
    await keeper.run_once()
    assert [c for c in a.calls if c[0] == "release"] == [("release", 1, 0), ("release", 2, 0)]
