"""The state a reset goes back to: each anvil's (``evm_snapshot``, ``devnets.anvil_mining.AnvilSnapshots``, from
``Devnet.anvil_snapshots``), the Solana and Cosmos devnets' (their own in-place ``xchain_snapshot``,
``devnets.snapshots``) and the relayer's store (a copy of its SQLite file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from devnets import snapshots as devnet_snapshots
from relayer.testing.chains import XChainError


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
