"""EVM sender roles: dispatch messages, bridge and transfer tokens (TokenBridge route checks), unsigned
transactions and contract calls for the router, transaction lookups."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from adapters.base import (
    Height,
    RpcError,
    TxHash,
    TxNotFound,
    TxReceipt,
    TxReverted,
)
from adapters.evm import abi
from adapters.evm.chain import (
    ROUTE_UNBOUNDED,
    EvmChain,
    evm_boundary,
    hex_int,
)
from adapters.message import Domain, MessageFormatError, MessageId, address_to_bytes32
from adapters.tokens import UnknownToken

# A call that dispatches is estimated at the Mailbox's current message count but lands at a later one, if other
# dispatches land first in the same block: each inserts into the incremental Merkle tree at the next index, up to 32
# more levels read and hashed and a fresh branch slot written (~20,000 gas) (the netting bench saw 5 of 8 concurrent
# transferRemote calls run out of gas inside Mailbox.dispatch with the 1.2x multiplier alone). Gas a transaction does
# not use is not paid.
DISPATCH_GAS_HEADROOM = 100_000


class EvmSender(EvmChain):
    """Sends what users and the router send: messages, token transfers, contract calls; looks transactions up."""

    async def _wait_mined(self, tx_hash: str) -> dict[str, Any]:
        timeout = max(60.0, 3 * self._config.gas.stuck_after_s)
        deadline = time.monotonic() + timeout
        while True:
            receipt = await self._rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise TxNotFound(f"transaction {tx_hash} not mined within {timeout:.0f}s", chain=self._name)
            await asyncio.sleep(min(self._config.poll_interval_s, 0.25))

    async def _transact(self, account: LocalAccount, to: str, data: bytes, what: str, *, value: int = 0,
                        dispatches: bool = False) -> dict[str, Any]:
        """Estimate, send, wait for inclusion; the receipt, or ``TxReverted`` with the decoded reason. A call that
        ``dispatches`` a message gets ``DISPATCH_GAS_HEADROOM`` on top of its estimate."""
        gas, fees = await self._estimate(account.address, to, data, value)
        gas += DISPATCH_GAS_HEADROOM if dispatches else 0
        sent = await self._send(account, to, data, gas, fees, value)
        receipt = await self._wait_mined(sent.tx_hash)
        if hex_int(receipt.get("status")) != 1:
            reason = await self._revert_reason(receipt)
            raise TxReverted(f"{what} tx {sent.tx_hash} reverted: {reason}", chain=self._name, reason=reason)
        return receipt

    @evm_boundary
    async def dispatch_messages(
        self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes]
    ) -> tuple[TxHash, list[MessageId]]:
        if not bodies:
            raise MessageFormatError("dispatch_messages needs at least one body")
        account = self._account_for(sender_key)
        data = abi.encode_dispatch_batch(destination, address_to_bytes32(recipient), bodies)
        receipt = await self._transact(account, self._mailbox, data, "dispatchBatch", dispatches=True)
        ids = [
            MessageId(bytes.fromhex(lg["topics"][1][2:]))
            for lg in receipt.get("logs", [])
            if lg["address"].lower() == self._mailbox and lg["topics"][0] == abi.DISPATCH_TOPIC
        ]
        return TxHash(receipt["transactionHash"]), ids

    @evm_boundary
    async def send_token(
        self, sender_key: str, symbol: str, amount: int, destination: Domain, recipient: bytes
    ) -> tuple[TxHash, MessageId]:
        token = self._token(symbol)
        bridge = self._config.token_bridge
        if bridge is None:
            raise UnknownToken(f"chains.{self._name}.token_bridge is not set: cannot send tokens", chain=self._name,
                               reason="no token bridge")
        account = self._account_for(sender_key)
        await self._check_route(destination, symbol, amount)
        allowance = hex_int("0x" + (await self._call(token, abi.encode_allowance(account.address, bridge))).hex())
        if allowance < amount:
            await self._transact(account, token, abi.encode_approve(bridge, amount), "approve")
        data = abi.encode_transfer_remote(to_checksum_address(token), destination, address_to_bytes32(recipient),
                                          amount)
        receipt = await self._transact(account, bridge, data, "transferRemote", dispatches=True)
        for lg in receipt.get("logs", []):
            if lg["topics"] and lg["topics"][0] == abi.SENT_TRANSFER_REMOTE_TOPIC:
                return TxHash(receipt["transactionHash"]), MessageId(bytes.fromhex(lg["topics"][1][2:]))
        for lg in receipt.get("logs", []):
            if lg["address"].lower() == self._mailbox and lg["topics"][0] == abi.DISPATCH_TOPIC:
                return TxHash(receipt["transactionHash"]), MessageId(bytes.fromhex(lg["topics"][1][2:]))
        raise RpcError(f"transferRemote tx {receipt['transactionHash']} emitted no SentTransferRemote event",
                       chain=self._name, reason="no transfer event")

    async def _check_route(self, destination: int, symbol: str, amount: int) -> None:
        """The TokenBridge's own route check, asked before anything is sent (no approval for a transfer the
        bridge would refuse); the chain enforces it regardless. Reasons read as the contract's custom errors."""
        scale, max_amount = await self.bridge_route(destination, symbol)
        reason = route_problem(destination, to_checksum_address(self._token(symbol)), amount, scale, max_amount)
        if reason is not None:
            raise TxReverted(f"transferRemote would revert: {reason}", chain=self._name, reason=reason)

    @evm_boundary
    async def bridge_route(self, destination: int, symbol: str) -> tuple[int, int]:
        """(scale, maxAmount) of the TokenBridge route for ``symbol`` to ``destination``; (0, 0) when none."""
        (raw,) = await self._eth_calls([(self._bridge(), abi.encode_routes(destination, self._token(symbol)))])
        scale, max_amount = abi.decode_words(raw, 2)
        return scale, max_amount

    @evm_boundary
    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        """``transfer(to, amount)`` on the token; returns the hash once the node accepted it (not mined yet)."""
        token = self._token(symbol)
        account = self._account_for(sender_key)
        data = abi.encode_transfer(to, amount)
        gas, fees = await self._estimate(account.address, token, data)
        sent = await self._send(account, token, data, gas, fees)
        return sent.tx_hash

    @evm_boundary
    async def unsigned_transaction(self, sender: str, kind: str, *, to: str, amount: int = 0, symbol: str = "",
                                   data: bytes = b"") -> dict[str, Any]:
        """An EIP-1559 transaction (``type`` 2) for ``sender`` to sign: chainId, to, data, value, gas (estimated,
        with the configured multiplier), maxFeePerGas, maxPriorityFeePerGas; the wallet adds the nonce."""
        if kind == "transfer":
            target, payload = self._token(symbol), abi.encode_transfer(to, amount)
        elif kind == "call":
            target, payload = to.lower(), data
        else:
            raise ValueError(f"no unsigned transaction for kind {kind!r}")
        gas, fees = await self._estimate(sender, target, payload)
        return {"type": "0x2", "chainId": hex(self._config.chain_id), "from": to_checksum_address(sender),
                "to": to_checksum_address(target), "data": "0x" + payload.hex(), "value": "0x0", "gas": hex(gas),
                "maxFeePerGas": hex(fees.max_fee_per_gas), "maxPriorityFeePerGas": hex(fees.priority_fee_per_gas)}

    @evm_boundary
    async def call_contract(self, sender_key: str, to: str, data: bytes) -> TxHash:
        """A contract call from ``sender_key``'s account; eth_estimateGas refuses one that would revert."""
        account = self._account_for(sender_key)
        target = to.lower()
        gas, fees = await self._estimate(account.address, target, data)
        sent = await self._send(account, target, data, gas, fees)
        return sent.tx_hash

    @evm_boundary
    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        receipt = await self._rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:
            raise TxNotFound(f"transaction {tx_hash} is not mined", chain=self._name)
        return Height(hex_int(receipt["blockNumber"])), hex_int(receipt.get("status")) == 1

    @evm_boundary
    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        """``eth_getTransactionReceipt`` (height, status, gas used x effective gas price, from, to) and
        ``eth_getTransactionByHash`` (input, value), in one JSON-RPC batch: everything the router checks before it
        counts an intent."""
        receipt, tx = await self._rpc_many([("eth_getTransactionReceipt", [tx_hash]),
                                            ("eth_getTransactionByHash", [tx_hash])])
        if receipt is None:
            raise TxNotFound(f"transaction {tx_hash} is not mined", chain=self._name)
        if tx is None:  # mined a moment ago and the node's answers disagree: ask again next time
            raise TxNotFound(f"transaction {tx_hash} has a receipt but no body yet", chain=self._name)
        price = hex_int(receipt.get("effectiveGasPrice") or tx.get("gasPrice"))
        return TxReceipt(
            height=Height(hex_int(receipt["blockNumber"])), success=hex_int(receipt.get("status")) == 1,
            fee_paid=hex_int(receipt.get("gasUsed")) * price, sender=str(receipt.get("from") or "").lower(),
            to=str(receipt.get("to") or "").lower(), input=bytes.fromhex(str(tx.get("input") or "0x")[2:]),
            value=hex_int(tx.get("value")), native_decimals=self.native_decimals)

    @evm_boundary
    async def tx_height(self, tx_hash: str) -> Height:
        """Height a transaction was mined at; ``TxNotFound`` while it is not mined."""
        receipt = await self._rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:
            raise TxNotFound(f"transaction {tx_hash} is not mined", chain=self._name)
        return Height(hex_int(receipt["blockNumber"]))

    @evm_boundary
    async def token_balance(self, symbol: str, holder: str) -> int:
        return int.from_bytes(await self._call(self._token(symbol), abi.encode_balance_of(holder)) or b"\0", "big")

    @evm_boundary
    async def token_supply(self, symbol: str) -> int:
        return int.from_bytes(await self._call(self._token(symbol), abi.TOTAL_SUPPLY) or b"\0", "big")


def route_problem(destination: int, token: str, amount: int, scale: int, max_amount: int) -> str | None:
    """Why the TokenBridge would refuse ``transferRemote`` of ``amount`` on a route of (``scale``, ``max_amount``),
    named as its custom error; None when it would take it."""
    if scale == 0:
        return f"NoRoute({destination},{token})"
    if amount % scale:
        return f"AmountNotRepresentable({destination},{token},{amount},{scale})"
    if max_amount != ROUTE_UNBOUNDED and amount > max_amount:
        return f"AmountAboveRouteMax({destination},{token},{amount},{max_amount})"
    return None
