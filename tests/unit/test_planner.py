"""Planner properties: never over a chain's capacity, constraints always honoured, deterministic for a seed,
load split in proportion to spare capacity among equal chains, cheapest first otherwise, drained chains
get nothing; and its speed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.message import Domain
from router.capacity import CapacityModel, ChainProfile
from router.planner import Intents, Kind, Reason, benchmark_decisions_per_s, plan
from router.profiles import load_profile
from router.simulator import IntentMix, IntentSource


def chain(i: int, *, gas_limit: float = 1_000_000, base_fee: float = 1e-9, block_time_s: float = 1.0,
          finality_s: float = 10.0) -> ChainProfile:
    return ChainProfile(name=f"c{i}", domain=Domain(i + 1), family="evm", block_time_s=block_time_s,
                        gas_limit=gas_limit, transfer_gas=10_000, finality_s=finality_s, base_fee=base_fee,
                        native_usd=1000.0)


def uniform_intents(n: int, c: int, *, work: float = 1.0) -> Intents:
    return Intents(kind=np.zeros(n, np.int8), work=np.full(n, work, np.float32), amount=np.ones(n),
                   allowed=np.ones((n, c), bool), liquidity=np.ones((n, c), bool),
                   max_fee_usd=np.full(n, 1e9, np.float32), max_latency_s=np.full(n, 1e9, np.float32),
                   origin=np.full(n, -1, np.int16))


@st.composite
def scenarios(draw):
    c = draw(st.integers(2, 6))
    n = draw(st.integers(1, 400))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    chains = [chain(i, gas_limit=float(rng.choice([50_000, 200_000, 1_000_000])),
                    base_fee=float(rng.choice([1e-10, 1e-9, 1e-8])), block_time_s=float(rng.choice([0.5, 1, 4])),
                    finality_s=float(rng.choice([1, 60, 900]))) for i in range(c)]
    model = CapacityModel(chains)
    model.observe_pending(np.arange(c), rng.uniform(0, 60_000, c))
    if draw(st.booleans()):
        for _ in range(5):
            model.observe_error(int(rng.integers(c)))      # maybe drained
    kind = rng.choice(3, n, p=[0.5, 0.2, 0.3]).astype(np.int8)
    origin = np.where(kind == Kind.XCHAIN, rng.integers(0, c, n), -1).astype(np.int16)
    intents = Intents(kind=kind, work=rng.uniform(0.5, 4, n).astype(np.float32), amount=rng.uniform(1, 9, n),
                      allowed=rng.random((n, c)) < 0.7, liquidity=rng.random((n, c)) < 0.7,
                      max_fee_usd=rng.choice([1e-4, 1e-2, 1.0], n).astype(np.float32),
                      max_latency_s=rng.choice([1.0, 30.0, 3600.0], n).astype(np.float32), origin=origin)
    return model, intents, draw(st.sampled_from([0.25, 1.0, 5.0])), seed


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_capacity_and_constraints_always_hold(case):
    model, intents, window, seed = case
    a = plan(intents, model, window_s=window, seed=seed)
    served = a.chain >= 0
    # never over a chain's capacity for the window (which is already at its fee-market target)
    assert np.all(a.planned_gas <= a.capacity_gas * (1 + 1e-9) + 1e-6)
    assert np.all(a.capacity_gas <= model.target_gas_per_s() * np.maximum(window, model.block_time_s) + 1e-6)
    assert np.all(a.planned_gas[~model.healthy(0.0)] == 0)          # drained chains get nothing
    rows = np.flatnonzero(served)
    c = a.chain[rows]
    assert np.all(intents.allowed[rows, c]) and np.all(intents.liquidity[rows, c])
    assert np.all(a.fee_usd[rows] <= intents.max_fee_usd[rows])
    assert np.all(a.latency_s[rows] <= intents.max_latency_s[rows])
    x = intents.kind[rows] == Kind.XCHAIN
    assert np.all(a.origin[rows][x] == intents.origin[rows][x]) and np.all(c[x] != intents.origin[rows][x])
    assert np.all(a.origin[rows][~x] == c[~x])
    assert np.all(a.reason[served] == Reason.OK) and np.all(a.reason[~served] != Reason.OK)
    # the planned gas is exactly the served intents' legs
    total = np.bincount(c, weights=a.gas[rows], minlength=len(model))
    total += np.bincount(a.origin[rows][x], weights=a.origin_gas[rows][x], minlength=len(model))
    assert np.allclose(total, a.planned_gas)


@settings(max_examples=30, deadline=None)
@given(scenarios())
def test_deterministic_for_a_seed(case):
    model, intents, window, seed = case
    a, b = plan(intents, model, window_s=window, seed=seed), plan(intents, model, window_s=window, seed=seed)
    for field in ("chain", "origin", "reason", "planned_gas"):
        assert np.array_equal(getattr(a, field), getattr(b, field))


def test_equal_chains_share_in_proportion_to_spare_capacity():
    # same fee and block time, spare capacity 1 : 2 : 3 (100, 200, 300 transfers per window); a batch of 360
    # identical transfers (60% of the total) lands ~60% on each.
    chains = [chain(i, gas_limit=g) for i, g in enumerate((2_000_000, 4_000_000, 6_000_000))]
    model = CapacityModel(chains)
    a = plan(uniform_intents(360, 3), model, window_s=1.0, seed=3)
    assert a.served.all()
    share = a.planned_gas / a.capacity_gas
    assert np.all(np.abs(share - 0.6) < 0.08), share


def test_cheapest_chain_first_then_spill():
    chains = [chain(0, base_fee=1e-8), chain(1, base_fee=1e-10)]      # c1 is 100x cheaper
    model = CapacityModel(chains)                                       # 50 transfers per window each
    small = plan(uniform_intents(30, 2), model, window_s=1.0, seed=0)
    assert np.all(small.chain == 1)
    big = plan(uniform_intents(80, 2), model, window_s=1.0, seed=0)
    assert np.sum(big.chain == 1) == 50 and np.sum(big.chain == 0) == 30
    over = plan(uniform_intents(130, 2), model, window_s=1.0, seed=0)
    assert over.served.sum() == 100 and np.all(over.reason[~over.served] == Reason.CAPACITY)


def test_unanswering_chain_is_drained_then_recovers():
    model = CapacityModel([chain(0), chain(1)], stale_after_s=5.0)
    model.observe_blocks(1, gas_used=0.0, now_s=0.0)
    a = plan(uniform_intents(40, 2), model, window_s=1.0, now_s=10.0)   # neither answered for 10 s
    assert not a.served.any() and np.all(a.reason == Reason.CAPACITY)
    model.observe_blocks(np.array([0, 1]), gas_used=np.zeros(2), now_s=10.0)
    for _ in range(4):
        model.observe_error(0)                                          # c0 answers with errors
    b = plan(uniform_intents(40, 2), model, window_s=1.0, now_s=10.0)
    assert b.served.all() and np.all(b.chain == 1)
    assert model.spare_gas_per_s(10.0)[0] == 0.0


def test_reasons_name_the_constraint_that_failed():
    model = CapacityModel([chain(0, base_fee=1e-8), chain(1, finality_s=900)])
    it = uniform_intents(4, 2)
    it.allowed[0] = False                                    # nowhere allowed
    it.max_fee_usd[1] = 1e-6                                 # cheaper than any chain
    it.max_latency_s[2] = 0.01                               # faster than any block
    it.kind[3], it.origin[3] = Kind.XCHAIN, 1                # from c1 (finality 900 s) ...
    it.max_latency_s[3] = 60.0                               # ... within a minute: impossible
    a = plan(it, model, window_s=1.0)
    assert list(a.reason) == [Reason.NO_CHAIN, Reason.FEE, Reason.LATENCY, Reason.LATENCY]


def test_background_load_reduces_spare_capacity():
    model = CapacityModel([chain(0)])
    model.observe_blocks(0, gas_used=400_000.0, own_gas=0.0, now_s=0.0)   # others use 40% of the block
    assert model.spare_gas_per_s(0.0)[0] == pytest.approx(500_000 - 0.2 * 400_000)
    model.observe_incoming(0, 100_000.0)                                    # deliveries on their way here
    assert model.spare_gas_per_s(0.0)[0] == pytest.approx(500_000 - 0.2 * 400_000 - 100_000)


def test_a_100k_intent_batch_is_planned_whole_and_the_benchmark_reports_a_rate():
    """Speed is a benchmark figure (`relayer simulate` prints decisions_per_s), not a timed assertion: here the
    100k batch the benchmark times is planned whole (every intent served or given a reason, no chain above its
    window capacity) and the benchmark helper returns that batch's rate."""
    profile = load_profile()
    model = CapacityModel(profile.chains)
    intents = IntentSource(profile.chains, IntentMix(), np.random.default_rng(0)).draw(100_000)
    got = plan(intents, model, window_s=1.0, seed=0)
    assert len(got.chain) == 100_000
    assert np.all((got.chain >= 0) == (got.reason == Reason.OK))
    assert np.all(got.planned_gas <= got.capacity_gas * (1 + 1e-9))
    assert got.served.mean() > 0.5
    assert benchmark_decisions_per_s(model, intents, repeat=1) > 0
