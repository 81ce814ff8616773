"""``OperatorBalances``: the operator accounts' token balances as the routing API plans with them.

Planning a batch needs each operator account's balance of the batch's token on every chain. Read from the chains
for every batch, that was one RPC round trip per batch, behind the node's own work: 30-600 ms of a 1,000-intent
request while the lanes kept the chains busy (issue 14). Here one read serves every batch for ``max_age_s``, and
each batch's planned amounts are taken off what was read, so that batches planned in the meantime do not spend the
same funds twice. What the chain shows next replaces it all (it knows what was mined; what is in flight it never
counted, as before).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

BALANCE_MAX_AGE_S = 1.0

ReadBalances = Callable[[Sequence[str], str], Awaitable[dict[str, list[int]]]]


class OperatorBalances:
    """Per token: each chain's list of the operators' balances (operator order), read at most once per
    ``max_age_s``; ``take`` removes what a planned batch will send."""

    def __init__(self, read: ReadBalances, operators: Sequence[Sequence[str]], *,
                 max_age_s: float = BALANCE_MAX_AGE_S, clock: Callable[[], float] = time.monotonic) -> None:
        """``read(chains, token)``: every operator's balance per chain, from the chains; ``operators``: each
        operator's accounts (its EVM address, and its accounts on other families)."""
        self._read = read
        self._index = {a.lower(): k for k, accounts in enumerate(operators) for a in accounts}
        self._max_age_s = max_age_s
        self._clock = clock
        self._cached: dict[str, tuple[float, dict[str, list[int]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, chains: Sequence[str], token: str) -> dict[str, list[int]]:
        """A copy of the balances of ``token`` on ``chains`` (read again when older than ``max_age_s``)."""
        async with self._locks.setdefault(token, asyncio.Lock()):  # one read at a time per token serves them all
            read_at, balances = self._cached.get(token, (float("-inf"), {}))
            if self._clock() - read_at > self._max_age_s or any(c not in balances for c in chains):
                balances = await self._read(chains, token)
                self._cached[token] = (self._clock(), balances)
        return {c: list(balances[c]) for c in chains}

    def take(self, token: str, chain: str, operator: str, units: int) -> None:
        """``units`` of ``token`` on ``chain`` are planned to leave ``operator``: not there for the next batch."""
        cached = self._cached.get(token)
        k = self._index.get(operator.lower())
        if cached is not None and k is not None and chain in cached[1]:
            cached[1][chain][k] = max(0, cached[1][chain][k] - units)
