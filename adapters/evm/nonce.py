"""Per-sender nonce allocation: a local counter seeded from the node's ``pending`` nonce, serialised by a lock.

One ``NonceManager`` per sender address. ``send`` holds the lock while it signs and sends one transaction,
so nonces leave in order and never twice. What the node says decides what happens next:

- accepted                        -> the counter moves on
- "already known"                 -> the node has exactly this transaction: treat it as sent
- "nonce too low"                 -> someone else (another process with this key, or a transaction we lost
                                     track of) used it: resync from the pending nonce and re-sign
- "replacement underpriced"       -> a different transaction holds this nonce in the pool: resync, re-sign
- "nonce too high"                -> a gap below us (an earlier send never reached the pool): resync down
- anything else (reverted, funds, node down ...) -> the nonce may or may not have been consumed, so the
                                     counter is dropped and re-seeded from the node before the next send

The counter is also re-read from the node when it is older than ``resync_after_s``, and on ``invalidate()``
(the adapter calls it when a transaction it sent is found dropped), which closes gaps left by evicted
transactions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from adapters.base import NonceTooLow, ReplacementUnderpriced
from adapters.evm.errors import NonceTooHigh, TxAlreadyKnown

log = structlog.get_logger("adapters.evm.nonce")


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: bytes
    tx_hash: str  # 0x-hex; keccak of ``raw``
    nonce: int


class NonceManager:
    """Hands out nonces for one sender; ``send`` signs with the nonce and sends, recovering as above."""

    def __init__(
        self,
        address: str,
        pending_nonce: Callable[[], Awaitable[int]],
        *,
        chain: str = "",
        max_attempts: int = 5,
        resync_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self.chain = chain
        self._pending_nonce = pending_nonce
        self._lock = asyncio.Lock()
        self._next: int | None = None
        self._synced_at = 0.0
        self._max_attempts = max_attempts
        self._resync_after_s = resync_after_s
        self._clock = clock

    @property
    def next_nonce(self) -> int | None:
        """The nonce the next send will use, if known (None until seeded or after an invalidation)."""
        return self._next

    def invalidate(self) -> None:
        """Forget the counter: the next send re-reads the pending nonce from the node."""
        self._next = None

    async def _sync(self) -> int:
        pending = await self._pending_nonce()
        if self._next is not None and pending != self._next:
            log.info("nonce_resync", chain=self.chain, sender=self.address, local=self._next, node=pending)
        self._next = pending
        self._synced_at = self._clock()
        return pending

    async def send(self, sign: Callable[[int], SignedTx], broadcast: Callable[[bytes], Awaitable[object]]) -> SignedTx:
        """Sign with the next nonce and broadcast; returns the transaction the node accepted."""
        async with self._lock:
            last_error: Exception | None = None
            for _ in range(self._max_attempts):
                if self._next is None or self._clock() - self._synced_at > self._resync_after_s:
                    await self._sync()
                assert self._next is not None
                nonce = self._next
                signed = sign(nonce)
                try:
                    await broadcast(signed.raw)
                except TxAlreadyKnown:
                    self._next = nonce + 1
                    return signed
                except (NonceTooLow, ReplacementUnderpriced) as exc:
                    last_error = exc
                    node = await self._sync()
                    if node <= nonce:  # the pool holds a tx at our nonce that the pending count does not show
                        self._next = nonce + 1
                    continue
                except NonceTooHigh as exc:
                    last_error = exc
                    await self._sync()
                    continue
                except BaseException:
                    self._next = None  # consumed or not, we cannot tell: ask the node next time
                    raise
                self._next = nonce + 1
                return signed
            assert last_error is not None
            raise last_error

    async def fill_gap(self, below: int, sign_filler: Callable[[int], SignedTx],
                       broadcast: Callable[[bytes], Awaitable[object]]) -> list[int]:
        """Fill every nonce between the node's pending nonce and ``below`` with the filler transaction.

        A transaction the node evicted (e.g. priced out as the base fee climbed) leaves a gap; everything
        we sent above it waits in the node's queue forever. Under the lock no send of ours is in flight,
        so a pending nonce below ``below`` is a real gap.
        """
        async with self._lock:
            pending = await self._pending_nonce()
            filled = []
            for nonce in range(pending, below):
                try:
                    await broadcast(sign_filler(nonce).raw)
                except (TxAlreadyKnown, NonceTooLow):
                    pass
                filled.append(nonce)
            if filled:
                log.warning("nonce_gap_filled", chain=self.chain, sender=self.address,
                            nonces=f"{filled[0]}..{filled[-1]}")
            return filled

    async def replace(self, nonce: int, sign: Callable[[int], SignedTx],
                      broadcast: Callable[[bytes], Awaitable[object]]) -> SignedTx:
        """Send a replacement at an already-used ``nonce`` (fee bump); the counter is left alone."""
        async with self._lock:
            signed = sign(nonce)
            try:
                await broadcast(signed.raw)
            except TxAlreadyKnown:
                pass
            return signed
