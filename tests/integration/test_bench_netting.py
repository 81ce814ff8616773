"""``relayer bench netting`` (issue 16) end to end with a few transfers per direction, on a devnet of its own: in every
scenario each recipient is paid exactly once (read from the chain) and the supply is conserved; the symmetric load
through the pools needs fewer settlement messages than lock/mint needs messages, moves nothing through mint/burn, and
leaves both pools at their seed; the one-way load exceeds the destination pool, so a payout is deferred and released
after the epoch's settlement. The bench brings its devnet down after."""

from __future__ import annotations

import pytest

from devnets.devnet import Devnet
from relayer.bench.netting import SCENARIOS, run_netting_bench
from tests.integration.harness import free_port_block

pytestmark = pytest.mark.integration

TRANSFERS = 4


def test_netting_pays_everyone_once_conserves_supply_and_settles_symmetric_flows_in_fewer_messages(tmp_path) -> None:
    base, api = free_port_block(3), free_port_block(1)
    result = run_netting_bench(transfers=TRANSFERS, route=("l1", "rollup_a"), devnet_dir=tmp_path / "devnet",
                               json_output=True, base_port=base, api_port=api, timeout_s=120)
    assert result["route"] == "l1:rollup_a" and result["finished"], result
    assert (result["lost"], result["duplicated"], result["send_errors"]) == (0, 0, 0), result
    expected = {"symmetric_pool": 2 * TRANSFERS, "symmetric_lock_mint": 2 * TRANSFERS, "one_way_pool": TRANSFERS,
                "one_way_lock_mint": TRANSFERS}
    for name in SCENARIOS:
        row = result[name]
        assert row["finished"] and row["supply_conserved"], (name, row)
        assert (row["transfers"], row["paid"], row["lost"], row["duplicated"]) == (expected[name], expected[name],
                                                                                   0, 0), (name, row)
        assert row["delivered"] == expected[name], (name, row)
        assert row["gas_per_transfer"] > 0 and 0 < row["latency_median_s"] <= row["latency_p90_s"], (name, row)
        assert not any(kind.startswith("reverted_") for kind in row["gas"]), (name, row)

    symmetric, lock_mint = result["symmetric_pool"], result["symmetric_lock_mint"]
    assert lock_mint["messages"] == lock_mint["settlement_messages"] == 2 * TRANSFERS
    assert lock_mint["payout_messages"] == 0
    assert symmetric["payout_messages"] == 2 * TRANSFERS  # one attested FILL per deposit, as lock/mint's message
    # one settlement per epoch with flow and direction, never one per transfer
    assert symmetric["settlement_messages"] == 2 * len(symmetric["epochs_with_deposits"]) < 2 * TRANSFERS
    assert symmetric["messages_ratio"] < 1 and result["ratios"]["symmetric"]["messages_ratio"] < 1
    assert symmetric["pools_back_to_seed"] and symmetric["settlements_completed"] == symmetric["settlement_messages"]

    one_way = result["one_way_pool"]
    assert result["one_way_exceeds_destination_pool"]
    assert one_way["deferred"] >= 1 and one_way["released"] == one_way["deferred"], one_way
    assert one_way["pools_back_to_seed"] and one_way["net_burnt"] == one_way["net_minted"] == one_way[
        "value_transferred"], one_way
    assert Devnet(tmp_path / "devnet", base_port=base, api_port=api, families=("evm",)).status()["up"] is False
