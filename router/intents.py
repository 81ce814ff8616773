"""Submitted intents: their table, and their execution with the operator's accounts (issue 3, routing API).

The relayer creates ``IntentStore`` on its own database engine and hands ``IntentExecutor`` its chain
adapters (as ``MessageSender``), the operator keys and a way to read a relayed message's state, so this
module imports nothing of ``relayer`` (DESIGN.md "Layout").

Life of an intent:  planned -> submitted (same-chain tx accepted) -> included (mined; for xchain: the origin
tx mined and the message id known) -> delivered (xchain: the relayer delivered the message); or failed (with
the reason) or unserved (the planner's reason, nothing sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from adapters.base import AdapterError, MessageSender, TxHash, TxNotFound
from adapters.message import Domain


class IntentRecord(SQLModel, table=True):
    __tablename__ = "intents"

    id: str = Field(primary_key=True, max_length=40)
    batch: str = Field(index=True, max_length=40)
    created_at: float
    updated_at: float
    kind: str
    token: str
    amount: str                      # decimal token amount as submitted
    units: str                       # smallest units (string: may exceed 64 bits)
    recipient: str
    integrator: str | None = Field(default=None, index=True)
    from_chain: str | None = None
    chain: str | None = None         # where it runs (destination of an xchain transfer)
    origin: str | None = None        # where it starts (== chain for same-chain intents)
    operator: str | None = None      # address of the operator account that signs it
    status: str = "planned"
    reason: str | None = None
    tx_hash: str | None = None
    message_id: str | None = None
    fee_usd: float | None = None
    latency_s: float | None = None


def intent_view(rec: IntentRecord) -> dict[str, Any]:
    return {"id": rec.id, "batch": rec.batch, "status": rec.status, "reason": rec.reason, "kind": rec.kind,
            "token": rec.token, "amount": rec.amount, "recipient": rec.recipient, "integrator": rec.integrator,
            "from_chain": rec.from_chain, "chain": rec.chain, "origin": rec.origin, "tx_hash": rec.tx_hash,
            "message_id": rec.message_id, "fee_estimate_usd": rec.fee_usd, "latency_estimate_s": rec.latency_s,
            "created_at": rec.created_at, "updated_at": rec.updated_at}


def is_settled(rec: IntentRecord) -> bool:
    """No further change will come: delivered, failed, unserved, or a same-chain intent included."""
    return rec.status in ("delivered", "failed", "unserved") or (rec.status == "included" and rec.kind != "xchain")


def new_intent_id() -> str:
    return "int_" + uuid.uuid4().hex


class IntentStore:
    """Intent rows in the daemon's database (short transactions; none across I/O)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        SQLModel.metadata.create_all(engine, tables=[IntentRecord.__table__])  # type: ignore[attr-defined]

    def add_all(self, records: Sequence[IntentRecord]) -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            s.add_all(records)
            s.commit()

    def get(self, intent_id: str) -> IntentRecord | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.get(IntentRecord, intent_id)

    def update(self, intent_id: str, **values: Any) -> None:
        with Session(self.engine, expire_on_commit=False) as s:
            rec = s.get(IntentRecord, intent_id)
            if rec is None:
                return
            for k, v in values.items():
                setattr(rec, k, v)
            rec.updated_at = self._clock()
            s.add(rec)
            s.commit()

    def by_batch(self, batch: str) -> list[IntentRecord]:
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.exec(select(IntentRecord).where(col(IntentRecord.batch) == batch)
                               .order_by(col(IntentRecord.created_at), col(IntentRecord.id))).all())

    def unsettled(self, limit: int = 500) -> list[IntentRecord]:
        """Intents whose status can still move on by itself: submitted, or included cross-chain."""
        with Session(self.engine, expire_on_commit=False) as s:
            q = select(IntentRecord).where((col(IntentRecord.status) == "submitted")
                                           | ((col(IntentRecord.status) == "included") & (col(IntentRecord.kind) == "xchain")))
            return list(s.exec(q.order_by(col(IntentRecord.updated_at)).limit(limit)).all())

    def by_integrator(self, code: str) -> list[IntentRecord]:
        with Session(self.engine, expire_on_commit=False) as s:
            return list(s.exec(select(IntentRecord).where(col(IntentRecord.integrator) == code)).all())


def integrator_report(code: str, records: Sequence[IntentRecord], fee_share: float) -> dict[str, Any]:
    """Intents, volume (sum of amounts), estimated fees (USD) and the integrator's share, total, by chain, by UTC day."""

    def empty() -> dict[str, Any]:
        return {"intents": 0, "served": 0, "volume": Decimal(0), "fees_usd": 0.0}

    def add(bucket: dict[str, Any], rec: IntentRecord) -> None:
        bucket["intents"] += 1
        bucket["volume"] += Decimal(rec.amount)
        if rec.status not in ("unserved", "failed"):
            bucket["served"] += 1
            bucket["fees_usd"] += rec.fee_usd or 0.0

    def out(bucket: dict[str, Any]) -> dict[str, Any]:
        return {"intents": bucket["intents"], "served": bucket["served"], "volume": str(bucket["volume"]),
                "fees_usd": bucket["fees_usd"], "fee_share_usd": bucket["fees_usd"] * fee_share}

    total = empty()
    chains: dict[str, dict[str, Any]] = {}
    days: dict[str, dict[str, Any]] = {}
    for rec in records:
        add(total, rec)
        add(chains.setdefault(rec.chain or "unserved", empty()), rec)
        day = dt.datetime.fromtimestamp(rec.created_at, dt.UTC).date().isoformat()
        add(days.setdefault(day, empty()), rec)
    return {"integrator": code, "fee_share": fee_share, **out(total),
            "by_chain": {k: out(v) for k, v in sorted(chains.items())},
            "by_day": {k: out(v) for k, v in sorted(days.items())}}


@dataclass(frozen=True, slots=True)
class Operator:
    key: str        # private key (hex); never logged nor returned
    address: str


class IntentExecutor:
    """Sends planned intents with the operator accounts, in background tasks, and refreshes their status."""

    def __init__(self, store: IntentStore, senders: Mapping[str, MessageSender], domains: dict[str, int],
                 operators: Sequence[Operator], message_state: Callable[[str], str | None],
                 concurrency: int = 32) -> None:
        self.store = store
        self.senders = senders
        self.domains = domains
        self.operators = list(operators)
        self._message_state = message_state
        self._limit = asyncio.Semaphore(concurrency)
        self._xchain_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def balances(self, chains: Sequence[str], token: str) -> dict[str, list[int]]:
        """Each operator's balance of ``token`` on each chain (0 where the token is unknown or the chain fails)."""
        async def one(chain: str, address: str) -> int:
            try:
                return await self.senders[chain].token_balance(token, address)
            except AdapterError:
                return 0

        result: dict[str, list[int]] = {}
        for chain in chains:
            result[chain] = list(await asyncio.gather(*(one(chain, o.address) for o in self.operators)))
        return result

    def start(self, records: Sequence[IntentRecord], keys: dict[str, str]) -> None:
        """Run the planned ``records`` in a background task (``keys``: operator address -> key)."""
        task = asyncio.create_task(self._run(list(records), keys), name=f"intents-{records[0].batch if records else ''}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, records: list[IntentRecord], keys: dict[str, str]) -> None:
        await asyncio.gather(*(self._one(r, keys[r.operator or ""]) for r in records if r.status == "planned"),
                             return_exceptions=True)

    async def _one(self, rec: IntentRecord, key: str) -> None:
        async with self._limit:
            try:
                if rec.kind == "xchain":
                    assert rec.origin is not None and rec.chain is not None
                    lock = self._xchain_locks.setdefault((rec.origin, rec.operator or ""), asyncio.Lock())
                    async with lock:  # send_token approves first: one at a time per account and chain
                        tx, mid = await self.senders[rec.origin].send_token(
                            key, rec.token, int(rec.units), Domain(self.domains[rec.chain]), bytes.fromhex(rec.recipient[2:]))
                    self.store.update(rec.id, status="included", tx_hash=str(tx), message_id="0x" + bytes(mid).hex())
                else:
                    assert rec.chain is not None
                    tx = await self.senders[rec.chain].transfer_token(key, rec.token, rec.recipient, int(rec.units))
                    self.store.update(rec.id, status="submitted", tx_hash=str(tx))
            except AdapterError as exc:
                self.store.update(rec.id, status="failed", reason=f"{type(exc).__name__}: {exc.reason}"[:500])
            except Exception as exc:  # noqa: BLE001 - a background task must record, not lose, its failure
                self.store.update(rec.id, status="failed", reason=f"{type(exc).__name__}: {exc}"[:500])

    async def refresh(self, rec: IntentRecord) -> IntentRecord:
        """Move a submitted intent to included / failed, an included xchain one to delivered, from the chain
        and the relayer's store."""
        if rec.status == "submitted" and rec.tx_hash and rec.chain:
            try:
                _height, ok = await self.senders[rec.chain].tx_result(TxHash(rec.tx_hash))
            except TxNotFound:
                return rec
            except AdapterError:
                return rec
            self.store.update(rec.id, status="included" if ok else "failed", reason=None if ok else "transaction reverted")
        elif (rec.status == "included" and rec.kind == "xchain" and rec.message_id
              and self._message_state(rec.message_id) == "DELIVERED"):
            self.store.update(rec.id, status="delivered")
        return self.store.get(rec.id) or rec

    async def refresh_unsettled(self) -> int:
        """One pass over every intent that can still move on (a periodic job of the daemon)."""
        records = self.store.unsettled()
        await asyncio.gather(*(self.refresh(r) for r in records))
        return len(records)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
