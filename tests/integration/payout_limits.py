"""The validators' payout limits on a Solana or a Cosmos destination, end to end through the real daemon (role all) on
the devnet (issue 15; ``test_cosmos_payout_limits.py``, ``test_solana_payout_limits.py``; the adversarial test takes
``limits_env`` from here).

The validators limit TST from l1 to the destination to 10 TST, refilled at 0.1 TST/s. A burst of three 4-TST
transfers: the first two are paid at once; the third waits (status ``waiting``, substate ``rate_limit_room``, the
validators' reason with the room and the wait, no attempt spent) and is paid once the bucket refilled, no sooner than
the refill allows. The recipient's balance is read from the destination chain at each step; the refusals are counted
in ``validator_cosign_rate_limited_total`` and no validator's room gauge ever shows room for the third while it waits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import TokenSender
from adapters.capabilities import Bytes32Accounts
from adapters.message import MessageId
from devnets.devnet import Devnet
from tests.faults.conftest import metric, metric_samples
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    message_record,
    wait_for_async,
    write_daemon_config,
)

TST = 10**18  # home units (18 decimals on l1)
DESTINATION_TST = {"cosmos": 10**6, "solana": 10**9}  # one TST on the destination (uxtst; 9 decimals on Solana)
CAPACITY_TST = 10
TRANSFER_TST = 4
REFILL_PER_S = TST // 10
PAID_S = 120.0


def limits_env(limits: list[dict[str, object]]) -> dict[str, str]:
    """``validator.payout_limits`` as an environment override (a TOML value: inline tables)."""
    tables = ("{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in entry.items()) + " }" for entry in limits)
    return {"RELAYER__VALIDATOR__PAYOUT_LIMITS": "[" + ", ".join(tables) + "]"}


def limits_to(chain: str) -> list[dict[str, object]]:
    """The limit of the scenario: TST from l1 to ``chain``."""
    return [{"chain": chain, "remote": "l1", "token": "TST", "capacity": CAPACITY_TST * TST,
             "refill_per_s": REFILL_PER_S}]


def limits_devnet(tmp_path_factory: pytest.TempPathFactory, chain: str) -> Iterator[Devnet]:
    """A module's devnet: the three anvils and ``chain``."""
    devnet = Devnet(tmp_path_factory.mktemp(f"devnet-payout-limits-{chain}"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", chain))
    devnet.up()
    yield devnet
    devnet.down()


class Burst:
    """The destination's side of the scenario: the recipient's TST balance and the transfers' delivery, read from the
    chain, and the daemon's view of them."""

    def __init__(self, client: DevnetClient, daemon: DaemonProcess, chain: str) -> None:
        self.client, self.daemon, self.chain = client, daemon, chain
        destination = client.adapters[chain]
        assert isinstance(destination, TokenSender) and isinstance(destination, Bytes32Accounts)
        self.destination = destination
        self.user = client.address(chain)
        self.ids: list[bytes] = []

    async def balance(self) -> int:
        return int(await self.destination.token_balance("TST", self.user))

    async def send(self) -> None:
        _tx, mid = await self.client.adapters["l1"].send_token(  # type: ignore[attr-defined]
            self.client.key("l1"), "TST", TRANSFER_TST * TST, self.client.domain(self.chain),
            self.destination.account_bytes32(self.user))
        self.ids.append(bytes(mid))

    async def delivered(self) -> list[bool]:
        return list(await self.client.adapters[self.chain].delivered([MessageId(i) for i in self.ids]))

    async def wait_paid(self, before: int, transfers: int, what: str) -> None:
        """Until the recipient holds ``transfers`` transfers more than ``before``; then exactly that."""
        expected = before + transfers * TRANSFER_TST * DESTINATION_TST[self.chain]

        async def paid() -> bool:
            return await self.balance() >= expected

        await wait_for_async(paid, PAID_S, what)
        assert await self.balance() == expected, f"{self.chain}: paid more than sent"

    async def third_waiting(self) -> dict[str, Any]:
        """The daemon's record of the third transfer once it waits for room."""
        waiting: dict[str, Any] = {}

        async def waits() -> bool:
            found = message_record(self.daemon.api_url, self.ids[2])
            if found is not None and found["substate"] == "rate_limit_room":
                waiting.update(found)
            return bool(waiting)

        await wait_for_async(waits, 60, f"the third transfer to {self.chain} waiting for room", interval=0.1)
        return waiting

    def rooms(self) -> list[float]:
        """Each validator's room gauge for TST from l1 to the destination (home units)."""
        return [value for (name, labels), value in metric_samples(self.daemon.api_url).items()
                if name == "validator_payout_limit_room_home_units"
                and {("chain", self.chain), ("remote", "l1"), ("token", "TST")} <= labels]


async def burst_over_the_limit(net: Devnet, directory: Path, chain: str) -> None:
    """The scenario on ``chain`` (module docstring)."""
    client = DevnetClient(net)
    daemon = DaemonProcess(write_daemon_config(net, directory, api_port=free_port_block(1)), directory / "d.log",
                           env=limits_env(limits_to(chain))).start()
    burst = Burst(client, daemon, chain)
    try:
        before = await burst.balance()
        sent_at = time.monotonic()  # before the first transfer: no payout can take room before this
        for _ in range(3):
            await burst.send()
        await burst.wait_paid(before, 2, f"the first two transfers paid out on {chain}")
        assert await burst.delivered() == [True, True, False]  # not the third: it is over the limit

        waiting = await burst.third_waiting()
        assert waiting["status"] == "waiting" and waiting["last_reason"] == "rate_limited"
        assert "rate limited: room" in waiting["last_error"] and "of 10 TST (from l1), refills 0.1 TST/s" in \
            waiting["last_error"] and "would fit in" in waiting["last_error"], waiting["last_error"]
        assert (await burst.delivered())[2] is False
        assert await burst.balance() == before + 2 * TRANSFER_TST * DESTINATION_TST[chain]
        assert metric(daemon.api_url, "validator_cosign_rate_limited_total", chain=chain) >= 1
        rooms = burst.rooms()
        assert rooms and all(room < TRANSFER_TST * TST for room in rooms), rooms

        await burst.wait_paid(before, 3, f"the third transfer paid on {chain} once the bucket refilled")
        # at most 10 TST at once, then 0.1 TST/s: the third fits 20 s after the first payout took its room, which was
        # after the first transfer was sent
        assert time.monotonic() - sent_at >= (3 * TRANSFER_TST - CAPACITY_TST) * TST / REFILL_PER_S - 1
        assert await burst.delivered() == [True, True, True]
        done = message_record(daemon.api_url, burst.ids[2])
        assert done is not None and done["attempts"] == waiting["attempts"]  # waiting spent no attempt
    finally:
        daemon.stop()
        await client.close()
