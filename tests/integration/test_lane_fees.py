"""Fees that outgrow a lane transaction (router/lanes.py ``_reprice``, adapters/evm/writeahead.py ``replacements``):
the base fee jumps to 10x a sent transfer's max fee, so it cannot be included; after ``router.lane_reprice_after_s`` the
lane signs a dearer copy at the same nonce (storing it, and keeping the first hash, before sending it), the copy is
mined, and the recipient is paid once. Read from the chain."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx
import pytest

from adapters.evm.devnet import rpc_call
from tests.integration.harness import start_routing_daemon, token_balance, wait_for

pytestmark = pytest.mark.integration

CHAIN = "l1"
TOKEN = "USDC"
AMOUNT = "0.000007"
UNITS = 7


def intent_view(api: str, intent_id: str) -> dict:
    return httpx.get(f"{api}/v1/intents/{intent_id}", timeout=30).json()


def base_fee(rpc: str) -> int:
    return int(rpc_call(rpc, "eth_getBlockByNumber", ["latest", False])["baseFeePerGas"], 16)


def sent_before_a_fee_spike(daemon, chain: dict, recipient: str, amount: str,
                            spike: Callable[[int], int]) -> tuple[str, dict]:
    """With the chain's blocks paused, a transfer of ``amount`` USDC to ``recipient`` is signed at today's fees and
    sent; then the next block's base fee is set to ``spike(its max fee per gas)`` and blocks resume. (its id, its
    view when sent)"""
    rpc = chain["rpc_url"]
    rpc_call(rpc, "evm_setIntervalMining", [0])
    try:
        answer = httpx.post(f"{daemon.api_url}/v1/intents", timeout=30, json={"intents": [
            {"amount": amount, "token": TOKEN, "recipient": recipient, "chains": [chain["name"]]}]})
        assert answer.status_code == 202, answer.text
        (intent_id,) = answer.json()["ids"]
        wait_for(lambda: intent_view(daemon.api_url, intent_id)["status"] == "submitted", 30, "the transfer sent")
        first = intent_view(daemon.api_url, intent_id)
        max_fee = int(rpc_call(rpc, "eth_getTransactionByHash", [first["tx_hash"]])["maxFeePerGas"], 16)
        rpc_call(rpc, "anvil_setNextBlockBaseFeePerGas", [hex(spike(max_fee))])
    finally:
        rpc_call(rpc, "evm_setIntervalMining", [max(1, round(chain["block_time_s"]))])
    return intent_id, first


def test_a_transfer_the_base_fee_outgrew_is_repriced_at_its_nonce_and_lands_once(devnet, tmp_path):
    chain = {"name": CHAIN, **devnet.manifest()["chains"][CHAIN]}
    rpc = chain["rpc_url"]
    daemon = start_routing_daemon(devnet, tmp_path, "reprice", env={"RELAYER__ROUTER__LANE_REPRICE_AFTER_S": "1"})
    base = base_fee(rpc)
    recipient = "0x" + os.urandom(20).hex()
    try:
        # 10x its max fee: a long-running devnet's base fee can be a few wei, so the spike is set from the transfer
        intent_id, first = sent_before_a_fee_spike(daemon, chain, recipient, AMOUNT, lambda max_fee: max_fee * 10)
        wait_for(lambda: intent_view(daemon.api_url, intent_id)["status"] == "included", 90, "the transfer included",
                 interval=0.25)
        final = intent_view(daemon.api_url, intent_id)
        assert final["nonce"] == first["nonce"] and final["tx_hash"] != first["tx_hash"]
        assert final["replaced_tx_hashes"] == [first["tx_hash"]]
        assert rpc_call(rpc, "eth_getTransactionReceipt", [first["tx_hash"]]) is None  # never mined
        mined = rpc_call(rpc, "eth_getTransactionReceipt", [final["tx_hash"]])
        assert int(mined["status"], 16) == 1 and int(final["fee_paid"]) == int(mined["gasUsed"], 16) * int(
            mined["effectiveGasPrice"], 16)
        assert token_balance(devnet, CHAIN, TOKEN, recipient) == UNITS  # paid once
        metrics = httpx.get(f"{daemon.api_url}/metrics", timeout=10).text
        assert f'router_lane_transactions_repriced_total{{chain="{CHAIN}"}} 1' in metrics  # an operator sees it
    finally:
        rpc_call(rpc, "anvil_setNextBlockBaseFeePerGas", [hex(base)])  # the next tests find the fees they expect
        daemon.stop()

