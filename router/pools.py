"""The liquidity pools as a route (issue 16): a cross-chain transfer of a token with a pool on both chains (USDC on the
devnet) is paid out of the destination's pool once the validators attest the deposit, not minted, and the pools'
opposite flows are netted per epoch. ``/v1/quote`` says so in its ``pool`` field: the destination pool's free
liquidity and whether it pays at once; when it cannot, the payout waits in the pool (never refused: the deposit is
taken and the payout deferred) until the epoch's settlement mints the pool's share back, about one epoch later.

``PoolReader`` reads a pool's state through the chain's adapter (``LiquidityPools``) and keeps it ``ttl_s`` (2 s), so
quotes stay cheap; a pool that cannot be read is ``unknown``, never shown as empty or as full."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from adapters.base import AdapterError, ChainAdapter
from adapters.capabilities import LiquidityPools, PoolState

POOL_TTL_S = 2.0
READ_TIMEOUT_S = 2.0


class PoolReader:
    """Pool states by (chain, symbol), cached ``ttl_s``; ``decimals(chain, symbol)`` gives a token's units."""

    def __init__(self, adapters: Mapping[str, ChainAdapter], decimals: Callable[[str, str], int], *,
                 ttl_s: float = POOL_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.pools = {n: a for n, a in adapters.items() if isinstance(a, LiquidityPools)}
        self.decimals = decimals
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, PoolState | None]] = {}

    def pooled(self, chain: str, symbol: str) -> bool:
        pools = self.pools.get(chain)
        return pools is not None and symbol in pools.pooled_tokens()

    async def state(self, chain: str, symbol: str) -> PoolState | None:
        """The pool's state, or None when it cannot be read now."""
        cached = self._cache.get((chain, symbol))
        if cached is not None and self.clock() - cached[0] <= self.ttl_s:
            return cached[1]
        try:
            found: PoolState | None = await asyncio.wait_for(self.pools[chain].pool_state(symbol), READ_TIMEOUT_S)
        except (AdapterError, TimeoutError):
            found = None
        self._cache[(chain, symbol)] = (self.clock(), found)
        return found

    async def quote(self, origin: str, destination: str, symbol: str, amount: Decimal) -> dict[str, Any] | None:
        """The quote's ``pool`` field for ``amount`` of ``symbol`` from ``origin`` to ``destination``; None when the
        token has no pool on both chains (it takes the token bridge, if any)."""
        if not (self.pooled(origin, symbol) and self.pooled(destination, symbol)):
            return None
        unit = 10 ** self.decimals(destination, symbol)
        state = await self.state(destination, symbol)
        if state is None:
            return {"route": "pool", "status": "unknown", "pays_at_once": None,
                    "reason": f"the {symbol} pool on {destination} could not be read just now"}
        units = int(amount * unit)
        at_once = state.free >= units
        reason = (f"paid out of the {symbol} pool on {destination} once the validators attest the deposit; the "
                  "pools net opposite flows and settle once per epoch" if at_once else
                  f"the {symbol} pool on {destination} holds {Decimal(state.free) / unit} free: the payout waits in "
                  f"the pool until this epoch's settlement mints its share back (epochs of {state.epoch_seconds} s)")
        return {"route": "pool", "status": "ok", "pays_at_once": at_once,
                "destination_pool_free": str(Decimal(state.free) / unit), "epoch_seconds": state.epoch_seconds,
                "reason": reason}
