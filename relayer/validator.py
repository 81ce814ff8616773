"""Validator role: attest the origin mailbox's tree, one signed checkpoint per new count.

Security check (DESIGN.md, "Validators"): a validator signs ``(origin, mailbox, root, index)`` only when
the root the chain reports at a *finalized* height equals the root it computed itself from the dispatch
logs it indexed up to that height. A node that lies about either the logs or the root is caught by the
mismatch, logged as ``checkpoint_root_mismatch``, and nothing is signed. (Light-client verification of
headers and receipt inclusion is issue 4; it plugs in before ``_verified_state``.)

Any earlier index is also signable on request: the roots of every prefix of a verified tree follow
from its leaves, so the validator signs ``index < latest`` from its own tree, never from the RPC.
"""

from __future__ import annotations

import time

import structlog

from adapters.base import ChainAdapter, Checkpoint, Height, MailboxState
from adapters.checkpoint import CheckpointSigner
from relayer.indexer import OriginIndexer
from relayer.metrics import Metrics
from relayer.store import CheckpointRecord, Store

log = structlog.get_logger("relayer.validator")


class OriginAttester:
    """Signs checkpoints of one origin with every validator key this process holds."""

    def __init__(self, adapter: ChainAdapter, indexer: OriginIndexer, signers: list[CheckpointSigner], store: Store,
                 metrics: Metrics) -> None:
        self.adapter = adapter
        self.indexer = indexer
        self.signers = {s.address: s for s in signers}
        self.store = store
        self.metrics = metrics
        self.mailbox: bytes | None = None
        self.latest_index: int = -1
        self.mismatches = 0

    def load(self) -> None:
        for address in self.signers:
            rec = self.store.checkpoint(address, self.adapter.domain, None)
            if rec is not None:
                self.latest_index = max(self.latest_index, rec.index)
                self.mailbox = bytes.fromhex(rec.origin_mailbox[2:])

    async def _verified_state(self, height: Height) -> MailboxState | None:
        state = await self.adapter.mailbox_state(height)
        if state.count == 0:
            return None
        if state.count > self.indexer.tree.count:
            return None  # the indexer has not reached this height's messages yet
        local_root = self.indexer.tree.root(state.count)
        if local_root != state.root:
            self.mismatches += 1
            self.metrics.inc("validator_checkpoint_refused_total", origin=self.adapter.name, reason="root_mismatch")
            log.error("checkpoint_root_mismatch", chain=self.adapter.name, height=height, count=state.count,
                      chain_root="0x" + state.root.hex(), indexed_root="0x" + local_root.hex())
            return None
        return state

    async def poll_once(self) -> int | None:
        height = self.indexer.indexed_height
        if height is None:
            return None
        state = await self._verified_state(height)
        if state is None:
            return None
        self.mailbox = state.mailbox
        index = state.count - 1
        if index > self.latest_index:
            for address in self.signers:
                self._sign(address, index, state.root)
            self.latest_index = index
            log.debug("checkpoint_signed", chain=self.adapter.name, index=index, validators=len(self.signers))
        return index

    def _sign(self, address: str, index: int, root: bytes) -> CheckpointRecord:
        assert self.mailbox is not None
        cp = Checkpoint(self.adapter.domain, self.mailbox, root, index)
        rec = CheckpointRecord(validator=address, origin=self.adapter.domain, index=index,
                               origin_mailbox="0x" + self.mailbox.hex(), root="0x" + root.hex(),
                               signature="0x" + self.signers[address].sign(cp).hex(), signed_at=time.time())
        self.store.save_checkpoint(rec)
        self.metrics.inc("validator_checkpoints_signed_total", origin=self.adapter.name, validator=address)
        return rec

    def signed(self, address: str, index: int | None) -> CheckpointRecord | None:
        """The signed checkpoint at ``index`` (or the latest); signs an earlier verified index on demand."""
        address = address.lower()
        if address not in self.signers or self.latest_index < 0:
            return None
        if index is None:
            index = self.latest_index
        if index > self.latest_index or index < 0:
            return None
        rec = self.store.checkpoint(address, self.adapter.domain, index)
        if rec is None:
            rec = self._sign(address, index, self.indexer.tree.root(index + 1))
        return rec
