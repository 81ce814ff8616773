"""What the router's own tables share: the dialect's INSERT (``ON CONFLICT`` differs between PostgreSQL and SQLite,
and the router imports nothing of ``relayer.store``), and writes of many rows in few statements.

Why few statements: the ``sqlite3`` module releases the GIL around each row's step of an ``executemany``, and while
another thread computes (the event loop signing, the API planning), every row then waits up to the interpreter's
switch interval (5 ms) to take it back. Measured (issue 14): 1,000 intent rows took 10 ms alone and 3.7 s next to a
busy thread as an ``executemany``, 33 ms as multi-row statements. The lanes and the API write thousands of rows a
second on the store's one SQLite thread, so every write of many rows goes through ``insert_rows`` / ``update_rows``.
PostgreSQL keeps the ``executemany`` (psycopg pipelines it; its types come from the statement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, or_
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

SQLITE_MAX_PARAMS = 32_000  # SQLite (3.32+) takes 32,766 parameters per statement


def dialect_insert(engine: Engine, table: Any) -> Any:
    """``INSERT INTO table`` with the engine's ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    return (pg_insert if engine.dialect.name == "postgresql" else sqlite_insert)(table)


def _chunks(rows: Sequence[Sequence[Any]], width: int) -> list[Sequence[Sequence[Any]]]:
    per = max(1, (SQLITE_MAX_PARAMS - 64) // max(1, width))
    return [rows[k:k + per] for k in range(0, len(rows), per)]


def insert_rows(conn: Connection, table: Any, names: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """``INSERT INTO table (names) VALUES (...), (...)``: each row a tuple of ``names``' values, in statements of as
    many rows as the parameter limit allows (both databases: the target columns type the values)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(names)) + ")"
    for part in _chunks(rows, len(names)):
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {', '.join([one] * len(part))}",
                             tuple(v for row in part for v in row))


def update_rows(conn: Connection, table: Any, keys: Sequence[str], columns: Sequence[str],
                rows: Sequence[Sequence[Any]], constants: Mapping[str, Any], *,
                status_in: Sequence[str] = ()) -> int:
    """Per row (``keys``' values, then ``columns``' values): ``UPDATE table SET columns = the row's, constants WHERE
    keys = the row's [AND status IN status_in]``; the number of rows changed. Of several rows for one key, the last
    given applies. SQLite: ``UPDATE ... FROM (VALUES ...)`` in statements of as many rows as the parameter limit
    allows; PostgreSQL: one executemany."""
    if not rows:
        return 0
    rows = list({tuple(row[:len(keys)]): row for row in rows}.values())  # one row per key: the last one given
    if conn.dialect.name != "sqlite":
        cond = [table.c[k] == bindparam("_k_" + k) for k in keys]
        if status_in:
            cond.append(or_(*[table.c.status == s for s in status_in]))  # (IN expands: not in an executemany)
        stmt = sa_update(table).where(and_(*cond)).values(**constants, **{c: bindparam("_v_" + c) for c in columns})
        named = [{**{"_k_" + k: row[i] for i, k in enumerate(keys)},
                  **{"_v_" + c: row[len(keys) + j] for j, c in enumerate(columns)}} for row in rows]
        return int(conn.execute(stmt, named).rowcount)
    width = len(keys) + len(columns)
    one = "(" + ", ".join(["?"] * width) + ")"
    sets = [f"{c} = v.column{len(keys) + j + 1}" for j, c in enumerate(columns)] + [f"{c} = ?" for c in constants]
    match = [f"{table.name}.{k} = v.column{i + 1}" for i, k in enumerate(keys)]
    if status_in:
        match.append(f"{table.name}.status IN ({', '.join(['?'] * len(status_in))})")
    changed = 0
    for part in _chunks(rows, width):
        sql = (f"UPDATE {table.name} SET {', '.join(sets)} FROM (VALUES {', '.join([one] * len(part))}) AS v "
               f"WHERE {' AND '.join(match)}")
        params = (*constants.values(), *(v for row in part for v in row), *status_in)  # in the order of the text
        changed += int(conn.exec_driver_sql(sql, params).rowcount)
    return changed
