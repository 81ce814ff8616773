"""Integrator rewards paid on chain, per epoch, exactly once (issue 15; the seed's referral programme, LI.FI's
FeeForwarder).

Every ``router.integrator_payout_interval_s`` each daemon runs ``PayoutJob.run_once``: first it *settles* the
payouts under way, then, for each registered integrator (``router.integrators``) and each chain where it has a payout
address and an operator lane signs native transfers (lane kind ``native``: an EVM value transfer, a Solana System
transfer of lamports, a Cosmos bank send of the fee denom; ``adapters/*/writeahead.py``), it *creates* at most one
payout:

    amount = floor(carry + share x sum(fee_paid of the counted intents no payout covers yet))

- **Counted intents** are the report's (``router.intents.counts_for_integrator``): seen included on chain
  (cross-chain: delivered), with ``fee_paid`` from the receipt. A fee is in the smallest native units of the chain
  whose transaction paid it: a same-chain intent's chain, a cross-chain transfer's origin. The payout for it is made
  on that chain, in that unit, so no exchange rate enters the amount.
- **Exact arithmetic**: the share is a decimal (``router.integrators.parse_share``), the product is a ``Decimal``
  and the floor leaves a fraction of a unit, ``carry``, kept with the payout and added to the next one on that chain.
  So however the intents fall into epochs, after every payout the integrator holds exactly
  ``floor(share x fees covered)`` (the same share throughout); nothing is rounded away twice.
- **One native transfer per (integrator, chain, epoch)**, from an operator account on that chain, executed by that
  account's durable lane (``router.lanes``) as an intent row of kind ``native``. The payout row, the rows of the
  intents it covers (``integrator_payout_items``, keyed by intent id: an intent is covered by at most one payout)
  and that lane intent are inserted in one database transaction; the lane stores the signed transaction before it
  sends it, sends the same bytes again after a crash, and signs a second one only when the chain shows the first can
  never land. So a ``kill -9`` at any point neither pays twice nor loses a payout.
- **At most one payout under way per (integrator, chain)** (a unique partial index): the carry is then a chain of
  payouts, and two daemons creating at once cannot both succeed (on PostgreSQL the second waits on the integrator's
  row, ``FOR UPDATE``, then sees the first; else it fails on that index or on an item's key and writes nothing).
- **Settling**: a payout is ``paid`` once its lane intent is included (its transaction hash, mined). It is ``failed``
  when the intent failed (it reverted, which moves no value, or could not be prepared, which sent nothing): its items
  are deleted in the same transaction, so the next epoch covers those intents again. Nothing else releases an intent.
- **Nothing below one smallest unit** is sent: the fees wait for the next epoch.
- **Nothing below the chain's minimum for the address** is sent either (``PayoutMinimums``, from the adapters'
  ``NativePayoutMinimum``: on Solana the rent-exempt minimum of an account without data, for a payee account that
  holds less, most often nothing yet; the chain would refuse the transfer). The epoch asks it before it creates the
  payout and writes nothing when the amount is below it (``HeldBack``): no payout row, no lane intent, no fee; the
  intents stay uncovered, so the next epoch owes all of it, with what they earned since, until it reaches the
  minimum. Logged as ``integrator_payout_held_back``; the report's pending figure for that chain says why
  (``pending_reason``).

Not paid yet (the report shows it as pending, ``payable: false`` with the reason): chains where no lane signs a
native transfer (no operator key there), and chains the integrator gave no address for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Protocol

import structlog
from sqlalchemy import Index, and_, func, or_, text
from sqlalchemy import delete as sa_delete
from sqlalchemy import update as sa_update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel, select

from adapters.base import AdapterError
from adapters.capabilities import NativePayoutMinimum, PayoutMinimum
from router.integrators import Integrator, IntegratorRow, IntegratorStore
from router.intents import IntentExecutor, IntentRecord, IntentStatus, new_intent_ids
from router.sql import insert_rows

log = structlog.get_logger("router.payouts")

NATIVE_KIND = "native"  # the lane intent kind of a payout (signed by the chains' write-ahead senders)
_PENDING = text("status = 'pending'")
ANY_AMOUNT = PayoutMinimum(0)  # a chain that takes a native transfer of any amount


class PayoutRow(SQLModel, table=True):
    """One payout: what it pays, to whom, from which operator account, and the lane intent that sends it."""

    __tablename__ = "integrator_payouts"
    __table_args__ = (Index("ux_integrator_payouts_pending", "code", "chain", unique=True,
                            sqlite_where=_PENDING, postgresql_where=_PENDING),
                      Index("ix_integrator_payouts_code", "code", "chain", "created_at"))

    id: str = Field(primary_key=True, max_length=40)
    code: str = Field(max_length=32)
    chain: str = Field(max_length=64)
    address: str = Field(max_length=128)
    operator: str = Field(max_length=128)
    amount: str            # smallest native units sent
    fees: str              # sum of fee_paid of the intents covered (smallest native units)
    share: str             # the share applied (decimal text)
    carry: str             # fraction of a unit left after the floor, added to the next payout on this chain
    intents: int = 0       # intents covered
    intent_id: str = Field(max_length=40, unique=True)  # the lane intent (kind native) that sends it
    status: str = "pending"  # pending, paid, failed
    tx_hash: str | None = None
    reason: str | None = None
    created_at: float = 0.0
    settled_at: float | None = None


class PayoutItem(SQLModel, table=True):
    """An intent covered by a payout: at most one (the key)."""

    __tablename__ = "integrator_payout_items"

    intent_id: str = Field(primary_key=True, max_length=40)
    payout_id: str = Field(index=True, max_length=40)
    fee_paid: str = Field(default="0")  # the covered intent's fee (smallest native units), for the report


@dataclass(frozen=True, slots=True)
class Reward:
    """One payout's arithmetic: ``amount`` whole smallest units, ``carry`` what the floor left."""

    amount: int
    carry: Decimal


def reward(share: Decimal, fees: int, carry: Decimal = Decimal(0)) -> Reward:
    """``floor(carry + share x fees)`` and the fraction left, exactly (``Decimal``, never a float)."""
    exact = carry + share * Decimal(fees)
    amount = int(exact.to_integral_value(rounding=ROUND_FLOOR))
    return Reward(amount, exact - amount)


def counted_clause(table: Any) -> Any:
    """``counts_for_integrator`` as SQL: same-chain intents included, cross-chain ones delivered, with a fee read."""
    return and_(or_(and_(table.c.kind == "xchain", table.c.status == IntentStatus.DELIVERED),
                    and_(table.c.kind != "xchain", table.c.status == IntentStatus.INCLUDED)),
                table.c.fee_paid.is_not(None))


def fee_chain(table: Any) -> Any:
    """The chain whose native token paid an intent's fee: its origin (a cross-chain transfer's), else its chain."""
    return func.coalesce(table.c.origin, table.c.chain)


@dataclass(frozen=True, slots=True)
class PayoutPlan:
    """What ``PayoutStore.create`` needs besides the intents: where from, where to, and how the lane intent reads."""

    code: str
    chain: str
    address: str
    operator: str
    share: Decimal
    native_decimals: int = 18
    minimum: PayoutMinimum = ANY_AMOUNT  # what the chain takes at least in a native transfer to ``address`` now


@dataclass(frozen=True, slots=True)
class HeldBack:
    """A payout not made because the chain would refuse it: ``owed`` (what it would send now) is below ``minimum``,
    the least the chain takes in a native transfer to ``address`` (both in smallest units), for the chain's
    ``why``. Nothing is written, so the intents stay uncovered and the next epoch owes all of it again, with what
    was earned since."""

    code: str
    chain: str
    address: str
    owed: int
    minimum: int
    why: str = ""

    @property
    def reason(self) -> str:
        return (f"below the minimum first payout to this address: {self.owed} owed, at least {self.minimum} needed"
                + (f" ({self.why})" if self.why else "") + "; carried until it reaches it")


class PayoutStore:
    """``integrator_payouts`` and ``integrator_payout_items`` (short synchronous transactions, none across I/O)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        SQLModel.metadata.create_all(engine, tables=[PayoutRow.__table__,  # type: ignore[attr-defined]
                                                     PayoutItem.__table__,  # type: ignore[attr-defined]
                                                     IntegratorRow.__table__])  # type: ignore[attr-defined]

    def uncovered(self, conn: Connection, code: str, chain: str) -> list[tuple[str, int]]:
        """(id, fee_paid) of ``code``'s counted intents whose fee was paid on ``chain`` and no payout covers."""
        intents, items = IntentRecord.__table__, PayoutItem.__table__  # type: ignore[attr-defined]
        q = (select(intents.c.id, intents.c.fee_paid)
             .where(intents.c.integrator == code, fee_chain(intents) == chain, counted_clause(intents),
                    intents.c.id.not_in(select(items.c.intent_id)))
             .order_by(intents.c.id))
        return [(str(i), int(f)) for i, f in conn.execute(q)]

    def _carry(self, conn: Connection, code: str, chain: str) -> tuple[bool, Decimal]:
        """(a payout is under way, the carry of the latest payout that did not fail)."""
        payouts = PayoutRow.__table__  # type: ignore[attr-defined]
        rows = conn.execute(select(payouts.c.status, payouts.c.carry)
                            .where(payouts.c.code == code, payouts.c.chain == chain, payouts.c.status != "failed")
                            .order_by(payouts.c.created_at.desc(), payouts.c.id.desc()).limit(1)).all()
        if not rows:
            return False, Decimal(0)
        return rows[0].status == "pending", Decimal(rows[0].carry)

    def create(self, plan: PayoutPlan) -> PayoutRow | HeldBack | None:
        """One payout of what ``plan.code`` earned on ``plan.chain`` and was not paid yet: the payout row, its items
        and its lane intent in one transaction. ``HeldBack`` (nothing written) when it is below ``plan.minimum``.
        None when one is under way, nothing is owed, the share leaves less than one unit, or another daemon created
        it first."""
        now = self._clock()
        try:
            with self.engine.begin() as conn:
                owed = self._owed(conn, plan)
                if owed is None:
                    return None
                found, fees, due = owed
                if due.amount < plan.minimum.amount:
                    return HeldBack(plan.code, plan.chain, plan.address, due.amount, plan.minimum.amount,
                                    plan.minimum.reason)
                return self._insert(conn, plan, found, fees, due, now)
        except IntegrityError as exc:  # another daemon created this payout, or covered one of its intents, first
            log.info("integrator_payout_raced", code=plan.code, chain=plan.chain, error=str(exc)[:200])
            return None

    def _owed(self, conn: Connection, plan: PayoutPlan) -> tuple[list[tuple[str, int]], int, Reward] | None:
        """(the intents no payout covers, their fees, what is due for them) for ``plan``; None when a payout is under
        way or less than one unit is due."""
        registered = IntegratorRow.__table__  # type: ignore[attr-defined]
        # PostgreSQL: one creator per code at a time, so the carry and the intents are read together
        conn.execute(select(registered.c.code).where(registered.c.code == plan.code).with_for_update())
        under_way, carry = self._carry(conn, plan.code, plan.chain)
        if under_way:
            return None
        found = self.uncovered(conn, plan.code, plan.chain)
        fees = sum(f for _i, f in found)
        due = reward(plan.share, fees, carry)
        if not found or due.amount <= 0:
            return None
        return found, fees, due

    @staticmethod
    def _insert(conn: Connection, plan: PayoutPlan, found: list[tuple[str, int]], fees: int, due: Reward,
                now: float) -> PayoutRow:
        """The payout row, its items and its lane intent."""
        payout_id, intent_id = ("pay_" + new_intent_ids(1)[0][4:]), new_intent_ids(1)[0]
        row = PayoutRow(id=payout_id, code=plan.code, chain=plan.chain, address=plan.address,
                        operator=plan.operator, amount=str(due.amount), fees=str(fees), share=str(plan.share),
                        carry=str(due.carry), intents=len(found), intent_id=intent_id, created_at=now)
        conn.execute(PayoutRow.__table__.insert().values(**row.model_dump()))  # type: ignore[attr-defined]
        insert_rows(conn, PayoutItem.__table__, ["intent_id", "payout_id", "fee_paid"],  # type: ignore[attr-defined]
                    [(i, payout_id, str(f)) for i, f in found])
        conn.execute(IntentRecord.__table__.insert().values(  # type: ignore[attr-defined]
            **_lane_intent(intent_id, payout_id, plan, due.amount, now)))
        return row

    def settle(self) -> list[tuple[str, str, str | None]]:
        """Payouts under way whose lane intent is final: paid (included: its hash) or failed (its items deleted, so
        the next epoch covers those intents again). Each one settled now, as (payout id, status, tx hash)."""
        payouts, intents = PayoutRow.__table__, IntentRecord.__table__  # type: ignore[attr-defined]
        now = self._clock()
        done: list[tuple[str, str, str | None]] = []
        with self.engine.begin() as conn:
            rows = conn.execute(select(payouts.c.id, intents.c.status, intents.c.tx_hash, intents.c.reason)
                                .select_from(payouts.outerjoin(intents, intents.c.id == payouts.c.intent_id))
                                .where(payouts.c.status == "pending")).all()
            for pid, status, tx_hash, reason in rows:
                verdict = _verdict(status)
                if verdict is None:
                    if tx_hash is not None:  # signed: the report shows the hash while it is mined
                        conn.execute(sa_update(payouts).where(payouts.c.id == pid, payouts.c.status == "pending")
                                     .values(tx_hash=tx_hash))
                    continue
                changed = conn.execute(sa_update(payouts).where(payouts.c.id == pid, payouts.c.status == "pending")
                                       .values(status=verdict, tx_hash=tx_hash, settled_at=now,
                                               reason=None if verdict == "paid" else (reason or "lane intent gone")))
                if changed.rowcount == 1 and verdict == "failed":
                    conn.execute(sa_delete(PayoutItem.__table__).where(  # type: ignore[attr-defined]
                        PayoutItem.__table__.c.payout_id == pid))  # type: ignore[attr-defined]
                if changed.rowcount == 1:
                    done.append((str(pid), verdict, tx_hash))
        return done

    def of(self, code: str) -> list[dict[str, Any]]:
        """``code``'s payouts, oldest first, with the lane intent's hash where the payout row has none yet."""
        payouts, intents = PayoutRow.__table__, IntentRecord.__table__  # type: ignore[attr-defined]
        q = (select(payouts, intents.c.tx_hash.label("lane_tx_hash"), intents.c.status.label("lane_status"))
             .select_from(payouts.outerjoin(intents, intents.c.id == payouts.c.intent_id))
             .where(payouts.c.code == code).order_by(payouts.c.created_at, payouts.c.id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def covered_fees(self, code: str) -> dict[str, tuple[int, int]]:
        """Per chain: (intents, fees) covered by payouts not failed (paid or under way)."""
        payouts, items = PayoutRow.__table__, PayoutItem.__table__  # type: ignore[attr-defined]
        q = (select(payouts.c.chain, items.c.fee_paid).select_from(items.join(payouts,
                                                                                payouts.c.id == items.c.payout_id))
             .where(payouts.c.code == code))
        out: dict[str, tuple[int, int]] = {}
        with self.engine.connect() as conn:
            for chain, fee in conn.execute(q):
                n, total = out.get(chain, (0, 0))
                out[str(chain)] = (n + 1, total + int(fee))
        return out

    def uncovered_by_chain(self, code: str) -> dict[str, int]:
        """Per fee chain: the fees of ``code``'s counted intents no payout covers."""
        intents, items = IntentRecord.__table__, PayoutItem.__table__  # type: ignore[attr-defined]
        q = (select(fee_chain(intents), intents.c.fee_paid)
             .where(intents.c.integrator == code, counted_clause(intents),
                    intents.c.id.not_in(select(items.c.intent_id))))
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chain, fee in conn.execute(q):
                out[str(chain)] = out.get(str(chain), 0) + int(fee)
        return out

    def last_carry(self, code: str, chain: str) -> Decimal:
        with self.engine.connect() as conn:
            return self._carry(conn, code, chain)[1]


def _verdict(lane_status: str | None) -> str | None:
    """A payout's end from its lane intent's status: paid, failed, or None while it may still land."""
    if lane_status is None or lane_status == IntentStatus.FAILED:
        return "failed"
    if lane_status == IntentStatus.INCLUDED:
        return "paid"
    return None


def _shown_status(payout: Mapping[str, Any]) -> str:
    """A payout's status as the report shows it: paid as soon as its lane intent is included (the epoch's settling
    writes it down later)."""
    if payout["status"] == "pending" and payout.get("lane_status") == IntentStatus.INCLUDED:
        return "paid"
    return str(payout["status"])


def _lane_intent(intent_id: str, payout_id: str, plan: PayoutPlan, units: int, now: float) -> dict[str, Any]:
    """The lane intent that sends a payout: a native transfer of ``units`` from ``plan.operator`` on ``plan.chain``
    (no integrator, no client: it counts for nobody and spends no client's budget)."""
    amount = Decimal(units).scaleb(-plan.native_decimals)
    return {"id": intent_id, "batch": payout_id, "created_at": now, "updated_at": now, "kind": NATIVE_KIND,
            "token": "native", "amount": format(amount.normalize(), "f"), "units": str(units),
            "recipient": plan.address, "chain": plan.chain, "origin": plan.chain, "operator": plan.operator,
            "status": IntentStatus.PLANNED, "work": 1.0,
            "reason": f"integrator payout {payout_id} to {plan.code}"}


class PayoutLanes(Protocol):
    """What the payout job needs of the operators' lanes (``router.intents.IntentExecutor`` and its lanes)."""

    def payout_chains(self) -> frozenset[str]:
        """Chains whose lanes sign native transfers."""
        ...

    def payout_account(self, chain: str) -> str | None:
        """The operator account on ``chain`` that pays (None: none can)."""
        ...

    def wake(self) -> None: ...


class ExecutorPayoutLanes:
    """``PayoutLanes`` over the intents executor: chains whose lanes take kind ``native``, and the first operator
    account there whose lane is not blocked (a payout is one transaction; the lane's order keeps it behind what the
    account signed before)."""

    def __init__(self, executor: IntentExecutor) -> None:
        self.executor = executor

    def payout_chains(self) -> frozenset[str]:
        lanes = self.executor.lanes
        return lanes.chains_for(NATIVE_KIND) if lanes is not None else frozenset()

    def payout_account(self, chain: str) -> str | None:
        for operator in self.executor.operators:
            account = operator.on(chain)
            if (chain, account.lower()) not in self.executor.blocked_accounts:
                return account
        return None

    def wake(self) -> None:
        if self.executor.lanes is not None:
            self.executor.lanes.wake()


class OffLoopRunner(Protocol):
    async def __call__(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


class PayoutMinimums(Protocol):
    """What a chain takes at least in a native transfer to an address (``AdapterError`` when it cannot be read)."""

    async def minimum_payout(self, chain: str, address: str) -> PayoutMinimum: ...


class ChainPayoutMinimums:
    """``PayoutMinimums`` from the adapters: a chain whose adapter declares ``NativePayoutMinimum`` (Solana: rent)
    is asked; any other takes any amount."""

    def __init__(self, adapters: Mapping[str, object]) -> None:
        self.adapters = adapters

    async def minimum_payout(self, chain: str, address: str) -> PayoutMinimum:
        adapter = self.adapters.get(chain)
        if isinstance(adapter, NativePayoutMinimum):
            return await adapter.minimum_native_payout(address)
        return ANY_AMOUNT


class PayoutJob:
    """The epoch: settle what is under way, then one payout per (registered integrator, payable chain) of what it
    earned and was not paid (``PayoutStore.create``), unless it is below the chain's minimum for the address
    (``PayoutMinimums``; kept, by (code, chain), for the report), and wake the lanes to sign them."""

    def __init__(self, payouts: PayoutStore, integrators: IntegratorStore, lanes: PayoutLanes,
                 minimums: PayoutMinimums, run: OffLoopRunner, default_share: Decimal,
                 native_decimals: Mapping[str, int] | None = None) -> None:
        self.payouts = payouts
        self.integrators = integrators
        self.lanes = lanes
        self.minimums = minimums
        self._run = run
        self.default_share = default_share
        self.native_decimals = dict(native_decimals or {})
        self._held: dict[tuple[str, str], HeldBack] = {}

    async def run_once(self) -> list[PayoutRow]:
        """One epoch; the payouts it created."""
        for pid, status, tx in await self._run(self.payouts.settle):
            log.info("integrator_payout_settled", payout=pid, status=status, tx=tx)
        created: list[PayoutRow] = []
        for integrator in await self._run(self.integrators.all):
            for plan in self.plans(integrator):
                row = await self._pay(plan)
                if row is not None:
                    created.append(row)
        if created:
            self.lanes.wake()
        return created

    async def _pay(self, plan: PayoutPlan) -> PayoutRow | None:
        """The payout of ``plan``, if any is due and the chain takes it; a payout held back is remembered and
        logged; a minimum that cannot be read leaves the chain for the next epoch."""
        try:
            minimum = await self.minimums.minimum_payout(plan.chain, plan.address)
        except AdapterError as exc:
            log.warning("integrator_payout_minimum_unknown", code=plan.code, chain=plan.chain, error=str(exc)[:300])
            return None
        outcome = await self._run(self.payouts.create, replace(plan, minimum=minimum))
        key = (plan.code, plan.chain)
        if isinstance(outcome, HeldBack):
            self._held[key] = outcome
            log.info("integrator_payout_held_back", code=plan.code, chain=plan.chain, address=plan.address,
                     owed=outcome.owed, minimum=outcome.minimum, reason=outcome.reason)
            return None
        self._held.pop(key, None)
        if outcome is not None:
            log.info("integrator_payout_created", payout=outcome.id, code=outcome.code, chain=outcome.chain,
                     amount=outcome.amount, fees=outcome.fees, share=outcome.share, intents=outcome.intents,
                     address=outcome.address, operator=outcome.operator)
        return outcome

    def held_back(self, code: str) -> dict[str, HeldBack]:
        """Per chain, ``code``'s payout the last epoch held back (below the chain's minimum for its address)."""
        return {chain: held for (c, chain), held in self._held.items() if c == code}

    def plans(self, integrator: Integrator) -> list[PayoutPlan]:
        """A plan per chain where ``integrator`` has an address and an operator can pay."""
        out = []
        payable = self.lanes.payout_chains()
        for chain, address in sorted(integrator.payout_addresses.items()):
            operator = self.lanes.payout_account(chain) if chain in payable else None
            if operator is not None:
                out.append(PayoutPlan(integrator.code, chain, address, operator,
                                      integrator.share_or(self.default_share), self.native_decimals.get(chain, 18)))
        return out


def rewards_view(integrator: Integrator | None, default_share: Decimal, payouts: Sequence[Mapping[str, Any]],
                 uncovered: Mapping[str, int], carries: Mapping[str, Decimal],
                 payable: frozenset[str], held: Mapping[str, HeldBack] | None = None) -> dict[str, Any]:
    """The report's ``rewards``: per chain (where the fees were paid) what was paid, what is under way and what is
    pending (earned, not yet in a payout: ``floor(carry + share x uncovered fees)``), in that chain's smallest native
    units, whether it can be paid there and why not, why what is pending waits when the last epoch held it back
    (``held``, per chain: below the chain's minimum for the address), and every payout with its transaction hash."""
    share = integrator.share_or(default_share) if integrator is not None else default_share
    chains: dict[str, dict[str, Any]] = {}

    def bucket(chain: str) -> dict[str, Any]:
        return chains.setdefault(chain, {"paid": 0, "in_flight": 0, "pending": 0, "payouts": 0})

    payouts = [{**p, "status": _shown_status(p)} for p in payouts]
    for p in payouts:
        b = bucket(p["chain"])
        if p["status"] == "paid":
            b["paid"] += int(p["amount"])
            b["payouts"] += 1
        elif p["status"] == "pending":
            b["in_flight"] += int(p["amount"])
    for chain, fees in uncovered.items():
        bucket(chain)["pending"] = reward(share, fees, carries.get(chain, Decimal(0))).amount
    addresses = integrator.payout_addresses if integrator is not None else {}
    for chain, b in chains.items():
        b["payout_address"] = addresses.get(chain)
        b["payable"] = chain in payable and chain in addresses
        b["why_not"] = (None if b["payable"] else "not registered" if integrator is None
                        else "no payout address for this chain" if chain not in addresses
                        else "no operator lane here signs native transfers")
        b["pending_reason"] = _pending_reason(b["pending"], (held or {}).get(chain), addresses.get(chain))
        for k in ("paid", "in_flight", "pending"):
            b[k] = str(b[k])
    return {"registered": integrator is not None, "share": str(share), "unit": "smallest native units of the chain",
            "by_chain": dict(sorted(chains.items())),
            "payouts": [{"id": p["id"], "chain": p["chain"], "address": p["address"], "amount": str(p["amount"]),
                         "fees": str(p["fees"]), "share": p["share"], "intents": p["intents"], "status": p["status"],
                         "tx_hash": p["tx_hash"] or p.get("lane_tx_hash"), "operator": p["operator"],
                         "created_at": p["created_at"], "settled_at": p["settled_at"]} for p in payouts]}


def _pending_reason(pending: int, held: HeldBack | None, address: str | None) -> str | None:
    """Why ``pending`` waits beyond the next epoch: the last epoch held it back for the address registered now."""
    return held.reason if pending > 0 and held is not None and held.address == address else None
