"""The ``payout_limit_log`` table: the validators' payout buckets (``relayer/pipeline/payout_limits.py``), as the log
of what moved them. One row per payout a validator co-signed that a ``validator.payout_limits`` bucket counts
(``take``: per bucket of the payload) and per payout given back once the chain showed it can never land
(``give_back``); each row holds the bucket's level right after it, so the newest row of a bucket is its state.

The log is append-only and each row is written once (its key includes the payload's hash and the kind): taking room
for a payload already taken is a no-op, so a retry can never take twice. Amounts are home units as decimal strings
(they may exceed 64 bits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from relayer.store.schema import StoreTables, widen_ints

TAKE = "take"
GIVE_BACK = "give_back"


class PayoutLimitEntry(SQLModel, table=True):
    __tablename__ = "payout_limit_log"
    __table_args__ = (UniqueConstraint("validator", "chain", "payload_sha256", "remote", "token", "kind"),
                      Index("ix_payout_limit_log_bucket", "validator", "chain", "remote", "token", "seq"))

    # the order of the log (not the clock: it may step back); SQLite numbers only an INTEGER primary key itself
    seq: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"),
                                                           primary_key=True, autoincrement=True))
    validator: str = Field(max_length=42)
    chain: str = Field(max_length=64)
    remote: int  # origin domain of the transfers
    token: str = Field(max_length=64)  # the token's symbol on ``chain``
    payload_sha256: str = Field(max_length=64)
    kind: str = Field(max_length=16)  # take | give_back
    amount: str  # home units
    level_after: str  # the bucket's level right after this row, home units
    at: float  # unix time of the row


widen_ints([PayoutLimitEntry])


@dataclass(frozen=True, slots=True)
class BucketKey:
    validator: str
    chain: str
    remote: int
    token: str


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket's level at time ``at`` (home units)."""

    level: int
    at: float


@dataclass(frozen=True, slots=True)
class LogRow:
    """One row to append: ``key``'s bucket moved by ``amount`` (``kind``) for ``payload_sha256``."""

    key: BucketKey
    payload_sha256: str
    kind: str
    amount: int
    level_after: int
    at: float


class PayoutLimitTable(StoreTables):
    def bucket_state(self, key: BucketKey) -> BucketState | None:
        """The level after the newest row of ``key``'s bucket; None: it never moved (full)."""
        e = PayoutLimitEntry
        with Session(self.engine) as s:
            row = s.exec(select(e).where(col(e.validator) == key.validator, col(e.chain) == key.chain,
                                         col(e.remote) == key.remote, col(e.token) == key.token)
                         .order_by(col(e.seq).desc()).limit(1)).first()
        return None if row is None else BucketState(int(row.level_after), row.at)

    def payout_log(self, validator: str, chain: str, payload_sha256: str) -> list[LogRow]:
        """What ``payload_sha256`` did to ``validator``'s buckets on ``chain`` (takes and give-backs)."""
        e = PayoutLimitEntry
        with Session(self.engine) as s:
            rows = s.exec(select(e).where(col(e.validator) == validator, col(e.chain) == chain,
                                          col(e.payload_sha256) == payload_sha256).order_by(col(e.seq))).all()
        return [LogRow(BucketKey(r.validator, r.chain, r.remote, r.token), r.payload_sha256, r.kind, int(r.amount),
                       int(r.level_after), r.at) for r in rows]

    def append_payout_log(self, rows: Sequence[LogRow]) -> None:
        """Append ``rows`` in one transaction (the caller computed their levels holding its per-chain lock)."""
        with Session(self.engine) as s:
            for r in rows:
                s.add(PayoutLimitEntry(validator=r.key.validator, chain=r.key.chain, remote=r.key.remote,
                                       token=r.key.token, payload_sha256=r.payload_sha256, kind=r.kind,
                                       amount=str(r.amount), level_after=str(r.level_after), at=r.at))
            s.commit()
