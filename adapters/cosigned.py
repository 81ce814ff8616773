"""The co-signed delivery flow, shared by the destinations the validators co-sign for (Solana, Cosmos).

A destination without a contract that checks checkpoints is delivered to by a transaction the validators sign
themselves (``CosignedDelivery``). The relayer side of it is the same on every such chain and lives here:

    for each quorum the chain offers, in order:
        build the request for the batch (the exact payload each co-signer signs)
        gather ``threshold`` co-signatures through the ``Cosigner``
        assemble and submit the transaction
        -> a quorum that did not agree (``NoCosignQuorum``): try the next one
        -> over the validators' payout limits (``PayoutRateLimited``): raised at once (every quorum has them)

What differs per chain is behind ``CosignedSteps``: which quorums to ask (Solana rotates through the multisig's
members, skipping those whose replay guard for a message exists; Cosmos has its vault's one), how a request is
built and a signed one submitted, and whether deliveries must be serialised (a Cosmos vault's sequence: two
plans at one sequence would both be co-signed and one would fail).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import structlog

from adapters.base import Cosigner, CosignRequest, DeliveryBatch, NoCosignQuorum, PayoutRateLimited, SubmittedTx

log = structlog.get_logger("adapters.cosigned")

Q = TypeVar("Q", bound=Sequence[Any])


class CosignedSteps(Protocol[Q]):
    """The chain-specific steps of a co-signed delivery; ``Q`` is the chain's notion of a quorum to ask (the
    signers it names; empty: whichever members answer)."""

    @property
    def name(self) -> str: ...

    @property
    def cosign_threshold(self) -> int:
        """Co-signatures a delivery needs."""
        ...

    def delivery_lock(self) -> AbstractAsyncContextManager[object]:
        """Held from building a request to submitting it."""
        ...

    async def quorums(self, batch: DeliveryBatch) -> Sequence[tuple[int, Q]]:
        """(position, quorum) to ask for ``batch``, in order; the position is handed back once one worked."""
        ...

    async def request_for(self, messages: Sequence[bytes], quorum: Q) -> CosignRequest:
        """The request ``quorum`` co-signs to deliver ``messages``."""
        ...

    async def submit_cosigned(self, request: CosignRequest, signatures: Sequence[tuple[str, bytes]]) -> SubmittedTx:
        """Assemble the transaction from the co-signatures and submit it."""
        ...

    def quorum_worked(self, position: int) -> None:
        """The quorum at ``position`` delivered: start there next time."""
        ...


async def deliver_cosigned(steps: CosignedSteps[Q], cosigner: Cosigner, batch: DeliveryBatch) -> SubmittedTx:
    """Deliver ``batch`` by the validators' co-signatures: the first quorum that agrees submits it; when none
    does, the last quorum's error is raised."""
    raws = [item.message for item in batch.items]
    last_error: NoCosignQuorum | None = None
    async with steps.delivery_lock():
        for position, quorum in await steps.quorums(batch):
            request = await steps.request_for(raws, quorum)
            try:
                signatures = await cosigner.cosign(request, steps.cosign_threshold)
                submitted = await steps.submit_cosigned(request, signatures)
            except PayoutRateLimited:
                raise
            except NoCosignQuorum as exc:
                last_error = exc
                log.info("cosign_quorum_failed", chain=steps.name, quorum=[str(q) for q in quorum],
                         reason=exc.reason)
                continue
            steps.quorum_worked(position)
            return submitted
    assert last_error is not None
    raise last_error
