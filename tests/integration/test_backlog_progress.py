"""Backlog catch-up on a real anvil: an origin thousands of blocks behind its finalized height reports progress."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from adapters.evm.adapter import EvmAdapter
from adapters.evm.devnet import EvmDevnetChain, rpc_call, start_anvil, stop_process, wait_until_answers
from config.settings import EvmChainConfig
from relayer.pipeline.indexer import OriginIndexer
from relayer.store import Store
from tests.integration.harness import ROOT, free_port_block

pytestmark = pytest.mark.integration

BACKLOG = 2_500


@pytest.fixture
def bare_anvil(tmp_path):
    """An anvil of this test's own (no contracts: its blocks are empty of dispatches)."""
    chain = EvmDevnetChain("backlog", 9_100, 31_991, free_port_block(1), None, 30_000_000, 2)
    proc = start_anvil(chain, ROOT, tmp_path / "anvil.log")
    try:
        wait_until_answers(chain, proc)
        yield chain
    finally:
        stop_process(proc.pid)


async def test_catch_up_from_far_behind_logs_progress_with_rising_heights(bare_anvil, tmp_path):
    for _ in range(BACKLOG // 500):  # in steps: a loaded machine mines ~150-300 empty blocks/s
        rpc_call(bare_anvil.rpc_url, "anvil_mine", [hex(500)], timeout=60)
    config = EvmChainConfig(family="evm", domain=bare_anvil.domain, chain_id=bare_anvil.chain_id,
                            rpc_url=bare_anvil.rpc_url, mailbox="0x" + "42" * 20, finality=2)
    adapter = EvmAdapter("backlog", config)
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="test")
    indexer = OriginIndexer(adapter, store, known_destinations={1}, start_height=1, max_range=250,
                            backlog_threshold=1_000, progress_interval_s=0.0)
    target = int(await adapter.finalized_height())
    try:
        with capture_logs() as logs:
            while indexer.indexed_height is None or indexer.indexed_height < target:
                await indexer.poll_once()
    finally:
        await adapter.close()
        store.close()
    started = [e for e in logs if e["event"] == "backlog_started"]
    progress = [e for e in logs if e["event"] == "backlog_progress"]
    done = [e for e in logs if e["event"] == "backlog_caught_up"]
    assert len(started) == 1 and started[0]["behind"] > 1_000
    heights = [e["indexed"] for e in progress]
    assert len(heights) >= 5 and heights == sorted(set(heights))  # one event per range, heights rising
    assert all(e["chain"] == "backlog" and e["target"] >= target and e["blocks_per_s"] > 0 and e["eta_s"] is not None
               for e in progress)
    assert [e["percent"] for e in progress] == sorted(e["percent"] for e in progress)
    assert len(done) == 1 and done[0]["indexed"] >= target and indexer.backlog is None
    print(f"\nbacklog: {done[0]['blocks']} blocks in {done[0]['seconds']}s = {done[0]['blocks_per_s']} blocks/s, "
          f"{len(progress)} progress events")
