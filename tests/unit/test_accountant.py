"""The global accountant (relayer/pipeline/accountant.py): the ledger's arithmetic, the attester's refusal of a transfer
that pays out more than was locked (and its catching up), the rebuild from a store, and the co-sign check.

Chains are fakes (tests/fakes/chain.py, and a co-signed destination below whose 'transaction' is its ids, a
sequence and a tag); the store is a real SQLite file.
"""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs

from adapters.base import CosignRefused, CosignRequest, DispatchedMessage, Height, SignedTerms, TxHash
from adapters.bridge_memo import TokenBody
from adapters.checkpoint import CheckpointSigner
from adapters.message import MESSAGE_VERSION, Domain, Message, MessageId, keccak256
from config.errors import ConfigError
from relayer.daemon import failpoints
from relayer.daemon.metrics import Metrics
from relayer.pipeline.accountant import GlobalAccountant, Ledger, TokenDirectory, TokenPlace, TokenTransfer
from relayer.pipeline.cosign import CosignService
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.validator import OriginAttester
from relayer.store import CheckpointRecord, Store
from tests.fakes.chain import FakeChain

VALIDATOR_KEY = "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"  # public anvil devnet test key
L1, A, B, COSMOS = 1000, 2000, 3000, 6000
BRIDGE = {d: bytes([d // 1000]) * 32 for d in (L1, A, B, COSMOS)}
TST = (L1, b"\0" * 12 + b"\x7e" * 20)
OTHER = (A, b"\0" * 12 + b"\x0a" * 20)  # a token homed on rollup A
TOKEN = 10**18  # TST has 18 decimals at home
SCALE = 10**12  # and 6 on the Cosmos chain


def directory() -> TokenDirectory:
    return TokenDirectory(dict(BRIDGE), {L1: "l1", A: "rollup_a", B: "rollup_b", COSMOS: "cosmos"},
                          {(COSMOS, TST): TokenPlace("TST", SCALE, False),
                           (A, OTHER): TokenPlace("OTH", 1, True, "custody")},
                          {TST: "TST", OTHER: "OTH"})


def token_raw(origin: int, nonce: int, dest: int, amount: int, token: tuple[int, bytes] = TST, *,
              sender: bytes | None = None, body: bytes | None = None) -> bytes:
    body = body if body is not None else TokenBody(token[0], token[1], b"\x00" * 12 + b"\x99" * 20, amount).encode()
    return Message(MESSAGE_VERSION, nonce, Domain(origin), BRIDGE[origin] if sender is None else sender, Domain(dest),
                   BRIDGE[dest], body).encode()


def transfer(origin: int, dest: int, amount: int, token: tuple[int, bytes] = TST, nonce: int = 0) -> TokenTransfer:
    t = directory().transfer(token_raw(origin, nonce, dest, amount, token))
    assert t is not None
    return t


# ---- the ledger's arithmetic

def test_home_locks_and_unlocks_and_non_home_chains_hold_what_came_in():
    ledger = Ledger()
    for t in (transfer(L1, A, 10 * TOKEN), transfer(L1, COSMOS, 4 * TOKEN), transfer(A, L1, 3 * TOKEN)):
        assert ledger.refusal(t) is None
        ledger.apply(t)
    assert ledger.locked[TST] == 11 * TOKEN
    assert ledger.outstanding[TST] == {A: 7 * TOKEN, COSMOS: 4 * TOKEN}
    assert sum(ledger.outstanding[TST].values()) == ledger.locked[TST]
    # more back home from a chain than it holds: refused, whatever the home lock
    refused = ledger.refusal(transfer(COSMOS, L1, 5 * TOKEN))
    assert refused is not None and (refused.reason, refused.chain, refused.available) == ("exceeds_outstanding", COSMOS,
                                                                                          4 * TOKEN)
    assert ledger.refusal(transfer(COSMOS, L1, 4 * TOKEN)) is None
    # a lock at home needs nothing: the bridge took the tokens in the same transaction
    assert ledger.refusal(transfer(L1, B, 10**30)) is None


def test_wrapped_tokens_hop_between_two_non_home_chains():
    ledger = Ledger()
    for t in (transfer(L1, A, 5 * TOKEN), transfer(A, B, 5 * TOKEN), transfer(B, A, 2 * TOKEN),
              transfer(B, COSMOS, 3 * TOKEN)):
        assert ledger.refusal(t) is None
        ledger.apply(t)
    assert dict(ledger.outstanding[TST]) == {A: 2 * TOKEN, B: 0, COSMOS: 3 * TOKEN}
    assert ledger.locked[TST] == 5 * TOKEN
    refused = ledger.refusal(transfer(B, A, 1))
    assert refused is not None and refused.reason == "exceeds_outstanding" and refused.available == 0
    # a token homed elsewhere is its own account: TST held on A does not back OTH leaving A's home... nor B
    ledger.apply(transfer(A, B, 7, OTHER))
    assert ledger.locked[OTHER] == 7 and ledger.outstanding[OTHER][B] == 7
    assert ledger.refusal(transfer(B, COSMOS, 8, OTHER)) is not None
    assert ledger.refusal(transfer(B, A, 7, OTHER)) is None


def test_plain_messages_are_not_counted():
    d = directory()
    assert d.transfer(token_raw(A, 0, L1, 10**30, sender=b"\x42" * 32)) is None  # a token body, not from A's bridge
    assert d.transfer(token_raw(A, 0, L1, 0, body=b"hello")) is None  # from the bridge, not a token body
    assert d.transfer(b"not a message") is None
    t = d.transfer(token_raw(A, 7, L1, 5))
    assert t is not None and (t.origin, t.nonce, t.destination, t.token, t.amount) == (A, 7, L1, TST, 5)


def test_failpoint_switch_is_parsed_strictly():
    assert failpoints.parse("cosign_once_rule=off") == {"cosign_once_rule": "off"}
    with pytest.raises(ConfigError, match="SWITCH=off"):
        failpoints.parse("cosign_once_rule=hang")
    with pytest.raises(ConfigError):
        failpoints.parse("after_claim=off")


# ---- the attester: refuses, waits, catches up; the ledger rebuilt from the store

class BridgeChain(FakeChain):
    """A fake origin whose messages can come from its bridge (token transfers) or anyone."""

    def send(self, destination: int, amount: int = 0, *, sender: bytes | None = None,
             body: bytes | None = None) -> bytes:
        self.height = Height(self.height + 1)
        raw = token_raw(int(self.domain), len(self.messages), destination, amount, sender=sender, body=body)
        msg = Message.decode(raw)
        self.messages.append(DispatchedMessage(msg, raw, msg.id, self.height, TxHash(f"0x{self.height:064x}"), 0,
                                               time.time()))
        self.tree.append(msg.id)
        return "0x" + msg.id.hex()


@pytest.fixture
def chains(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    metrics = Metrics()
    out: dict[int, tuple[BridgeChain, OriginIndexer, OriginAttester]] = {}

    def lagging() -> list[int]:  # as the daemon wires it
        return [d for d, (_c, i, a) in out.items() if i.indexed_height is None
                or i.indexed_height < (i.finalized_height or 0) or a.latest_index < i.tree.count - 1]

    accountant = GlobalAccountant(directory(), store, metrics, lagging=lagging)
    signer = CheckpointSigner.from_hex(VALIDATOR_KEY)
    for domain in (L1, A, B):
        chain = BridgeChain(f"c{domain}", domain)
        indexer = OriginIndexer(chain, store, known_destinations={L1, A, B, COSMOS})
        out[domain] = (chain, indexer, OriginAttester(chain, indexer, [signer], store, metrics, accountant=accountant))
    yield store, metrics, accountant, out
    store.close()


async def poll(chains_: dict, domain: int) -> int | None:
    _chain, indexer, attester = chains_[domain]
    await indexer.poll_once()
    return await attester.poll_once()


async def test_a_lagging_origin_is_waited_for_and_an_unbacked_burn_never_signed(chains):
    store, metrics, accountant, c = chains
    l1, a, b = c[L1][0], c[A][0], c[B][0]
    l1.send(A, 10 * TOKEN)                   # l1 nonce 0: lock 10 for A
    a.send(L1, body=b"plain")                # A nonce 0: plain
    a.send(B, 4 * TOKEN)                     # A nonce 1: burn 4 (backed by the lock, once the validator saw it)
    a.send(L1, 0, sender=b"\x42" * 32)       # A nonce 2: someone else's "token" message: plain
    with capture_logs() as logs:
        # the validator has not indexed l1 yet: A is signed up to the plain message, not past the burn
        assert await poll(c, A) == 0
        assert await poll(c, A) == 0
    events = [e for e in logs if e["event"].startswith("accountant")]
    assert [e["event"] for e in events] == ["accountant_waiting"], "logged once, not once per poll"
    expected = {"origin": "rollup_a", "token": "TST", "available": 0, "nonce": 1, "amount": 4 * TOKEN,
                "waiting_for": ["l1", "rollup_b"]}
    assert {k: events[0][k] for k in expected} == expected
    assert metrics.value("validator_accountant_refused_total", origin="rollup_a", reason="exceeds_outstanding") == 0
    assert metrics.value("validator_accountant_blocked", origin="rollup_a") == 1
    signed = store.checkpoint(CheckpointSigner.from_hex(VALIDATOR_KEY).address, A, None)
    assert signed is not None and signed.index == 0
    # l1 attested: A catches up by itself, to the end
    assert await poll(c, L1) == 0
    with capture_logs() as logs:
        assert await poll(c, A) == 2
    assert [e["event"] for e in logs if e["event"].startswith("accountant")] == ["accountant_caught_up"]
    assert metrics.value("validator_accountant_blocked", origin="rollup_a") == 0
    assert dict(accountant.ledger.outstanding[TST]) == {A: 6 * TOKEN, B: 4 * TOKEN}
    assert metrics.value("validator_accountant_outstanding", token="TST", chain="rollup_b") == 4 * TOKEN
    assert metrics.value("validator_accountant_locked", token="TST", chain="l1") == 10 * TOKEN

    # B burns more than it ever received (a wrapped token minted out of thin air): never signed, whatever follows
    b.send(L1, 4 * TOKEN)
    burn = b.send(L1, 1)
    b.send(A, body=b"a plain message behind it waits too")
    a.send(L1, body=b"indexed, not attested yet")
    await c[A][1].poll_once()
    with capture_logs() as logs:
        assert await poll(c, B) == 0  # A lags: maybe that is where the amount comes from
        assert await poll(c, A) == 3  # it is not
        assert await poll(c, B) == 0
        assert await poll(c, B) == 0
    events = [e for e in logs if e["event"].startswith("accountant")]
    assert [e["event"] for e in events] == ["accountant_waiting", "accountant_refused"]
    expected = {"origin": "rollup_b", "chain": "rollup_b", "token": "TST", "reason": "exceeds_outstanding",
                "available": 0, "nonce": 1, "amount": 1, "destination": "l1", "message_id": burn}
    assert {k: events[1][k] for k in expected} == expected
    assert events[1]["log_level"] == "error"
    assert metrics.value("validator_accountant_refused_total", origin="rollup_b", reason="exceeds_outstanding") == 1
    assert metrics.value("validator_accountant_blocked", origin="rollup_b") == 1
    assert accountant.ledger.locked[TST] == 6 * TOKEN
    assert dict(accountant.ledger.outstanding[TST]) == {A: 6 * TOKEN, B: 0}

    # the ledger rebuilt from the store (what a restart does) equals the one moved forward by the attesters
    rebuilt = GlobalAccountant(directory(), store, Metrics())
    rebuilt.load({d: attester.latest_index for d, (_c, _i, attester) in c.items()})
    assert rebuilt.ledger.snapshot() == accountant.ledger.snapshot()
    assert rebuilt.ledger.snapshot()["outstanding"] == {f"{L1}:0x{TST[1].hex()}": {A: 6 * TOKEN}}


async def test_attestation_across_several_transfers_in_one_range_counts_them_in_order(chains):
    _store, _metrics, accountant, c = chains
    l1, a = c[L1][0], c[A][0]
    l1.send(A, 3 * TOKEN)
    assert await poll(c, L1) == 0
    a.send(B, 2 * TOKEN)
    a.send(B, 1 * TOKEN)       # together exactly what A holds
    a.send(B, 1)               # one unit more: the range is signed up to the one before it
    assert await poll(c, A) == 1
    assert dict(accountant.ledger.outstanding[TST]) == {A: 0, B: 3 * TOKEN}


# ---- co-signing: what the chain paid out + reserved + this payout <= attested there; each message once

class CosignedChain:
    """A co-signed destination: a 'transaction' is its ids, ``|seq=N|`` and a tag; like a Cosmos multisig account
    it executes only at its current sequence (``cosign_can_land``) and does not itself refuse a second payout."""

    name = "cosmos"
    domain = Domain(COSMOS)

    def __init__(self) -> None:
        self.on_chain: set[bytes] = set()
        self.sequence = 0
        self.supply = 0  # uxtst paid out (6 decimals)
        self.custody = 0

    @staticmethod
    def payload(raws: list[bytes], sequence: int, tag: bytes = b"") -> bytes:
        return b"".join(keccak256(r) for r in raws) + b"|seq=%d|" % sequence + tag

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        body = request.payload.split(b"|")[0]
        return [MessageId(body[i:i + 32]) for i in range(0, len(body), 32)]

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        return "signer-" + key[-4:], keccak256(key.encode() + request.payload)

    async def delivered(self, ids: list[MessageId]) -> list[bool]:
        return [bytes(i) in self.on_chain for i in ids]

    async def cosign_can_land(self, request: CosignRequest) -> bool:
        return self.sequence <= int(request.payload.split(b"|")[1].removeprefix(b"seq="))

    async def cosign_terms(self, request: CosignRequest) -> SignedTerms:
        """The signed terms of the once-rule (``CosignedDelivery``): the payload's sequence, never expiring by
        height."""
        return SignedTerms(last_height=2**62, sequence=int(request.payload.split(b"|")[1].removeprefix(b"seq=")))

    async def terms_can_land(self, terms: SignedTerms) -> bool:
        return terms.sequence is None or self.sequence <= terms.sequence

    def land(self, raws: list[bytes], amount_each: int) -> None:
        """A co-signed payout executes: each message paid (again, if it was)."""
        for raw in raws:
            self.on_chain.add(keccak256(raw))
            self.supply += amount_each // SCALE
        self.sequence += 1

    async def token_supply(self, symbol: str) -> int:
        assert symbol == "TST"
        return self.supply

    async def token_balance(self, symbol: str, holder: str) -> int:
        assert (symbol, holder) == ("OTH", "custody")
        return self.custody


VALIDATOR = "0x" + "aa" * 20


@pytest.fixture
def cosign_world(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    accountant = GlobalAccountant(directory(), store, Metrics())
    chain = CosignedChain()
    raws = [token_raw(L1, n, COSMOS, 5 * TOKEN) for n in range(3)]
    yield accountant, chain, raws, store
    store.close()


def attest(accountant: GlobalAccountant, *raws: bytes) -> None:
    d = accountant.directory
    accountant.commit([t for t in (d.transfer(r) for r in raws) if t is not None])


def request(raws: list[bytes], sequence: int, tag: bytes = b"") -> CosignRequest:
    return CosignRequest("cosmos", CosignedChain.payload(raws, sequence, tag), tuple(raws),
                         {"expires_at": "1"})  # the requester's word: 'long expired'


async def refused(accountant: GlobalAccountant, chain: CosignedChain, req: CosignRequest) -> str:
    with pytest.raises(CosignRefused) as exc:
        await accountant.check_cosign(VALIDATOR, chain, req)  # type: ignore[arg-type]
    return exc.value.reason


async def test_one_message_is_paid_once_at_whatever_sequence_it_is_asked_for(cosign_world):
    accountant, chain, raws, _store = cosign_world
    attest(accountant, raws[0])
    await accountant.check_cosign(VALIDATOR, chain, request(raws[:1], 0))  # type: ignore[arg-type]
    # finding 1: the same message at the next sequences while the first can still land
    assert await refused(accountant, chain, request(raws[:1], 1)) == "accountant: payout pending"
    assert await refused(accountant, chain, request(raws[:1], 2)) == "accountant: payout pending"
    # the same transaction again is no second payout
    await accountant.check_cosign(VALIDATOR, chain, request(raws[:1], 0))  # type: ignore[arg-type]
    chain.land(raws[:1], 5 * TOKEN)
    assert await refused(accountant, chain, request(raws[:1], 1)) == "accountant: already paid"
    assert accountant.metrics.value("validator_accountant_cosign_refused_total", chain="cosmos",
                                    reason="already_paid") == 1


async def test_a_transaction_that_can_no_longer_land_frees_its_message(cosign_world):
    accountant, chain, raws, _store = cosign_world
    attest(accountant, raws[0])
    await accountant.check_cosign(VALIDATOR, chain, request(raws[:1], 0))  # type: ignore[arg-type]
    chain.sequence = 1  # sequence 0 used by another delivery: the first transaction can never land
    await accountant.check_cosign(VALIDATOR, chain, request(raws[:1], 1))  # type: ignore[arg-type]
    assert await refused(accountant, chain, request(raws[:1], 2)) == "accountant: payout pending"


async def test_room_left_by_other_messages_does_not_buy_a_second_payout(cosign_world):
    accountant, chain, raws, _store = cosign_world
    attest(accountant, *raws)  # 15 TST attested to the Cosmos chain, none paid
    await accountant.check_cosign(VALIDATOR, chain, request(raws[:1], 0))  # type: ignore[arg-type]
    assert await refused(accountant, chain, request(raws[:1], 1)) == "accountant: payout pending"
    assert await refused(accountant, chain, request([raws[1], raws[1]], 1)) == "accountant: duplicate message"
    await accountant.check_cosign(VALIDATOR, chain, request(raws[1:], 1))  # type: ignore[arg-type]


async def test_payouts_stay_within_what_was_attested_in_home_units(cosign_world):
    accountant, chain, raws, _store = cosign_world
    attest(accountant, raws[0], raws[1])  # 10 TST = 10 * 10**18 home units attested to the Cosmos chain
    chain.supply = 1  # one uxtst (10**12 home units) paid out by something else
    await accountant.check_cosign(VALIDATOR, chain, request(raws[:1], 0))  # type: ignore[arg-type]
    reason = await refused(accountant, chain, request(raws[1:2], 1))
    assert reason == "accountant: exceeds attested"
    with capture_logs() as logs:
        await refused(accountant, chain, request(raws[1:2], 2))
    event = next(e for e in logs if e["event"] == "accountant_cosign_refused")
    assert event["paid_and_reserved"] == 5 * TOKEN + SCALE and event["available"] == 10 * TOKEN
    # a message the validator did not count (not attested): nothing attested there for it
    assert await refused(accountant, chain, request(raws[2:], 1)) == "accountant: exceeds attested"


async def test_native_payouts_at_home_keep_what_backs_the_wrapped_tokens(cosign_world):
    accountant, _chain, _raws, _store = cosign_world
    home = CosignedChain()
    home.domain = Domain(A)  # type: ignore[misc]
    home.name = "rollup_a"  # type: ignore[misc]
    out = token_raw(A, 0, B, 7, OTHER)
    back = token_raw(B, 0, A, 3, OTHER)
    attest(accountant, out, back)  # 7 locked, 3 came back: 4 still back the wrapped tokens on B
    home.custody = 7  # the custodian holds the 7 (the 3 not paid yet)
    await accountant.check_cosign(VALIDATOR, home, request([back], 0))  # type: ignore[arg-type]
    home.custody = 4 + 2  # something else took 1 out of custody: paying 3 would leave less than the 4 needed
    home.sequence = 1
    assert await refused(accountant, home, request([back], 1)) == "accountant: exceeds attested"
    plain = token_raw(B, 1, A, 3, OTHER, sender=b"\x42" * 32)  # a token body, not from B's bridge
    assert await refused(accountant, home, request([plain], 1)) == "accountant: not a token transfer"


async def test_cosign_service_with_its_once_rule_off_still_pays_once(tmp_path, monkeypatch):
    """The once-rule switched off (the test-only failpoint): the accountant alone refuses the second payout."""
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    raw = token_raw(L1, 0, COSMOS, 5 * TOKEN)
    msg = Message.decode(raw)
    store.record_dispatched([DispatchedMessage(msg, raw, msg.id, Height(1), TxHash("0x" + "00" * 32), 0, time.time())],
                            cursor=("index:1000", 1), known_destinations={COSMOS})
    store.save_checkpoint(CheckpointRecord(validator=VALIDATOR, origin=L1, index=0, origin_mailbox="0x" + "00" * 32,
                                           root="0x" + "00" * 32, signature="0x", signed_at=time.time()))
    metrics = Metrics()
    accountant = GlobalAccountant(directory(), store, metrics)
    accountant.load({L1: 0})
    chain = CosignedChain()
    service = CosignService(store, {"cosmos": chain}, {"cosmos": {VALIDATOR: "0x" + "11" * 32}},  # type: ignore[dict-item]
                            lambda v, o: 0, metrics, accountant=accountant)
    monkeypatch.setattr(failpoints, "ENABLED", True)
    monkeypatch.setattr(failpoints, "ARMED", {"cosign_once_rule": "off"})
    await service.cosign(VALIDATOR, request([raw], 0))
    for sequence in (1, 2):
        with pytest.raises(CosignRefused) as exc:
            await service.cosign(VALIDATOR, request([raw], sequence))
        assert exc.value.reason == "accountant: payout pending"
    chain.land([raw], 5 * TOKEN)
    with pytest.raises(CosignRefused, match="already delivered"):
        await service.cosign(VALIDATOR, request([raw], 1))
    assert metrics.value("validator_accountant_cosign_refused_total", chain="cosmos", reason="payout_pending") == 2
    assert metrics.value("validator_accountant_cosign_refused_total", chain="cosmos", reason="already_paid") == 1
    # and with the once-rule on, the once-rule refuses first (the accountant is the second line)
    monkeypatch.setattr(failpoints, "ARMED", {})
    with pytest.raises(CosignRefused) as exc:
        await service.cosign(VALIDATOR, request([raw], 3))
    assert exc.value.reason == "already delivered"
    assert metrics.value("validator_accountant_cosign_refused_total", chain="cosmos", reason="already_paid") == 1
    store.close()
