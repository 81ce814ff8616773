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

import threading
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


def bucket_level(tokens: float, updated_at: float, rate: float, burst: float, now: float) -> float:
    """A token bucket stored as (``tokens`` as of ``updated_at``; 0: never touched, full): what it holds at ``now``."""
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
        return {c: bucket_level(*rows.get(c, (0.0, 0.0)), rates[c], rates[c] * burst_s[c], now) for c in rates}

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
                level = bucket_level(*rows.get(chain, (0.0, 0.0)), rates[chain], rates[chain] * burst_s[chain], now)
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
                level = bucket_level(*rows.get(chain, (0.0, 0.0)), rates[chain], burst, now)
                conn.execute(table.update().where(table.c.chain == chain)
                             .values(tokens=min(burst, level + work), updated_at=now))


ACTIVE_WORK_MAX_AGE_S = 0.25


class ActiveWork:
    """Per chain, the work every daemon has taken and not seen mined (``IntentStore.active_work``), as admission reads
    it for each batch: from the database at most every ``max_age_s`` (a scan of every active intent: 10 ms at 12,000
    on SQLite, ahead of each 1,000-intent request), plus what this daemon has taken since. Other daemons' takings
    reach it within ``max_age_s``; the shared buckets (``RoomStore.reserve``), not this figure, hold the chains'
    target."""

    def __init__(self, read: Callable[[], dict[str, float]], *, max_age_s: float = ACTIVE_WORK_MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()  # the store's threads (several on PostgreSQL)
        self._read_at = float("-inf")
        self._work: dict[str, float] = {}

    def now(self) -> dict[str, float]:
        with self._lock:
            if self._clock() - self._read_at > self._max_age_s:
                self._work, self._read_at = self._read(), self._clock()
            return dict(self._work)

    def taken(self, work: Mapping[str, float]) -> None:
        """This daemon took ``work`` per chain (granted by ``RoomStore.reserve``)."""
        with self._lock:
            for chain, w in work.items():
                self._work[chain] = self._work.get(chain, 0.0) + w
