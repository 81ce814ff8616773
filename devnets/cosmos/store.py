"""SQLite persistence of the devnet: settings, blocks (header, commit, txs, results) and the state after
each block, written in one transaction per block so that a restarted node continues at the next height.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

from devnets.cosmos.blocks import StoredBlock
from devnets.cosmos.state import LedgerState
from devnets.cosmos.transactions import Event, TxResult
from light_clients.tendermint import rpc_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (height INTEGER PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), height INTEGER NOT NULL,
                                  record TEXT NOT NULL);
"""


def result_to_json(result: TxResult) -> dict[str, Any]:
    return {
        "code": result.code,
        "codespace": result.codespace,
        "log": result.log,
        "data": base64.b64encode(result.data).decode(),
        "gas_wanted": result.gas_wanted,
        "gas_used": result.gas_used,
        "events": [{"type": e.type, "attributes": [list(a) for a in e.attributes]} for e in result.events],
    }


def result_from_json(data: dict[str, Any]) -> TxResult:
    return TxResult(
        code=data["code"],
        codespace=data["codespace"],
        log=data["log"],
        data=base64.b64decode(data["data"]),
        gas_wanted=data["gas_wanted"],
        gas_used=data["gas_used"],
        events=tuple(Event(e["type"], tuple((k, v) for k, v in e["attributes"])) for e in data["events"]),
    )


def block_to_json(block: StoredBlock) -> dict[str, Any]:
    return {
        "header": rpc_json.header_to_json(block.header),
        "block_id": rpc_json.block_id_to_json(block.block_id),
        "txs": [base64.b64encode(tx).decode() for tx in block.txs],
        "results": [result_to_json(r) for r in block.results],
        "commit": rpc_json.commit_to_json(block.commit),
        "last_commit": rpc_json.commit_to_json(block.last_commit) if block.last_commit else None,
    }


def block_from_json(data: dict[str, Any]) -> StoredBlock:
    return StoredBlock(
        header=rpc_json.parse_header(data["header"]),
        block_id=rpc_json.parse_block_id(data["block_id"]),
        txs=tuple(base64.b64decode(tx) for tx in data["txs"]),
        results=tuple(result_from_json(r) for r in data["results"]),
        commit=rpc_json.parse_commit(data["commit"]),
        last_commit=rpc_json.parse_commit(data["last_commit"]) if data["last_commit"] else None,
    )


class ChainStore:
    """The state directory's ``chain.sqlite``."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state_dir / "chain.sqlite", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    def save_block(self, block: StoredBlock, state: LedgerState) -> None:
        """The block and the state after it, atomically."""
        self._db.execute("BEGIN")
        try:
            self._db.execute(
                "INSERT INTO blocks VALUES (?, ?)", (block.height, json.dumps(block_to_json(block)))
            )
            self._db.execute(
                "INSERT OR REPLACE INTO state VALUES (1, ?, ?)", (block.height, json.dumps(state.to_json()))
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def revert(self, height: int, state: LedgerState) -> None:
        """Back to a snapshot at ``height``, atomically: the blocks after it go, the state is the snapshot's."""
        self._db.execute("BEGIN")
        try:
            self._db.execute("DELETE FROM blocks WHERE height > ?", (height,))
            if height:
                self._db.execute(
                    "INSERT OR REPLACE INTO state VALUES (1, ?, ?)", (height, json.dumps(state.to_json()))
                )
            else:
                self._db.execute("DELETE FROM state")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def load_blocks(self) -> list[StoredBlock]:
        rows = self._db.execute("SELECT record FROM blocks ORDER BY height").fetchall()
        return [block_from_json(json.loads(row[0])) for row in rows]

    def load_state(self) -> LedgerState | None:
        row = self._db.execute("SELECT record FROM state WHERE id = 1").fetchone()
        return None if row is None else LedgerState.from_json(json.loads(row[0]))

    def close(self) -> None:
        self._db.close()
