"""A dApp suite across chain families: TST from the EVM L1 to Cosmos and to Solana, and a reset that brings both
balances back (their devnets snapshot and revert in place, as the anvils do: a reset reverts them in milliseconds)."""

from decimal import Decimal

import pytest

pytestmark = pytest.mark.xchain(families=["evm", "cosmos", "solana"])


@pytest.mark.parametrize("destination", ["cosmos", "solana"])
def test_token_to_a_non_evm_chain_then_reset(xchain, destination):
    recipient = xchain.chains[destination].accounts[0].address
    before = xchain.balance(destination, "TST", recipient)
    mid = xchain.send_token("l1", destination, "TST", 3, recipient)
    xchain.wait_delivered(mid, timeout=180)
    xchain.assert_delivered_once(mid)
    assert xchain.balance(destination, "TST", recipient) == before + Decimal(3)

    took = xchain.reset()
    print(f"XCHAIN_RESET_S {destination} {took:.3f}")
    assert xchain.balance(destination, "TST", recipient) == before
    again = xchain.send_token("l1", destination, "TST", 1, recipient)  # the store and the ledgers followed
    xchain.wait_delivered(again, timeout=180)
    assert xchain.balance(destination, "TST", recipient) == before + Decimal(1)
