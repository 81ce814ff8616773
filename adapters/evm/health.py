"""EVM health, capacity (``eth_feeHistory``) and the relayer signer's wallet balance."""

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
from adapters.evm.chain import (
    EvmChain,
    evm_boundary,
    hex_int,
)
from adapters.evm.fees import gwei_to_wei


class EvmHealth(EvmChain):
    """EVM health, capacity (``eth_feeHistory``) and the relayer signer's wallet balance."""

    @evm_boundary
    async def health(self) -> ChainHealth:
        started = time.perf_counter()
        try:
            latest = await self.latest_height()
        except AdapterError as exc:
            return ChainHealth(False, None, None, time.perf_counter() - started, detail=str(exc)[:300])
        latency = time.perf_counter() - started
        try:
            finalized: Height | None = await self.finalized_height()
            detail = ""
        except AdapterError as exc:
            finalized, detail = None, f"finalized height unavailable: {exc.reason}"
        extra: dict[str, float] = {}
        if self.settlement is not None:  # a rollup settling on an L1: how far its proposer lags
            try:
                extra = await self.settlement.lag(latest, self._clock())
            except AdapterError as exc:
                detail = detail or f"output oracle unreadable: {exc.reason}"
        return ChainHealth(True, latest, finalized, latency, detail=detail, extra=extra)

    @evm_boundary
    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        """``eth_feeHistory`` over the last ``blocks`` blocks plus their first and last headers."""
        blocks = max(2, min(blocks, 1024))
        history = await self._rpc("eth_feeHistory", [hex(blocks), "latest", []])
        oldest = hex_int(history["oldestBlock"])
        ratios = [float(r) for r in history.get("gasUsedRatio") or []]
        fees = [hex_int(f) for f in history.get("baseFeePerGas") or []]
        newest = oldest + len(ratios) - 1
        first, last, pending = await asyncio.gather(
            self._rpc("eth_getBlockByNumber", [hex(oldest), False]),
            self._rpc("eth_getBlockByNumber", [hex(newest), False]),
            self._rpc("eth_getBlockTransactionCountByNumber", ["pending"]),
        )
        span = hex_int(last["timestamp"]) - hex_int(first["timestamp"])
        block_time = span / (newest - oldest) if newest > oldest and span > 0 else 0.0
        return ChainStats(
            height=Height(newest), blocks=len(ratios), block_time_s=block_time, gas_limit=hex_int(last["gasLimit"]),
            gas_used_ratio=sum(ratios) / len(ratios) if ratios else 0.0, base_fee=fees[-1] if fees else 0,
            base_fee_trend=(fees[-1] / fees[0]) if fees and fees[0] else 1.0,
            pending_txs=hex_int(pending) if pending is not None else None, native_decimals=18,  # wei per ether
            priority_fee=gwei_to_wei(self._config.gas.priority_fee_gwei),  # the tip every transaction we send pays
        )

    @evm_boundary
    async def wallet_balance(self) -> WalletBalance | None:
        """The relayer signer's balance (``eth_getBalance`` at latest), in wei."""
        if self._signer is None:
            return None
        wei = hex_int(await self._rpc("eth_getBalance", [self._signer.address, "latest"]))
        return WalletBalance(self._name, self._signer.address, wei, self.native_decimals)
