"""``OriginIndexer``: follows one origin chain's finalized dispatches into the store and a Merkle tree.

One per origin. It only ever indexes up to the finalized height (by the chain's rule), so a message it
stores counts by DESIGN.md's origin rule. It keeps the origin mailbox's tree locally (every message of
that origin, whatever its destination, in nonce order): the validator checks it against the chain's
root before signing, the relayer takes Merkle proofs from it. A nonce gap is an error, never skipped.
"""

from __future__ import annotations

import structlog

from adapters.base import ChainAdapter, Height
from adapters.merkle import MerkleTree
from config.errors import RelayerError
from relayer.store import Store

log = structlog.get_logger("relayer.indexer")


STORE_AHEAD_TOLERANCE = 64  # finalized heights may step back a little on some nodes; more means another chain


class IndexGap(RelayerError):
    retryable = True


class StoreAheadOfChain(RelayerError):
    retryable = True


class OriginIndexer:
    def __init__(self, adapter: ChainAdapter, store: Store, *, known_destinations: set[int], start_height: int = 0,
                 max_range: int = 5_000) -> None:
        self.adapter = adapter
        self.store = store
        self.known_destinations = known_destinations
        self.start_height = start_height
        self.max_range = max_range
        self.tree = MerkleTree()
        self.cursor_name = f"index:{adapter.domain}"
        self.indexed_height: Height | None = None
        self.finalized_height: Height | None = None

    @property
    def domain(self) -> int:
        return self.adapter.domain

    def load(self) -> None:
        """Rebuild the tree from the store (after a restart)."""
        self.tree = MerkleTree()
        for nonce, mid in self.store.message_ids_in_order(self.domain):
            if nonce != self.tree.count:
                raise IndexGap(f"store holds nonce {nonce} of origin {self.domain} but the tree expects {self.tree.count}")
            self.tree.append(mid)
        cursor = self.store.cursor(self.cursor_name)
        self.indexed_height = Height(cursor) if cursor is not None else None

    async def poll_once(self) -> int:
        """Index the next finalized range; returns the number of new messages."""
        finalized = await self.adapter.finalized_height()
        self.finalized_height = finalized
        start = self.start_height if self.indexed_height is None else self.indexed_height + 1
        if self.indexed_height is not None and self.indexed_height > finalized + STORE_AHEAD_TOLERANCE:
            raise StoreAheadOfChain(
                f"{self.adapter.name}: the store has indexed up to height {self.indexed_height} but the chain's "
                f"finalized height is {finalized}; the chain was reset or this store belongs to another chain "
                "(use a fresh store.url)")
        if start > finalized:
            return 0
        end = Height(min(finalized, start + self.max_range - 1))
        found = await self.adapter.fetch_dispatched(Height(start), end)
        fresh = [d for d in found if d.message.nonce >= self.tree.count]
        for expected, d in enumerate(fresh, start=self.tree.count):
            if d.message.nonce != expected:
                raise IndexGap(f"origin {self.domain}: expected nonce {expected}, found {d.message.nonce} "
                               f"in tx {d.tx_hash} at height {d.height}; not indexing past the gap")
        self.store.record_dispatched(fresh, cursor=(self.cursor_name, end), known_destinations=self.known_destinations)
        for d in fresh:
            self.tree.append(d.id)
        self.indexed_height = end
        if fresh:
            log.info("indexed", chain=self.adapter.name, heights=f"{start}-{end}", messages=len(fresh), count=self.tree.count)
        return len(fresh)
