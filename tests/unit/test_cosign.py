"""Validator co-signing of Solana/Cosmos deliveries: attested messages only, exactly what they say, at most once.

The destination adapter is a fake (its chain-specific decoding is tested with each adapter); the store is a
real SQLite file.
"""

from __future__ import annotations

import time

import pytest

from adapters.base import CosignRefused, CosignRequest, DispatchedMessage, Domain, Height, MessageId, TxHash
from adapters.message import MESSAGE_VERSION, Message, keccak256
from relayer.cosign import CosignService
from relayer.metrics import Metrics
from relayer.store import CheckpointRecord, Store

ORIGIN, DEST = 1000, 5000
VALIDATOR = "0x" + "aa" * 20


class FakeCosignedChain:
    """A destination whose 'transaction' is the ids it delivers, then ``|`` and a tag (a blockhash, say)."""

    name = "sol"
    domain = Domain(DEST)

    def __init__(self) -> None:
        self.on_chain: set[bytes] = set()

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        body = request.payload.rpartition(b"|")[0]
        ids = [MessageId(body[i:i + 32]) for i in range(0, len(body), 32)]
        if [keccak256(m) for m in request.messages] != ids:
            raise CosignRefused("the payload delivers other ids", chain="sol", reason="payload mismatch")
        return ids

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        return "signer-" + key[-4:], keccak256(key.encode() + request.payload)

    async def delivered(self, ids: list[MessageId]) -> list[bool]:
        return [bytes(i) in self.on_chain for i in ids]


def _message(nonce: int, dest: int = DEST) -> bytes:
    return Message(MESSAGE_VERSION, nonce, Domain(ORIGIN), b"\x01" * 32, Domain(dest), b"\x02" * 32, b"body %d" % nonce).encode()


@pytest.fixture
def world(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    raws = [_message(n) for n in range(3)] + [_message(3, dest=9999)]
    found = [DispatchedMessage(Message.decode(r), r, MessageId(keccak256(r)), Height(1), TxHash("0x" + "00" * 32), i,
                               time.time()) for i, r in enumerate(raws)]
    store.record_dispatched(found, cursor=("origin:1000", 1), known_destinations={DEST, 9999})
    store.save_checkpoint(CheckpointRecord(validator=VALIDATOR, origin=ORIGIN, index=1, origin_mailbox="0x" + "00" * 32,
                                           root="0x" + "00" * 32, signature="0x", signed_at=time.time()))
    chain = FakeCosignedChain()
    clock = [1000.0]

    def latest(validator: str, origin: int) -> int | None:
        rec = store.checkpoint(validator, origin, None)
        return None if rec is None else rec.index

    service = CosignService(store, {"sol": chain}, {"sol": {VALIDATOR: "0x" + "11" * 32}}, latest, Metrics(),
                            clock=lambda: clock[0])
    return service, chain, raws, clock


def _request(raws: list[bytes], *, tag: bytes = b"h1", expires_at: float | None = None,
             extra: bytes = b"") -> CosignRequest:
    ctx = {"expires_at": str(expires_at)} if expires_at is not None else {}
    return CosignRequest("sol", b"".join(keccak256(r) for r in raws) + extra + b"|" + tag, tuple(raws), ctx)


async def test_attested_messages_are_cosigned_and_the_same_payload_again(world):
    service, _chain, raws, _clock = world
    signer, sig = await service.cosign(VALIDATOR, _request(raws[:2]))
    assert signer == "signer-1111" and len(sig) == 32
    assert await service.cosign(VALIDATOR.upper().replace("0X", "0x"), _request(raws[:2])) == (signer, sig)


@pytest.mark.parametrize(("pick", "reason"), [
    (lambda raws: [raws[2]], "not attested"),          # nonce 2 > the validator's checkpoint index 1
    (lambda raws: [raws[3]], "wrong destination"),     # stored, but for another domain
    (lambda raws: [_message(0)[:-1] + b"X"], "not attested"),  # bytes this validator never indexed
])
async def test_refuses_what_it_did_not_attest(world, pick, reason):
    service, _chain, raws, _clock = world
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(pick(raws)))
    assert exc.value.reason == reason
    assert service.metrics.value("validator_cosign_refused_total", chain="sol", reason=reason) == 1


async def test_refuses_a_payload_that_does_more_than_the_messages(world):
    service, _chain, raws, _clock = world
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], extra=keccak256(b"something else")))
    assert exc.value.reason == "payload mismatch"


async def test_unknown_validator_or_chain_is_refused(world):
    service, _chain, raws, _clock = world
    with pytest.raises(CosignRefused, match="no key"):
        await service.cosign("0x" + "bb" * 20, _request(raws[:1]))
    with pytest.raises(CosignRefused, match="no key"):
        await service.cosign(VALIDATOR, CosignRequest("cosmos", b"|", tuple(raws[:1])))


async def test_at_most_once_per_message_until_the_earlier_transaction_expired(world):
    service, chain, raws, clock = world
    await service.cosign(VALIDATOR, _request(raws[:1], tag=b"h1", expires_at=1060.0))
    # another transaction for the same message while the first can still land: refused
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], tag=b"h2", expires_at=1200.0))
    assert exc.value.reason == "already cosigned"
    # once the first expired and the chain says the message is not delivered: the new one is signed
    clock[0] = 1061.0
    assert (await service.cosign(VALIDATOR, _request(raws[:1], tag=b"h2", expires_at=1200.0)))[0] == "signer-1111"
    # never again once the message is delivered on chain
    clock[0] = 2000.0
    chain.on_chain.add(keccak256(raws[0]))
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], tag=b"h3", expires_at=3000.0))
    assert exc.value.reason == "already delivered"


async def test_without_expiry_a_second_transaction_is_never_signed(world):
    service, _chain, raws, clock = world
    await service.cosign(VALIDATOR, _request(raws[:1], tag=b"h1"))
    clock[0] = 10**9
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], tag=b"h2"))
    assert exc.value.reason == "already cosigned"
