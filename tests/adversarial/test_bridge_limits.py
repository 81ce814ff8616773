"""Rate limits in the token bridge under attack (issue 15: "cap what can cross a route, so that one exploit cannot
empty it"). The operator limits TST out of l1 towards rollup_a to 50 at once (refilling slowly) and into rollup_a from
l1 to 30 at once (2 a second). The attacker (attacks/bridge_limits.py) tries to lift either limit (NotOwner), to
release a queue entry that does not exist (NotQueued), to push six 10 TST transfers out of l1 in a burst (the sixth
reverts RateLimited: l1's bridge locked exactly 50), and to pay out its queued transfer before the bucket has room
(RateLimited). What arrives on rollup_a is paid 30 at once and the rest as the bucket refills, by the daemon: the
attacker ends with exactly the 50 that left l1, read from both chains."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from adapters.capabilities import BridgeQueue
from adapters.evm import deploy
from adapters.evm import devnet as evm_devnet
from tests.integration.harness import DevnetClient, on_devnet, wait_for

pytestmark = pytest.mark.integration

TST = 10**18


def _limit(net: Any, chain: str, remote: str, *, inbound: bool, capacity: int, rate: int) -> None:
    manifest = net.manifest()
    c = manifest["chains"][chain]
    deploy.set_rate_limit(Web3(HTTPProvider(c["rpc_url"])), evm_devnet.devnet_key(evm_devnet.DEPLOYER),
                          c["contracts"]["token_bridge"], manifest["chains"][remote]["domain"],
                          c["tokens"]["TST"]["address"], inbound=inbound, capacity=capacity, rate_per_s=rate)


def _tst(net: Any, chain: str, holder: str) -> int:
    return int(on_devnet(net, lambda c: c.adapters[chain].token_balance("TST", holder)))


def _queued(net: Any) -> list[Any]:
    async def go(client: DevnetClient) -> list[Any]:
        bridge = client.adapters["rollup_a"]
        assert isinstance(bridge, BridgeQueue)
        return await bridge.queued_transfers(1)
    return list(on_devnet(net, go))


def test_the_limits_hold_whatever_the_attacker_sends(bridge_devnet, attacker, bridge_daemon) -> None:
    net, mine = bridge_devnet, attacker.addresses["rollup_a"]
    l1_bridge = net.manifest()["chains"]["l1"]["contracts"]["token_bridge"]
    locked, held = _tst(net, "l1", l1_bridge), _tst(net, "rollup_a", mine)
    _limit(net, "l1", "rollup_a", inbound=False, capacity=50 * TST, rate=TST // 100)
    _limit(net, "rollup_a", "l1", inbound=True, capacity=30 * TST, rate=0)  # no refill until the operator says
    try:
        seen = attacker.run("bridge_limits.lift_or_outrun_the_limits", burst=6, amount=10 * TST)
        refused = {"lift the inbound limit on rollup_a": "NotOwner", "lift the outbound limit on l1": "NotOwner",
                   "release a queue entry that does not exist": "NotQueued"}
        for case, error in refused.items():
            got = seen["cases"][case]
            assert got["status"] == 0 and got["reason"].startswith(error + "("), f"{case}: {got}"
        assert [b["status"] for b in seen["burst"]] == [1] * 5 + [0]
        assert seen["burst"][-1]["reason"].startswith("RateLimited(")
        assert _tst(net, "l1", l1_bridge) == locked + 50 * TST  # no more left l1 than the bucket held

        def queued_mine() -> list[Any]:
            return [q for q in _queued(net) if q.recipient == mine.lower()]

        wait_for(lambda: len(queued_mine()) == 2 and _tst(net, "rollup_a", mine) == held + 30 * TST, 120,
                 "the burst delivered on rollup_a: 30 paid, 20 queued")
        early = attacker.run("bridge_limits.release_early", queue_id=queued_mine()[0].queue_id)
        assert early["status"] == 0 and early["reason"].startswith("RateLimited("), early
        assert _tst(net, "rollup_a", mine) == held + 30 * TST

        _limit(net, "rollup_a", "l1", inbound=True, capacity=30 * TST, rate=2 * TST)  # the operator lets it refill
        wait_for(lambda: _tst(net, "rollup_a", mine) == held + 50 * TST and not queued_mine(), 120,
                 "the queued transfers paid out by the daemon")
    finally:
        _limit(net, "l1", "rollup_a", inbound=False, capacity=0, rate=0)
        _limit(net, "rollup_a", "l1", inbound=True, capacity=0, rate=0)
