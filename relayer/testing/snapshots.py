"""The state a reset goes back to: each anvil's (``evm_snapshot``), the Solana and Cosmos devnets' (their own
in-place ``xchain_snapshot``, ``devnets.snapshots``) and the relayer's store (a copy of its SQLite file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.evm import devnet as evm_devnet
from devnets import snapshots as devnet_snapshots
from relayer.testing.chains import XChainError


class EvmSnapshots:
    """``evm_snapshot`` / ``evm_revert`` on every anvil. An anvil snapshot is one-shot (a revert consumes it and
    every later one), so each restore takes the next one at once."""

    def __init__(self, rpc_urls: dict[str, str]) -> None:
        self.rpc_urls = rpc_urls
        self._ids: dict[str, str] = {}

    def take(self) -> None:
        self._ids = {name: evm_devnet.rpc_call(url, "evm_snapshot") for name, url in self.rpc_urls.items()}

    def restore(self) -> None:
        """Drop what waits in each pool (a killed daemon's transactions must not land on the reverted chain),
        revert, snapshot again."""
        for name, url in self.rpc_urls.items():
            evm_devnet.rpc_call(url, "anvil_dropAllTransactions")
            if evm_devnet.rpc_call(url, "evm_revert", [self._ids[name]]) is not True:
                raise XChainError(f"anvil of {name} refused to revert to snapshot {self._ids[name]}")
            evm_devnet.rpc_call(url, "anvil_dropAllTransactions")
            self._ids[name] = evm_devnet.rpc_call(url, "evm_snapshot")


class SqliteSnapshot:
    """A copy of one SQLite database, taken with the backup API (consistent even while its owner writes). ``restore``
    writes it back into the same file with the backup API too (its owner stopped): a process that already holds the
    database open (the standby daemon) reads the restored content, which a file copied over it would hide."""

    def __init__(self, db: Path, copy: Path) -> None:
        self.db = db
        self.copy = copy

    def take(self) -> None:
        self.copy.parent.mkdir(parents=True, exist_ok=True)
        self.copy.unlink(missing_ok=True)
        source, target = sqlite3.connect(self.db), sqlite3.connect(self.copy)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()

    def restore(self) -> None:
        source, target = sqlite3.connect(self.copy), sqlite3.connect(self.db, timeout=30.0)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()


class SolanaCosmosSnapshots:
    """The Solana and Cosmos devnets' in-place snapshots (``xchain_snapshot`` / ``xchain_revert`` on their RPC
    ports, ``devnets.snapshots``), served because the session's devnet is made with ``allow_snapshots=True``.
    A restore reverts each chain in its running process (state, blocks or slots, transaction history, the Cosmos
    mempool dropped; it goes on producing blocks from the reverted height): milliseconds, no process restart.
    Unlike an anvil's, such a snapshot is reusable: ``take`` once (at the baseline), ``restore`` as often as
    needed."""

    def __init__(self, rpc_urls: dict[str, tuple[str, str]]) -> None:
        """``rpc_urls``: chain name -> (family, RPC URL), for the chains of the ``solana`` and ``cosmos`` families."""
        self.rpc_urls = rpc_urls
        self._ids: dict[str, str] = {}

    def take(self) -> None:
        try:
            self._ids = {name: devnet_snapshots.take(family, url) for name, (family, url) in self.rpc_urls.items()}
        except devnet_snapshots.SnapshotError as exc:
            raise XChainError(f"a devnet refused its snapshot: {exc}") from exc

    def restore(self) -> None:
        for name, (family, url) in self.rpc_urls.items():
            try:
                devnet_snapshots.revert(family, url, self._ids[name])
            except devnet_snapshots.SnapshotError as exc:
                raise XChainError(f"the {name} devnet did not revert to its snapshot: {exc}") from exc
