"""Cosmos health, capacity (block times and gas of recent blocks), the fee of a payout, and the vault's fee-denom
balance."""

from __future__ import annotations

import asyncio
import time

from adapters.base import (
    AdapterError,
    ChainHealth,
    ChainStats,
    Height,
    WalletBalance,
)
from adapters.cosmos.chain import (
    DEFAULT_BLOCK_GAS,
    SEND_GAS,
    CosmosChain,
    cosmos_boundary,
)
from adapters.cosmos.transactions import delivery_gas, fee_for


def payout_cost(gas_price: float) -> tuple[int, int]:
    """The gas of a delivery paying out one transfer and its fee in the fee denom's smallest unit: that gas at the
    configured gas price, rounded up, as the delivery declares it (the SDK charges a declared fee whole, whatever gas
    is used). There is no base-fee market: the fee is fixed by the gas price. A delivery of ``n`` transfers costs
    ``fee_for(delivery_gas(n), gas_price)``: batched payouts cost less each; this is the cost of one alone."""
    gas = delivery_gas(1)
    return gas, fee_for(gas, gas_price)


class CosmosHealth(CosmosChain):
    """Cosmos health, capacity (block times and gas of recent blocks, what a payout and a plain send cost) and the
    vault's fee-denom balance."""

    @cosmos_boundary
    async def health(self) -> ChainHealth:
        started = time.monotonic()
        try:
            latest = await self.latest_height()
        except AdapterError as exc:
            return ChainHealth(False, None, None, time.monotonic() - started, detail=str(exc))
        return ChainHealth(True, latest, latest, time.monotonic() - started)

    @cosmos_boundary
    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        latest = int(await self.latest_height())
        count = max(1, min(blocks, latest - 1))
        heights = list(range(latest - count, latest + 1))
        times = await asyncio.gather(*(self._block_time(h) for h in heights))
        results = await asyncio.gather(*(self._http.rpc("block_results", height=h) for h in heights[1:]))
        status, params = await self._http.rest("/cosmos/consensus/v1/params")
        max_gas = int(params["params"]["block"]["max_gas"]) if status < 400 else -1
        gas_limit = DEFAULT_BLOCK_GAS if max_gas <= 0 else max_gas
        used = [sum(int(r.get("gas_used") or 0) for r in (res.get("txs_results") or [])) for res in results]
        gas, fee = payout_cost(self._config.gas_price)
        return ChainStats(Height(latest), count, (times[-1] - times[0]) / count, gas_limit,
                          sum(used) / len(used) / gas_limit if used else 0.0, base_fee=0, base_fee_trend=1.0,
                          native_decimals=self.native_decimals, tx_fee=fee_for(SEND_GAS, self._config.gas_price),
                          payout_gas=gas, payout_fee=fee)

    @cosmos_boundary
    async def wallet_balance(self) -> WalletBalance | None:
        """The vault multisig's fee-denom balance: it pays the fees of every co-signed delivery."""
        amount = await self._balance(self._vault, self._config.fee_denom)
        return WalletBalance(self._name, self._vault, amount, self.native_decimals)
