"""Integrator payouts (``router.payouts``) on both databases: daemons sharing one database racing to create the
epoch's payouts. Whatever the interleaving, each (integrator, chain) gets one payout under way, each counted intent is
covered by at most one payout, the amount is floor(share x the fees covered), and a loser writes nothing (no payout,
item or lane intent). Here for the suite's PostgreSQL server (the unique partial index and the items' key hold it
there; on SQLite the one writer does)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relayer.store.schema import make_engine
from router.integrators import IntegratorStore
from router.intents import IntentRecord, IntentStatus, IntentStore, intent_fields
from router.payouts import PayoutItem, PayoutPlan, PayoutRow, PayoutStore

PAYEE = "0x" + "ab" * 20
OPERATOR = "0x" + "0a" * 20


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'payouts.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def _counted(i: int, code: str, chain: str, fee: int) -> object:
    return intent_fields({"id": f"int_{i:032x}", "batch": "b", "created_at": 1.0 * i, "updated_at": 1.0, "kind":
                          "transfer", "token": "USDC", "amount": "1", "units": "1", "recipient": PAYEE,
                          "integrator": code, "chain": chain, "origin": chain, "status": IntentStatus.INCLUDED,
                          "fee_paid": str(fee)})


def _count(engine: object, table: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_racing_daemons_create_one_payout_per_integrator_and_chain_and_cover_each_intent_once(url: str) -> None:
    intents = IntentStore(make_engine(url))
    codes, chains = ["a", "b", "c"], ["l1", "rollup_a"]
    fees = {(code, chain): 0 for code in codes for chain in chains}
    rows = []
    for i in range(120):
        code, chain, fee = codes[i % 3], chains[(i // 3) % 2], 10_000 + 37 * i
        rows.append(_counted(i, code, chain, fee))
        fees[(code, chain)] += fee
    intents.add_all(rows)  # type: ignore[arg-type]
    for code in codes:
        IntegratorStore(intents.engine).register(code, Decimal("0.3"), {chain: PAYEE for chain in chains})
    stores = [PayoutStore(make_engine(url)) for _ in range(4)]  # four daemons
    plans = [PayoutPlan(code, chain, PAYEE, OPERATOR, Decimal("0.3")) for code in codes for chain in chains]
    with ThreadPoolExecutor(8) as pool:
        made = [r for r in pool.map(lambda k: stores[k % 4].create(plans[k % len(plans)]), range(48))
                if r is not None]
    assert sorted((r.code, r.chain) for r in made) == sorted((p.code, p.chain) for p in plans)
    for r in made:
        assert int(r.amount) == int(Decimal("0.3") * fees[(r.code, r.chain)]) and int(r.fees) == fees[(r.code,
                                                                                                        r.chain)]
    engine = stores[0].engine
    assert _count(engine, PayoutRow.__table__) == len(plans)  # type: ignore[attr-defined]
    assert _count(engine, PayoutItem.__table__) == 120  # type: ignore[attr-defined]
    assert _count(engine, IntentRecord.__table__) == 120 + len(plans)  # type: ignore[attr-defined]
