"""The simulator on a case small enough to check by hand, the EIP-1559 base fee, and profile loading."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from adapters.message import Domain
from config.errors import ConfigError
from router.capacity import ChainProfile, next_base_fee
from router.profiles import load_profile
from router.simulator import IntentMix, Outage, simulate

# Two chains with 1 s blocks, 200 gas limit, target 50%, 10 gas per transfer: 10 transfers per block each at
# target. Chain "a" charges $0.01 a transfer, "b" $0.02, flat (no base-fee market, so the hand arithmetic
# stays simple; EIP-1559 below).
A = ChainProfile(name="a", domain=Domain(1), family="evm", block_time_s=1.0, gas_limit=200, transfer_gas=10,
                 finality_s=1.0, base_fee=0.001, native_usd=1.0, base_fee_max_change=0.0)
B = ChainProfile(name="b", domain=Domain(2), family="evm", block_time_s=1.0, gas_limit=200, transfer_gas=10,
                 finality_s=1.0, base_fee=0.002, native_usd=1.0, base_fee_max_change=0.0)
PLAIN = IntentMix(kind_p=(1.0, 0.0, 0.0), tokens=1, restricted_p=0.0, max_fee_usd=(10.0,), max_fee_p=(1.0,),
                  max_latency_s=(100.0,), max_latency_p=(1.0,))


def run(tps: float, seconds: float = 10.0, chains=(A, B), **kw):
    return simulate(list(chains), offered_tps=tps, seconds=seconds, seed=1, tick_s=1.0, mix=PLAIN, poisson=False,
                    aligned_blocks=True, **kw)


def test_hand_checked_below_capacity():
    # 15 intents per second, arriving at k + j/15 (j = 0..14), planned at k+1: the 10 cheapest-chain slots
    # go to "a", 5 to "b" (a at 1.5x its target would still be cheaper than b, so no congestion move), all
    # included in the blocks at k+2 (a transaction submitted at a block's own time misses that block).
    # Latency = 2 - j/15: median 2 - 7/15; fees $0.01 (2/3 of the intents) and $0.02 (1/3).
    r = run(15)
    assert r.arrived == 150 and r.served == 150 and r.served_fraction == 1.0 and r.achieved_tps == 15.0
    assert r.latency_p50_s == pytest.approx(2 - 7 / 15)
    assert r.fee_p50 == pytest.approx(0.01) and r.fee_p99 == pytest.approx(0.02)
    util = {c["name"]: c["utilisation"] for c in r.chains}
    # blocks at 1..11 s; from 2 s on a's hold 100 gas (50% of 200), b's 50
    assert util["a"] == pytest.approx(1000 / 2200, abs=1e-4) and util["b"] == pytest.approx(500 / 2200, abs=1e-4)
    assert r.base_fee_max_ratio == 1.0      # never above target, so the base fee never rose


def test_hand_checked_eip1559_chain_at_target():
    # "a" with EIP-1559 alone at 10/s = its target: the block at 1 s is empty (-12.5%), every later block is
    # exactly at target, so every intent pays 0.875 x $0.01, and the fee never rises.
    a = dataclasses.replace(A, base_fee_max_change=0.125)
    r = run(10, chains=(a,))
    assert r.served == 100 and r.fee_p50 == pytest.approx(0.00875) and r.fee_max == pytest.approx(0.00875)
    assert r.base_fee_max_ratio == 1.0


def test_hand_checked_over_capacity():
    # 25 per second against 20 slots at target: 5 per tick are unserved for capacity, 20 served per second.
    r = run(25)
    assert r.arrived == 250 and r.served == 200 and r.served_fraction == pytest.approx(0.8)
    assert r.achieved_tps == 20.0 and r.unserved_by_reason == {"capacity": 50}
    assert r.base_fee_max_ratio == 1.0


def test_outage_drains_the_chain_and_load_moves():
    # "b" stops for 4 s: once it has failed to answer, nothing more is planned onto it.
    r = run(15, outages=[Outage("b", 3.0, 7.0)])
    assert r.served_fraction < 1.0
    assert r.unserved_by_reason.get("capacity", 0) > 0
    assert r.served >= 100       # "a" alone keeps serving its 10 per second


def test_eip1559_base_fee_sequence_for_full_and_empty_blocks():
    one = np.ones(1)
    fee, seq = np.array([1.0]), []
    for _ in range(3):
        fee = next_base_fee(fee, np.array([30e6]), np.array([30e6]), 0.5 * one, 0.125 * one, 0 * one)
        seq.append(float(fee[0]))
    assert seq == pytest.approx([1.125, 1.265625, 1.423828125])
    empty = next_base_fee(np.array([1.0]), np.array([0.0]), np.array([30e6]), 0.5 * one, 0.125 * one, 0 * one)
    assert float(empty[0]) == pytest.approx(0.875)
    at_target = next_base_fee(np.array([1.0]), np.array([15e6]), np.array([30e6]), 0.5 * one, 0.125 * one, 0 * one)
    assert float(at_target[0]) == 1.0
    # OP Stack (elasticity 6, denominator 250): +2% after a full block, -0.4% after an empty one
    op = [float(next_base_fee(np.array([1.0]), np.array([u]), np.array([60e6]), one / 6, 0.02 * one, 0 * one)[0])
          for u in (60e6, 0.0)]
    assert op == pytest.approx([1.02, 0.996])
    floor = next_base_fee(np.array([1.0]), np.array([0.0]), np.array([1.0]), 0.5 * one, 0.125 * one, 0.9 * one)
    assert float(floor[0]) == 0.9


def test_simulation_is_deterministic_for_a_seed():
    profile = load_profile()
    kw = {"offered_tps": 5000, "seconds": 2, "seed": 7}
    a, b = simulate(profile.chains, **kw), simulate(profile.chains, **kw)
    for key in ("arrived", "served", "fee_p50", "fee_p99", "latency_p50_s", "latency_p99_s"):
        assert getattr(a, key) == getattr(b, key)
    assert a.served_fraction > 0.95 and a.base_fee_max_ratio <= 1.0 + 1e-9


def test_cli_simulate_json_last_line(capsys, tmp_path):
    from relayer.cli.commands import main

    png = tmp_path / "sim.png"
    assert main(["simulate", "--offered-tps", "2000", "--seconds", "2", "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("achieved_tps", "served_fraction", "decisions_per_s", "fee_p50", "fee_p99", "latency_p50_s",
                "latency_p99_s", "chains", "utilisation"):
        assert key in out
    assert out["chains"] == len(out["utilisation"]) and png.stat().st_size > 10_000


# ---------------------------------------------------------------- profiles
def test_mainnet_like_profile_loads_and_marks_projected_chains():
    p = load_profile("mainnet_like")
    assert len(p.real) >= 20 and all(c.source for c in p.real)
    assert p.projected and all(c.scale_out and "scale-out" in c.source for c in p.projected)
    # the real chains alone cannot carry 100k transfers/s at their targets; the file says so
    assert sum(c.transfers_per_s_at_target for c in p.real) < 100_000
    assert len({c.domain for c in p.chains}) == len(p.chains)


GOOD = """
[chains.x]
domain = 7
family = "evm"
block_time_s = 2.0
gas_limit = 30_000_000
transfer_gas = 50_000
finality_s = 10.0
base_fee = 1e-9
native_usd = 3000.0
"""


@pytest.mark.parametrize(("change", "path", "words"), [
    (("block_time_s = 2.0", "blok_time_s = 2.0"), "chains.x.blok_time_s", "unknown key"),
    (("gas_limit = 30_000_000\n", ""), "chains.x.gas_limit", "missing"),
    (('family = "evm"', 'family = "utxo"'), "chains.x.family", "expected one of"),
    (("block_time_s = 2.0", 'block_time_s = "fast"'), "chains.x.block_time_s", "expected a number"),
    (("native_usd = 3000.0", "native_usd = 3000.0\ntarget_utilisation = 1.5"), "chains.x.target_utilisation",
     "(0, 1)"),
    (("domain = 7", "domain = -1"), "chains.x.domain", "u32"),
])
def test_profile_errors_name_the_key(tmp_path: Path, change, path, words):
    f = tmp_path / "p.toml"
    f.write_text(GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        load_profile(str(f))
    assert err.value.path == path and words in str(err.value) and str(f) in str(err.value)


def test_profile_scale_out_errors(tmp_path: Path):
    f = tmp_path / "p.toml"
    f.write_text(GOOD + '\n[scale_out.r]\ntemplate = "nope"\ncount = 2\nfirst_domain = 100\n')
    with pytest.raises(ConfigError) as err:
        load_profile(str(f))
    assert err.value.path == "scale_out.r.template"
    f.write_text(GOOD + '\n[scale_out.r]\ntemplate = "x"\ncount = 2\nfirst_domain = 7\n')
    with pytest.raises(ConfigError) as err:
        load_profile(str(f))
    assert "already used" in str(err.value)


def test_unknown_profile_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="mainnet_like"):
        load_profile("no_such_profile")
