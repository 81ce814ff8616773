"""Finding 7: funds stuck after a lock, unbacked wrapped tokens. The attacker (its own 1,000 TST on the L1, no
validator key) dispatches transfers no destination could deliver, as raw transactions with a fixed gas limit so
only the chain decides: finer than Cosmos's 6 or Solana's 9 decimals, above what an SPL amount (u64) holds, a token
the destination does not know (SOLX to Cosmos), a token nobody bridges (USDC, its own ERC-20), a domain without a
bridge, a wrapped token burnt towards an impossible amount; and it tries to enrol a route of its own first. Every
one reverts in a mined transaction with the TokenBridge's custom error; the attacker's TST, the L1 bridge's
locked balance and both mailboxes are unchanged (read from the chains by the test); a representable transfer
still arrives (sent by a devnet user); ``relayer audit`` shows no shortfall."""

from __future__ import annotations

from typing import Any

import pytest

from tests.adversarial.conftest import assert_audit_backed
from tests.integration.harness import DevnetClient, wait_for_async

pytestmark = pytest.mark.integration

EXPECTED = {
    "enrol a route of its own (TST to cosmos, scale 1)": "NotOwner",
    "1.0000000001 TST to cosmos (uxtst has 6 decimals)": "AmountNotRepresentable",
    "1 wei of TST to cosmos": "AmountNotRepresentable",
    "1 TST + 1 wei to solana (9 decimals)": "AmountNotRepresentable",
    "u64 max + 1 SPL units of TST to solana": "AmountAboveRouteMax",
    "SOLX to cosmos (cosmos does not know SOLX)": "NoRoute",
    "USDC (not bridged) to rollup_a": "NoRoute",
    "its own token to rollup_a (nobody wraps it)": "NoRoute",
    "TST to a domain without a bridge": "NoRemoteBridge",
    "wrapped TST from rollup_a to solana, finer than 9 decimals": "AmountNotRepresentable",
    "1.0000000001 TST to cosmos again": "AmountNotRepresentable",
}


async def _chain_view(client: DevnetClient, attacker: Any) -> dict[str, int]:
    l1, rollup_a = client.adapters["l1"], client.adapters["rollup_a"]
    bridge = client.manifest["chains"]["l1"]["contracts"]["token_bridge"]
    return {
        "attacker_tst": await l1.token_balance("TST", attacker.addresses["l1"]),  # type: ignore[attr-defined]
        "l1_locked": await l1.token_balance("TST", bridge),  # type: ignore[attr-defined]
        "l1_dispatched": (await l1.mailbox_state(await l1.latest_height())).count,
        "rollup_a_dispatched": (await rollup_a.mailbox_state(await rollup_a.latest_height())).count,
        "rollup_a_wrapped_supply": await rollup_a.token_supply("TST"),  # type: ignore[attr-defined]
        "attacker_uxtst": await client.adapters["cosmos"].token_balance("TST", attacker.addresses["cosmos"]),  # type: ignore[attr-defined]
    }


async def test_undeliverable_transfers_revert_on_chain_and_nothing_is_locked(bridge_devnet, attacker, bridge_daemon):
    client = DevnetClient(bridge_devnet)
    try:
        before = await _chain_view(client, attacker)
        assert before["attacker_tst"] > 0
        seen = attacker.run("stuck_funds.dispatch_undeliverable")
        assert seen["approve_status"] == 1
        outcomes = {c["case"]: c for c in seen["cases"]}
        assert set(outcomes) == set(EXPECTED)
        for case, error in EXPECTED.items():
            got = outcomes[case]
            assert got["status"] == 0, f"{case}: mined without reverting ({got})"
            assert got["reason"].startswith(error + "("), f"{case}: expected {error}, got {got['reason']}"
        after = await _chain_view(client, attacker)
        assert after == before, "an undeliverable transfer moved something"

        # the daemon keeps relaying: a representable transfer (a whole number of uxtst, sent by a devnet user)
        # arrives
        amount = 2 * 10**18 + 10**12
        cosmos, user = client.adapters["cosmos"], client.address("cosmos")
        paid_before = await cosmos.token_balance("TST", user)  # type: ignore[attr-defined]
        _tx, _mid = await client.adapters["l1"].send_token(  # type: ignore[attr-defined]
            client.key("l1"), "TST", amount, client.domain("cosmos"), cosmos.account_bytes32(user))  # type: ignore[attr-defined]

        async def arrived() -> bool:
            return bool(await cosmos.token_balance("TST", user) == paid_before + amount // 10**12)  # type: ignore[attr-defined]

        await wait_for_async(arrived, 120, "a representable l1 -> cosmos transfer paid out")
        final = await _chain_view(client, attacker)
        assert final["attacker_tst"] == before["attacker_tst"], "the attacker's TST moved"
        assert final["l1_locked"] == before["l1_locked"] + amount
        assert final["l1_dispatched"] == before["l1_dispatched"] + 1
    finally:
        await client.close()
    sheet = assert_audit_backed(bridge_devnet)
    tst = next(t for t in sheet["tokens"] if t["token"] == "TST")
    assert tst["locked"] == final["l1_locked"]
