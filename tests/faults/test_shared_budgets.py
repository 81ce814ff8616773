"""``router.budgets.ValueBudgets`` on both databases: daemons sharing one database share each client's daily value
budget. Two budget objects (two daemons) take from one bucket; takings racing from many threads never exceed the day's
budget together; a refused batch takes nothing of any token; what is given back refills, never above a day's worth.
Here for the suite's PostgreSQL server (``SELECT ... FOR UPDATE`` is what holds it there)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from relayer.store.schema import make_engine
from router.budgets import ValueBudgets

PER_DAY = {"TST": 100.0, "USDC": 10.0}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'budgets.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_two_daemons_take_from_one_budget(url: str) -> None:
    now = [1000.0]
    a = ValueBudgets(make_engine(url), PER_DAY, clock=lambda: now[0])
    b = ValueBudgets(make_engine(url), PER_DAY, clock=lambda: now[0])
    assert a.take("key:client", {"TST": 60.0}) is None
    token, wait = b.take("key:client", {"TST": 50.0}) or ("", 0.0)
    assert token == "TST" and wait == pytest.approx(10 * 864)  # 10 TST short at 100 a day
    assert b.take("key:other", {"TST": 50.0}) is None  # another client: a budget of its own
    now[0] += 864.0  # a hundredth of a day: 1 TST back
    assert b.take("key:client", {"TST": 41.0}) is None
    assert a.take("key:client", {"TST": 0.5}) is not None


def test_a_batch_over_one_tokens_budget_takes_nothing_of_the_others(url: str) -> None:
    budgets = ValueBudgets(make_engine(url), PER_DAY, clock=lambda: 1000.0)
    assert budgets.take("c", {"TST": 90.0, "USDC": 11.0}) == ("USDC", pytest.approx(8640.0))  # 1 short at 10 a day
    assert budgets.take("c", {"TST": 100.0}) is None


def test_given_back_value_refills_up_to_a_days_budget(url: str) -> None:
    budgets = ValueBudgets(make_engine(url), PER_DAY, clock=lambda: 1000.0)
    assert budgets.take("c", {"TST": 70.0}) is None
    budgets.give_back("c", {"TST": 500.0, "NOPE": 1.0})
    assert budgets.take("c", {"TST": 100.0}) is None and budgets.take("c", {"TST": 1.0}) is not None


def test_racing_daemons_never_take_more_than_the_budget_together(url: str) -> None:
    engines = [make_engine(url) for _ in range(4)]
    budgets = [ValueBudgets(e, PER_DAY, clock=lambda: 1000.0) for e in engines]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda k: budgets[k % 4].take("c", {"TST": 7.0}), range(40)))
    assert sum(r is None for r in results) == 14  # 14 x 7 = 98 <= 100 < 15 x 7


def test_buckets_full_for_a_day_are_forgotten(url: str) -> None:
    now = [1000.0]
    budgets = ValueBudgets(make_engine(url), PER_DAY, clock=lambda: now[0])
    assert budgets.take("c", {"TST": 1.0}) is None
    assert budgets.prune() == 0
    now[0] += 86_401.0
    assert budgets.prune() == 1 and budgets.take("c", {"TST": 100.0}) is None
