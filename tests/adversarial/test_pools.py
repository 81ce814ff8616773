"""The liquidity pools under attack (issue 16): the attacker (attacks/pools.py) tries to take USDC out of rollup_a's
pool or to mint it: every call it may not make reverts (NotMailbox, NotMinter, NotOwner, NoDeferred, EpochOpen,
NotPending) and its FILL message, dispatched through l1's Mailbox and delivered by the daemon like any other, is not
paid (only the enrolled remote pool may send one). Read from the chains afterwards: the pool holds what it held, the
USDC supply of every chain is unchanged, and the attacker holds no USDC; a real transfer is still paid."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.message import Domain
from tests.adversarial.conftest import start_daemon
from tests.integration.harness import DaemonProcess, DevnetClient, message_record, on_devnet, token_balance, wait_for

pytestmark = pytest.mark.integration

USDC = 10**6
EXPECTED = {
    "call handle with a FILL paying itself": "NotMailbox()",
    "mint USDC to itself": "NotMinter()",
    "make itself a minter": "NotOwner()",
    "burn the pool's USDC": "NotMinter()",
    "enrol itself as l1's pool": "NotOwner()",
    "take the pool's ownership": "NotOwner()",
    "release a payout that does not exist": "NoDeferred(1000000)",
}


@pytest.fixture(scope="module")
def daemon(bridge_devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = start_daemon(bridge_devnet, tmp_path_factory.mktemp("pools"), instance="pools-adversarial")
    yield process
    process.stop()


def _books(net: Any) -> dict[str, Any]:
    async def go(client: DevnetClient) -> dict[str, Any]:
        pools = {n: await client.adapters[n].pool_state("USDC") for n in ("l1", "rollup_a")}  # type: ignore[attr-defined]
        supply = {n: await client.adapters[n].token_supply("USDC") for n in ("l1", "rollup_a")}  # type: ignore[attr-defined]
        return {"pools": {n: (p.balance, p.owed) for n, p in pools.items()}, "supply": supply}
    return dict(on_devnet(net, go))


def test_nobody_takes_usdc_out_of_a_pool_or_mints_it(bridge_devnet, attacker, daemon) -> None:
    before = _books(bridge_devnet)
    seen = attacker.run("pools.drain_or_mint")
    reasons = {case: r["reason"] for case, r in seen["cases"].items()}
    assert all(r["status"] == 0 for r in seen["cases"].values()), seen["cases"]
    assert {k: reasons[k] for k in EXPECTED} == EXPECTED
    assert reasons["settle the epoch still open"].startswith("EpochOpen(")
    assert reasons["complete a settlement nobody sent"].startswith("NotPending(")
    mid = bytes.fromhex(seen["fill_message"][2:])
    wait_for(lambda: (message_record(daemon.api_url, mid) or {}).get("attempts", 0) >= 1, 90,
             "the daemon to try delivering the attacker's FILL message")
    assert token_balance(bridge_devnet, "rollup_a", "USDC", seen["attacker"]) == 0
    assert _books(bridge_devnet) == before  # nothing left the pools, nothing was minted or burnt

    recipient = "0x" + secrets.token_hex(20)

    async def real(client: DevnetClient) -> None:
        await client.adapters["l1"].pool_deposit(  # type: ignore[attr-defined]
            client.key("l1"), "USDC", 7 * USDC, Domain(client.domain("rollup_a")), bytes.fromhex(recipient[2:]))
    on_devnet(bridge_devnet, real)
    wait_for(lambda: token_balance(bridge_devnet, "rollup_a", "USDC", recipient) == 7 * USDC, 90,
             "a real transfer still paid out of rollup_a's pool")
