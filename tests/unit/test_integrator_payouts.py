"""Integrator payouts (router/payouts.py, router/integrators.py, router/native.py): the arithmetic (exact, floored,
the carry), registration rules, and the exactly-once bookkeeping (an intent covered by at most one payout, one
payout under way per integrator and chain, a failed payout's intents covered again, a racing daemon writes
nothing)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from adapters.base import AdapterError
from adapters.capabilities import Bytes32Accounts, PayoutMinimum, PreparedTx, TxSpec
from adapters.evm.rawtx import decode_type2
from router.integrators import (
    IntegratorStore,
    RegistrationError,
    check_registration,
    evm_address,
    parse_share,
)
from router.intents import IntentRecord, IntentStatus, IntentStore, intent_fields
from router.payouts import (
    HeldBack,
    PayoutItem,
    PayoutJob,
    PayoutPlan,
    PayoutRow,
    PayoutStore,
    reward,
    rewards_view,
)
from router.rewards import by_chain_day, conversion

OPERATOR_KEY = "0x" + "11" * 32
PAYEE = "0x" + "ab" * 20


# ---------------------------------------------------------------- arithmetic
def test_reward_is_the_exact_floor_and_keeps_the_fraction() -> None:
    assert reward(Decimal("0.29"), 100) == reward(Decimal("0.29"), 100)
    assert reward(Decimal("0.29"), 100).amount == 29  # a float would give 28.999999999999996
    due = reward(Decimal("0.1"), 12_345)
    assert (due.amount, due.carry) == (1234, Decimal("0.5"))
    assert reward(Decimal("0.1"), 5, due.carry).amount == 1  # 0.5 + 0.5


def test_however_the_fees_fall_into_epochs_the_total_paid_is_floor_of_share_times_all_fees() -> None:
    rng = random.Random(7)
    for _ in range(300):
        share = Decimal(rng.randint(0, 10**6)).scaleb(-6)
        fees = [rng.randint(0, 10**15) for _ in range(rng.randint(1, 12))]
        carry, paid = Decimal(0), 0
        for fee in fees:
            due = reward(share, fee, carry)
            assert due.amount >= 0 and Decimal(0) <= due.carry < 1
            paid, carry = paid + due.amount, due.carry
        assert paid == int((share * sum(fees)).to_integral_value(rounding="ROUND_FLOOR"))


# ---------------------------------------------------------------- registration
class _Bech32(Bytes32Accounts):
    name = "cosmos"

    def account_bytes32(self, address: str) -> bytes:
        from adapters.base import AdapterError

        if not address.startswith("cosmos1"):
            raise AdapterError(f"{address!r} is not a bech32 account address", reason="bad address")
        return b"\0" * 32


def _check(chain: str, address: str) -> str:
    from router.integrators import address_check

    return address_check({"l1": object(), "cosmos": _Bech32()})(chain, address)


def test_share_is_an_exact_decimal_in_zero_one_with_six_places() -> None:
    assert parse_share(0.29) == Decimal("0.29")
    assert parse_share(None) is None
    assert parse_share(1) == Decimal(1)
    for bad in (1.5, -0.1, 0.1234567, True, "x", float("nan")):
        with pytest.raises(RegistrationError) as err:
            parse_share(bad)
        assert err.value.field == "share"


def test_registration_names_the_bad_field() -> None:
    chains = {"l1": object(), "cosmos": object()}
    share, addresses = check_registration("acme", {"payout_addresses": {"l1": PAYEE.upper().replace("0X", "0x")},
                                                   "share": 0.2}, chains, _check)
    assert share == Decimal("0.2") and addresses == {"l1": PAYEE}
    cases = [("ACME", {"payout_addresses": {"l1": PAYEE}}, "code"),
             ("acme", {"payout_addresses": {}}, "payout_addresses"),
             ("acme", {"payout_addresses": {"mars": PAYEE}}, "payout_addresses.mars"),
             ("acme", {"payout_addresses": {"l1": "0x1234"}}, "payout_addresses.l1"),
             ("acme", {"payout_addresses": {"l1": "0x" + "aB" * 20}}, "payout_addresses.l1"),  # bad checksum
             ("acme", {"payout_addresses": {"cosmos": "0x" + "ab" * 32}}, "payout_addresses.cosmos"),
             ("acme", {"payout_addresses": {"cosmos": "osmo1xyz"}}, "payout_addresses.cosmos"),
             ("acme", {"payout_addresses": {"l1": PAYEE}, "share": 2}, "share"),
             ("acme", {"payout_addresses": {"l1": PAYEE}, "extra": 1}, "extra")]
    for code, body, field in cases:
        with pytest.raises(RegistrationError) as err:
            check_registration(code, body, chains, _check)
        assert err.value.field == field, (body, err.value)


def test_eip55_checksummed_addresses_pass() -> None:
    assert evm_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed") == "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"


def test_registration_survives_a_new_store_and_quotes_count_only_registered_codes(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    store = IntegratorStore(engine)
    assert not store.count_quote("acme")
    _, created = store.register("acme", Decimal("0.25"), {"l1": PAYEE})
    assert created
    again, created = IntegratorStore(engine).register("acme", None, {"rollup_a": PAYEE})  # replaced whole
    assert not created and again.share is None and dict(again.payout_addresses) == {"rollup_a": PAYEE}
    assert store.count_quote("acme") and store.count_quote("acme") and not store.count_quote("made-up")
    assert sum(IntegratorStore(engine).quotes("acme").values()) == 2
    assert IntegratorStore(engine).quotes("made-up") == {}


# ---------------------------------------------------------------- bookkeeping
class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        self.t += 1
        return self.t


def _intent(i: int, *, fee: int, code: str = "acme", chain: str = "l1", kind: str = "transfer",
            status: str = IntentStatus.INCLUDED, origin: str | None = None) -> Any:
    return intent_fields({"id": f"int_{i:032x}", "batch": "b", "created_at": 1_700_000_000.0 + i,
                          "updated_at": 1_700_000_000.0, "kind": kind, "token": "USDC", "amount": "1", "units": "1",
                          "recipient": PAYEE, "integrator": code, "chain": chain, "origin": origin or chain,
                          "status": status, "fee_paid": str(fee), "fee_paid_usd": fee / 1e18 * 3000})


def _setup(tmp_path: Path) -> tuple[IntentStore, PayoutStore, Clock]:
    clock = Clock()
    engine = create_engine(f"sqlite:///{tmp_path / 'p.sqlite'}")
    return IntentStore(engine, clock=clock), PayoutStore(engine, clock=clock), clock


PLAN = PayoutPlan("acme", "l1", PAYEE, "0x" + "0a" * 20, Decimal("0.1"))


def _count(store: PayoutStore, model: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model.__table__)).scalar_one())


def test_a_payout_covers_each_counted_intent_once_and_its_lane_intent_is_stored_with_it(tmp_path: Path) -> None:
    intents, payouts, _ = _setup(tmp_path)
    intents.add_all([_intent(1, fee=1005), _intent(2, fee=2000),
                     _intent(3, fee=7000, status=IntentStatus.SUBMITTED),  # not mined: not counted
                     _intent(4, fee=9000, kind="xchain", origin="l1", chain="rollup_a"),  # included, not delivered
                     _intent(5, fee=4000, kind="xchain", origin="l1", chain="rollup_a",
                             status=IntentStatus.DELIVERED),  # its fee was paid on its origin, l1
                     _intent(6, fee=8000, chain="rollup_a"), _intent(7, fee=500, code="other")])
    row = payouts.create(PLAN)
    assert row is not None
    assert (row.amount, row.fees, row.intents, row.carry) == ("700", "7005", 3, "0.5")
    lane = intents.get(row.intent_id)
    assert lane is not None and lane.kind == "native" and lane.status == IntentStatus.PLANNED
    assert (lane.units, lane.recipient, lane.origin, lane.operator, lane.integrator) == ("700", PAYEE, "l1",
                                                                                          PLAN.operator, None)
    assert payouts.create(PLAN) is None  # one under way at a time
    assert payouts.settle() == []  # its lane intent is still planned
    intents.update(row.intent_id, status=IntentStatus.INCLUDED, tx_hash="0x" + "77" * 32)
    assert payouts.settle() == [(row.id, "paid", "0x" + "77" * 32)]
    assert payouts.create(PLAN) is None  # nothing new
    intents.add_all([_intent(8, fee=5)])
    second = payouts.create(PLAN)
    assert second is not None and (second.amount, second.carry) == ("1", "0.0")  # 0.5 carried + 0.5
    assert _count(payouts, PayoutItem) == 4


def test_a_failed_payout_releases_its_intents_to_the_next_and_keeps_the_earlier_carry(tmp_path: Path) -> None:
    intents, payouts, _ = _setup(tmp_path)
    intents.add_all([_intent(1, fee=1005)])
    first = payouts.create(PLAN)
    assert first is not None and first.amount == "100"
    intents.update(first.intent_id, status=IntentStatus.INCLUDED, tx_hash="0x" + "01" * 32)
    payouts.settle()
    intents.add_all([_intent(2, fee=2000)])
    doomed = payouts.create(PLAN)
    assert doomed is not None and doomed.amount == "200"
    intents.update(doomed.intent_id, status=IntentStatus.FAILED, reason="transaction reverted")
    assert payouts.settle() == [(doomed.id, "failed", None)]
    assert _count(payouts, PayoutItem) == 1
    retry = payouts.create(PLAN)
    assert retry is not None and (retry.amount, retry.intents, retry.carry) == ("200", 1, "0.5")


def test_a_racing_daemon_that_missed_the_payout_under_way_writes_nothing(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    intents, payouts, clock = _setup(tmp_path)
    intents.add_all([_intent(1, fee=1000)])
    assert payouts.create(PLAN) is not None
    intents.add_all([_intent(2, fee=1000)])
    other = PayoutStore(payouts.engine, clock=clock)
    monkeypatch.setattr(other, "_carry", lambda conn, code, chain: (False, Decimal(0)))  # read before it was made
    before = (_count(payouts, PayoutRow), _count(payouts, PayoutItem), _count(payouts, IntentRecord))
    assert other.create(PLAN) is None
    assert (_count(payouts, PayoutRow), _count(payouts, PayoutItem), _count(payouts, IntentRecord)) == before


def test_less_than_one_unit_waits_for_more_fees(tmp_path: Path) -> None:
    intents, payouts, _ = _setup(tmp_path)
    intents.add_all([_intent(1, fee=9)])
    assert payouts.create(PLAN) is None and _count(payouts, PayoutItem) == 0
    intents.add_all([_intent(2, fee=1)])
    row = payouts.create(PLAN)
    assert row is not None and row.amount == "1"


def test_a_payout_below_the_chains_minimum_is_not_made_and_all_of_it_is_paid_once_it_reaches_it(
        tmp_path: Path) -> None:
    intents, payouts, _ = _setup(tmp_path)
    intents.add_all([_intent(1, fee=1005)])
    rent = PayoutMinimum(250, "an account must hold 250")
    held = payouts.create(replace(PLAN, minimum=rent))
    assert held == HeldBack("acme", "l1", PAYEE, 100, 250, "an account must hold 250")
    assert held.reason == ("below the minimum first payout to this address: 100 owed, at least 250 needed (an "
                           "account must hold 250); carried until it reaches it")
    assert (_count(payouts, PayoutRow), _count(payouts, PayoutItem), _count(payouts, IntentRecord)) == (0, 0, 1)
    assert payouts.uncovered_by_chain("acme") == {"l1": 1005}  # still owed, nothing covered
    intents.add_all([_intent(2, fee=1490)])
    assert isinstance(payouts.create(replace(PLAN, minimum=rent)), HeldBack)  # 249: still short
    intents.add_all([_intent(3, fee=10)])
    row = payouts.create(replace(PLAN, minimum=rent))
    assert isinstance(row, PayoutRow) and (row.amount, row.intents, row.carry) == ("250", 3, "0.5")
    assert (_count(payouts, PayoutRow), _count(payouts, PayoutItem)) == (1, 3)


def test_a_minimum_of_zero_or_at_the_amount_takes_the_payout() -> None:
    for minimum in (0, 100):
        engine = create_engine("sqlite://")
        IntentStore(engine).add_all([_intent(1, fee=1005)])
        assert isinstance(PayoutStore(engine).create(replace(PLAN, minimum=PayoutMinimum(minimum))), PayoutRow)


class _Lanes:
    def __init__(self, chains: frozenset[str] = frozenset({"l1"})) -> None:
        self.woken = 0
        self.chains = chains

    def payout_chains(self) -> frozenset[str]:
        return self.chains

    def payout_account(self, chain: str) -> str | None:
        return PLAN.operator

    def wake(self) -> None:
        self.woken += 1


async def _run(fn: Any, *args: Any) -> Any:
    return fn(*args)


def test_the_epoch_pays_each_registered_integrator_on_payable_chains_only(tmp_path: Path) -> None:
    intents, payouts, _ = _setup(tmp_path)
    registry = IntegratorStore(payouts.engine)
    registry.register("acme", Decimal("0.5"), {"l1": PAYEE, "solana": "So11111111111111111111111111111111111111112"})
    intents.add_all([_intent(1, fee=1001), _intent(2, fee=3000, chain="solana"), _intent(3, fee=50, code="nobody")])
    lanes = _Lanes()
    job = PayoutJob(payouts, registry, lanes, _Minimums({}), _run, Decimal("0.1"))
    created = asyncio.run(job.run_once())
    assert [(r.chain, r.amount, r.share) for r in created] == [("l1", "500", "0.5")] and lanes.woken == 1
    assert asyncio.run(job.run_once()) == []
    view = rewards_view(registry.get("acme"), Decimal("0.1"), payouts.of("acme"), payouts.uncovered_by_chain("acme"),
                        {"l1": payouts.last_carry("acme", "l1")}, lanes.payout_chains())
    assert view["by_chain"]["l1"]["in_flight"] == "500" and view["by_chain"]["solana"]["pending"] == "1500"
    assert not view["by_chain"]["solana"]["payable"] and view["payouts"][0]["status"] == "pending"


class _Minimums:
    """The chains' minimum per (chain, address); a chain in ``unreadable`` cannot be read (an injected fault)."""

    def __init__(self, minimums: dict[tuple[str, str], int], unreadable: frozenset[str] = frozenset()) -> None:
        self.minimums, self.unreadable, self.asked = minimums, unreadable, 0

    async def minimum_payout(self, chain: str, address: str) -> PayoutMinimum:
        self.asked += 1
        if chain in self.unreadable:
            raise AdapterError(f"{chain} node away", chain=chain, reason="unavailable")
        return PayoutMinimum(self.minimums.get((chain, address), 0), "rent")


def test_the_epoch_holds_back_a_payout_below_the_minimum_says_why_and_pays_it_once_it_is_reached(
        tmp_path: Path) -> None:
    intents, payouts, _ = _setup(tmp_path)
    registry = IntegratorStore(payouts.engine)
    payee = "So11111111111111111111111111111111111111112"
    registry.register("acme", Decimal("0.5"), {"solana": payee, "l1": PAYEE})
    intents.add_all([_intent(1, fee=1000, chain="solana"), _intent(2, fee=3000)])
    lanes, minimums = _Lanes(frozenset({"l1", "solana"})), _Minimums({("solana", payee): 890_880})
    job = PayoutJob(payouts, registry, lanes, minimums, _run, Decimal("0.1"))

    def view() -> dict[str, Any]:
        return rewards_view(registry.get("acme"), Decimal("0.1"), payouts.of("acme"),
                            payouts.uncovered_by_chain("acme"), {}, lanes.payout_chains(), job.held_back("acme"))

    assert [(r.chain, r.amount) for r in asyncio.run(job.run_once())] == [("l1", "1500")]
    assert job.held_back("acme") == {"solana": HeldBack("acme", "solana", payee, 500, 890_880, "rent")}
    solana = view()["by_chain"]["solana"]
    assert (solana["pending"], solana["payable"], solana["why_not"]) == ("500", True, None)
    assert "500 owed" in solana["pending_reason"] and "890880" in solana["pending_reason"]
    assert view()["by_chain"]["l1"]["pending_reason"] is None
    assert [p["chain"] for p in view()["payouts"]] == ["l1"]  # no row for the held-back payout, failed or other

    intents.add_all([_intent(3, fee=1_781_000, chain="solana")])  # (1000 + 1781000) x 0.5 = 891000
    (row,) = asyncio.run(job.run_once())
    assert (row.chain, row.amount, row.intents) == ("solana", "891000", 2) and job.held_back("acme") == {}
    assert view()["by_chain"]["solana"]["pending_reason"] is None


def test_an_unreadable_minimum_leaves_that_chain_for_the_next_epoch_and_pays_the_others(tmp_path: Path) -> None:
    intents, payouts, _ = _setup(tmp_path)
    registry = IntegratorStore(payouts.engine)
    registry.register("acme", Decimal("0.5"), {"solana": "So11111111111111111111111111111111111111112", "l1": PAYEE})
    intents.add_all([_intent(1, fee=1000, chain="solana"), _intent(2, fee=3000)])
    job = PayoutJob(payouts, registry, _Lanes(frozenset({"l1", "solana"})),
                    _Minimums({}, unreadable=frozenset({"solana"})), _run, Decimal("0.1"))
    assert [(r.chain, r.amount) for r in asyncio.run(job.run_once())] == [("l1", "1500")]
    assert payouts.uncovered_by_chain("acme") == {"solana": 1000} and job.held_back("acme") == {}


def test_conversion_and_volume_by_chain_and_day() -> None:
    records = [_intent(1, fee=10), _intent(2, fee=20, status=IntentStatus.FAILED)]
    day = "2023-11-14"
    assert conversion(records, {day: 4})["by_day"][day] == {"intents": 2, "quotes": 4, "rate": 0.5}
    rows = by_chain_day(records)
    assert rows == [{"chain": "l1", "day": day, "intents": 1, "volume": "1", "fee_paid": "10",
                     "fees_usd": pytest.approx(10 / 1e18 * 3000)}]


# ---------------------------------------------------------------- native transfers in the lanes
def test_the_evm_lanes_sign_a_native_transfer_with_its_value() -> None:
    """Kind ``native`` (adapters/evm/writeahead.py): the payout's amount as the transaction's value, no data."""
    from adapters.evm.adapter import EvmAdapter
    from config.settings import EvmChainConfig

    config = EvmChainConfig.model_validate({"family": "evm", "domain": 1, "chain_id": 31337,
                                            "rpc_url": "http://127.0.0.1:1", "mailbox": "0x" + "22" * 20})
    sender = EvmAdapter("l1", config)
    assert "native" in sender.lane_kinds()
    prepared = PreparedTx(TxSpec("native", PAYEE, amount=12_345), PAYEE.lower(), b"", 21_000, 10**9, 10**8)
    fields = decode_type2(sender.sign(OPERATOR_KEY, prepared, 7).raw)
    assert (fields.chain_id, fields.nonce, fields.to, fields.value, fields.data, fields.gas) == (
        31337, 7, PAYEE, 12_345, b"", 21_000)


# ---------------------------------------------------------------- a payout through a durable lane, across a crash
async def test_a_payout_stored_then_crashed_is_sent_once_as_the_stored_bytes_and_settles_paid(tmp_path: Path) -> None:
    import json

    from router.lanes import LaneStore
    from tests.unit.test_lanes import ACCOUNT, CHAIN, FakeChain, _executor, _lane
    from tests.unit.test_lanes import Clock as FixedClock

    clock = FixedClock()
    engine = create_engine(f"sqlite:///{tmp_path / 'lane.sqlite'}")
    intents, lanes, payouts = IntentStore(engine, clock=clock), LaneStore(engine, clock=clock), PayoutStore(engine)
    intents.add_all([_intent(1, fee=1005, chain=CHAIN), _intent(2, fee=2000, chain=CHAIN)])
    row = payouts.create(PayoutPlan("acme", CHAIN, PAYEE, ACCOUNT, Decimal("0.1")))
    assert row is not None and row.amount == "300"
    chain = FakeChain()

    class Crash(Exception):
        pass

    async def crash_after_sign(point: str) -> None:
        if point == "intent_after_sign":
            raise Crash(point)

    with pytest.raises(Crash):
        await _executor(lanes, chain, failpoint=crash_after_sign)._step(_lane(lanes))
    stored = intents.get(row.intent_id)
    assert stored is not None and stored.status == "signed" and chain.broadcasts == []
    assert payouts.settle() == []  # signed, not sent: still under way (the report shows its hash)
    assert payouts.of("acme")[0]["tx_hash"] == stored.tx_hash

    restarted, lane = _executor(lanes, chain), _lane(lanes)
    await restarted._step(lane)
    assert chain.broadcasts == [bytes.fromhex(stored.raw_tx or "")]
    chain.mine()
    await restarted._step(lane)
    assert payouts.settle() == [(row.id, "paid", stored.tx_hash)]
    assert len(chain.signed) == 1 and chain.landed_to(PAYEE) == 1
    assert json.loads(chain.landed[0])["amount"] == 300
    assert payouts.create(PayoutPlan("acme", CHAIN, PAYEE, ACCOUNT, Decimal("0.1"))) is None
