"""The ``checkpoints`` table: the checkpoints this validator signed (one per validator, origin and index)."""

from __future__ import annotations

from sqlmodel import Field, Session, SQLModel, col, select

from relayer.store.schema import StoreTables, widen_ints


class CheckpointRecord(SQLModel, table=True):
    __tablename__ = "checkpoints"

    validator: str = Field(primary_key=True, max_length=42)
    origin: int = Field(primary_key=True)
    index: int = Field(primary_key=True)
    origin_mailbox: str
    root: str
    signature: str
    signed_at: float


widen_ints([CheckpointRecord])


class CheckpointTable(StoreTables):
    def save_checkpoint(self, rec: CheckpointRecord) -> None:
        with Session(self.engine) as s:
            self._upsert(s, CheckpointRecord, rec.model_dump(), ["validator", "origin", "index"])
            s.commit()

    def checkpoint(self, validator: str, origin: int, index: int | None) -> CheckpointRecord | None:
        """The checkpoint ``validator`` signed at ``index`` of ``origin`` (None: its latest)."""
        c = CheckpointRecord
        with Session(self.engine) as s:
            q = select(c).where(col(c.validator) == validator.lower()).where(col(c.origin) == origin)
            q = q.where(col(c.index) == index) if index is not None else q.order_by(col(c.index).desc()).limit(1)
            return s.exec(q).first()
