"""The base fee as an attacker's lever on the lanes' re-pricing (router/lanes.py ``_reprice``): anyone can fill blocks
and push a chain's base fee up, hoping the operators re-sign their stuck transfers at any price. Re-pricing signs no
copy while the base fee is above the chain's ``gas.max_fee_gwei`` (it could not be included at any fee the operator
allows); when the fee falls back, the transfer stored before the spike lands, once. Here
``anvil_setNextBlockBaseFeePerGas`` stands in for the attacker's full blocks."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from adapters.evm.devnet import rpc_call
from config.loader import load_settings
from tests.integration.harness import DevnetClient, start_routing_daemon, wait_for

pytestmark = pytest.mark.integration

CHAIN = "l1"
TOKEN = "USDC"
AMOUNT = "0.000009"
UNITS = 9


def _intent(api: str, intent_id: str) -> dict:
    return httpx.get(f"{api}/v1/intents/{intent_id}", timeout=30).json()


def test_a_base_fee_pushed_over_the_cap_gets_no_transfer_signed_dearer(devnet, tmp_path):
    chain = devnet.manifest()["chains"][CHAIN]
    rpc, block_time = chain["rpc_url"], chain["block_time_s"]
    cap_wei = int(load_settings(devnet.config_path, env={}).chains[CHAIN].gas.max_fee_gwei * 10**9)
    daemon = start_routing_daemon(devnet, tmp_path, "spike", env={"RELAYER__ROUTER__LANE_REPRICE_AFTER_S": "1"})
    base = int(rpc_call(rpc, "eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)
    recipient = "0x" + os.urandom(20).hex()
    try:
        rpc_call(rpc, "evm_setIntervalMining", [0])  # the transfer is signed at today's fees, then the spike comes
        try:
            answer = httpx.post(f"{daemon.api_url}/v1/intents", timeout=30, json={"intents": [
                {"amount": AMOUNT, "token": TOKEN, "recipient": recipient, "chains": [CHAIN]}]})
            assert answer.status_code == 202, answer.text
            (intent_id,) = answer.json()["ids"]
            wait_for(lambda: _intent(daemon.api_url, intent_id)["status"] == "submitted", 30, "the transfer sent")
            first = _intent(daemon.api_url, intent_id)
            rpc_call(rpc, "anvil_setNextBlockBaseFeePerGas", [hex(cap_wei * 2)])
        finally:
            rpc_call(rpc, "evm_setIntervalMining", [max(1, round(block_time))])

        def refused_over_the_cap() -> bool:  # the lane tried to re-price, and the adapter refused
            lines = daemon.log.read_text().splitlines()
            return sum("lane_chain_error" in line and "above the cap" in line for line in lines) >= 2

        wait_for(refused_over_the_cap, 60, "the lane's re-pricing refused over the cap", interval=0.25)
        during = _intent(daemon.api_url, intent_id)
        assert (during["status"], during["tx_hash"], during["replaced_tx_hashes"]) == (
            "submitted", first["tx_hash"], [])  # nothing signed dearer
    finally:
        rpc_call(rpc, "anvil_setNextBlockBaseFeePerGas", [hex(base)])  # the fee falls back
    try:
        wait_for(lambda: _intent(daemon.api_url, intent_id)["status"] == "included", 90, "the transfer included",
                 interval=0.25)
        final = _intent(daemon.api_url, intent_id)
        assert final["tx_hash"] == first["tx_hash"] and final["replaced_tx_hashes"] == []
        landed = rpc_call(rpc, "eth_getTransactionByHash", [final["tx_hash"]])
        assert int(landed["maxFeePerGas"], 16) <= cap_wei
        assert _balance(devnet, recipient) == UNITS  # paid once
    finally:
        daemon.stop()


def _balance(devnet, holder: str) -> int:
    async def read() -> int:
        client = DevnetClient(devnet)
        try:
            return int(await client.adapters[CHAIN].token_balance(TOKEN, holder))
        finally:
            await client.close()

    return asyncio.run(read())
