"""Solana health, capacity (slot times, compute limit) and the fee payer's wallet balance."""

from __future__ import annotations

import asyncio
import time

from solana.rpc.commitment import Confirmed

from adapters.base import (
    AdapterError,
    ChainHealth,
    ChainStats,
    Height,
    WalletBalance,
)
from adapters.solana.chain import (
    BLOCK_COMPUTE_LIMIT,
    DEFAULT_SLOT_TIME_S,
    SolanaChain,
    solana_boundary,
)


class SolanaHealth(SolanaChain):
    """Solana health, capacity (slot times, compute limit) and the fee payer's wallet balance."""

    @solana_boundary
    async def health(self) -> ChainHealth:
        started = time.monotonic()
        try:
            latest = await self.latest_height()
            finalized = await self.finalized_height()
        except AdapterError as exc:
            return ChainHealth(False, None, None, time.monotonic() - started, detail=str(exc))
        return ChainHealth(True, Height(latest), Height(finalized), time.monotonic() - started,
                           extra={"finality_lag_slots": float(latest - finalized)})

    @solana_boundary
    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        latest = (await self._client.get_slot(Confirmed)).value
        window = max(1, min(max(blocks, 150), latest - 1))  # block times are whole seconds: a wide window
        first, last = await asyncio.gather(self._client.get_block_time(latest - window),
                                           self._client.get_block_time(latest))
        span = float((last.value or 0) - (first.value or 0))
        slot_time = span / window if span > 0 else DEFAULT_SLOT_TIME_S
        # fees are per signature (5000 lamports), not per compute unit: 1 lamport per CU is the closest integer
        return ChainStats(Height(latest), min(blocks, window), slot_time, BLOCK_COMPUTE_LIMIT, 0.0, 1, 1.0, None, 9)

    @solana_boundary
    async def wallet_balance(self) -> WalletBalance | None:
        """The relayer's fee payer's lamports (it pays every delivery's signature fees)."""
        if self._payer is None:
            return None
        payer = self._payer.pubkey()
        lamports = (await self._client.get_balance(payer, Confirmed)).value
        return WalletBalance(self._name, str(payer), int(lamports), self.native_decimals)
