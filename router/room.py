"""The room each chain has left for the router, as one figure shared by every daemon on the database.

Per chain, a token bucket in ``router_chain_room`` counts work (in token transfers) the daemons may still admit: it
fills at the chain's spare rate at its fee-market target (``CapacityModel.spare_gas_per_s / transfer_gas``) up to one
planning horizon of it, and a daemon takes from it in one short transaction after planning a batch
(``reserve``: ``SELECT ... FOR UPDATE`` on PostgreSQL, SQLite's one writer otherwise). Two daemons planning at the same
moment therefore cannot together admit more than the chain's target rate: what one took, the other does not find.
Before planning, ``available`` reads the same buckets (without taking) so the planner places a batch where there is
room; an intent the reservation then cuts (another daemon was faster) is answered ``capacity``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel

from router.sql import dialect_insert


class ChainRoom(SQLModel, table=True):
    """One chain's bucket: work left to admit as of ``updated_at`` (0 at first: the bucket starts full)."""

    __tablename__ = "router_chain_room"

    chain: str = Field(primary_key=True, max_length=64)
    tokens: float = 0.0
    updated_at: float = 0.0


def _level(tokens: float, updated_at: float, rate: float, burst: float, now: float) -> float:
    if updated_at <= 0:
        return burst
    return min(burst, tokens + rate * max(0.0, now - updated_at))


class RoomStore:
    """``router_chain_room`` (synchronous; the API calls it off its loop)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        SQLModel.metadata.create_all(engine, tables=[ChainRoom.__table__])  # type: ignore[attr-defined]

    def _ensure_rows(self, conn: Connection, chains: Sequence[str]) -> None:
        table = ChainRoom.__table__  # type: ignore[attr-defined]
        conn.execute(dialect_insert(self.engine, table).values([{"chain": c} for c in chains]).on_conflict_do_nothing())

    def _rows(self, conn: Connection, chains: Sequence[str], *, lock: bool) -> dict[str, tuple[float, float]]:
        table = ChainRoom.__table__  # type: ignore[attr-defined]
        q = select(table.c.chain, table.c.tokens, table.c.updated_at).where(table.c.chain.in_(sorted(chains)))
        if lock and self.engine.dialect.name == "postgresql":
            q = q.order_by(table.c.chain).with_for_update()
        return {r.chain: (float(r.tokens), float(r.updated_at)) for r in conn.execute(q)}

    def available(self, rates: Mapping[str, float], burst_s: Mapping[str, float]) -> dict[str, float]:
        """Work each chain's bucket holds now (``rates``: work per second; ``burst_s``: seconds a bucket holds)."""
        now = self._clock()
        with self.engine.connect() as conn:
            rows = self._rows(conn, list(rates), lock=False)
        return {c: _level(*rows.get(c, (0.0, 0.0)), rates[c], rates[c] * burst_s[c], now) for c in rates}

    def reserve(self, wants: Mapping[str, float], rates: Mapping[str, float],
                burst_s: Mapping[str, float]) -> dict[str, float]:
        """Take up to ``wants[c]`` work from each chain's bucket, in one transaction; what was granted per chain."""
        wants = {c: w for c, w in wants.items() if w > 0}
        if not wants:
            return {}
        table = ChainRoom.__table__  # type: ignore[attr-defined]
        now = self._clock()
        granted: dict[str, float] = {}
        with self.engine.begin() as conn:
            self._ensure_rows(conn, sorted(wants))
            rows = self._rows(conn, list(wants), lock=True)
            for chain, want in sorted(wants.items()):
                level = _level(*rows.get(chain, (0.0, 0.0)), rates[chain], rates[chain] * burst_s[chain], now)
                granted[chain] = want if level >= want - 1e-6 else max(0.0, level)
                conn.execute(table.update().where(table.c.chain == chain)
                             .values(tokens=level - granted[chain], updated_at=now))
        return granted

    def give_back(self, returns: Mapping[str, float], rates: Mapping[str, float], burst_s: Mapping[str, float]) -> None:
        """Put work taken by ``reserve`` and not used back into each chain's bucket (never above a full bucket): a
        release that another daemon won, so that the room is not lost until the bucket refills."""
        returns = {c: w for c, w in returns.items() if w > 0}
        if not returns:
            return
        table = ChainRoom.__table__  # type: ignore[attr-defined]
        now = self._clock()
        with self.engine.begin() as conn:
            rows = self._rows(conn, list(returns), lock=True)
            for chain, work in sorted(returns.items()):
                burst = rates[chain] * burst_s[chain]
                level = _level(*rows.get(chain, (0.0, 0.0)), rates[chain], burst, now)
                conn.execute(table.update().where(table.c.chain == chain)
                             .values(tokens=min(burst, level + work), updated_at=now))
