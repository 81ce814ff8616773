"""Paid delivery under attack (issue 15): the daemon asks l1 -> rollup_a messages to pay the paymaster's quote. The
attacker dispatches a message of its own and tries to get it delivered without paying (attacks/gas_payments.py):
every write it may not make reverts (NotUpdater, NotOwner, InsufficientPayment), the paymaster holds what it held,
the oracle keeps the updater's prices; its payment on a paymaster of its own and its payment naming another
destination count for nothing (its message still waits for payment, attempts 0, after the daemon indexed those
blocks); anyone may trigger ``claim`` but the takings go to the relayer's beneficiary, never to the attacker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.adversarial.conftest import start_daemon
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    message_record,
    wait_for,
)
from tests.integration.test_paid_delivery import oracle_entry

pytestmark = pytest.mark.integration

PAID_RULE = """
[[relayer.gas_payment]]
origin = "l1"
destination = "rollup_a"
policy = "on_chain_quote"
gas_amount = 150000
"""
EXPECTED = {
    "write l1's gas oracle (1 wei per gas, no minimum)": "NotUpdater",
    "name itself the oracle's updater": "NotOwner",
    "name itself the paymaster's beneficiary": "NotOwner",
    "pay one wei less than the quote": "InsufficientPayment",
}


@pytest.fixture(scope="module")
def paid_daemon(bridge_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("paid"), edit=lambda text: text + PAID_RULE,
                          instance="paid-adversarial")
    yield daemon
    daemon.stop()


def _oracle_entry(net: Any) -> Any:
    return oracle_entry(net, "rollup_a")


def test_a_message_is_not_delivered_for_a_payment_that_does_not_count(bridge_devnet, attacker, paid_daemon) -> None:
    api = paid_daemon.api_url
    wait_for(lambda: _oracle_entry(bridge_devnet).updated_at > 0, 60, "the oracle written by the daemon")
    beneficiary = _beneficiary(bridge_devnet)
    seen = attacker.run("gas_payments.pay_without_paying")
    for case, error in EXPECTED.items():
        got = seen["cases"][case]
        assert got["status"] == 0 and got["reason"].startswith(error + "("), f"{case}: {got}"
    assert seen["held_after_refusals"] == seen["held_before"]
    entry = _oracle_entry(bridge_devnet)
    assert entry.gas_price * entry.exchange_rate > 1 and entry.minimum_payment > 0  # the updater's, not the attacker's
    assert seen["fake_payment"]["status"] == 1 and seen["wrong_destination_payment"]["status"] == 1

    # a message dispatched after the attack, on a route that asks nothing, delivered: the daemon indexed those blocks
    client = DevnetClient(bridge_devnet)
    [marker] = dispatch_to_test_recipient(bridge_devnet, client.key("l1", 1), "l1", "rollup_b", [b"after the attack"])
    wait_for(lambda: delivered_on(bridge_devnet, "rollup_b", marker), 90, "a later message delivered")
    mid = bytes.fromhex(seen["message_id"][2:])
    rec = message_record(api, mid)
    assert rec and rec["status"] == "waiting" and rec["substate"] == "payment", rec
    assert rec["attempts"] == 0 and (rec["last_error"] or "").startswith("paid 0 of"), rec
    assert not delivered_on(bridge_devnet, "rollup_a", mid)
    owed = httpx.get(f"{api}/v1/messages/{seen['message_id']}/gas").json()
    assert owed["paid"] == "0" and int(owed["shortfall"]) >= seen["quote"]

    # claim: anyone may trigger it, only the beneficiary gains
    assert seen["claim"]["status"] == 1 and seen["paymaster_after_claim"] == 0
    assert seen["attacker_after_claim"] < seen["attacker_before_claim"]  # it paid the gas, gained nothing
    # what the claim moved out of the paymaster is what the beneficiary gained in that block (the daemon's wallet
    # may deliver in the same block: its own spending there is added back)
    block = seen["claim"]["block"]
    paymaster = bridge_devnet.manifest()["chains"]["l1"]["contracts"]["gas_paymaster"]
    claimed = _balance_at(bridge_devnet, paymaster, block - 1)
    assert claimed > 0
    gained = (_balance_at(bridge_devnet, beneficiary, block) - _balance_at(bridge_devnet, beneficiary, block - 1)
              + _spent_in_block(bridge_devnet, beneficiary, block))
    assert gained == claimed, (gained, claimed)


def _rpc(net: Any, method: str, params: list[Any]) -> Any:
    url = net.manifest()["chains"]["l1"]["rpc_url"]
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()["result"]


def _balance_at(net: Any, address: str, block: int) -> int:
    return int(_rpc(net, "eth_getBalance", [address, hex(block)]), 16)


def _spent_in_block(net: Any, sender: str, block: int) -> int:
    """What ``sender``'s own transactions in ``block`` cost it: value sent plus gas paid."""
    spent = 0
    for tx in _rpc(net, "eth_getBlockByNumber", [hex(block), True])["transactions"]:
        if tx["from"].lower() != sender.lower():
            continue
        receipt = _rpc(net, "eth_getTransactionReceipt", [tx["hash"]])
        spent += int(tx["value"], 16) + int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    return spent


def _beneficiary(net: Any) -> str:
    paymaster = net.manifest()["chains"]["l1"]["contracts"]["gas_paymaster"]
    url = net.manifest()["chains"]["l1"]["rpc_url"]
    from adapters.evm import abi

    word = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [
        {"to": paymaster, "data": "0x" + abi.selector("beneficiary()").hex()}, "latest"]}).json()["result"]
    return "0x" + word[-40:]


def test_the_gas_api_rejects_bad_input(bridge_devnet, paid_daemon) -> None:
    """GET /v1/messages/{id}/gas reads only; a malformed id or refund address is a 400 naming the field."""
    api = paid_daemon.api_url
    bad = httpx.get(f"{api}/v1/messages/0x12/gas")
    assert bad.status_code == 400 and "message_id" in bad.text
    unknown = httpx.get(f"{api}/v1/messages/0x{'ab' * 32}/gas?refund_to=0x{'11' * 20}")
    assert unknown.status_code == 404
    wrong = httpx.get(f"{api}/v1/messages/0x{'ab' * 32}/gas?refund_to=nobody")
    assert wrong.status_code == 400 and "refund_to" in wrong.text
