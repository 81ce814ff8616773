"""The anvils of a devnet that is reverted (``Devnet(allow_snapshots=True)``, the ``xchain`` plugin's): their blocks
mined by this process, and their snapshots taken and reverted while no block is being mined.

Why: anvil 1.7's ``evm_revert`` rewinds its block storage without the lock its interval miner (``--block-time``) holds
while it mines. A block being mined while a revert runs is written after the rewind at its old height, on top of
blocks that no longer exist: the chain then has a gap (``eth_blockNumber`` says 96 while block 92 is not found,
``BlockOutOfRangeError: block height is 96 but requested was 92``) for the rest of the session, and the relayer's
reads in it fail (seen in CI: a reset after which rollup_b's messages never got a quorum). A block started between the
rewind and the state's revert is mined on the state from before the revert. So these anvils run with ``--no-mining``
and ``AnvilMiner`` mines them: one thread per chain calls ``evm_mine`` every block time, and ``paused()`` holds every
thread between two blocks (each call in flight has returned, so anvil mines nothing) while ``AnvilSnapshots`` takes
or reverts its snapshots.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

import structlog

from adapters.evm.devnet import DevnetError, EvmDevnetChain, rpc_call

log = structlog.get_logger("devnets.anvil_mining")

MINE_TIMEOUT_S = 10.0


class AnvilMiner:
    """Mines each chain of ``chains`` that has a block time (the others mine each transaction at once, automine)."""

    def __init__(self, chains: Sequence[EvmDevnetChain]) -> None:
        self.chains = [c for c in chains if c.block_time_s is not None]
        self._locks = {c.name: threading.RLock() for c in self.chains}  # paused() may nest in one thread
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for chain in self.chains:
            thread = threading.Thread(target=self._mine, args=(chain,), name=f"anvil-miner-{chain.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(MINE_TIMEOUT_S + 1)
        self._threads = []

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No chain mines inside: each thread is between two blocks (in the chains' order, so never a deadlock)."""
        with contextlib.ExitStack() as held:
            for chain in self.chains:
                held.enter_context(self._locks[chain.name])
            yield

    def _mine(self, chain: EvmDevnetChain) -> None:
        assert chain.block_time_s is not None
        next_at = time.monotonic() + chain.block_time_s
        failing = False
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            with self._locks[chain.name]:
                if self._stop.is_set():
                    return
                try:
                    rpc_call(chain.rpc_url, "evm_mine", timeout=MINE_TIMEOUT_S)
                    failing = False
                except (OSError, ValueError, DevnetError) as exc:  # anvil stopping, or slow: the next tick tries
                    if not failing:
                        log.warning("anvil_mine_failed", chain=chain.name, error=str(exc)[:200])
                    failing = True
            # after a pause or on a loaded machine: the next block one block time from now, not a burst to catch up
            next_at = max(next_at + chain.block_time_s, time.monotonic())


class AnvilSnapshots:
    """``evm_snapshot`` / ``evm_revert`` on every anvil (``rpc_urls``: chain name -> URL), with ``miner`` paused.

    An anvil snapshot is one-shot (a revert consumes it and every later one), so each restore takes the next one at
    once. A restore drops what waits in each pool before and after the revert (a killed daemon's transactions must
    not land on the reverted chain)."""

    def __init__(self, rpc_urls: dict[str, str], miner: AnvilMiner | None) -> None:
        self.rpc_urls = rpc_urls
        self.miner = miner
        self._ids: dict[str, str] = {}

    def _paused(self) -> contextlib.AbstractContextManager[None]:
        return self.miner.paused() if self.miner is not None else contextlib.nullcontext()

    def take(self) -> None:
        with self._paused():
            self._ids = {name: rpc_call(url, "evm_snapshot") for name, url in self.rpc_urls.items()}

    def restore(self) -> None:
        with self._paused():
            for name, url in self.rpc_urls.items():
                rpc_call(url, "anvil_dropAllTransactions")
                if rpc_call(url, "evm_revert", [self._ids[name]]) is not True:
                    raise DevnetError(f"anvil of {name} refused to revert to snapshot {self._ids[name]}")
                rpc_call(url, "anvil_dropAllTransactions")
                self._ids[name] = rpc_call(url, "evm_snapshot")
