"""Fees that outgrow a lane transaction (router/lanes.py ``_reprice``, adapters/evm/writeahead.py ``replacements``):
the base fee jumps above a sent transfer's max fee, so it cannot be included; after ``router.lane_reprice_after_s`` the
lane signs a dearer copy at the same nonce (storing it, and keeping the first hash, before sending it), the copy is
mined, and the recipient is paid once. Read from the chain."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from adapters.evm.devnet import rpc_call
from tests.integration.harness import DevnetClient, start_routing_daemon, wait_for

pytestmark = pytest.mark.integration

CHAIN = "l1"
TOKEN = "USDC"
AMOUNT = "0.000007"
UNITS = 7


def _intent(api: str, intent_id: str) -> dict:
    return httpx.get(f"{api}/v1/intents/{intent_id}", timeout=30).json()


def _base_fee(rpc: str) -> int:
    return int(rpc_call(rpc, "eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)


def test_a_transfer_the_base_fee_outgrew_is_repriced_at_its_nonce_and_lands_once(devnet, tmp_path):
    chain = devnet.manifest()["chains"][CHAIN]
    rpc, block_time = chain["rpc_url"], chain["block_time_s"]
    daemon = start_routing_daemon(devnet, tmp_path, "reprice", env={"RELAYER__ROUTER__LANE_REPRICE_AFTER_S": "1"})
    base = _base_fee(rpc)
    recipient = "0x" + os.urandom(20).hex()
    try:
        rpc_call(rpc, "evm_setIntervalMining", [0])  # no blocks: the transfer is signed at today's fees and waits
        try:
            answer = httpx.post(f"{daemon.api_url}/v1/intents", timeout=30, json={"intents": [
                {"amount": AMOUNT, "token": TOKEN, "recipient": recipient, "chains": [CHAIN]}]})
            assert answer.status_code == 202, answer.text
            (intent_id,) = answer.json()["ids"]
            wait_for(lambda: _intent(daemon.api_url, intent_id)["status"] == "submitted", 30, "the transfer sent")
            first = _intent(daemon.api_url, intent_id)
            rpc_call(rpc, "anvil_setNextBlockBaseFeePerGas", [hex(min(base * 100, 200 * 10**9))])
        finally:
            rpc_call(rpc, "evm_setIntervalMining", [max(1, round(block_time))])
        wait_for(lambda: _intent(daemon.api_url, intent_id)["status"] == "included", 90, "the transfer included",
                 interval=0.25)
        final = _intent(daemon.api_url, intent_id)
        assert final["nonce"] == first["nonce"] and final["tx_hash"] != first["tx_hash"]
        assert final["replaced_tx_hashes"] == [first["tx_hash"]]
        assert rpc_call(rpc, "eth_getTransactionReceipt", [first["tx_hash"]]) is None  # never mined
        mined = rpc_call(rpc, "eth_getTransactionReceipt", [final["tx_hash"]])
        assert int(mined["status"], 16) == 1 and int(final["fee_paid"]) == int(mined["gasUsed"], 16) * int(
            mined["effectiveGasPrice"], 16)
        assert _balance(devnet, recipient) == UNITS  # paid once
    finally:
        rpc_call(rpc, "anvil_setNextBlockBaseFeePerGas", [hex(base)])  # the next tests find the fees they expect
        daemon.stop()


def _balance(devnet, holder: str) -> int:
    async def read() -> int:
        client = DevnetClient(devnet)
        try:
            return int(await client.adapters[CHAIN].token_balance(TOKEN, holder))
        finally:
            await client.close()

    return asyncio.run(read())
