"""Payout limits in the validators' co-signing (``relayer/pipeline/payout_limits.py``): the bucket's arithmetic, and
the co-sign service with a limiter over a real SQLite store and a fake co-signed chain (``tests/unit/test_cosign``'s):
refused over the room with when it fits, room taken once per payload and only for what is signed, kept across a
restart, given back when a payload can never land, plain messages never limited; the relayer side's wait."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from pydantic import ValidationError

from adapters.base import (
    PAYOUT_RATE_LIMITED,
    CosignRateLimited,
    CosignRefused,
    DispatchedMessage,
    Domain,
    Height,
    MessageId,
    PayoutRateLimited,
    TxHash,
)
from adapters.bridge_memo import TokenBody
from adapters.message import MESSAGE_VERSION, Message, keccak256
from config.loader import load_settings
from config.settings import Settings, ValidatorRef
from relayer.daemon.metrics import Metrics
from relayer.pipeline.accountant import TokenDirectory, TokenPlace
from relayer.pipeline.cosign import CosignService, HttpCosigner
from relayer.pipeline.outcome import FailureReason, Undelivered, reason_of
from relayer.pipeline.payout_limits import Bucket, PayoutLimiter
from relayer.store import CheckpointRecord, Store
from relayer.store.payout_limits import BucketState
from tests.fakes.chain import FakeChain
from tests.unit.test_config import EXAMPLE
from tests.unit.test_cosign import FakeCosignedChain, _request

ORIGIN, DEST = 1000, 5000
VALIDATOR = "0x" + "aa" * 20
BRIDGE = b"\x01" * 32
TST = (ORIGIN, b"\x07" * 32)  # homed at the origin
ONE = 10**18  # one TST in home units
BUCKET = Bucket(capacity=50 * ONE, refill_per_s=ONE, symbol="TST", decimals=18)


# ---- the arithmetic
def test_a_bucket_starts_full_refills_per_millisecond_and_never_above_capacity() -> None:
    assert BUCKET.room(None, 100.0) == 50 * ONE
    assert BUCKET.room(BucketState(20 * ONE, 100.0), 110.0) == 30 * ONE
    assert BUCKET.room(BucketState(20 * ONE, 100.0), 100.0015) == 20 * ONE + ONE // 1000  # whole ms only
    assert BUCKET.room(BucketState(20 * ONE, 100.0), 1000.0) == 50 * ONE
    assert BUCKET.room(BucketState(20 * ONE, 100.0), 50.0) == 20 * ONE  # a clock stepping back refills nothing


def test_what_fits_and_when() -> None:
    assert BUCKET.fits(30 * ONE, 30 * ONE, 1) and not BUCKET.fits(30 * ONE, 31 * ONE, 1)
    assert BUCKET.wait_s(30 * ONE, 50 * ONE) == 20.0
    assert BUCKET.wait_s(30 * ONE, 30 * ONE) == 0.0
    assert BUCKET.wait_s(30 * ONE, 30 * ONE + 1) == 0.001  # rounded up to the millisecond
    # one transfer over the capacity fits a full bucket (it would never fit otherwise), not a batch of several
    assert BUCKET.fits(50 * ONE, 80 * ONE, 1) and not BUCKET.fits(49 * ONE, 80 * ONE, 1)
    assert not BUCKET.fits(50 * ONE, 80 * ONE, 2)
    assert BUCKET.wait_s(40 * ONE, 80 * ONE) == 10.0  # until full
    assert BUCKET.text(30 * ONE) == "30 TST" and BUCKET.text(ONE // 5) == "0.2 TST"


# ---- the co-sign service with a limiter
def _transfer(nonce: int, amount_tst: float, *, plain: bool = False) -> bytes:
    body = b"hello %d" % nonce if plain else TokenBody(TST[0], TST[1], b"\x02" * 32, int(amount_tst * ONE)).encode()
    return Message(MESSAGE_VERSION, nonce, Domain(ORIGIN), BRIDGE, Domain(DEST), b"\x03" * 32, body).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self, path: str, raws: list[bytes]) -> None:
        self.path, self.raws, self.clock = path, raws, Clock()
        self.chain = FakeCosignedChain()
        self.metrics = Metrics()
        self.service = self.start()

    def start(self) -> CosignService:
        """A (new) validator process on the same store."""
        store = Store(self.path)
        directory = TokenDirectory({ORIGIN: BRIDGE}, {ORIGIN: "l1", DEST: "sol"},
                                   {(DEST, TST): TokenPlace("TST", 1, False)})
        limiter = PayoutLimiter({("sol", None, "TST"): BUCKET}, directory, store.aio, self.metrics, clock=self.clock)

        def latest(validator: str, origin: int) -> int | None:
            rec = store.checkpoint(validator, origin, None)
            return None if rec is None else rec.index

        return CosignService(store, {"sol": self.chain}, {"sol": {VALIDATOR: "0x" + "11" * 32}}, latest,
                             self.metrics, clock=self.clock, limiter=limiter)

    def sign(self, raws: list[bytes], **terms: int) -> tuple[str, bytes]:
        return asyncio.run(self.service.cosign(VALIDATOR, _request(raws, **terms)))

    def refused(self, raws: list[bytes], **terms: int) -> CosignRefused:
        with pytest.raises(CosignRefused) as info:
            self.sign(raws, **terms)
        return info.value

    def room(self) -> float:
        return self.metrics.value("validator_payout_limit_room_home_units", chain="sol", remote="l1", token="TST",
                                  validator=VALIDATOR)


@pytest.fixture
def world(tmp_path) -> World:
    raws = [_transfer(0, 20), _transfer(1, 20), _transfer(2, 20), _transfer(3, 5, plain=True), _transfer(4, 80)]
    path = f"sqlite:///{tmp_path / 'v.db'}"
    store = Store(path)
    found = [DispatchedMessage(Message.decode(r), r, MessageId(keccak256(r)), Height(1), TxHash("0x" + "00" * 32), i,
                               time.time()) for i, r in enumerate(raws)]
    store.record_dispatched(found, cursor=("origin:1000", 1), known_destinations={DEST})
    store.save_checkpoint(CheckpointRecord(validator=VALIDATOR, origin=ORIGIN, index=len(raws) - 1,
                                           origin_mailbox="0x" + "00" * 32, root="0x" + "00" * 32, signature="0x",
                                           signed_at=time.time()))
    store.close()
    return World(path, raws)


def test_over_the_room_is_refused_with_when_it_fits_and_paid_once_refilled(world: World) -> None:
    m0, m1, m2 = world.raws[:3]
    world.sign([m0])
    world.sign([m1])
    assert world.room() == 10 * ONE
    refusal = world.refused([m2])
    assert isinstance(refusal, CosignRateLimited) and refusal.reason == PAYOUT_RATE_LIMITED
    assert refusal.retry_after_s == 10.0
    assert "rate limited: room 10 TST of 50 TST (from l1), refills 1 TST/s, would fit in 10 s" in str(refusal)
    assert world.metrics.value("validator_cosign_rate_limited_total", chain="sol") == 1
    world.clock.now += 9.999
    assert isinstance(world.refused([m2]), CosignRateLimited)
    world.clock.now += 0.001
    world.sign([m2])
    assert world.room() == 0


def test_the_same_payload_again_takes_no_room_and_only_signed_payloads_take_any(world: World) -> None:
    m0, m1 = world.raws[:2]
    first = world.sign([m0])
    for _ in range(5):  # the idempotent retry (rule 5): the same signature, no room taken
        assert world.sign([m0]) == first
    assert world.room() == 30 * ONE
    # refused by an earlier rule (a payload that delivers other ids): takes nothing
    with pytest.raises(CosignRefused):
        asyncio.run(world.service.cosign(VALIDATOR, _request([m1], extra=b"x" * 32)))
    # another payload for the same message while the first can still land: refused by the once-rule, takes nothing
    assert world.refused([m0], sequence=6).reason == "already cosigned"
    world.sign([m1])
    assert world.room() == 10 * ONE


def test_a_restart_reads_the_bucket_from_the_store(world: World) -> None:
    m0, m1, m2 = world.raws[:3]
    world.sign([m0])
    world.sign([m1])
    world.service = world.start()  # a new process on the same store: the limit holds
    assert isinstance(world.refused([m2]), CosignRateLimited)
    world.clock.now += 10
    world.sign([m2])


def test_a_payload_that_can_never_land_gives_its_room_back_when_it_is_replaced(world: World) -> None:
    m0, m1, m2 = world.raws[:3]
    world.sign([m0], sequence=5, last=20)
    world.sign([m1], sequence=6, last=20)
    world.chain.height = 25  # both can never land now, and neither landed
    # m0 again in a new payload: the old one's 20 come back first (room 30), then the new one takes 20
    world.sign([m0], sequence=7, last=40)
    assert world.room() == 10 * ONE
    world.sign([m1], sequence=8, last=40)
    assert world.room() == 10 * ONE  # (capped at the capacity: 10 + 20 + 20 would be 50, then 20 taken)
    assert isinstance(world.refused([m2], sequence=9, last=40), CosignRateLimited)


def test_plain_messages_are_never_limited_and_a_batch_sums_its_transfers(world: World) -> None:
    m0, m1, m2, plain, _big = world.raws
    world.sign([plain])
    assert "validator_payout_limit_room_home_units" not in world.metrics.render()
    refusal = world.refused([m0, m1, m2])  # 60 together: over the capacity, never as one payload
    assert isinstance(refusal, CosignRateLimited) and "together they are over the capacity" in str(refusal)
    world.sign([m0, m1])
    assert world.room() == 10 * ONE


def test_one_transfer_over_the_capacity_goes_when_the_bucket_is_full_and_empties_it(world: World) -> None:
    m0, big = world.raws[0], world.raws[4]
    world.sign([m0])
    refusal = world.refused([big])
    assert isinstance(refusal, CosignRateLimited) and refusal.retry_after_s == 20.0  # until full
    world.clock.now += 20
    world.sign([big])
    assert world.room() == 0


# ---- the relayer's side
def test_the_relayer_waits_what_a_quorum_of_validators_said() -> None:
    waits = {"0x" + "01" * 20: None, "0x" + "02" * 20: 7.5, "0x" + "03" * 20: 12.0}  # None: it signs

    def answer(request: httpx.Request) -> httpx.Response:
        wait = waits[request.url.path.split("/")[2]]
        if wait is None:
            return httpx.Response(200, json={"signer": "s", "signature": "00"})
        return httpx.Response(429, json={"detail": {"error": "rate limited: ...", "reason": PAYOUT_RATE_LIMITED,
                                                    "retry_after_s": wait}})

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            refs = [ValidatorRef(address=a, url=f"http://v/validators/{a}") for a in waits]
            with pytest.raises(PayoutRateLimited) as info:
                await HttpCosigner(refs, http).cosign(_request([_transfer(0, 1)]), 2)
            assert info.value.retry_after_s == 7.5  # the second of a 2-quorum: one signs, the other in 7.5 s
            assert reason_of(info.value) is FailureReason.RATE_LIMITED
            assert Undelivered.of([], info.value).wait_s == 7.5
            with pytest.raises(PayoutRateLimited) as info:
                await HttpCosigner(refs, http).cosign(_request([_transfer(0, 1)]), 3)
            assert info.value.retry_after_s == 12.0

    asyncio.run(go())


# ---- the config
def _settings(limits: list[dict[str, object]]) -> Settings:
    doc = load_settings(EXAMPLE, env={}).model_dump(mode="json", exclude_unset=True)
    doc["chains"]["cosmos"] = {
        "family": "cosmos", "domain": 7777, "chain_id": "c-1", "rpc_url": "http://127.0.0.1:1",
        "rest_url": "http://127.0.0.1:2", "fee_denom": "ustake", "vault": "cosmos1vault", "multisig_threshold": 2,
        "multisig_pubkeys": ["02" + "11" * 32, "03" + "22" * 32, "02" + "33" * 32],
        "tokens": {"TST": {"denom": "uxtst", "decimals": 6, "wrapped": True, "home_domain": 1,
                           "home_token": "0x" + "07" * 32, "home_decimals": 18}}}
    doc["validator"]["payout_limits"] = limits
    return Settings.model_validate(doc)


def test_the_devnet_default_is_no_limit() -> None:
    assert load_settings(EXAMPLE, env={}).validator.payout_limits == []


def test_payout_limits_resolve_to_buckets_in_home_units() -> None:
    s = _settings([{"chain": "cosmos", "remote": "l1", "token": "TST", "capacity": 10 * ONE, "refill_per_s": ONE}])
    limiter = PayoutLimiter.from_settings(s, TokenDirectory({}), None, Metrics())  # type: ignore[arg-type]
    assert limiter.limits == {("cosmos", s.chains["l1"].domain, "TST"): Bucket(10 * ONE, ONE, "TST", 18)}


@pytest.mark.parametrize(("entry", "needle"), [
    ({"chain": "l1", "token": "TST"}, "validator.payout_limits[0].chain names 'l1', which is not a Solana or Cosmos"),
    ({"chain": "nope", "token": "TST"}, "validator.payout_limits[0].chain names 'nope'"),
    ({"chain": "cosmos", "remote": "mars", "token": "TST"}, "validator.payout_limits[0].remote names 'mars'"),
    ({"chain": "cosmos", "remote": "cosmos", "token": "TST"}, "validator.payout_limits[0].remote names 'cosmos'"),
    ({"chain": "cosmos", "token": "XYZ"}, "validator.payout_limits[0].token names 'XYZ', which is not under chains."),
    ({"chain": "cosmos", "token": "TST", "capacity": 0}, "capacity"),
    ({"chain": "cosmos", "token": "TST", "refill_per_s": -1}, "refill_per_s"),
])
def test_a_bad_payout_limit_names_its_key(entry: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        _settings([{"capacity": 5, "refill_per_s": 1, **entry}])
    assert needle in str(info.value)


def test_a_repeated_payout_limit_is_refused() -> None:
    entry = {"chain": "cosmos", "token": "TST", "capacity": 5, "refill_per_s": 1}
    with pytest.raises(ValidationError, match=r"validator.payout_limits\[1\] repeats chain 'cosmos'"):
        _settings([entry, entry])


# ---- the relayer's processor: a refusal for a payout limit waits what the validators said, spending no attempt
class LimitedChain(FakeChain):
    """A co-signed destination whose validators have room for ``room`` more messages, then say 7.5 s."""

    def __init__(self) -> None:
        super().__init__("d", 2)
        self.room = 2

    async def submit_delivery(self, batch, estimate=None):  # type: ignore[no-untyped-def]
        if len(batch.items) > self.room:
            raise PayoutRateLimited("0 of 2 co-signatures for d, the others over a payout limit: rate limited: ...",
                                    chain="d", retry_after_s=7.5)
        self.room -= len(batch.items)
        return await super().submit_delivery(batch, estimate)


async def test_the_processor_sends_what_fits_and_the_rest_waits_the_validators_wait(tmp_path) -> None:
    from config.settings import RelayerRoleSettings
    from relayer.pipeline.indexer import OriginIndexer
    from relayer.pipeline.processor import DestinationProcessor
    from relayer.store import MessageState
    from tests.unit.test_pipeline import Clock as PipelineClock
    from tests.unit.test_pipeline import TreeCollector

    clock = PipelineClock()
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="test", clock=clock)
    origin, dest = FakeChain("o", 1), LimitedChain()
    indexer = OriginIndexer(origin, store, known_destinations={1, 2})
    settings = RelayerRoleSettings(batch_size=4, backoff_base_s=1.0, backoff_max_s=8.0, max_attempts=3)
    metrics = Metrics()
    proc = DestinationProcessor(dest, store, {1: indexer}, TreeCollector(origin.mailbox), settings, metrics,  # type: ignore[arg-type]
                                clock=clock)
    try:
        sent = [origin.dispatch(2, b"t%d" % i) for i in range(3)]
        await indexer.poll_once()
        assert await proc.prepare_and_submit_once() == 2  # the batch of 3 split: the oldest two fit
        assert [[i.id for i in b.items] for b in dest.submitted] == [[sent[0].id], [sent[1].id]]
        rec = store.get(sent[2].id)
        assert rec.state in (MessageState.DISPATCHED.value, MessageState.ATTESTED.value) and rec.attempts == 0
        assert rec.last_reason == FailureReason.RATE_LIMITED.value and "rate limited" in rec.last_error
        assert rec.next_attempt_at - clock.now == pytest.approx(7.5)
        assert metrics.value("relayer_messages_rate_limited_total", destination="d") == 1
        clock.now += 7.5
        dest.room = 1  # refilled
        assert await proc.prepare_and_submit_once() == 1
        assert await proc.confirm_once() == 3
        assert store.get(sent[2].id).attempts == 0
    finally:
        store.close()
