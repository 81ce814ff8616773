"""Validator role: attest the origin mailbox's tree, one signed checkpoint per new count.

Security checks (DESIGN.md, "Validators"), in order, before a validator signs ``(origin, mailbox, root, index)``:

1. Inclusion (``InclusionVerifier``, the chain's light client): every message up to ``index`` is a successful
   dispatch in a block whose header the light client verified and which is final; refused claims are
   logged as ``checkpoint_refused`` with the failed check (a rewritten log or header, endpoints that
   disagree) and counted in ``validator_checkpoint_refused_total{reason}``; nothing is signed.
2. Root: the root the chain reports at the finalized height equals the root the validator computed from the
   proven messages (``checkpoint_root_mismatch`` otherwise).

3. History: the origin's indexer found no contradiction between the chain and what it indexed as final
   (``OriginIndexer``: a reorg deeper than the finality rule halts the origin). A halted origin gets no new
   signature and no old one is served (``checkpoint_refused`` with reason ``reorg``, counted once per halt).
4. No equivocation: a checkpoint is never signed at an index already signed with another root
   (``checkpoint_conflict``, reason ``conflicting_root``), whatever the chain says now.
5. Solvency (``relayer/pipeline/accountant.py``, when the process has an accountant): no new token transfer pays out
   more than this validator attested was locked for it; the checkpoint stops at the message before the first one
   that would (``accountant_refused``), and the rest waits, re-checked every poll.

Any earlier index is also signable on request: the roots of every prefix of a verified tree follow
from its leaves, so the validator signs ``index < latest`` from its own tree, never from the RPC.
"""

from __future__ import annotations

import time

import structlog

from adapters.base import (
    AdapterError,
    ChainAdapter,
    Checkpoint,
    DispatchClaim,
    Height,
    InclusionPending,
    InclusionVerifier,
    MailboxState,
    TxHash,
)
from adapters.checkpoint import CheckpointSigner
from relayer.daemon.metrics import Metrics
from relayer.pipeline.accountant import GlobalAccountant, TokenTransfer
from relayer.pipeline.indexer import OriginIndexer
from relayer.store import CheckpointRecord, Store

log = structlog.get_logger("relayer.pipeline.validator")


class OriginAttester:
    """Signs checkpoints of one origin with every validator key this process holds."""

    def __init__(self, adapter: ChainAdapter, indexer: OriginIndexer, signers: list[CheckpointSigner], store: Store,
                 metrics: Metrics, verifier: InclusionVerifier | None = None,
                 accountant: GlobalAccountant | None = None) -> None:
        self.adapter = adapter
        self.accountant = accountant
        self.verifier = verifier
        self.proven_count = 0  # messages 0..proven_count-1 are proven by the light client
        self.indexer = indexer
        self.signers = {s.address: s for s in signers}
        self.store = store
        self.metrics = metrics
        self.mailbox: bytes | None = None
        self.latest_index: int = -1
        self.mismatches = 0
        self.refusals = 0
        self.halted = False

    def load(self) -> None:
        for address in self.signers:
            rec = self.store.checkpoint(address, self.adapter.domain, None)
            if rec is not None:
                self.latest_index = max(self.latest_index, rec.index)
                self.mailbox = bytes.fromhex(rec.origin_mailbox[2:])
        self.proven_count = self.latest_index + 1  # signed only after they were proven

    async def _verified_state(self, height: Height) -> MailboxState | None:
        state = await self.adapter.mailbox_state(height)
        if state.count == 0:
            return None
        if state.count > self.indexer.tree.count:
            return None  # the indexer has not reached this height's messages yet
        if self.verifier is not None and state.count > self.proven_count:
            return None  # nor the light client
        local_root = self.indexer.tree.root(state.count)
        if local_root != state.root:
            self.mismatches += 1
            self.metrics.inc("validator_checkpoint_refused_total", origin=self.adapter.name, reason="root_mismatch")
            log.error("checkpoint_root_mismatch", chain=self.adapter.name, height=height, count=state.count,
                      chain_root="0x" + state.root.hex(), indexed_root="0x" + local_root.hex())
            return None
        return state

    async def _proven(self, height: Height) -> bool:
        """Prove the indexed messages not proven yet (all of them up to the indexer's tree) at ``height``."""
        end = self.indexer.tree.count
        if self.verifier is None or end <= self.proven_count:
            return True
        records = await self.store.aio.dispatched_range(self.adapter.domain, self.proven_count, end)
        claims = [DispatchClaim(r.raw, Height(r.origin_height), TxHash(r.origin_tx)) for r in records]
        if len(claims) != end - self.proven_count:
            log.error("checkpoint_refused", chain=self.adapter.name, reason="messages missing from the store",
                      expected=end - self.proven_count, found=len(claims))
            return False
        try:
            await self.verifier.verify_dispatches(claims, height)
        except InclusionPending as exc:
            log.debug("checkpoint_waiting", chain=self.adapter.name, height=height, reason=exc.reason,
                      messages=f"{self.proven_count}..{end - 1}", detail=str(exc)[:200])
            return False
        except AdapterError as exc:
            self.refusals += 1
            self.metrics.inc("validator_checkpoint_refused_total", origin=self.adapter.name,
                             reason=exc.reason.replace(" ", "_"))
            log.error("checkpoint_refused", chain=self.adapter.name, height=height, reason=exc.reason,
                      messages=f"{self.proven_count}..{end - 1}", error=str(exc)[:400])
            return False
        log.debug("dispatches_proven", chain=self.adapter.name, height=height,
                  messages=f"{self.proven_count}..{end - 1}")
        self.proven_count = end
        return True

    def _refuse_reorged(self) -> bool:
        reorg = self.indexer.reorg
        if reorg is None:
            return False
        if not self.halted:
            self.halted = True
            self.refusals += 1
            self.metrics.inc("validator_checkpoint_refused_total", origin=self.adapter.name, reason="reorg")
            log.error("checkpoint_refused", chain=self.adapter.name, reason="reorg",
                      latest_signed_index=self.latest_index,
                      canonical_messages=reorg.canonical_count, detail=reorg.detail,
                      action="no more checkpoints for this origin until an operator intervenes")
        return True

    async def poll_once(self) -> int | None:
        if self._refuse_reorged():
            return None
        height = self.indexer.indexed_height
        if height is None:
            return None
        if not await self._proven(height):
            return None
        state = await self._verified_state(height)
        if state is None:
            return None
        self.mailbox = state.mailbox
        index = state.count - 1
        if index > self.latest_index:
            transfers: list[TokenTransfer] = []
            root = state.root
            if self.accountant is not None:
                index, transfers = await self.accountant.admit(self.adapter.domain, self.latest_index + 1, index)
                if index <= self.latest_index:
                    return self.latest_index if self.latest_index >= 0 else None
                if index < state.count - 1:  # a prefix of the verified tree: its root follows from the leaves
                    root = self.indexer.tree.root(index + 1)
            for address in self.signers:
                if await self._sign(address, index, root) is None:
                    return None
            self.latest_index = index
            if self.accountant is not None:
                self.accountant.commit(transfers)
            log.debug("checkpoint_signed", chain=self.adapter.name, index=index, validators=len(self.signers))
        return index

    async def _sign(self, address: str, index: int, root: bytes) -> CheckpointRecord | None:
        assert self.mailbox is not None
        earlier = await self.store.aio.checkpoint(address, self.adapter.domain, index)
        if earlier is not None and earlier.root != "0x" + root.hex():
            self.refusals += 1
            self.metrics.inc("validator_checkpoint_refused_total", origin=self.adapter.name, reason="conflicting_root")
            log.error("checkpoint_conflict", chain=self.adapter.name, validator=address, index=index,
                      signed_root=earlier.root, new_root="0x" + root.hex())
            return None
        cp = Checkpoint(self.adapter.domain, self.mailbox, root, index)
        rec = CheckpointRecord(validator=address, origin=self.adapter.domain, index=index,
                               origin_mailbox="0x" + self.mailbox.hex(), root="0x" + root.hex(),
                               signature="0x" + self.signers[address].sign(cp).hex(), signed_at=time.time())
        await self.store.aio.save_checkpoint(rec)
        self.metrics.inc("validator_checkpoints_signed_total", origin=self.adapter.name, validator=address)
        return rec

    async def signed(self, address: str, index: int | None) -> CheckpointRecord | None:
        """The signed checkpoint at ``index`` (or the latest); signs an earlier verified index on demand."""
        address = address.lower()
        if address not in self.signers or self.latest_index < 0 or self._refuse_reorged():
            return None
        if index is None:
            index = self.latest_index
        if index > self.latest_index or index < 0:
            return None
        rec = await self.store.aio.checkpoint(address, self.adapter.domain, index)
        if rec is None:
            rec = await self._sign(address, index, self.indexer.tree.root(index + 1))
        return rec
