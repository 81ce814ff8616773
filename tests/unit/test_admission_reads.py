"""What ``POST /v1/intents`` reads for each batch without asking the chains or scanning the database each time:
``router.balances.OperatorBalances`` (the operators' token balances: one chain read per ``max_age_s``, less what the
batches planned since took) and ``router.room.ActiveWork`` (work taken and not mined: one scan per ``max_age_s``,
plus what this daemon took since)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from router.balances import OperatorBalances
from router.room import ActiveWork

OPS = [["0xAA"], ["0xbb", "SoLaNaAccountOfB"]]  # each operator's accounts: its EVM address, and on other families


class Chains:
    def __init__(self) -> None:
        self.reads = 0
        self.balance = {"l1": [100, 50], "l2": [7, 9]}

    async def read(self, chains: Sequence[str], token: str) -> dict[str, list[int]]:
        self.reads += 1
        await asyncio.sleep(0)  # let concurrent callers pile up behind the read
        return {c: list(self.balance[c]) for c in chains}


def test_one_read_serves_every_batch_until_it_is_old() -> None:
    chains, now = Chains(), [0.0]
    balances = OperatorBalances(chains.read, OPS, max_age_s=1.0, clock=lambda: now[0])

    async def scenario() -> None:
        assert await balances.get(["l1", "l2"], "USDC") == {"l1": [100, 50], "l2": [7, 9]}
        now[0] = 0.9
        await balances.get(["l1", "l2"], "USDC")
        assert chains.reads == 1
        now[0] = 1.5
        chains.balance["l1"] = [90, 50]
        assert (await balances.get(["l1"], "USDC"))["l1"] == [90, 50]
        assert chains.reads == 2

    asyncio.run(scenario())


def test_concurrent_batches_share_one_read() -> None:
    chains = Chains()
    balances = OperatorBalances(chains.read, OPS)

    async def scenario() -> None:
        await asyncio.gather(*(balances.get(["l1", "l2"], "USDC") for _ in range(10)))

    asyncio.run(scenario())
    assert chains.reads == 1


def test_what_a_batch_planned_is_not_there_for_the_next_one() -> None:
    chains, now = Chains(), [0.0]
    balances = OperatorBalances(chains.read, OPS, max_age_s=1.0, clock=lambda: now[0])

    async def scenario() -> None:
        await balances.get(["l1", "l2"], "USDC")
        balances.take("USDC", "l1", "0xaa", 60)  # the address in another case: the same operator
        balances.take("USDC", "l1", "0xbb", 80)  # more than it holds: nothing left, never negative
        balances.take("USDC", "l2", "0xcc", 5)   # not an operator: ignored
        balances.take("USDC", "l2", "SoLaNaAccountOfB", 3)  # operator B by its account on another family
        assert await balances.get(["l1", "l2"], "USDC") == {"l1": [40, 0], "l2": [7, 6]}
        now[0] = 2.0  # the chain's figure replaces the estimate
        assert (await balances.get(["l1"], "USDC"))["l1"] == [100, 50]

    asyncio.run(scenario())


def test_a_caller_cannot_change_the_cached_balances_through_its_copy() -> None:
    balances = OperatorBalances(Chains().read, OPS)

    async def scenario() -> None:
        first = await balances.get(["l1"], "USDC")
        first["l1"][0] = 0
        assert (await balances.get(["l1"], "USDC"))["l1"] == [100, 50]

    asyncio.run(scenario())


def test_active_work_is_scanned_once_per_age_and_counts_what_was_taken_since() -> None:
    scans, now = [0], [0.0]
    in_db = {"l1": 10.0}

    def scan() -> dict[str, float]:
        scans[0] += 1
        return dict(in_db)

    active = ActiveWork(scan, max_age_s=0.25, clock=lambda: now[0])
    assert active.now() == {"l1": 10.0}
    active.taken({"l1": 5.0, "l2": 2.0})
    now[0] = 0.2
    assert active.now() == {"l1": 15.0, "l2": 2.0} and scans[0] == 1
    in_db.update(l1=12.0)  # the database now shows every daemon's work
    now[0] = 0.3
    assert active.now() == {"l1": 12.0} and scans[0] == 2
