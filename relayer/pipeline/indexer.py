"""``OriginIndexer``: follows one origin chain's finalized dispatches into the store and a Merkle tree.

One per origin. It only ever indexes up to the finalized height (by the chain's rule), so a message it
stores counts by DESIGN.md's origin rule. It keeps the origin mailbox's tree locally (every message of
that origin, whatever its destination, in nonce order): the validator checks it against the chain's
root before signing, the relayer takes Merkle proofs from it. A nonce gap is an error, never skipped.

History check (finality violations). Before indexing further, every poll asks the chain for the mailbox's
``(count, root)`` at the indexed height (or at the finalized height when the chain is now below the cursor,
e.g. a node restarted from an older state dump or rolled back) and compares it with the local tree:

- the same count and root at the cursor: go on;
- below the cursor, a prefix of the index (count not above, same root): wait until the chain is final at the
  cursor again (``chain_behind_cursor``); if that prefix is already every indexed message, the cursor is
  rewound to that height (``cursor_rewound``) so that new blocks there are indexed, not skipped;
- anything else: find the highest height where the chain is still a prefix of the index (binary search on
  the mailbox state). If every indexed message is in that prefix, nothing indexed was contradicted (the chain
  only has new messages at heights the cursor had passed): rewind to it and index them. Otherwise the chain's
  history changed under data this indexer took as final: a reorg deeper than the configured finality (or a
  node serving another history).

Gas payments. On an origin with a paymaster (``GasPaymentSource``), the payments made in the same heights are read with
the dispatches and stored in the same transaction as them and the cursor (``Store.record_dispatched``), so a payment is
counted once and never skipped, at the same finality as the messages; a message waiting for payment that a new payment
names is claimable at once.

Nothing is ever indexed twice (messages below the tree's count are skipped by nonce) nor skipped (a rewind
re-reads the heights). On a finality violation the indexer logs ``origin_reorged`` (error), counts
``relayer_reorg_detected_total{chain}``, sets ``relayer_origin_halted{chain}`` to 1, drops the undelivered
messages past the chain's prefix as ``DROPPED(origin_reorged)`` and stops indexing this origin. The attester stops
signing it and processors stop delivering from it: validators already signed roots the canonical chain contradicts, so
any way forward (re-signing those indices would be equivocation) is the operator's decision, not the daemon's.

Backlog catch-up: when the finalized height is more than ``backlog_threshold`` blocks ahead of the cursor,
``backlog`` holds the catch-up's progress (shown as a bar in the live status view) and ``backlog_progress``
events (chain, indexed, target, blocks/s, eta) are logged every ``progress_interval_s``, then one
``backlog_caught_up``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from adapters.base import (
    AdapterError,
    ChainAdapter,
    FinalityViolation,
    Height,
    MailboxNotDeployed,
    MailboxState,
    RpcUnavailable,
)
from adapters.capabilities import GasPayment, GasPaymentSource
from adapters.merkle import MerkleTree
from config.errors import RelayerError
from relayer.daemon.metrics import Metrics
from relayer.store import Store

log = structlog.get_logger("relayer.pipeline.indexer")


STORE_AHEAD_TOLERANCE = 64  # finalized heights may step back a little on some nodes; more means another chain
BACKLOG_THRESHOLD = 1_000  # blocks behind finality before catch-up progress is shown
PROGRESS_INTERVAL_S = 5.0


class IndexGap(RelayerError):
    """A nonce is missing between the index and what the chain returned: nothing past it is indexed."""


class StoreAheadOfChain(RelayerError):
    """The store indexed heights the chain's finality has not reached: another chain, or a reset one."""


@dataclass(frozen=True, slots=True)
class ReorgReport:
    """What the indexer found when the chain contradicted its indexed data."""

    checked_height: int      # where the contradiction was seen
    agreeing_height: int     # highest height where the chain still matches the index
    canonical_count: int     # messages 0..canonical_count-1 are still the chain's
    indexed_count: int       # what had been indexed
    dropped: int             # undelivered messages marked DROPPED(origin_reorged)
    detail: str


@dataclass(slots=True)
class BacklogProgress:
    """Catch-up of one origin from ``start`` to ``target`` (the finalized height), now at ``indexed``."""

    start: int
    indexed: int
    target: int
    started_at: float
    blocks_per_s: float = 0.0

    @property
    def fraction(self) -> float:
        span = self.target - self.start
        return 1.0 if span <= 0 else min(1.0, max(0.0, (self.indexed - self.start) / span))

    @property
    def eta_s(self) -> float | None:
        if self.blocks_per_s <= 0:
            return None
        return max(0.0, (self.target - self.indexed) / self.blocks_per_s)


class OriginIndexer:
    def __init__(self, adapter: ChainAdapter, store: Store, *, known_destinations: set[int], start_height: int = 0,
                 max_range: int = 5_000, metrics: Metrics | None = None, backlog_threshold: int = BACKLOG_THRESHOLD,
                 progress_interval_s: float = PROGRESS_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.adapter = adapter
        self.store = store
        self.known_destinations = known_destinations
        self.start_height = start_height
        self.max_range = max_range
        self.metrics = metrics or Metrics()
        self.backlog_threshold = backlog_threshold
        self.progress_interval_s = progress_interval_s
        self.clock = clock
        self.tree = MerkleTree()
        self.cursor_name = f"index:{adapter.domain}"
        self.indexed_height: Height | None = None
        self.finalized_height: Height | None = None
        self.reorg: ReorgReport | None = None
        self.backlog: BacklogProgress | None = None
        self._last_progress_log = 0.0
        self._waiting_logged_at: int | None = None
        self._unchecked_at: int | None = None
        self._fresh_destinations: set[int] = set()

    @property
    def domain(self) -> int:
        return self.adapter.domain

    def take_fresh_destinations(self) -> set[int]:
        """Destinations of the messages stored since the last call (the daemon wakes their processors)."""
        fresh, self._fresh_destinations = self._fresh_destinations, set()
        return fresh

    def load(self) -> None:
        """Rebuild the tree from the store (after a restart)."""
        self.tree = MerkleTree()
        for nonce, mid in self.store.message_ids_in_order(self.domain):
            if nonce != self.tree.count:
                raise IndexGap(f"store holds nonce {nonce} of origin {self.domain} but the tree expects "
                               f"{self.tree.count}")
            self.tree.append(mid)
        cursor = self.store.cursor(self.cursor_name)
        self.indexed_height = Height(cursor) if cursor is not None else None

    async def poll_once(self) -> int:
        """Index the next finalized range; returns the number of new messages."""
        if self.reorg is not None:
            await self._hold_reorged()
            return 0
        try:
            finalized = await self.adapter.finalized_height()
        except FinalityViolation as exc:
            await self._halt_on_violation(exc)
            return 0
        self.finalized_height = finalized
        if self.indexed_height is not None and self.indexed_height > finalized + STORE_AHEAD_TOLERANCE:
            raise StoreAheadOfChain(
                f"{self.adapter.name}: the store has indexed up to height {self.indexed_height} but the chain's "
                f"finalized height is {finalized}; the chain was reset or this store belongs to another chain "
                "(use a fresh store.url)")
        if self.indexed_height is not None and not await self._history_agrees(finalized):
            return 0
        start = self.start_height if self.indexed_height is None else self.indexed_height + 1
        if start > finalized:
            if (self.indexed_height is not None and self.indexed_height > finalized
                    and self._waiting_logged_at != self.indexed_height):
                self._waiting_logged_at = self.indexed_height
                log.warning("chain_behind_cursor", chain=self.adapter.name, cursor=self.indexed_height,
                            finalized=finalized,
                            note="the chain came back lower than the indexed height; waiting for it to pass the cursor")
            return 0
        end = Height(min(finalized, start + self.max_range - 1))
        found = await self.adapter.fetch_dispatched(Height(start), end)
        payments = await self._payments(Height(start), end)
        fresh = [d for d in found if d.message.nonce >= self.tree.count]
        for expected, d in enumerate(fresh, start=self.tree.count):
            if d.message.nonce != expected:
                raise IndexGap(f"origin {self.domain}: expected nonce {expected}, found {d.message.nonce} "
                               f"in tx {d.tx_hash} at height {d.height}; not indexing past the gap")
        await self.store.aio.record_dispatched(fresh, cursor=(self.cursor_name, end),
                                               known_destinations=self.known_destinations, payments=payments,
                                               origin=self.domain)
        for d in fresh:
            self.tree.append(d.id)
        self._fresh_destinations.update(d.message.destination for d in fresh
                                        if d.message.destination in self.known_destinations)
        self._fresh_destinations.update(p.destination for p in payments if p.destination in self.known_destinations)
        self.indexed_height = end
        self._track_backlog(start, end, finalized)
        if fresh:
            log.info("indexed", chain=self.adapter.name, heights=f"{start}-{end}", messages=len(fresh),
                     count=self.tree.count)
        return len(fresh)

    async def _payments(self, start: Height, end: Height) -> list[GasPayment]:
        """The gas payments made on this origin in the range (none where it has no paymaster)."""
        if isinstance(self.adapter, GasPaymentSource) and self.adapter.has_paymaster():
            return await self.adapter.fetch_gas_payments(start, end)
        return []

    # ---- backlog catch-up progress
    def _track_backlog(self, start: int, end: int, finalized: int) -> None:
        now = self.clock()
        behind = finalized - end
        if self.backlog is None:
            if behind <= self.backlog_threshold:
                return
            self.backlog = BacklogProgress(start - 1, end, finalized, now)
            self._last_progress_log = now
            log.info("backlog_started", chain=self.adapter.name, indexed=end, target=finalized, behind=behind)
            return
        bp = self.backlog
        bp.indexed, bp.target = end, max(bp.target, finalized)
        elapsed = now - bp.started_at
        if elapsed > 0:
            bp.blocks_per_s = (bp.indexed - bp.start) / elapsed
        if behind <= 0:
            log.info("backlog_caught_up", chain=self.adapter.name, indexed=end, blocks=end - bp.start,
                     seconds=round(elapsed, 2), blocks_per_s=round(bp.blocks_per_s, 1))
            self.backlog = None
            return
        if now - self._last_progress_log >= self.progress_interval_s:
            self._last_progress_log = now
            eta = bp.eta_s
            log.info("backlog_progress", chain=self.adapter.name, indexed=end, target=bp.target,
                     blocks_per_s=round(bp.blocks_per_s, 1), eta_s=None if eta is None else round(eta, 1),
                     percent=round(100 * bp.fraction, 1))

    # ---- history check
    async def _state_at(self, height: int) -> MailboxState | None:
        """The chain's mailbox at ``height``; None where the mailbox did not exist yet (count 0)."""
        try:
            return await self.adapter.mailbox_state(Height(height))
        except MailboxNotDeployed:
            return None

    def _agrees(self, state: MailboxState | None, *, exact: bool) -> bool:
        count = 0 if state is None else state.count
        if count > self.tree.count or (exact and count != self.tree.count):
            return False
        return count == 0 or self.tree.root(count) == state.root  # type: ignore[union-attr]

    async def _history_agrees(self, finalized: int) -> bool:
        """False (and the origin halted) when the chain no longer holds what was indexed as final."""
        assert self.indexed_height is not None
        height = min(int(self.indexed_height), finalized)
        if height < self.start_height:
            return True
        below_cursor = height < self.indexed_height
        try:
            state = await self._state_at(height)
        except RpcUnavailable:
            raise
        except AdapterError as exc:  # e.g. a node without the state of that height (pruned, restored from a dump)
            if self._unchecked_at != height:
                self._unchecked_at = height
                log.warning("history_check_unavailable", chain=self.adapter.name, height=height, error=str(exc)[:200])
            return True
        count = 0 if state is None else state.count
        if self._agrees(state, exact=False) and (count == self.tree.count or below_cursor):
            if below_cursor and count == self.tree.count:  # every indexed message is at or below the chain's finality
                await self._rewind(height, "the chain is final below the cursor again and holds every indexed message")
            return True  # (below the cursor with fewer messages: wait until the chain is final at the cursor again)
        agreeing, canonical = await self._agreeing_prefix(height)
        if canonical == self.tree.count:  # nothing indexed was contradicted: new messages at heights already passed
            await self._rewind(agreeing, "the chain holds messages at heights the cursor had passed")
            return True
        await self._halt(height, state, agreeing, canonical)
        return False

    async def _agreeing_prefix(self, height: int) -> tuple[int, int]:
        """The highest height below ``height`` where the chain's mailbox is a prefix of the index, and its count."""
        lo, hi, agreeing, canonical = self.start_height, height - 1, self.start_height - 1, 0
        while lo <= hi:  # agreement is monotone: a prefix at some height is one at every lower height
            mid = (lo + hi) // 2
            try:
                st = await self._state_at(mid)
                agrees = self._agrees(st, exact=False)
            except AdapterError:  # unknown: assume it does not agree (drops more undelivered messages, never fewer)
                st, agrees = None, False
            if agrees:
                agreeing, canonical, lo = mid, (0 if st is None else st.count), mid + 1
            else:
                hi = mid - 1
        return agreeing, canonical

    async def _rewind(self, height: int, why: str) -> None:
        assert self.indexed_height is not None
        if height >= self.indexed_height:
            return
        log.warning("cursor_rewound", chain=self.adapter.name, cursor=self.indexed_height, to=height,
                    messages=self.tree.count, reason=why)
        await self.store.aio.set_cursor(self.cursor_name, height)
        self.indexed_height = Height(height)

    async def _halt(self, height: int, state: MailboxState | None, agreeing: int, canonical: int) -> None:
        count = 0 if state is None else state.count
        detail = (f"at height {height} the chain's mailbox holds {count} messages with root "
                  f"0x{(state.root if state else b'').hex()}, the index holds {self.tree.count} "
                  f"(root of the first {min(count, self.tree.count)}: "
                  f"0x{self.tree.root(min(count, self.tree.count)).hex()}); "
                  f"the chain agrees up to height {agreeing} ({canonical} messages): a reorg deeper than the "
                  "finality rule, or an RPC node serving another history")
        dropped = await self.store.aio.drop_reorged(self.domain, canonical, detail)
        self.reorg = ReorgReport(height, agreeing, canonical, self.tree.count, len(dropped), detail)
        self.metrics.inc("relayer_reorg_detected_total", chain=self.adapter.name)
        self.metrics.set("relayer_origin_halted", 1.0, chain=self.adapter.name)
        log.error("origin_reorged", chain=self.adapter.name, checked_height=height, agreeing_height=agreeing,
                  canonical_messages=canonical, indexed_messages=self.tree.count, dropped=len(dropped),
                  action="origin halted: no more indexing, attesting or delivering from it; operator action needed",
                  detail=detail)

    async def _halt_on_violation(self, exc: FinalityViolation) -> None:
        """What the origin's finality rests on contradicts the chain (a rollup output root that does not match its
        blocks): halt as for a deep reorg. Everything indexed was final by roots checked before, so nothing is
        dropped; nothing more is indexed, attested or delivered from this origin."""
        height = self.indexed_height or 0
        self.reorg = ReorgReport(exc.height, height, self.tree.count, self.tree.count, 0, str(exc))
        self.metrics.inc("relayer_reorg_detected_total", chain=self.adapter.name)
        self.metrics.set("relayer_origin_halted", 1.0, chain=self.adapter.name)
        log.error("origin_reorged", chain=self.adapter.name, checked_height=exc.height, agreeing_height=height,
                  canonical_messages=self.tree.count, indexed_messages=self.tree.count, dropped=0, reason=exc.reason,
                  action="origin halted: no more indexing, attesting or delivering from it; operator action needed",
                  detail=str(exc))

    async def _hold_reorged(self) -> None:
        """Messages a processor put back in the queue after the halt (an attempt in flight) are dropped again."""
        assert self.reorg is not None
        again = await self.store.aio.drop_reorged(self.domain, self.reorg.canonical_count, self.reorg.detail)
        if again:
            log.warning("reorged_messages_dropped_again", chain=self.adapter.name, messages=len(again))
