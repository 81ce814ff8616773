"""Solana health, capacity (slot times, compute limit), the cost of a payout and the fee payer's wallet balance."""

from __future__ import annotations

import asyncio
import time

from solana.rpc.commitment import Confirmed
from spl.token.constants import ACCOUNT_LEN

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
    DELIVERY_COMPUTE_PER_MESSAGE,
    LAMPORTS_PER_SIGNATURE,
    SolanaChain,
    solana_boundary,
)


def payout_fee(*, threshold: int, priority_micro_lamports: int, guard_rent: int, token_account_rent: int) -> int:
    """Lamports the relayer's fee payer spends on a delivery paying out one transfer (``delivery_instructions``):

    * the signature fee, ``LAMPORTS_PER_SIGNATURE`` for the fee payer and for each of the ``threshold`` co-signers;
    * the priority fee, ``priority_micro_lamports`` per compute unit over the delivery's compute units, rounded up
      (the adapter's own estimate, ``SolanaDestination._fee``);
    * rent locked for good in the accounts the delivery creates: one replay guard per co-signer (owned by the Memo
      program, never closed) and the recipient's token account (create-idempotent: only when the recipient has
      none; counted, so the figure is the cost for a new recipient and bounds the cost for a known one).

    Solana has no per-compute-unit base fee: everything a payout costs is here."""
    signatures = LAMPORTS_PER_SIGNATURE * (1 + threshold)
    priority = -(-priority_micro_lamports * DELIVERY_COMPUTE_PER_MESSAGE // 10**6)
    return signatures + priority + threshold * guard_rent + token_account_rent


class SolanaHealth(SolanaChain):
    """Solana health, capacity (slot times, compute limit, what a payout costs) and the fee payer's wallet balance."""

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
        fee = payout_fee(threshold=self._config.multisig_threshold,
                         priority_micro_lamports=self._config.priority_fee_micro_lamports,
                         guard_rent=await self._rent_for_guard(), token_account_rent=await self._token_account_rent())
        return ChainStats(Height(latest), min(blocks, window), slot_time, BLOCK_COMPUTE_LIMIT, 0.0, base_fee=0,
                          base_fee_trend=1.0, native_decimals=9, tx_fee=LAMPORTS_PER_SIGNATURE,
                          payout_gas=DELIVERY_COMPUTE_PER_MESSAGE, payout_fee=fee)

    async def _token_account_rent(self) -> int:
        """The rent-exempt minimum of an SPL token account (``ACCOUNT_LEN`` bytes), asked once."""
        rent: int | None = getattr(self, "_token_account_lamports", None)
        if rent is None:
            rent = (await self._client.get_minimum_balance_for_rent_exemption(ACCOUNT_LEN)).value
            self._token_account_lamports = rent
        return rent

    @solana_boundary
    async def wallet_balance(self) -> WalletBalance | None:
        """The relayer's fee payer's lamports (it pays every delivery's signature fees)."""
        if self._payer is None:
            return None
        payer = self._payer.pubkey()
        lamports = (await self._client.get_balance(payer, Confirmed)).value
        return WalletBalance(self._name, str(payer), int(lamports), self.native_decimals)
