"""Rate limits queue for operator-signed transfers too (issue 15): on a devnet of its own (the transfers here move
the operator accounts' tokens, which the routing API's other tests plan with), l1's TokenBridge bucket towards
rollup_b is set to 10 TST refilling 1 a second and emptied by a user's transfer; a 3 TST cross-chain intent the
operators sign then waits, planned, saying it waits for the bridge's outbound room (no nonce spent), and goes once the
bucket refilled: delivered, and its recipient holds exactly 3 TST more on rollup_b, read from the chain."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnets.devnet import Devnet
from router.client import RoutingClient
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    evm_devnet_of_its_own,
    on_devnet,
    start_routing_daemon,
    token_balance,
    wait_for,
)
from tests.integration.test_bridge_limit_quotes import TST, Bridge

pytestmark = pytest.mark.integration

RELAY_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def own_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    with evm_devnet_of_its_own(tmp_path_factory, "devnet-outbound-wait") as net:
        yield net


@pytest.fixture(scope="module")
def routing(own_devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    daemon = start_routing_daemon(own_devnet, Path(tmp_path_factory.mktemp("outbound-wait")), "outbound-wait")
    yield daemon
    daemon.stop()


def test_an_operator_signed_transfer_waits_planned_for_the_outbound_room_then_goes_once(own_devnet, routing) -> None:
    l1 = Bridge(own_devnet, "l1")
    l1.set_limit("rollup_b", inbound=False, capacity=10 * TST, rate=TST)

    async def drain(client: DevnetClient) -> None:
        to = bytes(12) + bytes.fromhex(client.address("rollup_b")[2:])
        await client.adapters["l1"].send_token(  # type: ignore[attr-defined]
            client.key("l1"), "TST", 10 * TST, client.domain("rollup_b"), to)
    on_devnet(own_devnet, drain)
    recipient = "0x" + secrets.token_hex(20)
    with RoutingClient(routing.api_url) as client:
        [intent_id] = client.submit_batch([{"kind": "xchain", "token": "TST", "from_chain": "l1",
                                            "chains": ["rollup_b"], "amount": "3", "recipient": recipient}])["ids"]
        wait_for(lambda: "outbound room" in (client.status(intent_id).get("reason") or ""), 30,
                 "the intent waiting for the bridge's outbound room")
        waiting = client.status(intent_id)
        assert waiting["status"] == "planned" and not waiting.get("tx_hash"), waiting
        done = client.wait(intent_id, until={"delivered"}, timeout=RELAY_TIMEOUT_S)
    assert done["chain"] == "rollup_b" and done["message_id"]
    assert token_balance(own_devnet, "rollup_b", "TST", recipient) == 3 * TST
