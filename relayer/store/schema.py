"""The engine (SQLite with WAL, or PostgreSQL by URL), the schema (created and widened in place) and what every
table family shares (``StoreTables``: engine, owner, clock, one-statement upsert)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Integer, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, create_engine

from relayer.store.errors import StoreError, safe_url

POSTGRES_POOL_SIZE = 5


def widen_ints(models: Iterable[type[SQLModel]]) -> None:
    """Chain numbers (u64 nonces, u32 domains, heights, wei) overflow PostgreSQL's 32-bit INTEGER: every int is
    BIGINT."""
    for model in models:
        for column in model.__table__.columns:  # type: ignore[attr-defined]
            if isinstance(column.type, Integer) and not isinstance(column.type, BigInteger):
                column.type = BigInteger()


def hex_id(b: bytes) -> str:
    return "0x" + b.hex()


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # a short connect timeout: while the server restarts, callers get StoreError quickly and back off
    return create_engine(url, pool_pre_ping=True, pool_size=POSTGRES_POOL_SIZE, connect_args={"connect_timeout": 5})


_SCHEMA_LOCK = 0x72656C61  # pg_advisory_xact_lock key: instances starting together create the schema one at a time


def create_schema(conn: Connection) -> None:
    """Create missing tables and indexes, and add columns a newer version declares to tables an older one created
    (nullable columns only: enough for the additive changes this store makes)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK})"))
    SQLModel.metadata.create_all(conn)
    inspector = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise StoreError(f"table {table.name} lacks the non-null column {column.name}: use a fresh store.url",
                                 reason="schema")
            conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" '
                              f"{column.type.compile(dialect=conn.dialect)}"))
        if conn.dialect.name == "postgresql":  # tables of a version that stored ints as 32-bit INTEGER
            narrow = {c["name"] for c in inspector.get_columns(table.name)
                      if isinstance(c["type"], Integer) and not isinstance(c["type"], BigInteger)}
            for column in table.columns:
                if column.name in narrow and isinstance(column.type, BigInteger):
                    conn.execute(text(f'ALTER TABLE {table.name} ALTER COLUMN "{column.name}" TYPE BIGINT'))
        for index in table.indexes:  # indexes a newer version declares on a table an older one created
            index.create(conn, checkfirst=True)


class StoreTables:
    """What every table family works with: the engine, this instance's name (``owner`` of leases and
    deliveries) and the clock. Methods are short transactions; none holds a transaction across I/O."""

    url: str
    owner: str
    engine: Engine
    _clock: Callable[[], float]
    _is_postgres: bool

    def _safe_url(self) -> str:
        return safe_url(self.url)

    def _upsert(self, s: Session, model: type[SQLModel], row: dict[str, Any], keys: list[str]) -> None:
        """Insert or overwrite one row in one statement (``merge`` reads first: two instances racing to insert
        the same key would make one of them fail)."""
        table = model.__table__  # type: ignore[attr-defined]
        if self._is_postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            pg_stmt = pg_insert(table).values(**row)
            s.execute(pg_stmt.on_conflict_do_update(index_elements=keys,
                                                    set_={k: pg_stmt.excluded[k] for k in row if k not in keys}))
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            lite_stmt = sqlite_insert(table).values(**row)
            s.execute(lite_stmt.on_conflict_do_update(index_elements=keys,
                                                      set_={k: lite_stmt.excluded[k] for k in row if k not in keys}))
