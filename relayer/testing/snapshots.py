"""The state a reset goes back to: each anvil's (``evm_snapshot``), the Solana and Cosmos devnets' ledgers and the
relayer's store (copies of their SQLite files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.evm import devnet as evm_devnet
from devnets.devnet import Devnet
from relayer.testing.chains import XChainError

LEDGERS = {"cosmos": Path("cosmos") / "chain.sqlite", "solana": Path("solana") / "ledger.sqlite"}  # in the devnet dir


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


class LedgerSnapshots:
    """The Solana and Cosmos devnets (one process each, their state in SQLite under the devnet directory). They have
    no in-place snapshot: a restore stops the process, puts the copied ledger back and starts it again on its
    ports, which costs an interpreter start and the ledger's load (seconds, not the anvils' milliseconds)."""

    def __init__(self, devnet: Devnet, families: tuple[str, ...], directory: Path) -> None:
        self.devnet = devnet
        self.names = [f for f in families if f in LEDGERS]
        self.copies = {n: SqliteSnapshot(devnet.dir / LEDGERS[n], directory / f"{n}.sqlite") for n in self.names}

    def take(self) -> None:
        for copy in self.copies.values():
            copy.take()

    def restore(self) -> None:
        if not self.names:
            return
        running = self.devnet.status()["chains"]
        for name in self.names:
            evm_devnet.stop_process(running[name]["pid"], timeout_s=10.0)
            self.copies[name].restore()
        self.devnet.start_ledgers()
