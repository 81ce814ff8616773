"""The EVM adapter logs through structlog (the one configured logging path), with the chain and the transaction."""

from __future__ import annotations

from typing import Any

import structlog

from adapters.base import SubmittedTx, TxHash, TxState
from adapters.evm.adapter import EvmAdapter
from adapters.evm.fees import GWEI
from config.settings import EvmChainConfig, GasSettings

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's public account 0
SENDER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
MAILBOX = "0x" + "11" * 20
STUCK = TxHash("0x" + "ab" * 32)


class StuckNode:
    """A JSON-RPC node holding one of our transactions in its pool, unmined (answers at the transport)."""

    def __init__(self, max_fee: int, tip: int, base_fee: int) -> None:
        self.pool_tx = {"from": SENDER, "to": MAILBOX, "input": "0x", "gas": hex(50_000), "value": "0x0",
                        "maxFeePerGas": hex(max_fee), "maxPriorityFeePerGas": hex(tip), "nonce": "0x7"}
        self.base_fee = base_fee
        self.sent: list[str] = []

    def answer(self, method: str, params: list[Any]) -> Any:
        if method == "eth_getTransactionReceipt":
            return None
        if method == "eth_getTransactionByHash":
            return self.pool_tx
        if method == "eth_getTransactionCount":
            return hex(7)
        if method == "eth_getBlockByNumber":
            return {"number": "0x10", "baseFeePerGas": hex(self.base_fee)}
        if method == "eth_sendRawTransaction":
            self.sent.append(params[0])
            return "0x" + "cd" * 32
        raise AssertionError(f"unexpected call {method}")

    async def post(self, body: Any) -> Any:
        return {"jsonrpc": "2.0", "id": body["id"], "result": self.answer(body["method"], body["params"])}


def adapter_on(node: StuckNode, max_fee_gwei: float) -> EvmAdapter:
    config = EvmChainConfig(family="evm", domain=31337, chain_id=31337, rpc_url="http://127.0.0.1:9", mailbox=MAILBOX,
                            gas=GasSettings(max_fee_gwei=max_fee_gwei, stuck_after_s=20.0))
    adapter = EvmAdapter("anvil-a", config, signer_key=KEY, clock=lambda: 1_000.0)
    adapter._post = node.post  # type: ignore[method-assign]
    return adapter


def stuck_tx() -> SubmittedTx:
    return SubmittedTx(STUCK, nonce=7, sender=SENDER, submitted_at=0.0, gas_limit=50_000, max_fee=2 * GWEI)


async def test_stuck_tx_replaced_is_logged_with_chain_and_tx() -> None:
    node = StuckNode(max_fee=2 * GWEI, tip=GWEI, base_fee=GWEI)
    adapter = adapter_on(node, max_fee_gwei=500.0)
    with structlog.testing.capture_logs() as logs:
        outcome = await adapter.confirm(stuck_tx())
    assert outcome.state is TxState.PENDING and outcome.replacement is not None and len(node.sent) == 1
    (event,) = [e for e in logs if e["event"] == "stuck_tx_replaced"]
    assert event["log_level"] == "info"
    assert event["chain"] == "anvil-a" and event["tx"] == STUCK
    assert event["replacement"] == outcome.replacement.tx_hash and event["nonce"] == 7
    assert event["max_fee_gwei"] > 2


async def test_stuck_tx_not_bumped_is_logged_with_chain_and_tx() -> None:
    node = StuckNode(max_fee=10 * GWEI, tip=GWEI, base_fee=GWEI)
    adapter = adapter_on(node, max_fee_gwei=10.0)  # a 15 % bump would pass the cap
    with structlog.testing.capture_logs() as logs:
        outcome = await adapter.confirm(stuck_tx())
    assert outcome.state is TxState.PENDING and outcome.replacement is None and node.sent == []
    (event,) = [e for e in logs if e["event"] == "stuck_tx_not_bumped"]
    assert event == {"event": "stuck_tx_not_bumped", "log_level": "warning", "chain": "anvil-a", "tx": STUCK,
                     "reason": "bump above cap"}
