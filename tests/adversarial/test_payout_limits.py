"""Issue 15: a payout limit on Cosmos holds against a malicious relayer. The validators (role validator: no honest
relayer running) limit TST from l1 to Cosmos to 10 TST, refilled at 0.0001 TST/s (nothing refills during the test).
The test sends three 4-TST transfers to the attacker's Cosmos account; the attacker, an allow-listed relayer, asks
the validators directly to co-sign each payout and broadcasts what it gets: the first two are co-signed and paid,
the third is refused with the room and the wait (429 ``payout rate limited``) however it is asked: again and
again, with another timeout height, another fee, at the next vault sequence, batched with a paid transfer. Read
from the chain: the attacker received 8 TST, no more; the third transfer is undelivered; the refusals are counted
in ``validator_cosign_rate_limited_total``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.adversarial.conftest import start_daemon
from tests.adversarial.test_cosmos_cosign import TST_HOME_UNITS, UXTST, Chains
from tests.faults.conftest import metric
from tests.integration.harness import DaemonProcess, DevnetClient
from tests.integration.payout_limits import limits_env

pytestmark = pytest.mark.integration

CAPACITY_TST, TRANSFER_TST = 10, 4
LIMITS = [{"chain": "cosmos", "remote": "l1", "token": "TST", "capacity": CAPACITY_TST * TST_HOME_UNITS,
           "refill_per_s": TST_HOME_UNITS // 10_000}]


@pytest.fixture(scope="module")
def limited_validators(bridge_devnet: Any, attacker: Any,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """The devnet's validators alone, with the payout limit, serving the attacker as a relayer."""
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("daemon"), edit=attacker.allow_as_relayer,
                          role="validator", env=limits_env(LIMITS))
    yield daemon
    daemon.stop()


async def test_a_relayer_asking_directly_gets_no_more_paid_than_the_limit(attacker, bridge_devnet,
                                                                         limited_validators) -> None:
    client = DevnetClient(bridge_devnet)
    chains = Chains(client, attacker.addresses["cosmos"])
    try:
        recipient_before, vault_before = await chains.balances()
        ids = [await chains.send(TRANSFER_TST) for _ in range(3)]
        seen = attacker.run("payout_limits.pay_over_the_limit", message_ids=["0x" + bytes(i).hex() for i in ids])
        print("attack observed:", json.dumps({k: seen[k] for k in ("signed_payloads", "broadcasts")}))

        # a replay of a paid payout is the same transaction (same hash): it lands once
        paid = {b["tx"]: b["request"].removesuffix(" replayed") for b in seen["broadcasts"]
                if b.get("state") == "confirmed"}
        assert sorted(paid.values()) == ["transfer 0", "transfer 1"], seen["broadcasts"]
        over = [a for a in seen["asked"] if a["request"].startswith("round")]
        assert over and all(a["status"] in (403, 429) for a in over), over
        limited = [a for a in over if a["status"] == 429]
        assert all(a["reason"] == "payout rate limited" for a in limited)
        assert {a["request"].split(": ", 1)[1] for a in limited} >= {"over", "over: timeout +1", "over: fee x2"}
        assert all(re.search(r"rate limited: room 2(\.\d+)? TST of 10 TST \(from l1\)", a["detail"])  # + what refilled
               and "would fit in" in a["detail"]
                   for a in limited), [a["detail"] for a in limited[:2]]
        # the idempotent retry of a paid transfer's payload: signed again, and took no room (the third still over)
        again = [a for a in seen["asked"] if a["request"].endswith("again")]
        assert again and all(a["status"] == 200 for a in again), again
        assert len([p for p in seen["signed_payloads"] if len(p["validators"]) >= 2]) == 2, seen["signed_payloads"]

        assert seen["delivered"] == [True, True, False]
        assert await chains.balances() == (recipient_before + 2 * TRANSFER_TST * UXTST,
                                           vault_before - 2 * TRANSFER_TST * UXTST)
        assert not (await chains.cosmos.delivered([ids[2]]))[0]
        assert metric(limited_validators.api_url, "validator_cosign_rate_limited_total", chain="cosmos") >= len(limited)
        for v in client.manifest["validators"]:  # what is left: 2 TST (and what refilled since: a few millionths)
            room = metric(limited_validators.api_url, "validator_payout_limit_room_home_units", chain="cosmos",
                          remote="l1", token="TST", validator=v["address"].lower())
            assert 2 * TST_HOME_UNITS <= room < 2.01 * TST_HOME_UNITS, (v["address"], room)
    finally:
        await client.close()
