"""What a send from an EVM chain costs its sender in ETH (``adapters.base.SendCosts``): the balance, the gas of each
transaction the send makes as the sender role would set it, at the max fee per gas it would offer."""

from __future__ import annotations

import math

from eth_utils import to_checksum_address

from adapters.base import AdapterError, FeeNeed, NativeCoin, SendPlan
from adapters.evm import abi
from adapters.evm.chain import EvmChain, evm_boundary, hex_int
from adapters.evm.fees import fees_for
from adapters.evm.pool import encode_deposit
from adapters.evm.sender import DISPATCH_GAS_HEADROOM
from adapters.message import address_to_bytes32

# Gas counted for a transaction that cannot be estimated before the approval it needs is mined (a transferRemote or
# a pool deposit after its approve): on the devnet contracts they use 105,000-130,000 gas, more on a deeper Merkle
# insert; only what a send needs (``send_fee_need``) counts it.
UNESTIMATED_TX_GAS = 200_000


class EvmSendCosts(EvmChain):
    """The sender's ETH, and what a dispatch, a token transfer or a pool deposit (with its approval) needs of it."""

    @property
    def native_coin(self) -> NativeCoin:
        return NativeCoin("ETH", self.native_decimals)

    @evm_boundary
    async def native_balance(self, address: str) -> int:
        return hex_int(await self._rpc("eth_getBalance", [address, "latest"]))

    @evm_boundary
    async def transactions_sent(self, address: str) -> int | None:
        return hex_int(await self._rpc("eth_getTransactionCount", [address, "pending"]))

    @evm_boundary
    async def send_fee_need(self, plan: SendPlan) -> FeeNeed:
        """Gas of each transaction the send makes, as the sender role sets it (the node's estimate with the configured
        multiplier, and ``DISPATCH_GAS_HEADROOM`` for the one that dispatches; one that waits for an approval is
        counted at ``UNESTIMATED_TX_GAS``), at the max fee per gas the adapter offers: what the node wants the sender
        to hold before it takes them. An approval goes first when the sender's allowance for the spender (the pool,
        or the token bridge) is below the amount."""
        recipient = address_to_bytes32(plan.recipient)
        approval = False
        if not plan.symbol:
            txs = [(self._mailbox, abi.encode_dispatch_batch(plan.destination, recipient, list(plan.bodies)))]
        else:
            token = self._token(plan.symbol)
            pool = self._config.tokens[plan.symbol].pool
            if plan.pooled and pool is not None:
                spender, call = pool, encode_deposit(plan.destination, recipient, plan.amount)
            else:
                spender = self._config.token_bridge or ""
                call = abi.encode_transfer_remote(to_checksum_address(token), plan.destination, recipient,
                                                  plan.amount)
            txs = [(spender, call)]
            allowance = int.from_bytes(await self._call(token, abi.encode_allowance(plan.sender, spender)) or b"\0",
                                       "big")
            if allowance < plan.amount:
                txs.insert(0, (token, abi.encode_approve(spender, plan.amount)))
                approval = True
        gas = DISPATCH_GAS_HEADROOM  # the last transaction dispatches
        for to, data in txs:
            try:
                used = hex_int(await self._rpc("eth_estimateGas", [{"from": plan.sender, "to": to,
                                                                    "data": "0x" + data.hex()}]))
            except AdapterError:
                used = UNESTIMATED_TX_GAS
            gas += math.ceil(used * self._config.gas.gas_limit_multiplier)
        fees = fees_for(await self._base_fee(), self._config.gas, chain=self._name)
        return FeeNeed(gas * fees.max_fee_per_gas, approval)
