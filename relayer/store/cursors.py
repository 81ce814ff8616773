"""The ``cursors`` table: how far each watcher has read its chain (by name)."""

from __future__ import annotations

from sqlmodel import Field, Session, SQLModel

from relayer.store.schema import StoreTables, widen_ints


class CursorRecord(SQLModel, table=True):
    __tablename__ = "cursors"

    name: str = Field(primary_key=True, max_length=128)
    height: int


widen_ints([CursorRecord])


class CursorTable(StoreTables):
    def cursor(self, name: str) -> int | None:
        with Session(self.engine) as s:
            rec = s.get(CursorRecord, name)
            return rec.height if rec else None

    def set_cursor(self, name: str, height: int) -> None:
        with Session(self.engine) as s:
            self._upsert(s, CursorRecord, {"name": name, "height": height}, ["name"])
            s.commit()
