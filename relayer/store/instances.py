"""The ``instances`` table: relayer processes sharing one database, their heartbeats, and the hand-over of a dead
(or cleanly stopped) instance's work to a live one.

Each process registers in ``instances`` and beats every few seconds. An instance silent for longer than
``relayer.instance_lease_s`` (or stopped cleanly) is handed over by the first live instance to claim it
(``adopt_dead_instances``): one conditional ``UPDATE instances ... WHERE state = <as seen>`` decides the winner,
which then takes the dead instance's pending deliveries (it confirms them by transaction hash) and releases its
leased open messages at once; every row it touches records ``handed_over_from`` and the typed reason."""

from __future__ import annotations

import enum
import json
import os
import socket
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Field, Session, SQLModel, col, select, update

from relayer.store.deliveries import DeliveryRecord
from relayer.store.messages import BATCH_ROWS, OPEN_STATES, FailureReason, MessageRecord, MessageState
from relayer.store.schema import StoreTables, widen_ints


class InstanceState(str, enum.Enum):
    ALIVE = "alive"
    STOPPED = "stopped"
    DEAD = "dead"  # declared dead and handed over (``handed_over_to``); it becomes alive again if it beats


class InstanceRecord(SQLModel, table=True):
    """One ``relayer run`` process sharing the database: its heartbeat, and who took over its work."""

    __tablename__ = "instances"

    name: str = Field(primary_key=True, max_length=128)
    role: str = ""
    host: str = ""
    pid: int = 0
    started_at: float = 0.0
    heartbeat_at: float = 0.0
    state: str = InstanceState.ALIVE.value
    handed_over_to: str | None = None
    handed_over_at: float | None = None


widen_ints([InstanceRecord])


@dataclass(frozen=True, slots=True)
class Handover:
    """The work of one dead (or stopped) instance taken over by this one."""

    from_instance: str
    reason: FailureReason
    silent_s: float
    deliveries: tuple[str, ...]  # pending delivery tx hashes now followed by this instance
    submitted: int  # SUBMITTED messages in those deliveries
    released: int  # DISPATCHED/ATTESTED messages whose lease was released for anyone to claim

    @property
    def messages(self) -> int:
        return self.submitted + self.released


class InstanceTable(StoreTables):
    def register_instance(self, role: str) -> None:
        now = self._clock()
        with Session(self.engine) as s:
            self._upsert(s, InstanceRecord, {"name": self.owner, "role": role, "host": socket.gethostname(),
                                             "pid": os.getpid(), "started_at": now, "heartbeat_at": now,
                                             "state": InstanceState.ALIVE.value, "handed_over_to": None,
                                             "handed_over_at": None}, ["name"])
            s.commit()

    def heartbeat(self) -> InstanceRecord | None:
        """This instance is alive. Returns its record as it was before the beat when another instance had
        declared it dead meanwhile (its work is now someone else's), else None."""
        now = self._clock()
        with Session(self.engine) as s:
            rec = s.get(InstanceRecord, self.owner)
            before = None if rec is None else InstanceRecord.model_validate(rec.model_dump())
            if rec is None:
                s.add(InstanceRecord(name=self.owner, host=socket.gethostname(), pid=os.getpid(), started_at=now,
                                     heartbeat_at=now))
            else:
                s.execute(update(InstanceRecord).where(col(InstanceRecord.name) == self.owner).values(
                    heartbeat_at=now, state=InstanceState.ALIVE.value))
            s.commit()
        return before if before is not None and before.state == InstanceState.DEAD.value else None

    def stop_instance(self) -> None:
        """Clean shutdown: say so (peers take the work over at once) and release the open messages we hold."""
        now = self._clock()
        with Session(self.engine) as s:
            s.execute(update(InstanceRecord).where(col(InstanceRecord.name) == self.owner).values(
                state=InstanceState.STOPPED.value, heartbeat_at=now))
            s.execute(update(MessageRecord).where(col(MessageRecord.lease_owner) == self.owner)
                      .where(col(MessageRecord.state).in_([st.value for st in OPEN_STATES]))
                      .values(lease_until=0.0))
            s.commit()

    def instances(self) -> list[InstanceRecord]:
        with Session(self.engine) as s:
            return list(s.exec(select(InstanceRecord).order_by(col(InstanceRecord.name))).all())

    def alive_instances(self, lease_s: float) -> int:
        cutoff = self._clock() - lease_s
        with Session(self.engine) as s:
            return int(s.exec(select(func.count()).select_from(InstanceRecord)
                              .where(col(InstanceRecord.state) == InstanceState.ALIVE.value)
                              .where(col(InstanceRecord.heartbeat_at) >= cutoff)).one())

    def keeper_instance(self, lease_s: float, roles: tuple[str, ...]) -> str | None:
        """The instance that runs the keeper jobs (chain calls anyone may make, which one instance of a database
        makes for all): the first by name of the live instances (alive, beat within ``lease_s``) of ``roles``; None
        when there is none. Every instance computes the same answer from the same rows, so no election is held: when
        the keeper stops cleanly the next takes over at its next beat, when it dies once its lease has passed."""
        cutoff = self._clock() - lease_s
        i = InstanceRecord
        with Session(self.engine) as s:
            return s.exec(select(col(i.name)).where(col(i.state) == InstanceState.ALIVE.value)
                          .where(col(i.heartbeat_at) >= cutoff).where(col(i.role).in_(roles))
                          .order_by(col(i.name)).limit(1)).first()

    def adopt_dead_instances(self, lease_s: float) -> list[Handover]:
        """Take over the work of every instance silent for longer than ``lease_s`` or stopped cleanly.

        Safe against live instances racing for the same dead one: the conditional update of its instance row
        (``state`` and ``heartbeat_at`` as we read them) succeeds for exactly one of them, inside the
        transaction that moves the work; a loser (or a dead instance that beat again meanwhile) moves nothing.
        """
        now = self._clock()
        cutoff = now - lease_s
        i = InstanceRecord
        with Session(self.engine) as s:
            candidates = s.exec(select(col(i.name), col(i.state), col(i.heartbeat_at)).where(col(i.name) != self.owner)
                                .where((col(i.state) == InstanceState.STOPPED.value)
                                       | ((col(i.state) == InstanceState.ALIVE.value) & (col(i.heartbeat_at) < cutoff)))
                                .order_by(col(i.name))).all()
        return [h for name, state, beat in candidates if (h := self._adopt_one(name, state, beat, now)) is not None]

    def _adopt_one(self, dead: str, state: str, beat: float, now: float) -> Handover | None:
        reason = FailureReason.INSTANCE_STOPPED if state == InstanceState.STOPPED.value else FailureReason.INSTANCE_DIED
        silent = now - beat
        note = f"handed over from {dead} to {self.owner}: " + (
            "it stopped" if reason is FailureReason.INSTANCE_STOPPED else f"no heartbeat for {silent:.1f}s")
        m, d, i = MessageRecord, DeliveryRecord, InstanceRecord
        with Session(self.engine) as s:
            won = s.execute(update(i).where(col(i.name) == dead).where(col(i.state) == state)
                            .where(col(i.heartbeat_at) == beat)
                            .values(state=InstanceState.DEAD.value, handed_over_to=self.owner, handed_over_at=now)
                            .returning(col(i.name))).all()
            if not won:
                s.rollback()
                return None
            taken = s.execute(update(d).where(col(d.owner) == dead).where(col(d.state) == "pending")
                              .values(owner=self.owner, adopted_from=dead, adopted_at=now)
                              .returning(col(d.tx_hash), col(d.message_ids))).all()
            submitted_ids = [mid for _tx, ids in taken for mid in json.loads(ids)]
            submitted = 0
            for start in range(0, len(submitted_ids), BATCH_ROWS):
                submitted += len(s.execute(
                    update(m).where(col(m.id).in_(submitted_ids[start:start + BATCH_ROWS]))
                    .where(col(m.state) == MessageState.SUBMITTED.value)
                    .values(lease_owner=self.owner, handed_over_from=dead, last_reason=reason.value, last_error=note,
                            updated_at=now).returning(col(m.id))).all())
            released = s.execute(
                update(m).where(col(m.lease_owner) == dead).where(col(m.state).in_([st.value for st in OPEN_STATES]))
                .where(col(m.lease_until) > 0)
                .values(lease_owner=None, lease_until=0.0, handed_over_from=dead, last_reason=reason.value,
                        last_error=note, updated_at=now).returning(col(m.id))).all()
            s.commit()
        return Handover(dead, reason, silent, tuple(tx for tx, _ids in taken), submitted, len(released))
