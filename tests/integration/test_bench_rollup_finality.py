"""``relayer bench rollup-finality`` (issue 16) end to end with a few messages, on a devnet of its own: every rule
delivers everything once (read from the chain), and the optimistic rule really waits for the challenge window: its
median latency exceeds the posted (zk-style) rule's by about the window. The bench brings its devnet down after."""

from __future__ import annotations

import pytest

from devnets.devnet import Devnet
from relayer.bench.rollup_finality import RULES, run_rollup_finality_bench
from tests.integration.harness import free_port_block

pytestmark = pytest.mark.integration

MESSAGES = 3
# the window is judged by L1 block timestamps (whole seconds) against the finalized L1 block: it can be over up to
# a second early by the wall clock, and each median is read to a block
WINDOW_SLACK_S = 1.5


def test_each_rule_delivers_all_once_and_the_optimistic_one_waits_for_the_window(tmp_path) -> None:
    base, api = free_port_block(3), free_port_block(1)
    result = run_rollup_finality_bench(messages=MESSAGES, devnet_dir=tmp_path / "devnet", json_output=True,
                                       base_port=base, api_port=api, timeout_s=90)
    assert result["route"] == "rollup_a:l1"
    window = result["challenge_window_s"]
    assert window == 4 and result["output_interval_blocks"] == 4
    for rule in RULES:
        row = result[rule]
        figures = (row["sent"], row["delivered"], row["lost"], row["duplicated"])
        assert figures == (MESSAGES, MESSAGES, 0, 0), (rule, row)
        assert row["send_errors"] == []
        assert 0 < row["latency_median_s"] <= row["latency_p90_s"] <= row["latency_max_s"], (rule, row)
    assert result["confirmations"]["median_ratio_to_confirmations"] == 1.0
    waited = result["optimistic"]["latency_median_s"] - result["posted"]["latency_median_s"]
    assert waited >= window - WINDOW_SLACK_S, result
    assert Devnet(tmp_path / "devnet", base_port=base, api_port=api, families=("evm",)).status()["up"] is False
