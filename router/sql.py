"""What the router's own tables share: the dialect's INSERT (``ON CONFLICT`` differs between PostgreSQL and SQLite,
and the router imports nothing of ``relayer.store``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine


def dialect_insert(engine: Engine, table: Any) -> Any:
    """``INSERT INTO table`` with the engine's ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    return (pg_insert if engine.dialect.name == "postgresql" else sqlite_insert)(table)
