"""Validator co-signing of Solana/Cosmos deliveries: attested messages only, exactly what they say, at most once.

The destination adapter is a fake (its chain-specific decoding and its chain reads are tested with each adapter);
the store is a real SQLite file. The fake's "transaction" carries its own terms (sequence and last height), as a
Cosmos payload carries its sequence and timeout height, so what the validator records comes from the payload.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlmodel import Session

from adapters.base import (
    CosignedDelivery,
    CosignRefused,
    CosignRequest,
    DispatchedMessage,
    Domain,
    Height,
    MessageId,
    RpcUnavailable,
    SignedTerms,
    TxHash,
)
from adapters.message import MESSAGE_VERSION, Message, keccak256
from relayer.daemon.metrics import Metrics
from relayer.pipeline.cosign import CosignService
from relayer.store import CheckpointRecord, CosignRecord, Store

ORIGIN, DEST = 1000, 5000
VALIDATOR = "0x" + "aa" * 20
PAST = str(time.time() - 3600)  # what an attacker puts in ``context["expires_at"]``: must not matter


class FakeCosignedChain:
    """A destination whose 'transaction' is the ids it delivers, ``|``, then ``sequence:last_height``: the chain
    includes it while its height is below ``last_height`` and the vault's sequence has not passed ``sequence``."""

    name = "sol"
    domain = Domain(DEST)

    def __init__(self) -> None:
        self.on_chain: set[bytes] = set()
        self.height = 10
        self.sequence = 5
        self.calls: list[str] = []
        self.down = False
        self.pause: asyncio.Event | None = None  # set: chain reads wait for it (to interleave requests)

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        body = request.payload.rpartition(b"|")[0]
        ids = [MessageId(body[i:i + 32]) for i in range(0, len(body), 32)]
        if [keccak256(m) for m in request.messages] != ids:
            raise CosignRefused("the payload delivers other ids", chain="sol", reason="payload mismatch")
        return ids

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        return "signer-" + key[-4:], keccak256(key.encode() + request.payload)

    async def _read(self, what: str) -> None:
        self.calls.append(what)
        if self.pause is not None:
            await self.pause.wait()
        await asyncio.sleep(0)  # a chain read yields to other requests, as real I/O does
        if self.down:
            raise RpcUnavailable("node down", chain="sol", reason="unavailable")

    async def cosign_terms(self, request: CosignRequest) -> SignedTerms:
        sequence, last = (int(x) for x in request.payload.rpartition(b"|")[2].split(b":"))
        await self._read("terms")
        if last <= self.height:
            raise CosignRefused("timeout passed", chain="sol", reason="expired")
        if sequence < self.sequence:
            raise CosignRefused("sequence used", chain="sol", reason="stale sequence")
        return SignedTerms(last_height=last, sequence=sequence)

    async def terms_can_land(self, terms: SignedTerms) -> bool:
        await self._read("can_land")
        return self.height < terms.last_height and not (terms.sequence is not None and self.sequence > terms.sequence)

    async def delivered(self, ids: list[MessageId]) -> list[bool]:
        await self._read("delivered")
        return [bytes(i) in self.on_chain for i in ids]


def _message(nonce: int, dest: int = DEST) -> bytes:
    return Message(MESSAGE_VERSION, nonce, Domain(ORIGIN), b"\x01" * 32, Domain(dest), b"\x02" * 32,
                   b"body %d" % nonce).encode()


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
    assert isinstance(chain, CosignedDelivery)

    def latest(validator: str, origin: int) -> int | None:
        rec = store.checkpoint(validator, origin, None)
        return None if rec is None else rec.index

    service = CosignService(store, {"sol": chain}, {"sol": {VALIDATOR: "0x" + "11" * 32}}, latest, Metrics())
    return service, chain, raws


def _request(raws: list[bytes], *, sequence: int = 5, last: int = 20, context: dict[str, str] | None = None,
             extra: bytes = b"") -> CosignRequest:
    terms = f"{sequence}:{last}".encode()
    return CosignRequest("sol", b"".join(keccak256(r) for r in raws) + extra + b"|" + terms, tuple(raws),
                         dict(context or {}))


def _refused(service: CosignService, reason: str) -> float:
    return service.metrics.value("validator_cosign_refused_total", chain="sol", reason=reason)


async def test_attested_messages_are_cosigned_and_the_same_payload_again(world):
    service, chain, raws = world
    signer, sig = await service.cosign(VALIDATOR, _request(raws[:2]))
    assert signer == "signer-1111" and len(sig) == 32
    chain.height = 19  # still before its last height: the same payload is signed again, no chain question asked
    chain.calls.clear()
    assert await service.cosign(VALIDATOR.upper().replace("0X", "0x"), _request(raws[:2])) == (signer, sig)
    assert chain.calls == ["terms"]


@pytest.mark.parametrize(("pick", "reason"), [
    (lambda raws: [raws[2]], "not attested"),          # nonce 2 > the validator's checkpoint index 1
    (lambda raws: [raws[3]], "wrong destination"),     # stored, but for another domain
    (lambda raws: [_message(0)[:-1] + b"X"], "not attested"),  # bytes this validator never indexed
])
async def test_refuses_what_it_did_not_attest(world, pick, reason):
    service, _chain, raws = world
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(pick(raws)))
    assert exc.value.reason == reason
    assert _refused(service, reason) == 1


async def test_refuses_a_payload_that_does_more_than_the_messages(world):
    service, _chain, raws = world
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], extra=keccak256(b"something else")))
    assert exc.value.reason == "payload mismatch"


async def test_unknown_validator_or_chain_is_refused(world):
    service, _chain, raws = world
    with pytest.raises(CosignRefused, match="no key"):
        await service.cosign("0x" + "bb" * 20, _request(raws[:1]))
    with pytest.raises(CosignRefused, match="no key"):
        await service.cosign(VALIDATOR, CosignRequest("cosmos", b"|", tuple(raws[:1])))


@pytest.mark.parametrize(("sequence", "last", "reason"), [(5, 10, "expired"), (4, 20, "stale sequence")])
async def test_terms_the_chain_refuses_are_not_signed_or_recorded(world, sequence, last, reason):
    service, _chain, raws = world
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], sequence=sequence, last=last))
    assert exc.value.reason == reason and _refused(service, reason) == 1
    with Session(service.store.engine) as s:
        assert s.get(CosignRecord, (VALIDATOR, "sol", "0x" + keccak256(raws[0]).hex())) is None


async def test_the_original_attack_one_message_at_sequences_s_s1_s2_with_past_expiry_is_signed_once(world):
    """The issue's attack: the same message at sequence s, s+1, s+2, each claiming ``expires_at`` in the past."""
    service, chain, raws = world
    signed = await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, context={"expires_at": PAST}))
    for sequence in (6, 7):
        with pytest.raises(CosignRefused) as exc:
            await service.cosign(VALIDATOR, _request(raws[:1], sequence=sequence, context={"expires_at": PAST}))
        assert exc.value.reason == "already cosigned"
        assert "can still land" in str(exc.value)
    # a replay of the signed request (any context) gets the same signature, i.e. the same single transaction
    assert await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, context={"expires_at": "0"})) == signed
    assert _refused(service, "already cosigned") == 2


async def test_a_second_payout_after_the_first_timed_out_undelivered_and_never_once_delivered(world):
    service, chain, raws = world
    await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, last=20))
    with pytest.raises(CosignRefused) as exc:  # the first can still land (height 10 < 20)
        await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, last=25))
    assert exc.value.reason == "already cosigned"
    chain.height = 19
    with pytest.raises(CosignRefused):  # block 20 may still include it
        await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, last=25))
    chain.height = 20  # block 20 committed: no later block can include the first; the chain says undelivered
    chain.calls.clear()
    await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, last=25))
    assert chain.calls == ["terms", "can_land", "delivered"]  # delivered is read after the height
    with Session(service.store.engine) as s:  # the record now holds the second payout's terms, from its payload
        rec = s.get(CosignRecord, (VALIDATOR, "sol", "0x" + keccak256(raws[0]).hex()))
        assert rec is not None and (rec.last_height, rec.sequence) == (25, 5)
    # the second one landed: never a third, even after its timeout
    chain.on_chain.add(keccak256(raws[0]))
    chain.height = 30
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, last=40))
    assert exc.value.reason == "already delivered"


async def test_a_used_sequence_frees_the_message_only_if_the_payout_did_not_land(world):
    service, chain, raws = world
    await service.cosign(VALIDATOR, _request(raws[:2], sequence=5, last=20))
    chain.sequence = 6  # sequence 5 was used, and (per the chain) by a transaction that did not pay these out
    await service.cosign(VALIDATOR, _request(raws[:2], sequence=6, last=20))
    chain.sequence = 7  # sequence 6 was used: this time by our payout, which paid out both
    chain.on_chain |= {keccak256(raws[0]), keccak256(raws[1])}
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request(raws[:1], sequence=7, last=20))
    assert exc.value.reason == "already delivered"


async def test_concurrent_requests_for_one_message_get_one_signature(world):
    """Check and record are one step per chain: requests racing through slow chain reads still sign once."""
    service, chain, raws = world
    await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, last=20))
    chain.height = 20  # the first timed out: exactly one of the racing new payouts may be signed
    chain.pause = asyncio.Event()
    tasks = [asyncio.create_task(service.cosign(VALIDATOR, _request(raws[:1], sequence=5 + i, last=25)))
             for i in range(4)]
    await asyncio.sleep(0.01)
    chain.pause.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    signed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, CosignRefused)]
    assert len(signed) == 1 and len(refused) == 3, results
    assert {r.reason for r in refused} == {"already cosigned"}


async def test_a_chain_that_cannot_be_asked_signs_nothing(world):
    service, chain, raws = world
    await service.cosign(VALIDATOR, _request(raws[:1], sequence=5, last=20))
    chain.height = 20
    chain.down = True
    for request in (_request(raws[:1], sequence=5, last=25), _request(raws[1:2])):
        with pytest.raises(CosignRefused) as exc:
            await service.cosign(VALIDATOR, request)
        assert exc.value.reason == "chain unavailable"
    with Session(service.store.engine) as s:
        assert s.get(CosignRecord, (VALIDATOR, "sol", "0x" + keccak256(raws[1]).hex())) is None
        rec = s.get(CosignRecord, (VALIDATOR, "sol", "0x" + keccak256(raws[0]).hex()))
        assert rec is not None and rec.last_height == 20


async def test_a_record_of_the_previous_schema_is_upgraded_and_holds_its_message(tmp_path):
    """A ``cosignatures`` table of the version that stored ``expires_at``: new columns are added in place, and a
    row without terms (a payout whose landing cannot be judged) still holds its message until delivered."""
    path = tmp_path / "old.db"
    raw = _message(0)
    mid = "0x" + keccak256(raw).hex()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE cosignatures (validator VARCHAR(42) NOT NULL, chain VARCHAR(64) NOT NULL, "
                   "message_id VARCHAR(66) NOT NULL, payload_sha256 VARCHAR(64) NOT NULL, expires_at FLOAT, "
                   "signed_at FLOAT NOT NULL, PRIMARY KEY (validator, chain, message_id))")
        db.execute("INSERT INTO cosignatures VALUES (?, 'sol', ?, ?, 1.0, 1.0)", (VALIDATOR, mid, "00" * 32))
    store = Store(f"sqlite:///{path}")
    store.record_dispatched([DispatchedMessage(Message.decode(raw), raw, MessageId(keccak256(raw)), Height(1),
                                               TxHash("0x" + "00" * 32), 0, time.time())],
                            cursor=("origin:1000", 1), known_destinations={DEST})
    store.save_checkpoint(CheckpointRecord(validator=VALIDATOR, origin=ORIGIN, index=0, origin_mailbox="0x" + "00" * 32,
                                           root="0x" + "00" * 32, signature="0x", signed_at=time.time()))
    chain = FakeCosignedChain()
    service = CosignService(store, {"sol": chain}, {"sol": {VALIDATOR: "0x" + "11" * 32}},
                            lambda v, o: 0, Metrics())
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(cosignatures)")}
    assert {"last_height", "sequence", "anchor", "expires_at"} <= columns
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, _request([raw]))
    assert exc.value.reason == "already cosigned" and "recorded without terms" in str(exc.value)


# ---- the Cosmos adapter's static side of it (no network) ---------------------------------------------------------

def _cosmos_config(threshold: int, pubkeys: list[bytes], **extra: object):
    from adapters.cosmos.transactions import bech32, multisig_key_address
    from config.settings import CosmosChainConfig

    vault = bech32(multisig_key_address(threshold, pubkeys), "cosmos")
    return CosmosChainConfig(family="cosmos", domain=6000, chain_id="xchain-devnet-1", rpc_url="http://127.0.0.1:9",
                             rest_url="http://127.0.0.1:9", fee_denom="ustake", vault=vault,
                             multisig_threshold=threshold, multisig_pubkeys=[k.hex() for k in pubkeys], **extra)


def _members(n: int) -> list[bytes]:
    from devnets.cosmos import devnet_account_key

    return [devnet_account_key(f"unit-member-{i}").pub_key for i in range(n)]


@pytest.mark.parametrize(("threshold", "n", "problem"), [
    (1, 2, "not a majority"), (1, 3, "not a majority"), (2, 4, "not a majority"), (3, 6, "not a majority"),
    (4, 3, "above the 3 multisig_pubkeys"),
])
async def test_cosmos_multisig_threshold_must_be_a_strict_majority(threshold, n, problem):
    from adapters.cosmos import CosmosAdapter
    from config.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        CosmosAdapter("cosmos", _cosmos_config(threshold, _members(n)))
    assert exc.value.path == "chains.cosmos.multisig_threshold" and problem in exc.value.problem


async def test_cosmos_majorities_start_and_a_duplicate_member_does_not():
    from adapters.cosmos import CosmosAdapter
    from config.errors import ConfigError

    for threshold, n in ((1, 1), (2, 3), (3, 4), (3, 5)):
        await CosmosAdapter("cosmos", _cosmos_config(threshold, _members(n))).close()
    one, two = _members(2)
    with pytest.raises(ConfigError) as exc:
        CosmosAdapter("cosmos", _cosmos_config(2, [one, two, one]))
    assert exc.value.path == "chains.cosmos.multisig_pubkeys"


def test_cosmos_sign_bytes_carry_the_timeout_height_as_the_chain_checks_them():
    """The adapter's amino JSON sign bytes of a delivery with a timeout are the devnet chain's, byte for byte,
    and differ from the same delivery with another timeout (a signature covers the expiry)."""
    from adapters.cosmos.transactions import DeliveryPlan, Payout
    from devnets.cosmos.multisig import legacy_amino_sign_bytes

    payout = Payout(MessageId(b"\x07" * 32), "cosmos1qqqsyqcyq5rqwzqfpg9scrgwpugpzysn3nvtc0", "uxtst", 5)
    plan = DeliveryPlan("xchain-devnet-1", "cosmos1vault", (payout,), 7, 3, 130_000, ("ustake", 1300), 1234)
    chain_side = legacy_amino_sign_bytes(chain_id=plan.chain_id, account_number=7, sequence=3, body=plan.body(),
                                         fee=plan.fee_proto())
    assert plan.sign_bytes() == chain_side and b'"timeout_height":"1234"' in chain_side
    assert plan.body().timeout_height == 1234 and plan.context()["timeout_height"] == "1234"
    later = DeliveryPlan("xchain-devnet-1", "cosmos1vault", (payout,), 7, 3, 130_000, ("ustake", 1300), 1235)
    assert later.sign_bytes() != plan.sign_bytes()
