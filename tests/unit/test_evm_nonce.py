"""NonceManager against a small fake node: ordering, concurrency, and recovery (adapters.evm.nonce)."""

from __future__ import annotations

import asyncio

import pytest

from adapters.base import InsufficientFunds, NonceTooLow, ReplacementUnderpriced, RpcUnavailable
from adapters.evm.errors import NonceTooHigh, TxAlreadyKnown
from adapters.evm.nonce import NonceManager, SignedTx


class FakeNode:
    """Tracks a mined nonce and a pool keyed by nonce, answering like geth/anvil would."""

    def __init__(self, mined: int = 0) -> None:
        self.mined = mined  # next nonce the chain expects (latest)
        self.pool: dict[int, bytes] = {}
        self.pending_reads = 0
        self.fail_next: list[Exception] = []
        self.accepted: list[int] = []

    async def pending_nonce(self) -> int:
        self.pending_reads += 1
        await asyncio.sleep(0)
        nonce = self.mined
        while nonce in self.pool:
            nonce += 1
        return nonce

    async def broadcast(self, raw: bytes) -> None:
        await asyncio.sleep(0)
        if self.fail_next:
            raise self.fail_next.pop(0)
        nonce = int.from_bytes(raw[:8], "big")
        if nonce < self.mined:
            raise NonceTooLow("nonce too low")
        if self.pool.get(nonce) == raw:
            raise TxAlreadyKnown("already known")
        if nonce in self.pool:
            raise ReplacementUnderpriced("replacement transaction underpriced")
        if nonce > max([self.mined - 1, *self.pool]) + 1:
            raise NonceTooHigh("nonce too high")
        self.pool[nonce] = raw
        self.accepted.append(nonce)

    def mine(self) -> None:
        while self.mined in self.pool:
            del self.pool[self.mined]
            self.mined += 1

    def other_process_sends(self, n: int = 1) -> None:
        for _ in range(n):
            self.pool[max([self.mined - 1, *self.pool]) + 1] = b"someone else"


def signer(payload: bytes = b"tx") -> object:
    def sign(nonce: int) -> SignedTx:
        raw = nonce.to_bytes(8, "big") + payload
        return SignedTx(raw, "0x" + raw.hex(), nonce)

    return sign


async def test_seeds_from_pending_and_counts_locally() -> None:
    node = FakeNode(mined=7)
    nm = NonceManager("0xabc", node.pending_nonce)
    sent = [await nm.send(signer(), node.broadcast) for _ in range(3)]  # type: ignore[arg-type]
    assert [s.nonce for s in sent] == [7, 8, 9]
    assert node.pending_reads == 1
    assert nm.next_nonce == 10


async def test_concurrent_sends_get_distinct_consecutive_nonces() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    sent = await asyncio.gather(*(nm.send(signer(bytes([i])), node.broadcast) for i in range(50)))  # type: ignore[arg-type]
    assert sorted(s.nonce for s in sent) == list(range(50))
    assert node.accepted == list(range(50))  # left in order


async def test_nonce_too_low_after_another_process_used_the_key_resyncs_and_resends() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    node.mine()
    node.other_process_sends(2)
    node.mine()  # the other process's txs are mined: our counter (1) is now too low
    sent = await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    assert sent.nonce == 3 and nm.next_nonce == 4


async def test_replacement_underpriced_means_the_pool_holds_our_nonce_resync() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    node.other_process_sends(1)  # pending in the pool at nonce 1, not mined
    sent = await nm.send(signer(b"mine"), node.broadcast)  # type: ignore[arg-type]
    assert sent.nonce == 2


async def test_already_known_is_treated_as_sent() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    node.fail_next.append(TxAlreadyKnown("already known"))
    sent = await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    assert sent.nonce == 0 and nm.next_nonce == 1


async def test_gap_is_closed_when_the_node_says_nonce_too_high() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    node.pool.pop(1)  # evicted from the pool: local counter 2 is now past a gap
    sent = await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    assert sent.nonce == 1


async def test_unknown_failure_forgets_the_counter_and_propagates() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    node.fail_next.append(RpcUnavailable("timeout"))  # did it reach the pool? we cannot know
    with pytest.raises(RpcUnavailable):
        await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    assert nm.next_nonce is None
    sent = await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    assert sent.nonce == 1 and node.pending_reads == 2


async def test_insufficient_funds_does_not_consume_a_nonce() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    node.fail_next.append(InsufficientFunds("insufficient funds"))
    with pytest.raises(InsufficientFunds):
        await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    assert (await nm.send(signer(), node.broadcast)).nonce == 0  # type: ignore[arg-type]


async def test_gives_up_after_max_attempts() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce, max_attempts=3)
    node.fail_next.extend(NonceTooLow("nonce too low") for _ in range(3))
    with pytest.raises(NonceTooLow):
        await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]


async def test_periodic_resync_adopts_the_node_view() -> None:
    now = [0.0]
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce, resync_after_s=10, clock=lambda: now[0])
    await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    node.other_process_sends(3)
    now[0] = 11.0
    assert (await nm.send(signer(), node.broadcast)).nonce == 4  # type: ignore[arg-type]
    assert node.pending_reads == 2


async def test_invalidate_and_replace_keep_the_counter() -> None:
    node = FakeNode()
    nm = NonceManager("0xabc", node.pending_nonce)
    await nm.send(signer(), node.broadcast)  # type: ignore[arg-type]
    with pytest.raises(ReplacementUnderpriced):  # the fake treats any different payload at a used nonce as underpriced
        await nm.replace(0, signer(b"bumped"), node.broadcast)  # type: ignore[arg-type]
    assert nm.next_nonce == 1
    nm.invalidate()
    assert nm.next_nonce is None
