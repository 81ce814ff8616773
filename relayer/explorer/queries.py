"""Read-only queries behind the explorer: paged and filtered message lists, changes since a time, the
timestamps the throughput chart buckets, and the pieces of one message's timeline. They read the
pipeline's tables (``relayer.store``) and never write."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from relayer.store import CheckpointRecord, DeliveryRecord, MessageRecord


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page of messages (newest change first) ended: its last row's ``updated_at`` and id."""

    updated_at: float
    id: str

    def encode(self) -> str:
        return f"{self.updated_at!r}~{self.id}"

    @classmethod
    def decode(cls, text: str) -> PageCursor:
        """``<updated_at>~<id>``; ValueError saying what is wrong otherwise."""
        ts, sep, mid = text.partition("~")
        if not sep:
            raise ValueError("expected <updated_at>~<message id>, as returned in next_before")
        try:
            at = float(ts)
        except ValueError:
            raise ValueError(f"{ts!r} is not a number") from None
        if not math.isfinite(at):
            raise ValueError(f"{ts!r} is not a finite number")
        if len(mid) != 66 or not mid.startswith("0x") or any(c not in "0123456789abcdefABCDEF" for c in mid[2:]):
            raise ValueError(f"{mid!r} is not a 0x-prefixed 32-byte hex message id")
        return cls(at, mid.lower())


class ExplorerQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def page(self, *, state: str | None = None, domain: int | None = None, before: PageCursor | None = None,
             limit: int = 50) -> list[MessageRecord]:
        """Messages by most recent change, optionally in one state and/or touching one chain (as origin or
        destination), strictly after ``before`` in that order."""
        m = MessageRecord
        q = select(m)
        if state is not None:
            q = q.where(col(m.state) == state)
        if domain is not None:
            q = q.where((col(m.origin) == domain) | (col(m.destination) == domain))
        if before is not None:
            q = q.where((col(m.updated_at) < before.updated_at)
                        | ((col(m.updated_at) == before.updated_at) & (col(m.id) < before.id)))
        with Session(self.engine) as s:
            return list(s.exec(q.order_by(col(m.updated_at).desc(), col(m.id).desc()).limit(limit)).all())

    def get(self, message_id: str) -> MessageRecord | None:
        with Session(self.engine) as s:
            return s.get(MessageRecord, message_id.lower())

    def changed_since(self, since: float, limit: int) -> list[MessageRecord]:
        """The ``limit`` most recent changes with ``updated_at > since``, oldest first."""
        m = MessageRecord
        with Session(self.engine) as s:
            rows = list(s.exec(select(m).where(col(m.updated_at) > since)
                               .order_by(col(m.updated_at).desc(), col(m.id).desc()).limit(limit)).all())
        rows.reverse()
        return rows

    def latest_change(self) -> float:
        m = MessageRecord
        with Session(self.engine) as s:
            row = s.exec(select(col(m.updated_at)).order_by(col(m.updated_at).desc()).limit(1)).first()
        return float(row) if row is not None else 0.0

    def delivered_since(self, start: float) -> list[tuple[int, float]]:
        """(destination, delivered_at) of every delivery at or after ``start``."""
        m = MessageRecord
        with Session(self.engine) as s:
            rows = s.exec(select(col(m.destination), col(m.delivered_at)).where(col(m.delivered_at) >= start)).all()
        return [(d, float(t)) for d, t in rows if t is not None]

    def dispatched_since(self, start: float) -> list[tuple[int, float]]:
        """(origin, dispatched_at) of every message dispatched (origin block time) at or after ``start``."""
        m = MessageRecord
        with Session(self.engine) as s:
            rows = s.exec(select(col(m.origin), col(m.dispatched_at)).where(col(m.dispatched_at) >= start)).all()
        return [(o, float(t)) for o, t in rows]

    def deliveries_of(self, message_id: str) -> list[DeliveryRecord]:
        """Every delivery transaction (first tries, replacements) that carried ``message_id``, oldest first."""
        d = DeliveryRecord
        with Session(self.engine) as s:
            rows = s.exec(select(d).where(col(d.message_ids).contains(message_id.lower()))
                          .order_by(col(d.submitted_at))).all()
        return list(rows)

    def first_signed_at(self, origin: int, nonce: int) -> float | None:
        """When this process first signed a checkpoint of ``origin`` covering ``nonce`` (validator role only)."""
        c = CheckpointRecord
        with Session(self.engine) as s:
            row = s.exec(select(col(c.signed_at)).where(col(c.origin) == origin).where(col(c.index) >= nonce)
                         .order_by(col(c.signed_at)).limit(1)).first()
        return float(row) if row is not None else None
