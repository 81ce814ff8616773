"""processBatch calldata: the hand-written encoder equals eth_abi's and the selector is the new signature."""

from __future__ import annotations

import time

import pytest
from eth_abi import decode, encode

from adapters.base import Checkpoint, DeliveryBatch, DeliveryItem, SignedCheckpoint
from adapters.checkpoint import CheckpointSigner, sorted_signatures
from adapters.evm import abi
from adapters.merkle import MerkleTree, multiproof
from adapters.message import Message, MessageFormatError, MessageId

# anvil's public devnet test keys: NOT secrets
KEYS = [
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
]


def make_batch(nonces: list[int], total: int, body_len: int = 64) -> DeliveryBatch:
    raws = [
        Message(1, n, 1000, b"\x01" * 32, 2000, b"\x02" * 32, bytes([n % 251]) * ((body_len + n) % 97)).encode()  # type: ignore[arg-type]
        for n in range(total)
    ]
    msgs = [Message.decode(r) for r in raws]
    tree = MerkleTree([m.id for m in msgs])
    cp = Checkpoint(1000, b"\x03" * 32, tree.root(), total - 1)  # type: ignore[arg-type]
    signed = SignedCheckpoint(cp,
                              sorted_signatures((s.address, s.sign(cp)) for s in map(CheckpointSigner.from_hex, KEYS)))
    items = tuple(DeliveryItem(raws[n], MessageId(msgs[n].id), n) for n in nonces)
    return DeliveryBatch(signed, items, tuple(multiproof(tree, nonces, total)))


def reference(batch: DeliveryBatch) -> bytes:
    args = (abi.encode_checkpoint(batch.checkpoint), [it.message for it in batch.items], list(batch.proof))
    return abi.PROCESS_BATCH + encode(("bytes", "bytes[]", "bytes32[]"), args)


def test_selector_is_the_multiproof_signature() -> None:
    assert abi.PROCESS_BATCH == abi.selector("processBatch(bytes,bytes[],bytes32[])")


@pytest.mark.parametrize(("nonces", "total"),
                         [([0], 1), ([0, 3, 4, 9], 12), (list(range(40)), 40), (list(range(1, 60, 2)), 64)])
def test_encoder_equals_eth_abi(nonces: list[int], total: int) -> None:
    batch = make_batch(nonces, total)
    data = abi.encode_process_batch(batch)
    assert data == reference(batch)
    checkpoint, messages, proof = decode(("bytes", "bytes[]", "bytes32[]"), data[4:])
    assert list(messages) == [it.message for it in batch.items] and tuple(proof) == batch.proof
    assert checkpoint == abi.encode_checkpoint(batch.checkpoint)


def test_encoder_refuses_a_proof_hash_of_the_wrong_size() -> None:
    batch = make_batch([0, 3], 4)
    bad = DeliveryBatch(batch.checkpoint, batch.items, (*batch.proof[:-1], b"\x01" * 31))
    with pytest.raises(MessageFormatError):
        abi.encode_process_batch(bad)


def test_encoder_is_faster_than_eth_abi() -> None:
    batch = make_batch(list(range(200)), 256)

    def best(fn: object) -> float:
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn(batch)  # type: ignore[operator]
            runs.append(time.perf_counter() - t0)
        return min(runs)

    ours, theirs = best(abi.encode_process_batch), best(reference)
    print(f"\nprocessBatch calldata, 200 messages: hand-written {ours * 1e3:.2f} ms, eth_abi {theirs * 1e3:.2f} ms")
    assert ours < theirs
