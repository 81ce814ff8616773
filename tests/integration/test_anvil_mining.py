"""A reverted devnet's anvils (the xchain plugin's session devnet) are mined by the session (``devnets.anvil_mining``):
snapshots and reverts happen while no block is being mined, so a revert never leaves a gap of missing blocks, which
anvil 1.7's own interval miner does when it races ``evm_revert`` (measured: with ``--block-time 0.01`` and the same
cycles as below, a gap appeared within 36 and within 218 of 400 cycles in two runs; with the session's miner none in
400)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.evm.devnet import EvmDevnetChain, rpc_call, start_anvil, stop_process, wait_until_answers
from devnets.anvil_mining import AnvilMiner, AnvilSnapshots
from tests.integration.harness import ROOT, free_port_block, wait_for

pytestmark = pytest.mark.integration

BLOCK_TIME_S = 0.01
FUNDED = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's first public test account (devnet only)
PAYEE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture
def mined_anvil(tmp_path: Path):
    chain = EvmDevnetChain("fast", 1, 31337, free_port_block(1), BLOCK_TIME_S, 30_000_000, 2)
    proc = start_anvil(chain, ROOT, tmp_path / "anvil.log", mined_by_caller=True)
    miner = AnvilMiner([chain])
    try:
        wait_until_answers(chain, proc)
        miner.start()
        yield chain, miner
    finally:
        miner.stop()
        stop_process(proc.pid)


def height(chain: EvmDevnetChain) -> int:
    return int(rpc_call(chain.rpc_url, "eth_blockNumber"), 16)


def test_the_session_mines_every_block_time_and_nothing_while_paused(mined_anvil):
    chain, miner = mined_anvil
    start = height(chain)
    wait_for(lambda: height(chain) >= start + 20, 10, "20 blocks mined by the session")
    with miner.paused():
        held = height(chain)
        time.sleep(BLOCK_TIME_S * 20)  # twenty block times: anvil itself mines nothing (--no-mining)
        assert height(chain) == held
    wait_for(lambda: height(chain) > held, 5, "mining to go on after the pause")


def test_quick_reverts_under_transactions_never_leave_a_gap(mined_anvil):
    chain, miner = mined_anvil
    snapshots = AnvilSnapshots({"fast": chain.rpc_url}, miner)
    wait_for(lambda: height(chain) >= 5, 10, "a few blocks")
    with miner.paused():
        snapshots.take()
        base = height(chain)
    for cycle in range(120):
        for _ in range(3):  # transactions in the blocks being mined when the revert comes
            rpc_call(chain.rpc_url, "eth_sendTransaction", [{"from": FUNDED, "to": PAYEE, "value": "0x1"}])
        time.sleep(BLOCK_TIME_S * 3)
        snapshots.restore()
        head = height(chain)
        missing = [n for n in range(base, head + 1)
                   if rpc_call(chain.rpc_url, "eth_getBlockByNumber", [hex(n), False]) is None]
        assert not missing, f"revert {cycle}: head {head}, blocks {missing} missing"
    assert height(chain) < base + 20  # every revert really went back
