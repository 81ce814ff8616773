"""Paid delivery from Solana and Cosmos under attack (issue 15): the daemon asks solana -> l1 and cosmos -> l1
messages to pay the relayer's quote to its gas_fee_account (for 1 gas, with a $20 floor on these routes: far above
what one delivery to l1 costs, so the quote for whatever gas a delivery needs is exactly the floor). A sender (a public
devnet account: anyone can do this) tries to get its messages delivered without paying what they owe: a dispatch
paying another account the full amount; a dispatch paying nothing, then the full amount to the fee account in a
transaction of its own with no gas memo; a top-up with the gas memo naming the message but another destination; a
top-up with the right memo paid to another account; a dispatch paying one unit less than required. Each still waits
for payment with 0 attempts and is not processed on l1 (read from the chain), after the daemon has indexed a later
message paying exactly what is required, which is delivered."""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest

from tests.adversarial.conftest import start_daemon
from tests.integration.fee_accounts import PAYING_RULES, dispatch_paying, fee_account, native_balance, owed, top_up
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    message_record,
    message_status,
    on_devnet,
    wait_for,
)

pytestmark = pytest.mark.integration

RELAY_TIMEOUT_S = 120.0
FLOOR_USD = 20.0  # one delivery to l1 costs well under it: the quote for the gas any delivery needs is the floor
# the routes' USD floor in origin units, as the keeper computes it: at $150 per SOL (lamports, 9 decimals) and $5 per
# ATOM (ustake, 6 decimals)
FLOOR = {origin: math.ceil(Fraction(FLOOR_USD) / Fraction(usd) * 10**decimals)
         for origin, usd, decimals in (("solana", 150.0, 9), ("cosmos", 5.0, 6))}
FLOORS = f"""
[[relayer.gas_oracle.floors]]
origin = "solana"
destination = "l1"
usd = {FLOOR_USD}

[[relayer.gas_oracle.floors]]
origin = "cosmos"
destination = "l1"
usd = {FLOOR_USD}

[[relayer.gas_oracle.floors]]
usd = 0.01
"""


@pytest.fixture(scope="module")
def paid_daemon(bridge_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("fee-accounts"),
                          edit=lambda text: text + PAYING_RULES.format(gas=1) + FLOORS,
                          instance="fee-accounts-adversarial")
    yield daemon
    daemon.stop()


def _pay_separately(net: Any, origin: str, amount: int) -> None:
    """``amount`` to the fee account in a transaction of its own (no dispatch, no memo), waited for on chain."""
    to = fee_account(net, origin)
    before = native_balance(net, origin, to)

    async def pay(client: DevnetClient) -> None:
        adapter = client.adapters[origin]
        if origin == "cosmos":
            await adapter.transfer_token(client.key(origin), client.manifest["chains"][origin]["fee_denom"], to,  # type: ignore[attr-defined]
                                         amount)
            return
        from solders.system_program import TransferParams, transfer

        signer = adapter._key(client.key(origin))  # type: ignore[attr-defined]
        await adapter._send(signer, [transfer(TransferParams(  # type: ignore[attr-defined]
            from_pubkey=signer.pubkey(), to_pubkey=adapter._fee_account, lamports=amount))])  # type: ignore[attr-defined]
    on_devnet(net, pay)
    wait_for(lambda: native_balance(net, origin, to) == before + amount, 60, f"the separate payment on {origin}")


@pytest.mark.parametrize("origin", ["solana", "cosmos"])
def test_a_payment_that_does_not_count_leaves_the_message_waiting(bridge_devnet, paid_daemon, origin) -> None:
    net, api = bridge_devnet, paid_daemon.api_url
    [separate] = dispatch_to_test_recipient(net, DevnetClient(net).key(origin), origin, "l1", [b"pays later"])
    wait_for(lambda: message_status(api, separate) == ("waiting", "payment"), RELAY_TIMEOUT_S, "underpaid")
    required = int(owed(api, separate)["required"])
    assert required == FLOOR[origin]  # the quote is the floor: exact, whatever the fees do
    _pay_separately(net, origin, required)
    other = DevnetClient(net).address(origin, 1)  # an account that is not the relayer's
    [misrouted, elsewhere] = dispatch_to_test_recipient(net, DevnetClient(net).key(origin), origin, "l1",
                                                        [b"tops up another route", b"tops up another account"])
    top_up(net, origin, misrouted, "rollup_a", 10 * required)  # the message goes to l1, not rollup_a
    top_up(net, origin, elsewhere, "l1", 10 * required, to_fee_account=other)
    wrong_account = dispatch_paying(net, origin, required, b"pays another account", to_fee_account=other)
    one_short = dispatch_paying(net, origin, required - 1, b"one unit short")
    exact = dispatch_paying(net, origin, required, b"pays exactly")
    wait_for(lambda: delivered_on(net, "l1", exact), RELAY_TIMEOUT_S, "the message paying exactly delivered")
    assert owed(api, exact)["required"] == str(required)

    for mid, paid in ((wrong_account, 0), (separate, 0), (misrouted, 0), (elsewhere, 0), (one_short, required - 1)):
        wait_for(lambda m=mid: message_status(api, m) == ("waiting", "payment"), RELAY_TIMEOUT_S, "underpaid")
        rec = message_record(api, mid)
        assert rec and rec["attempts"] == 0 and f"paid {paid} of {required} " in rec["last_error"], rec
        assert owed(api, mid)["paid"] == str(paid)
    assert not delivered_on(net, "l1", wrong_account) and not delivered_on(net, "l1", separate)
    assert not any(delivered_on(net, "l1", m) for m in (one_short, misrouted, elsewhere))
