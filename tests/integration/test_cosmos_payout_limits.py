"""Issue 15: a payout limit on a Cosmos destination, end to end through the real daemon (role all) on the devnet
(three anvils and the Cosmos chain). The validators limit TST from l1 to Cosmos to 10 TST, refilled at 0.1 TST/s.
A burst of three 4-TST transfers: the first two are paid at once; the third waits (status ``waiting``, substate
``rate_limit_room``, the validators' reason with the room and the wait, no attempt spent) and is paid once the
bucket refilled. The recipient's balance is read from the Cosmos chain at each step, the refusals and the validators'
room in /metrics. The scenario is ``tests/integration/payout_limits.py``'s, shared with the Solana test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnets.devnet import Devnet
from tests.integration.payout_limits import burst_over_the_limit, limits_devnet

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    yield from limits_devnet(tmp_path_factory, "cosmos")


async def test_a_burst_over_the_limit_pays_the_first_at_once_and_the_last_once_refilled(net: Devnet,
                                                                                      tmp_path: Path) -> None:
    await burst_over_the_limit(net, tmp_path, "cosmos")
