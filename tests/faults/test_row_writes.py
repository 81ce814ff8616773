"""``router.sql.insert_rows`` / ``update_rows`` (the intents' writes of many rows: the API's inserts, the lanes'
write-ahead and settling) give the same rows on SQLite (multi-row statements) and on PostgreSQL (executemany): the
values, NULLs, the status condition, the count of rows changed, the last change of a key winning, and statements cut
under SQLite's parameter limit. Here for the suite's PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from relayer.store.schema import make_engine
from router.intents import IntentRecord, IntentStore
from router.sql import SQLITE_MAX_PARAMS, insert_rows, update_rows

COLUMNS = ["id", "batch", "created_at", "updated_at", "kind", "token", "amount", "units", "recipient", "status",
           "nonce", "fee_usd", "work"]


def _row(k: int, status: str = "planned") -> tuple[object, ...]:
    return (f"int_{k:06d}", "bat_1", 1.0, 1.0, "transfer", "USDC", "1", "1", "0x" + f"{k:040x}", status,
            None, None, 1.0)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> IntentStore:
    url = f"sqlite:///{tmp_path / 'rows.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return IntentStore(make_engine(url))


def _read(store: IntentStore) -> dict[str, tuple[object, ...]]:
    t = IntentRecord.__table__  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return {r.id: (r.status, r.nonce, r.fee_usd, r.tx_hash, r.updated_at)
                for r in conn.execute(select(t.c.id, t.c.status, t.c.nonce, t.c.fee_usd, t.c.tx_hash, t.c.updated_at))}


def test_many_rows_in_and_updated_alike_on_both_databases(store: IntentStore) -> None:
    table = IntentRecord.__table__  # type: ignore[attr-defined]
    n = SQLITE_MAX_PARAMS // len(COLUMNS) + 500  # more than one statement's worth
    with store.engine.begin() as conn:
        insert_rows(conn, table, COLUMNS, [_row(k, "planned" if k % 2 == 0 else "queued") for k in range(n)])
    rows = _read(store)
    assert len(rows) == n and rows["int_000001"] == ("queued", None, None, None, 1.0)

    updates = [(f"int_{k:06d}", f"0x{k:064x}", k, None) for k in range(n)]
    updates.append(("int_000000", "0x" + "ee" * 32, 77, 0.5))  # a second change of one key: the last one applies
    with store.engine.begin() as conn:
        changed = update_rows(conn, table, ["id"], ["tx_hash", "nonce", "fee_usd"], updates,
                              {"status": "signed", "updated_at": 2.0}, status_in=["planned"])
    rows = _read(store)
    assert changed == n // 2 + n % 2
    assert rows["int_000000"] == ("signed", 77, 0.5, "0x" + "ee" * 32, 2.0)
    assert rows["int_000002"] == ("signed", 2, None, f"0x{2:064x}", 2.0)
    assert rows["int_000001"] == ("queued", None, None, None, 1.0)  # not planned: untouched


def test_an_update_matches_on_every_key(store: IntentStore) -> None:
    """The lanes' settling: a change applies only while the intent still holds the transaction it is about."""
    table = IntentRecord.__table__  # type: ignore[attr-defined]
    with store.engine.begin() as conn:
        insert_rows(conn, table, COLUMNS, [_row(k, "submitted") for k in range(3)])
        update_rows(conn, table, ["id"], ["tx_hash"], [(f"int_{k:06d}", f"0x{k}") for k in range(3)], {})
    with store.engine.begin() as conn:
        changed = update_rows(conn, table, ["id", "tx_hash"], ["status"],
                              [("int_000000", "0x0", "included"), ("int_000001", "0xother", "included")],
                              {"updated_at": 3.0}, status_in=["signed", "submitted"])
    rows = _read(store)
    assert changed == 1
    assert rows["int_000000"][0] == "included" and rows["int_000001"][0] == "submitted"
