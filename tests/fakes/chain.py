"""An in-memory ``ChainAdapter`` for unit tests of pipeline logic (never a stand-in for a chain under test)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence

from adapters.base import (
    ChainHealth,
    CostEstimate,
    DeliveryBatch,
    DispatchedMessage,
    Height,
    MailboxState,
    SubmittedTx,
    TxHash,
    TxOutcome,
    TxReverted,
    TxState,
)
from adapters.merkle import MerkleTree, multiproof_root
from adapters.message import Domain, Message, MessageId


class FakeChain:
    def __init__(self, name: str, domain: int, *, mailbox: bytes = b"\x11" * 32) -> None:
        self._name = name
        self._domain = Domain(domain)
        self.mailbox = mailbox
        self.height = Height(0)
        self.messages: list[DispatchedMessage] = []
        self.tree = MerkleTree()
        self.processed: dict[MessageId, int] = {}
        self.submitted: list[DeliveryBatch] = []
        self.rejects: Callable[[bytes], bool] = lambda raw: False
        self.outcome_state = TxState.CONFIRMED
        self._tx = itertools.count(1)
        self.pending: dict[str, DeliveryBatch] = {}
        self.lying_root: bytes | None = None  # a node that reports another root

    @property
    def name(self) -> str:
        return self._name

    @property
    def domain(self) -> Domain:
        return self._domain

    def dispatch(self, destination: int, body: bytes) -> DispatchedMessage:
        self.height = Height(self.height + 1)
        msg = Message(1, len(self.messages), self._domain, b"\x01" * 32, Domain(destination), b"\x02" * 32, body)
        raw = msg.encode()
        d = DispatchedMessage(msg, raw, msg.id, self.height, TxHash("0x" + f"{self.height:064x}"), 0, time.time())
        self.messages.append(d)
        self.tree.append(msg.id)
        return d

    async def latest_height(self) -> Height:
        return self.height

    async def finalized_height(self) -> Height:
        return self.height

    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        return [d for d in self.messages if from_height <= d.height <= to_height]

    async def mailbox_state(self, height: Height) -> MailboxState:
        count = sum(1 for d in self.messages if d.height <= height)
        return MailboxState(self.mailbox, self.lying_root or self.tree.root(count), count, height)

    async def delivered(self, ids: Sequence[MessageId]) -> list[bool]:
        return [i in self.processed for i in ids]

    def _check(self, batch: DeliveryBatch) -> None:
        count = batch.checkpoint.checkpoint.index + 1
        if (multiproof_root([(i.leaf_index, i.id) for i in batch.items], batch.proof, count)
                != batch.checkpoint.checkpoint.root):
            raise TxReverted("InvalidProof", chain=self._name)
        for item in batch.items:
            if self.rejects(item.message):
                raise TxReverted("handle reverted", chain=self._name)

    async def estimate_delivery(self, batch: DeliveryBatch) -> CostEstimate:
        self._check(batch)
        return CostEstimate(50_000 * len(batch.items), 10, 1)

    async def submit_delivery(self, batch: DeliveryBatch, estimate: CostEstimate | None = None) -> SubmittedTx:
        self.submitted.append(batch)
        n = next(self._tx)
        tx = SubmittedTx(TxHash(f"0x{n:064x}"), n, "0xrelayer", time.time())
        self.pending[tx.tx_hash] = batch
        return tx

    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        batch = self.pending.pop(tx.tx_hash, None)
        if batch is None:
            return TxOutcome(TxState.DROPPED)
        if self.outcome_state is not TxState.CONFIRMED:
            return TxOutcome(self.outcome_state, reason="forced by test")
        done = []
        for item in batch.items:
            if item.id not in self.processed:
                self.processed[item.id] = self.processed.get(item.id, 0) + 1
                done.append(item.id)
        self.height = Height(self.height + 1)
        return TxOutcome(TxState.CONFIRMED, self.height, gas_used=1000, delivered_ids=tuple(done))

    async def health(self) -> ChainHealth:
        return ChainHealth(True, self.height, self.height, 0.001)

    async def close(self) -> None:
        return None
