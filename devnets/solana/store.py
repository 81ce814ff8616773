"""Durable state of the Solana devnet: accounts, transaction history, slots (blocks) and blockhashes in SQLite.

Each accepted transaction is written in one SQLite transaction (the accounts it touched, its record and its
address index) before ``sendTransaction`` answers, so killing the process loses nothing it acknowledged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solders.account import Account
from solders.pubkey import Pubkey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (pubkey TEXT PRIMARY KEY, account BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (slot INTEGER PRIMARY KEY, hash TEXT NOT NULL, block_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    signature TEXT NOT NULL UNIQUE,
    slot INTEGER NOT NULL,
    block_time INTEGER NOT NULL,
    tx BLOB NOT NULL,
    meta TEXT NOT NULL,
    err TEXT,
    memo TEXT
);
CREATE TABLE IF NOT EXISTS pre_images (pubkey TEXT NOT NULL, slot INTEGER NOT NULL, account BLOB);
CREATE TABLE IF NOT EXISTS address_signatures (
    address TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (address, seq)
);
"""


@dataclass(frozen=True)
class TransactionRecord:
    """One landed transaction as ``getTransaction`` and ``getSignaturesForAddress`` need it."""

    seq: int
    signature: str
    slot: int
    block_time: int
    tx: bytes
    meta: dict[str, Any]
    err: Any
    memo: str | None


class LedgerStore:
    """SQLite file ``ledger.sqlite`` in the state directory; WAL, committed per transaction."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "ledger.sqlite"
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def is_empty(self) -> bool:
        return self._db.execute("SELECT value FROM meta WHERE key = 'slot'").fetchone() is None

    def load_slot(self) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'slot'").fetchone()
        return None if row is None else int(row[0])

    def load_accounts(self) -> list[tuple[Pubkey, Account]]:
        rows = self._db.execute("SELECT pubkey, account FROM accounts").fetchall()
        return [(Pubkey.from_string(key), Account.from_bytes(blob)) for key, blob in rows]

    def load_blockhashes(self, since_slot: int) -> list[tuple[int, str]]:
        rows = self._db.execute("SELECT slot, hash FROM blocks WHERE slot >= ?", (since_slot,))
        return [(int(s), str(h)) for s, h in rows]

    def block(self, slot: int) -> tuple[str, int] | None:
        """The blockhash and block time of ``slot``, if the devnet produced it."""
        row = self._db.execute("SELECT hash, block_time FROM blocks WHERE slot = ?", (slot,)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def block_slots(self, start: int, end: int, limit: int) -> list[int]:
        rows = self._db.execute(
            "SELECT slot FROM blocks WHERE slot BETWEEN ? AND ? ORDER BY slot LIMIT ?", (start, end, limit)
        )
        return [int(r[0]) for r in rows]

    def transactions_in_slot(self, slot: int) -> list[TransactionRecord]:
        rows = self._db.execute(
            "SELECT seq, signature, slot, block_time, tx, meta, err, memo FROM transactions"
            " WHERE slot = ? ORDER BY seq",
            (slot,),
        ).fetchall()
        return [_record(r) for r in rows]

    def load_pre_images(self) -> list[tuple[Pubkey, int, Account | None]]:
        rows = self._db.execute("SELECT pubkey, slot, account FROM pre_images ORDER BY rowid").fetchall()
        return [
            (Pubkey.from_string(key), int(slot), None if blob is None else Account.from_bytes(blob))
            for key, slot, blob in rows
        ]

    def save_genesis(self, slot: int, accounts: Iterable[tuple[Pubkey, Account]]) -> None:
        with self._transaction():
            self._put_accounts(accounts)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('slot', ?)", (str(slot),))

    def save_slot(self, slot: int, blockhash: str, block_time: int, finalized_slot: int) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM pre_images WHERE slot <= ?", (finalized_slot,))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('slot', ?)", (str(slot),))
            self._db.execute("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?)", (slot, blockhash, block_time))

    def save_transaction(
        self,
        *,
        signature: str,
        slot: int,
        block_time: int,
        tx: bytes,
        meta: dict[str, Any],
        err: Any,
        memo: str | None,
        addresses: Sequence[str],
        accounts: Iterable[tuple[Pubkey, Account]],
        pre_images: Iterable[tuple[Pubkey, int, Account | None]] = (),
    ) -> None:
        """``pre_images``: accounts as they were before the first change in ``slot`` (``None``: absent)."""
        with self._transaction():
            self._put_accounts(accounts)
            self._db.executemany(
                "INSERT INTO pre_images VALUES (?, ?, ?)",
                [(str(k), s, None if a is None else bytes(a)) for k, s, a in pre_images],
            )
            cur = self._db.execute(
                "INSERT INTO transactions (signature, slot, block_time, tx, meta, err, memo)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    signature,
                    slot,
                    block_time,
                    tx,
                    json.dumps(meta),
                    None if err is None else json.dumps(err),
                    memo,
                ),
            )
            seq = cur.lastrowid
            self._db.executemany(
                "INSERT OR IGNORE INTO address_signatures VALUES (?, ?)", [(a, seq) for a in set(addresses)]
            )

    def transaction(self, signature: str) -> TransactionRecord | None:
        row = self._db.execute(
            "SELECT seq, signature, slot, block_time, tx, meta, err, memo FROM transactions WHERE signature = ?",
            (signature,),
        ).fetchone()
        return None if row is None else _record(row)

    def signatures_for_address(
        self, address: str, *, max_slot: int, before: str | None, until: str | None, limit: int
    ) -> list[TransactionRecord]:
        """Newest first, strictly older than ``before`` and strictly newer than ``until`` when given."""
        clauses = ["a.address = ?", "t.slot <= ?"]
        params: list[Any] = [address, max_slot]
        for sig, op in ((before, "<"), (until, ">")):
            if sig is not None:
                clauses.append(f"t.seq {op} COALESCE((SELECT seq FROM transactions WHERE signature = ?), ?)")
                params += [sig, -1 if op == "<" else 2**62]
        rows = self._db.execute(
            "SELECT t.seq, t.signature, t.slot, t.block_time, t.tx, t.meta, t.err, t.memo"
            " FROM address_signatures a JOIN transactions t ON t.seq = a.seq"
            f" WHERE {' AND '.join(clauses)} ORDER BY t.seq DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [_record(r) for r in rows]

    def transaction_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0])

    # -- snapshots (devnets.snapshots) --------------------------------------------------------------------

    def snapshot_rows(self) -> tuple[int, dict[str, bytes]]:
        """What a snapshot keeps of the store: the last transaction's ``seq`` (0: none) and every account row."""
        with self._transaction():
            last_seq = int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM transactions").fetchone()[0])
            accounts = {str(k): bytes(a) for k, a in self._db.execute("SELECT pubkey, account FROM accounts")}
        return last_seq, accounts

    def revert(
        self,
        *,
        slot: int,
        last_seq: int,
        accounts: dict[str, bytes],
        pre_images: Iterable[tuple[Pubkey, int, Account | None]],
    ) -> dict[str, bytes | None]:
        """Back to a snapshot, in one SQLite transaction: the transactions after ``last_seq`` and their address
        index, the slots after ``slot``, the account rows and the pre-images as the snapshot had them. Answers the
        account rows that changed (pubkey -> the snapshot's row, ``None`` for an account created since)."""
        with self._transaction():
            now = {str(k): bytes(a) for k, a in self._db.execute("SELECT pubkey, account FROM accounts")}
            changed: dict[str, bytes | None] = {k: accounts.get(k) for k, a in now.items() if accounts.get(k) != a}
            changed.update({k: a for k, a in accounts.items() if k not in now})
            self._db.execute("DELETE FROM transactions WHERE seq > ?", (last_seq,))
            self._db.execute("DELETE FROM address_signatures WHERE seq > ?", (last_seq,))
            self._db.execute("DELETE FROM blocks WHERE slot > ?", (slot,))
            self._db.execute("DELETE FROM pre_images")
            self._db.executemany(
                "INSERT INTO pre_images VALUES (?, ?, ?)",
                [(str(k), s, None if a is None else bytes(a)) for k, s, a in pre_images],
            )
            gone = [(k,) for k, a in changed.items() if a is None]
            self._db.executemany("DELETE FROM accounts WHERE pubkey = ?", gone)
            back = [(k, a) for k, a in changed.items() if a is not None]
            self._db.executemany("INSERT OR REPLACE INTO accounts VALUES (?, ?)", back)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('slot', ?)", (str(slot),))
        return changed

    def _put_accounts(self, accounts: Iterable[tuple[Pubkey, Account]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO accounts VALUES (?, ?)", [(str(k), bytes(a)) for k, a in accounts]
        )

    def _transaction(self) -> _SqliteTransaction:
        return _SqliteTransaction(self._db)


class _SqliteTransaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _record(row: tuple[Any, ...]) -> TransactionRecord:
    seq, signature, slot, block_time, tx, meta, err, memo = row
    return TransactionRecord(
        seq=int(seq),
        signature=str(signature),
        slot=int(slot),
        block_time=int(block_time),
        tx=bytes(tx),
        meta=json.loads(meta),
        err=None if err is None else json.loads(err),
        memo=memo,
    )
