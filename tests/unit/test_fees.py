"""The fee model per chain family (issue 14): each chain's fees in its own fee unit, priced at its own native token's
USD price, and a quote whose route is its option (one computation). What a delivery actually pays on the devnets is
held against the quote in tests/integration/test_fee_quotes.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters.base import ChainStats, Height
from adapters.cosmos.chain import SEND_GAS
from adapters.cosmos.health import payout_cost
from adapters.cosmos.transactions import delivery_gas
from adapters.solana.chain import DELIVERY_COMPUTE_PER_MESSAGE, LAMPORTS_PER_SIGNATURE
from adapters.solana.health import payout_fee
from config.errors import ConfigError
from config.loader import load_settings
from router.api import _quote, profile_from_stats
from router.capacity import XCHAIN_DEST_WORK, CapacityModel
from router.planner import XCHAIN_ORIGIN_WORK, Kind, plan, route_costs
from router.schemas import QuoteRequest
from router.validation import parse_request, planner_intents
from tests.unit.test_config import EXAMPLE, write

GWEI = 10**9
GUARD_RENT = 897_840           # rent-exempt minimum of 1 byte (Solana's default rent: (128 + 1) x 6,960)
TOKEN_ACCOUNT_RENT = 2_039_280  # ... of an SPL token account (165 bytes)
ROUTER_TRANSFER_GAS = 50_000    # router.transfer_gas's default: an EVM token transfer


def evm_stats(base_fee_gwei: float = 10, tip_gwei: float = 1) -> ChainStats:
    return ChainStats(Height(100), 20, 1.0, 30_000_000, 0.3, base_fee=int(base_fee_gwei * GWEI), base_fee_trend=1.0,
                      native_decimals=18, priority_fee=int(tip_gwei * GWEI))


def cosmos_stats(gas_price: float = 0.01) -> ChainStats:
    gas, fee = payout_cost(gas_price)
    return ChainStats(Height(100), 20, 0.5, 100_000_000, 0.0, base_fee=0, base_fee_trend=1.0, native_decimals=6,
                      tx_fee=int(np.ceil(SEND_GAS * gas_price)), payout_gas=gas, payout_fee=fee)


def solana_stats(priority_micro_lamports: int = 0) -> ChainStats:
    fee = payout_fee(threshold=2, priority_micro_lamports=priority_micro_lamports, guard_rent=GUARD_RENT,
                     token_account_rent=TOKEN_ACCOUNT_RENT)
    return ChainStats(Height(100), 20, 0.4, 48_000_000, 0.0, base_fee=0, base_fee_trend=1.0, native_decimals=9,
                      tx_fee=LAMPORTS_PER_SIGNATURE, payout_gas=DELIVERY_COMPUTE_PER_MESSAGE, payout_fee=fee)


def model(*, eth_usd: float = 3000.0, atom_usd: float = 5.0, sol_usd: float = 150.0, evm: ChainStats | None = None,
          cosmos: ChainStats | None = None, solana: ChainStats | None = None) -> CapacityModel:
    chains = [("l1", "evm", evm or evm_stats(), eth_usd), ("cosmos", "cosmos", cosmos or cosmos_stats(), atom_usd),
              ("solana", "solana", solana or solana_stats(), sol_usd)]
    return CapacityModel([profile_from_stats(name, i + 1, family, stats, finality_blocks=2,
                                             transfer_gas=ROUTER_TRANSFER_GAS, native_usd=usd)
                          for i, (name, family, stats, usd) in enumerate(chains)])


def test_evm_fee_is_gas_at_base_fee_plus_tip_in_ether():
    m = model(evm=evm_stats(base_fee_gwei=10, tip_gwei=1))
    # a transfer: 50k gas x (10 + 1) gwei = 0.00055 ETH at $3,000; a payout: XCHAIN_DEST_WORK transfers' gas
    assert m.transfer_fee_usd()[0] == pytest.approx(50_000 * 11e-9 * 3000)
    assert m.payout_fee_usd()[0] == pytest.approx(XCHAIN_DEST_WORK * 50_000 * 11e-9 * 3000)
    # the tip counts: on a devnet whose base fee fell to a few wei it is nearly all of the fee
    cheap = model(evm=evm_stats(base_fee_gwei=1e-8, tip_gwei=1))
    assert cheap.transfer_fee_usd()[0] == pytest.approx(50_000 * 1e-9 * 3000, rel=1e-6)


def test_cosmos_fee_is_the_payouts_gas_at_the_gas_price_in_the_fee_denom():
    gas, fee = payout_cost(0.01)
    assert (gas, fee) == (delivery_gas(1), 1300) == (130_000, 1300)  # 130,000 gas x 0.01 uatom, declared whole
    assert payout_cost(0.0025) == (130_000, 325)
    m = model(atom_usd=5.0)
    c = m.index["cosmos"]
    assert m.payout_fee_usd()[c] == pytest.approx(1300e-6 * 5.0)           # $0.0065
    assert m.transfer_fee_usd()[c] == pytest.approx(1200e-6 * 5.0)         # a plain send: 120,000 gas
    assert m.transfer_gas[c] == m.payout_gas[c] == 130_000                  # work there is counted in payouts
    # what it used to say: ceil(0.01) = 1 uatom per gas x 50,000 EVM gas x ether's $3,000 = $150
    assert m.payout_fee_usd()[c] < 150.0 / 10_000


def test_solana_fee_is_signatures_priority_and_the_rent_a_delivery_locks():
    # fee payer + 2 co-signers, two replay guards, the recipient's token account
    assert payout_fee(threshold=2, priority_micro_lamports=0, guard_rent=GUARD_RENT,
                      token_account_rent=TOKEN_ACCOUNT_RENT) == 3 * 5_000 + 2 * GUARD_RENT + TOKEN_ACCOUNT_RENT
    # the priority fee: micro-lamports per compute unit over the delivery's compute units, rounded up
    with_priority = payout_fee(threshold=2, priority_micro_lamports=1_001, guard_rent=GUARD_RENT,
                               token_account_rent=TOKEN_ACCOUNT_RENT)
    assert with_priority - 3_849_960 == -(-1_001 * DELIVERY_COMPUTE_PER_MESSAGE // 10**6) == 61
    m = model(sol_usd=150.0)
    s = m.index["solana"]
    assert m.payout_fee_usd()[s] == pytest.approx(3_849_960e-9 * 150.0)    # $0.577
    assert m.transfer_fee_usd()[s] == pytest.approx(5_000e-9 * 150.0)      # one signature
    assert m.base_fee[s] == 0 and m.transfer_gas[s] == DELIVERY_COMPUTE_PER_MESSAGE


def test_each_chain_is_priced_at_its_own_native_token():
    cheap, dear = model(atom_usd=5.0, sol_usd=150.0), model(atom_usd=10.0, sol_usd=300.0)
    for name in ("cosmos", "solana"):
        i = cheap.index[name]
        assert dear.payout_fee_usd()[i] == pytest.approx(2 * cheap.payout_fee_usd()[i])
    assert dear.transfer_fee_usd()[0] == cheap.transfer_fee_usd()[0]       # ether's price did not move


@pytest.mark.parametrize("dest", ["cosmos", "solana", "l1"])
def test_a_quotes_route_is_its_option_and_sums_its_legs(dest):
    m = model()
    origin = "solana" if dest == "l1" else "l1"
    req = QuoteRequest(kind="xchain", amount="1", from_chain=origin, chains=[dest])
    q = _quote(m, req, parse_request(req, m, ""), now=0.0)
    route = q["route"]
    assert q["options"] == [route] and route["chain"] == dest and route["origin"] == origin
    d, o = m.index[dest], m.index[origin]
    assert route["destination_fee_usd"] == pytest.approx(m.payout_fee_usd()[d], rel=1e-5)
    origin_leg = XCHAIN_ORIGIN_WORK * m.fee_per_gas_usd()[o] * m.transfer_gas[o] + m.tx_fee_usd()[o]
    assert route["origin_fee_usd"] == pytest.approx(origin_leg, rel=1e-5)
    assert route["fee_usd"] == pytest.approx(route["origin_fee_usd"] + route["destination_fee_usd"], rel=1e-5)


def test_the_planner_charges_what_route_costs_says():
    m = model()
    reqs = [QuoteRequest(kind="xchain", amount="1", from_chain="l1"), QuoteRequest(amount="2")]
    intents = planner_intents([parse_request(r, m, "") for r in reqs], m)
    a = plan(intents, m, window_s=1.0)
    costs = route_costs(intents.kind, intents.work, intents.origin.astype(np.intp), m)
    rows = np.arange(len(reqs))
    assert np.all(a.chain >= 0)
    assert np.array_equal(a.fee_usd, costs.fee_usd[rows, a.chain])
    assert np.array_equal(a.latency_s, costs.latency_s[rows, a.chain])
    # a cross-chain payout's gas is the destination's own payout gas
    x = int(np.flatnonzero(intents.kind == Kind.XCHAIN)[0])
    assert a.gas[x] == pytest.approx(m.payout_gas[a.chain[x]])


def _with_prices(tmp_path: Path, line: str) -> Path:
    text = EXAMPLE.read_text()
    assert "native_usd = 3000.0" in text
    return write(tmp_path, text.replace("native_usd = 3000.0", f"native_usd = 3000.0\n{line}", 1))


def test_per_chain_native_prices_load(tmp_path):
    s = load_settings(_with_prices(tmp_path, "native_usd_by_chain = { rollup_b = 1.5 }"), env={})
    assert s.router.native_usd_by_chain == {"rollup_b": 1.5} and s.router.native_usd == 3000.0


@pytest.mark.parametrize(("line", "path", "needle"), [
    ("native_usd_by_chain = { mars = 5.0 }", "", "router.native_usd_by_chain names 'mars'"),
    ("native_usd_by_chain = { l1 = 0.0 }", "router.native_usd_by_chain.l1", "greater than 0"),
    ("native_usd_by_chain = { l1 = inf }", "router.native_usd_by_chain.l1", "finite"),
    ('native_usd_by_chain = { l1 = "cheap" }', "router.native_usd_by_chain.l1", "number"),
])
def test_bad_per_chain_native_prices_are_refused_naming_the_key(tmp_path, line, path, needle):
    with pytest.raises(ConfigError) as err:
        load_settings(_with_prices(tmp_path, line), env={})
    assert needle in str(err.value)
    if path:
        assert err.value.path == path
