"""Issue 15: a payout limit on a Cosmos destination, end to end through the real daemon (role all) on the devnet
(three anvils and the Cosmos chain). The validators limit TST from l1 to Cosmos to 10 TST, refilled at 0.1 TST/s.
A burst of three 4-TST transfers: the first two are paid at once; the third waits (status ``waiting``, substate
``rate_limit_room``, the validators' reason with the room and the wait, no attempt spent) and is paid once the
bucket refilled. The recipient's balance is read from the Cosmos chain at each step, the refusals in /metrics."""

from __future__ import annotations

import json
import time

import pytest

from devnets.devnet import Devnet
from tests.faults.conftest import metric
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    message_record,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

TST = 10**18  # home units (18 decimals on l1)
UXTST = 10**6  # one TST on Cosmos
TRANSFER_TST = 4
REFILL_PER_S = TST // 10
LIMITS = [{"chain": "cosmos", "remote": "l1", "token": "TST", "capacity": 10 * TST, "refill_per_s": REFILL_PER_S}]


def limits_env(limits: list[dict[str, object]]) -> dict[str, str]:
    """``validator.payout_limits`` as an environment override (a TOML value: inline tables)."""
    tables = ("{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in entry.items()) + " }" for entry in limits)
    return {"RELAYER__VALIDATOR__PAYOUT_LIMITS": "[" + ", ".join(tables) + "]"}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    devnet = Devnet(tmp_path_factory.mktemp("devnet-payout-limits"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", "cosmos"))
    devnet.up()
    yield devnet
    devnet.down()


async def test_a_burst_over_the_limit_pays_the_first_at_once_and_the_last_once_refilled(net, tmp_path):
    client = DevnetClient(net)
    daemon = DaemonProcess(write_daemon_config(net, tmp_path, api_port=free_port_block(1)), tmp_path / "d.log",
                           env=limits_env(LIMITS)).start()
    l1, cosmos = client.adapters["l1"], client.adapters["cosmos"]
    user = client.address("cosmos")
    try:
        before = await cosmos.token_balance("TST", user)  # type: ignore[attr-defined]

        async def balance() -> int:
            return int(await cosmos.token_balance("TST", user))  # type: ignore[attr-defined]

        ids = []
        sent_at = time.monotonic()  # before the first transfer: no payout can take room before this
        for _ in range(3):
            _tx, mid = await l1.send_token(client.key("l1"), "TST", TRANSFER_TST * TST, client.domain("cosmos"),  # type: ignore[attr-defined]
                                           cosmos.account_bytes32(user))  # type: ignore[attr-defined]
            ids.append(bytes(mid))

        async def two_paid() -> bool:
            return await balance() >= before + 2 * TRANSFER_TST * UXTST

        await wait_for_async(two_paid, 120, "the first two transfers paid out on Cosmos")
        assert await balance() == before + 2 * TRANSFER_TST * UXTST  # not the third: it is over the limit
        assert await cosmos.delivered([ids[0], ids[1], ids[2]]) == [True, True, False]  # type: ignore[attr-defined]

        waiting: dict = {}

        async def third_waits() -> bool:
            found = message_record(daemon.api_url, ids[2])
            if found is not None and found["substate"] == "rate_limit_room":
                waiting.update(found)
            return bool(waiting)

        await wait_for_async(third_waits, 60, "the third transfer waiting for room", interval=0.1)
        assert waiting["status"] == "waiting" and waiting["last_reason"] == "rate_limited"
        assert "rate limited: room" in waiting["last_error"] and "of 10 TST (from l1), refills 0.1 TST/s" in \
            waiting["last_error"] and "would fit in" in waiting["last_error"], waiting["last_error"]
        assert not (await cosmos.delivered([ids[2]]))[0]  # type: ignore[attr-defined]
        assert await balance() == before + 2 * TRANSFER_TST * UXTST
        assert metric(daemon.api_url, "validator_cosign_rate_limited_total", chain="cosmos") >= 1

        async def third_paid() -> bool:
            return await balance() >= before + 3 * TRANSFER_TST * UXTST

        await wait_for_async(third_paid, 120, "the third transfer paid once the bucket refilled")
        # at most 10 TST at once, then 0.1 TST/s: the third fits 20 s after the first payout took its room, which was
        # after the first transfer was sent
        assert time.monotonic() - sent_at >= 2 * TST / REFILL_PER_S - 1
        assert await balance() == before + 3 * TRANSFER_TST * UXTST
        assert (await cosmos.delivered([ids[2]]))[0]  # type: ignore[attr-defined]
        done = message_record(daemon.api_url, ids[2])
        assert done is not None and done["attempts"] == waiting["attempts"]  # waiting spent no attempt
    finally:
        daemon.stop()
        await client.close()
