"""Paid delivery's logic (issue 15): the oracle entries the keeper writes (exact price x rate, sub-unit gas prices,
the USD floor), when it rewrites them and when one is stale; the gas policy's verdicts per rule; the top-up's gas
for a shortfall; and the configuration refusing what cannot work. The devnet tests (tests/integration/
test_paid_delivery.py, tests/adversarial/test_gas_payments.py) run the same code against the contracts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from adapters.base import AdapterError, ChainStats, Height
from adapters.capabilities import GasOracleEntry, GasPayment
from adapters.message import MESSAGE_VERSION, Message, MessageId, address_to_bytes32, keccak256
from config.settings import Settings
from relayer.daemon.gas_oracle import GasOracleKeeper, desired_entry, moved, price_per_gas
from relayer.daemon.metrics import Metrics
from relayer.pipeline.gas_policy import GasPolicy, compile_payment_rules, gas_for, top_up
from relayer.store import Paid, StoredMessage

L1, A, B = 1000, 2000, 3000
ETH_USD = 3000.0
FLOOR_WEI = math.ceil(Fraction(1, 100) / Fraction(3000) * 10**18)


def _doc(gas_payment: list[dict[str, Any]] | None = None, *, paymaster: bool = True,
         oracle: dict[str, Any] | None = None) -> dict[str, Any]:
    evm = {"family": "evm", "chain_id": 1, "rpc_url": "http://127.0.0.1:1", "mailbox": "0x" + "22" * 20}
    l1 = {**evm, "domain": L1, **({"gas_paymaster": "0x" + "33" * 20} if paymaster else {})}
    doc: dict[str, Any] = {
        "security": {"threshold": 1, "validators": [{"address": "0x" + "44" * 20, "url": "http://127.0.0.1:2"}]},
        "chains": {"l1": l1, "rollup_a": {**evm, "domain": A}, "rollup_b": {**evm, "domain": B}},
        "relayer": {"gas_payment": gas_payment or []},
    }
    if oracle is not None:
        doc["relayer"]["gas_oracle"] = oracle
    return doc


class FakePaymaster:
    """An origin's oracle in memory: entries by destination, writes recorded (or refused)."""

    def __init__(self, entries: dict[int, GasOracleEntry] | None = None, *, refuse_writes: bool = False) -> None:
        self.entries = entries or {}
        self.writes: list[list[GasOracleEntry]] = []
        self.refuse_writes = refuse_writes

    def has_paymaster(self) -> bool:
        return True

    async def fetch_gas_payments(self, from_height: Height, to_height: Height) -> list[GasPayment]:
        return []

    async def gas_oracle_entries(self, destinations: Sequence[int]) -> list[GasOracleEntry]:
        return [self.entries.get(d, GasOracleEntry(d, 0, 0, 0, 0.0)) for d in destinations]

    async def write_gas_oracle(self, updater_key: str, entries: Sequence[GasOracleEntry]) -> str:
        if self.refuse_writes:
            raise AdapterError("insufficient funds for gas", chain="l1")
        self.writes.append(list(entries))
        return "0x" + "ab" * 32

    async def pay_for_gas(self, payer_key: str, message_id: bytes, destination: int, gas_limit: int,
                          value: int) -> str:
        raise NotImplementedError

    def pay_for_gas_call(self, message_id: bytes, destination: int, gas_limit: int, refund_to: str) -> dict[str, str]:
        return {"to": "0x" + "33" * 20, "data": "0x"}


class FakeStats:
    """A destination's fee data (``CapacitySource``)."""

    def __init__(self, base_fee: int) -> None:
        self.base_fee = base_fee

    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        return ChainStats(Height(1), blocks, 2.0, 30_000_000, 0.5, self.base_fee, 1.0, priority_fee=10**9)


class FakeEvm(FakePaymaster, FakeStats):
    def __init__(self, base_fee: int, **kw: Any) -> None:
        FakePaymaster.__init__(self, **kw)
        FakeStats.__init__(self, base_fee)


def _message(origin: int, destination: int, body: bytes = b"x") -> StoredMessage:
    m = Message(MESSAGE_VERSION, 7, origin, address_to_bytes32("0x" + "01" * 20), destination,
                address_to_bytes32("0x" + "02" * 20), body)
    raw = m.encode()
    return StoredMessage(MessageId(keccak256(raw)), origin, 7, destination, raw, "DISPATCHED", 0, 0.0)


# ---- the oracle's entries
def test_an_entry_prices_gas_exactly_in_origin_units() -> None:
    per_gas = Fraction(3 * 10**9)  # 3 gwei on an ether destination, priced from an ether origin
    e = desired_entry(A, per_gas, ETH_USD, 18, ETH_USD, 18, 0.01)
    assert e.quote(200_000) == 200_000 * 3 * 10**9  # same token: the gas at its price, nothing lost to rounding
    assert e.minimum_payment == FLOOR_WEI and e.quote(1) == FLOOR_WEI  # the USD floor holds for tiny gas


def test_a_gas_price_below_one_smallest_unit_is_carried_by_the_rate() -> None:
    """Cosmos: 0.025 ustake per gas ($5 per 10**6 ustake) priced in wei ($3000 per 10**18): written as gas price 1
    and a rate carrying the fraction, so a quote is the exact product (to the 1e10 scale)."""
    per_gas = Fraction(1, 40)
    e = desired_entry(6000, per_gas, ETH_USD, 18, 5.0, 6, 0.0)
    assert e.gas_price == 1
    exact = 400_000 * per_gas * (Fraction(5) / 10**6) / (Fraction(3000) / 10**18)
    assert 0 <= e.quote(400_000) - math.floor(exact) <= 1


def test_price_per_gas_adds_what_a_delivery_pays_per_gas() -> None:
    evm = ChainStats(Height(1), 5, 2.0, 30_000_000, 0.5, 7, 1.0, priority_fee=3)
    cosmos = ChainStats(Height(1), 5, 6.0, 10**8, 0.1, 0, 1.0, native_decimals=6, payout_gas=400_000,
                        payout_fee=10_000)
    assert price_per_gas(evm) == 10
    assert price_per_gas(cosmos) == Fraction(1, 40)


def test_an_entry_is_rewritten_only_when_it_moved_past_the_deviation() -> None:
    base = GasOracleEntry(A, 10**10, 100, 50, 1.0)
    assert not moved(base, GasOracleEntry(A, 10**10, 105, 50, 0.0), 0.1)
    assert moved(base, GasOracleEntry(A, 10**10, 125, 50, 0.0), 0.1)
    assert moved(base, GasOracleEntry(A, 10**10, 100, 80, 0.0), 0.1)


# ---- the keeper
def _keeper(paymaster: FakeEvm, clock: list[float], **oracle: Any) -> tuple[GasOracleKeeper, Metrics]:
    settings = Settings.model_validate(_doc(oracle={"signer": {"private_key": "0x" + "11" * 32}, **oracle}))
    metrics = Metrics()
    adapters = {"l1": paymaster, "rollup_a": FakeStats(2 * 10**9), "rollup_b": FakeStats(10**9)}
    keeper = GasOracleKeeper(settings, settings.relayer.gas_oracle, adapters, "0x" + "11" * 32,  # type: ignore[arg-type]
                             metrics, clock=lambda: clock[0])
    return keeper, metrics


async def test_the_keeper_writes_unset_entries_then_only_what_moved_or_aged() -> None:
    clock = [1_000.0]
    l1 = FakeEvm(10**9)
    keeper, metrics = _keeper(l1, clock, max_age_s=600)
    assert await keeper.run_once() == 2  # rollup_a and rollup_b, never written: in one transaction
    assert len(l1.writes) == 1 and {e.destination for e in l1.writes[0]} == {A, B}
    a = next(e for e in l1.writes[0] if e.destination == A)
    assert a.gas_price * a.exchange_rate == (2 * 10**9 + 10**9) * 10**10  # base fee + tip, same token
    l1.entries = {e.destination: GasOracleEntry(e.destination, e.exchange_rate, e.gas_price, e.minimum_payment,
                                                clock[0]) for e in l1.writes[0]}
    clock[0] += 100
    assert await keeper.run_once() == 0  # fresh and unmoved
    assert metrics.value("relayer_gas_oracle_age_seconds", origin="l1", destination="rollup_a") == 100
    clock[0] += 250  # older than max_age_s / 2: rewritten as a heartbeat
    assert await keeper.run_once() == 2


async def test_an_entry_the_keeper_cannot_write_goes_stale() -> None:
    clock = [10_000.0]
    l1 = FakeEvm(10**9, entries={A: GasOracleEntry(A, 10**10, 10**9, 1, 10_000.0 - 700),
                                 B: GasOracleEntry(B, 10**10, 10**9, 1, 10_000.0 - 10)}, refuse_writes=True)
    keeper, metrics = _keeper(l1, clock, max_age_s=600)
    assert await keeper.run_once() == 0
    assert metrics.value("relayer_gas_oracle_stale", origin="l1", destination="rollup_a") == 1
    assert metrics.value("relayer_gas_oracle_stale", origin="l1", destination="rollup_b") == 0
    assert metrics.value("relayer_gas_oracle_updates_total", origin="l1", result="failed") == 1


# ---- the policy
def _policy(rules: list[dict[str, Any]], entries: dict[int, GasOracleEntry]) -> GasPolicy:
    settings = Settings.model_validate(_doc(rules))
    from relayer.daemon.composition import build_adapters

    return GasPolicy(compile_payment_rules(settings, build_adapters(settings, with_signers=False)),
                     {L1: FakePaymaster(entries)})  # type: ignore[dict-item]


def _raws(*messages: StoredMessage) -> dict[MessageId, bytes]:
    return {m.id: m.raw for m in messages}


def _paid(amounts: dict[MessageId, int]) -> Any:
    async def paid_for(ids: Sequence[MessageId]) -> dict[MessageId, Paid]:
        return {i: Paid(amounts[i], 1, 1) for i in ids if i in amounts}
    return paid_for


async def test_the_first_matching_rule_decides_what_a_message_owes() -> None:
    entry = GasOracleEntry(A, 10**10, 10**9, FLOOR_WEI, 5.0)
    policy = _policy([{"origin": "l1", "destination": "rollup_a", "policy": "on_chain_quote", "fraction": 0.5,
                       "gas_amount": 100_000},
                      {"origin": "l1", "destination": "rollup_b", "policy": "minimum", "minimum": 1000},
                      {"origin": "*", "policy": "none"}], {A: entry})
    to_a, to_b, from_a = _message(L1, A), _message(L1, B), _message(A, B)
    quote_half = math.ceil(0.5 * entry.quote(100_000))
    short = await policy.shortfalls(_raws(to_a, to_b, from_a), _paid({to_a.id: quote_half - 1, to_b.id: 1000}))
    assert set(short) == {to_a.id}
    assert short[to_a.id].startswith(f"paid {quote_half - 1} of {quote_half} ") and "relayer.gas_payment[0]" in short[
        to_a.id]
    assert await policy.shortfalls(_raws(to_a), _paid({to_a.id: quote_half})) == {}


async def test_a_delivery_needing_more_than_gas_amount_must_pay_for_what_it_needs() -> None:
    entry = GasOracleEntry(A, 10**10, 10**9, FLOOR_WEI, 5.0)
    policy = _policy([{"origin": "l1", "policy": "on_chain_quote", "gas_amount": 100_000}], {A: entry})
    m = _message(L1, A)
    paid = _paid({m.id: entry.quote(100_000)})
    assert await policy.shortfalls(_raws(m), paid) == {}
    assert await policy.shortfalls(_raws(m), paid, {m.id: 90_000}) == {}  # below gas_amount: the rule's quote
    short = await policy.shortfalls(_raws(m), paid, {m.id: 400_000})
    assert short[m.id].startswith(f"paid {entry.quote(100_000)} of {entry.quote(400_000)} (1 x the paymaster's "
                                  "quote for 400000 gas)")
    owed = await top_up(policy, m.raw, Paid(entry.quote(100_000), 1, 1), 400_000)
    assert owed.required == entry.quote(400_000) and owed.shortfall == entry.quote(400_000) - entry.quote(100_000)
    minimum = _policy([{"origin": "l1", "policy": "minimum", "minimum": 5}], {A: entry})
    assert await minimum.shortfalls(_raws(m), _paid({m.id: 5}), {m.id: 10**7}) == {}  # a fixed minimum is fixed


async def test_without_an_oracle_price_a_message_waits_saying_why() -> None:
    policy = _policy([{"origin": "l1", "policy": "on_chain_quote"}], {})
    m = _message(L1, A)
    short = await policy.shortfalls(_raws(m), _paid({m.id: 10**18}))
    assert "no price for this destination yet" in short[m.id]


async def test_a_top_up_buys_just_enough_gas_for_the_shortfall() -> None:
    entry = GasOracleEntry(A, 10**10, 7 * 10**9, FLOOR_WEI, 5.0)
    for amount in (1, FLOOR_WEI, FLOOR_WEI + 1, 7 * 10**9 * 123_457 + 3):
        gas = gas_for(amount, entry)
        assert entry.quote(gas) >= amount
        assert gas == 1 or entry.quote(gas - 1) < amount
    policy = _policy([{"origin": "l1", "policy": "on_chain_quote", "gas_amount": 100_000}], {A: entry})
    m = _message(L1, A)
    owed = await top_up(policy, m.raw, Paid(FLOOR_WEI, 1, 1))
    assert owed.required == entry.quote(100_000) and owed.shortfall == owed.required - FLOOR_WEI
    assert owed.value == entry.quote(owed.gas_limit) >= owed.shortfall
    assert (await top_up(policy, m.raw, Paid(owed.required or 0, 1, 1))).shortfall == 0


# ---- configuration
def test_a_paid_rule_for_an_origin_without_a_paymaster_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"relayer.gas_payment\[0\] asks messages from rollup_a to pay"):
        Settings.model_validate(_doc([{"origin": "*", "policy": "on_chain_quote"}]))
    with pytest.raises(ValidationError, match="needs minimum"):
        Settings.model_validate(_doc([{"origin": "l1", "policy": "minimum"}]))
    with pytest.raises(ValidationError, match="names 'nowhere'"):
        Settings.model_validate(_doc([{"origin": "l1", "destination": "nowhere", "policy": "none"}]))
    Settings.model_validate(_doc([{"origin": "l1", "policy": "on_chain_quote"}, {"policy": "none"}]))
