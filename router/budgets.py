"""Each client's daily value budgets (``router.value_per_day``), one figure shared by every daemon on the database.

What the operator accounts send for one client is bounded per token and day (issue 12, finding 3). Held in each
daemon's memory, the bound was per daemon: a client that sent to N daemons sharing one database got N budgets.
Here each (client, token) is a token bucket in ``router_client_value``: it holds at most one day's budget and refills
at that budget per day. A batch takes every token's total in one transaction or nothing (``SELECT ... FOR UPDATE`` on
PostgreSQL, SQLite's one writer otherwise); what is then not sent (an intent left unserved, a batch that failed to be
stored, a queued intent that expired) goes back (``give_back``), never above a full bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from router.room import bucket_level
from router.sql import dialect_insert

DAY_S = 86_400.0


class ClientValue(SQLModel, table=True):
    """One client's bucket for one token: what it may still have sent, as of ``updated_at`` (0: full)."""

    __tablename__ = "router_client_value"

    client: str = Field(primary_key=True, max_length=80)
    token: str = Field(primary_key=True, max_length=32)
    left: float = 0.0
    updated_at: float = 0.0


class ValueBudgets:
    """``router_client_value`` (synchronous: the API calls it on the store's threads)."""

    def __init__(self, engine: Engine, per_day: Mapping[str, float], *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.per_day = dict(per_day)
        self._clock = clock
        SQLModel.metadata.create_all(engine, tables=[ClientValue.__table__])  # type: ignore[attr-defined]

    def _level(self, token: str, left: float, updated_at: float, now: float) -> float:
        cap = self.per_day[token]
        return bucket_level(left, updated_at, cap / DAY_S, cap, now)

    @staticmethod
    def _set(conn: Connection, client: str, token: str, left: float, now: float) -> None:
        table = ClientValue.__table__  # type: ignore[attr-defined]
        conn.execute(table.update().where(and_(table.c.client == client, table.c.token == token))
                     .values(left=left, updated_at=now))

    def _rows(self, conn: Connection, client: str, tokens: list[str]) -> dict[str, tuple[float, float]]:
        table = ClientValue.__table__  # type: ignore[attr-defined]
        conn.execute(dialect_insert(self.engine, table).values([{"client": client, "token": t} for t in tokens])
                     .on_conflict_do_nothing())
        q = (select(table.c.token, table.c.left, table.c.updated_at)
             .where(and_(table.c.client == client, table.c.token.in_(tokens))).order_by(table.c.token))
        if self.engine.dialect.name == "postgresql":
            q = q.with_for_update()
        return {r.token: (float(r.left), float(r.updated_at)) for r in conn.execute(q)}

    def take(self, client: str, totals: Mapping[str, float]) -> tuple[str, float] | None:
        """Take every token's total for ``client``, all or none: None when taken, else (the first token short, the
        seconds until its bucket would hold the total)."""
        totals = {t: v for t, v in totals.items() if v > 0}
        if not totals:
            return None
        now = self._clock()
        with self.engine.begin() as conn:
            rows = self._rows(conn, client, sorted(totals))
            levels = {t: self._level(t, *rows[t], now) for t in sorted(totals)}
            for token, level in levels.items():
                if level < totals[token] - 1e-12:
                    return token, (totals[token] - level) / (self.per_day[token] / DAY_S)
            for token, level in levels.items():
                self._set(conn, client, token, level - totals[token], now)
        return None

    def give_back(self, client: str, returns: Mapping[str, float]) -> None:
        """Put back what ``take`` took and was then not sent (never above a full bucket)."""
        returns = {t: v for t, v in returns.items() if v > 0 and t in self.per_day}
        if not returns:
            return
        now = self._clock()
        with self.engine.begin() as conn:
            rows = self._rows(conn, client, sorted(returns))
            for token, value in sorted(returns.items()):
                self._set(conn, client, token, min(self.per_day[token], self._level(token, *rows[token], now) + value),
                          now)

    def prune(self) -> int:
        """Forget the buckets that have been full for a day (nothing taken since): they are as a new client's."""
        table = ClientValue.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as conn:
            return int(conn.execute(delete(table).where(table.c.updated_at < self._clock() - DAY_S)).rowcount)
