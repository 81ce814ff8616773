"""The attacker process runs with public data and its own funded accounts only: no key of a validator, the
relayer or the router's operators reaches it (checked when its world is written), yet it reaches every chain
and the daemon's API."""

from __future__ import annotations

import pytest

from tests.integration.harness import DevnetClient

pytestmark = pytest.mark.integration


async def test_the_attacker_sees_every_chain_and_holds_no_validator_key(attacker, bridge_devnet, bridge_daemon) -> None:
    seen = attacker.run("probe.world")
    client = DevnetClient(bridge_devnet)
    try:
        tst = await client.adapters["l1"].token_balance("TST", attacker.addresses["l1"])  # type: ignore[attr-defined]
    finally:
        await client.close()
    assert set(seen["heights"]) == {"l1", "rollup_a", "rollup_b", "cosmos", "solana"}
    assert all(h > 0 for h in seen["heights"].values())
    assert seen["healthz"] == 200
    assert seen["l1_tst"] == tst > 0  # its own funded account (other modules may have spent some of it)
    assert "keys" not in seen["validator_keys"] and "cosign_keys" not in seen["validator_keys"]
