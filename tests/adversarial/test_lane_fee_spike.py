"""The base fee as an attacker's lever on the lanes' re-pricing (router/lanes.py ``_reprice``): anyone can fill blocks
and push a chain's base fee up, hoping the operators re-sign their stuck transfers at any price. Re-pricing signs no
copy while the base fee is above the chain's ``gas.max_fee_gwei`` (it could not be included at any fee the operator
allows); when the fee falls back, the transfer stored before the spike lands, once. Here
``anvil_setNextBlockBaseFeePerGas`` stands in for the attacker's full blocks."""

from __future__ import annotations

import os

import pytest

from adapters.evm.devnet import rpc_call
from config.loader import load_settings
from tests.integration.harness import start_routing_daemon, token_balance, wait_for
from tests.integration.test_lane_fees import base_fee, intent_view, sent_before_a_fee_spike

pytestmark = pytest.mark.integration

CHAIN = "l1"
TOKEN = "USDC"
AMOUNT = "0.000009"
UNITS = 9


def test_a_base_fee_pushed_over_the_cap_gets_no_transfer_signed_dearer(devnet, tmp_path):
    chain = {"name": CHAIN, **devnet.manifest()["chains"][CHAIN]}
    rpc = chain["rpc_url"]
    cap_wei = int(load_settings(devnet.config_path, env={}).chains[CHAIN].gas.max_fee_gwei * 10**9)
    daemon = start_routing_daemon(devnet, tmp_path, "spike", env={"RELAYER__ROUTER__LANE_REPRICE_AFTER_S": "1"})
    base = base_fee(rpc)
    recipient = "0x" + os.urandom(20).hex()
    try:
        try:
            intent_id, first = sent_before_a_fee_spike(daemon, chain, recipient, AMOUNT, lambda _max_fee: cap_wei * 2)

            def refused_over_the_cap() -> bool:  # the lane tried to re-price, and the adapter refused
                lines = daemon.log.read_text().splitlines()
                return sum("lane_chain_error" in line and "above the cap" in line for line in lines) >= 2

            wait_for(refused_over_the_cap, 60, "the lane's re-pricing refused over the cap", interval=0.25)
            during = intent_view(daemon.api_url, intent_id)
            assert (during["status"], during["tx_hash"], during["replaced_tx_hashes"]) == (
                "submitted", first["tx_hash"], [])  # nothing signed dearer
        finally:
            rpc_call(rpc, "anvil_setNextBlockBaseFeePerGas", [hex(base)])  # the fee falls back
        wait_for(lambda: intent_view(daemon.api_url, intent_id)["status"] == "included", 90, "the transfer included",
                 interval=0.25)
        final = intent_view(daemon.api_url, intent_id)
        assert final["tx_hash"] == first["tx_hash"] and final["replaced_tx_hashes"] == []
        landed = rpc_call(rpc, "eth_getTransactionByHash", [final["tx_hash"]])
        assert int(landed["maxFeePerGas"], 16) <= cap_wei
        assert token_balance(devnet, CHAIN, TOKEN, recipient) == UNITS  # paid once
    finally:
        daemon.stop()
