"""Token-bridge rate limits on the devnet (issue 15, CCIP's token bucket): an outbound transfer over the bucket reverts
before anything is locked, with the wait in the error; an inbound transfer over it is delivered but queued on chain,
and the daemon pays it out once the bucket has room; a payout refills the outbound bucket towards its origin (flow
cancelling). Balances are read from the chains. Every limit is removed at the end. (Its own module: one daemon at a
time on the session devnet.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from adapters.base import TxReverted
from adapters.capabilities import BridgeQueue
from adapters.evm import deploy
from adapters.evm import devnet as evm_devnet
from adapters.message import address_to_bytes32
from tests.faults.conftest import metric
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    delivered_on,
    free_port_block,
    on_devnet,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

TST = 10**18
RELAY_TIMEOUT_S = 90.0


def _limit(devnet: Any, chain: str, remote: str, *, inbound: bool, capacity: int, rate: int) -> None:
    manifest = devnet.manifest()
    c = manifest["chains"][chain]
    w3 = Web3(HTTPProvider(c["rpc_url"]))
    deploy.set_rate_limit(w3, evm_devnet.devnet_key(evm_devnet.DEPLOYER), c["contracts"]["token_bridge"],
                          manifest["chains"][remote]["domain"], c["tokens"]["TST"]["address"], inbound=inbound,
                          capacity=capacity, rate_per_s=rate)


def _send(devnet: Any, origin: str, destination: str, amount: int) -> bytes:
    """``amount`` TST from the first devnet user on ``origin`` to the same user on ``destination``: the message id
    (``TxReverted`` with the bridge's error when it refuses)."""
    async def go(client: DevnetClient) -> bytes:
        to = address_to_bytes32(client.address(destination))
        _tx, mid = await client.adapters[origin].send_token(  # type: ignore[attr-defined]
            client.key(origin), "TST", amount, client.domain(destination), to)
        return bytes(mid)
    return bytes(on_devnet(devnet, go))


def _balance(devnet: Any, chain: str, holder: str | None = None) -> int:
    async def go(client: DevnetClient) -> int:
        return int(await client.adapters[chain].token_balance("TST", holder or client.address(chain)))  # type: ignore[attr-defined]
    return int(on_devnet(devnet, go))


def _queued(devnet: Any, chain: str) -> list[Any]:
    async def go(client: DevnetClient) -> list[Any]:
        bridge = client.adapters[chain]
        assert isinstance(bridge, BridgeQueue)
        return await bridge.queued_transfers(1)
    return list(on_devnet(devnet, go))


@pytest.fixture(scope="module")
def releaser(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("rate-limits")
    daemon = DaemonProcess(write_daemon_config(devnet, directory, api_port=free_port_block(1)),
                           directory / "daemon.log", instance="bridge-rate-limits").start()
    yield daemon
    daemon.stop()


def test_an_outbound_transfer_over_the_bucket_reverts_before_anything_is_locked(devnet, releaser) -> None:
    """l1 -> rollup_a TST: 100 at once, 1 a second. 150 is above the capacity; 80 goes; another 80 reverts with the
    seconds to wait; the bridge locked only the 80 that went (delivered before the next test limits rollup_a)."""
    bridge = devnet.manifest()["chains"]["l1"]["contracts"]["token_bridge"]
    _limit(devnet, "l1", "rollup_a", inbound=False, capacity=100 * TST, rate=TST)
    try:
        locked = _balance(devnet, "l1", bridge)
        with pytest.raises(TxReverted, match=r"AmountAboveCapacity\("):
            _send(devnet, "l1", "rollup_a", 150 * TST)
        went = _send(devnet, "l1", "rollup_a", 80 * TST)
        with pytest.raises(TxReverted, match=r"RateLimited\(") as refused:
            _send(devnet, "l1", "rollup_a", 80 * TST)
        wait_s = int(refused.value.reason.rstrip(")").rsplit(",", 1)[1])
        assert 40 <= wait_s <= 60, refused.value.reason  # 60 missing at 1 a second, less what refilled meanwhile
        assert _balance(devnet, "l1", bridge) == locked + 80 * TST
        wait_for(lambda: delivered_on(devnet, "rollup_a", went), RELAY_TIMEOUT_S, "the 80 that went delivered")
    finally:
        _limit(devnet, "l1", "rollup_a", inbound=False, capacity=0, rate=0)


def test_an_inbound_transfer_over_the_bucket_is_queued_then_paid_and_refills_the_way_back(devnet, releaser) -> None:
    """rollup_a takes TST from l1 at most 50 at once, 2 a second. 40 is paid at delivery; 30 more is delivered but
    queued (the recipient holds 40), then paid by the daemon once the bucket refilled. The way back (rollup_a -> l1,
    30 at once, no refill) is emptied by sending 30; 1 more reverts; a 10 TST payout from l1 refills it by 10, and
    10 goes back."""
    start = _balance(devnet, "rollup_a")
    _limit(devnet, "rollup_a", "l1", inbound=True, capacity=50 * TST, rate=2 * TST)
    try:
        first = _send(devnet, "l1", "rollup_a", 40 * TST)
        wait_for(lambda: delivered_on(devnet, "rollup_a", first), RELAY_TIMEOUT_S, "the first transfer delivered")
        assert _balance(devnet, "rollup_a") == start + 40 * TST
        second = _send(devnet, "l1", "rollup_a", 30 * TST)
        wait_for(lambda: delivered_on(devnet, "rollup_a", second), RELAY_TIMEOUT_S, "the second transfer delivered")
        waiting = _queued(devnet, "rollup_a")
        assert [q.amount for q in waiting] == [30 * TST] and _balance(devnet, "rollup_a") == start + 40 * TST
        wait_for(lambda: _balance(devnet, "rollup_a") == start + 70 * TST, 60, "the queued transfer paid out")
        assert _queued(devnet, "rollup_a") == []
        wait_for(lambda: metric(releaser.api_url, "relayer_bridge_queued_released_total", chain="rollup_a") >= 1, 10,
                 "the release counted")

        _limit(devnet, "rollup_a", "l1", inbound=False, capacity=30 * TST, rate=0)
        _send(devnet, "rollup_a", "l1", 30 * TST)
        with pytest.raises(TxReverted, match=r"RateLimited\("):
            _send(devnet, "rollup_a", "l1", TST)
        paid = _balance(devnet, "rollup_a")
        third = _send(devnet, "l1", "rollup_a", 10 * TST)
        wait_for(lambda: delivered_on(devnet, "rollup_a", third), RELAY_TIMEOUT_S, "the third transfer delivered")
        wait_for(lambda: _balance(devnet, "rollup_a") == paid + 10 * TST, 60, "the third transfer paid out")
        _send(devnet, "rollup_a", "l1", 10 * TST)  # the flow that came in may go back out
    finally:
        _limit(devnet, "rollup_a", "l1", inbound=True, capacity=0, rate=0)
        _limit(devnet, "rollup_a", "l1", inbound=False, capacity=0, rate=0)
