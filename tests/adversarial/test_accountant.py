"""Finding 1 with the co-sign once-rule switched off (test-only failpoint ``cosign_once_rule=off``): the global
accountant alone keeps every Cosmos payout to one per message and within what was attested.

The attacker (its own process, public data, its own TST; a malicious relayer the validators allow-listed) bridges TST to
its own Cosmos account and asks every validator to co-sign payouts of that one message at vault sequences s, s+1, s+2
with an expired context, then broadcasts whatever got a quorum; it asks again once paid; with a second message in flight
(room the accountant has for the token) it asks for the first one twice and for the second one listed twice in one
payout. First against a validator-only daemon (no relayer races the attacker), then the daemon (role all, same store)
relays the rest. Every result is read from the chain: the attacker's balance and the escrow paid out.
"""

from __future__ import annotations

import pytest

from tests.adversarial.conftest import start_daemon
from tests.faults.conftest import metric
from tests.integration.harness import DevnetClient, wait_for_async

pytestmark = pytest.mark.integration

ONCE_RULE_OFF = {"RELAYER_FAILPOINTS": "cosign_once_rule=off"}
TOKEN = 10**18
SCALE = 10**12  # 18 decimals on l1, 6 for uxtst


async def test_with_the_once_rule_off_the_accountant_pays_each_message_once(bridge_devnet, attacker, tmp_path):
    client = DevnetClient(bridge_devnet)
    cosmos = client.adapters["cosmos"]
    mine = attacker.addresses["cosmos"]

    async def balances() -> tuple[int, int]:
        return (await cosmos.token_balance("TST", mine),  # type: ignore[attr-defined]
                await cosmos.token_supply("TST"))  # type: ignore[attr-defined]  # escrow paid out

    start_balance, start_paid = await balances()
    directory = tmp_path / "daemon"
    validator = start_daemon(bridge_devnet, directory, env=ONCE_RULE_OFF, role="validator",
                             edit=attacker.allow_as_relayer)
    try:
        # finding 1: s, s+1, s+2 for one message, expired contexts, everything broadcast
        seen = attacker.run("accountant.finding_1", amount=7 * TOKEN)
        tries = seen["tries"]
        assert [t["signed"] for t in tries] == [3, 0, 0], tries
        assert [t["result"] for t in tries] == ["landed", None, None], tries
        assert all(r == "403 accountant: payout pending" for t in tries[1:] for r in t["refusals"]), tries
        # and once paid: at the vault's next sequence, never again
        (again,) = seen["after_paid"]
        assert again["signed"] == 0 and again["refusals"] == ["403 accountant: already paid"] * 3, again
        assert seen["delivered"] == [True]
        assert await balances() == (start_balance + 7 * TOKEN // SCALE, start_paid + 7 * TOKEN // SCALE)

        # room left by another message in flight buys no second payout; a message listed twice neither
        seen = attacker.run("accountant.room_of_others", amounts=[3 * TOKEN, 4 * TOKEN])
        assert [t["signed"] for t in seen["tries"]] == [3, 0], seen
        assert [t["result"] for t in seen["tries"]] == ["landed", None], seen
        assert seen["tries"][1]["refusals"] == ["403 accountant: payout pending"] * 3, seen
        # a payout listing one message twice: refused by the co-sign service before either rule (the accountant refuses
        # it too: tests/unit/test_accountant.py)
        assert seen["duplicate"] == {"signed": 0, "refusals": ["403 duplicate message"] * 3}, seen
        assert await balances() == (start_balance + 10 * TOKEN // SCALE, start_paid + 10 * TOKEN // SCALE)

        api = validator.api_url
        assert metric(api, "validator_accountant_cosign_refused_total", chain="cosmos", reason="payout_pending") == 9
        assert metric(api, "validator_accountant_cosign_refused_total", chain="cosmos", reason="already_paid") == 3
        assert metric(api, "validator_cosign_refused_total", chain="cosmos", reason="duplicate message") == 3
        assert metric(api, "validator_cosigned_total", chain="cosmos",
                      validator=client.manifest["validators"][0]["address"]) == 2
        log = (directory / "daemon.log").read_text()
        assert '"point": "cosign_once_rule"' in log and '"accountant_cosign_refused"' in log
    finally:
        validator.stop()

    # the daemon (role all, the same store, the once-rule still off) relays: the second message once, and a
    # normal transfer to someone else arrives
    daemon = start_daemon(bridge_devnet, directory, env=ONCE_RULE_OFF, edit=attacker.allow_as_relayer)
    try:
        user = client.address("cosmos")
        user_before = await cosmos.token_balance("TST", user)  # type: ignore[attr-defined]
        await client.adapters["l1"].send_token(client.key("l1"), "TST", 2 * TOKEN, client.domain("cosmos"),  # type: ignore[attr-defined]
                                               cosmos.account_bytes32(user))  # type: ignore[attr-defined]

        async def settled() -> bool:
            return (await cosmos.token_balance("TST", user) == user_before + 2 * TOKEN // SCALE  # type: ignore[attr-defined]
                    and (await balances())[0] == start_balance + 14 * TOKEN // SCALE)

        await wait_for_async(settled, 120, "the normal transfer and the attacker's second message paid")
        assert await balances() == (start_balance + 14 * TOKEN // SCALE, start_paid + 16 * TOKEN // SCALE)
    finally:
        daemon.stop()
        await client.close()
