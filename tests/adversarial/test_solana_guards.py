"""Issue 12, finding 2: nobody can freeze a transfer to Solana by occupying its replay guards first.

The test process bridges TST from l1 to fresh Solana recipients through the module's daemon; the attacker
process (its own funded Solana account, no key of anyone else) watches l1's Dispatch events and, as soon as a
message to Solana appears, sends lamports to every validator's guard address of it, racing the relayer: the
rent-exempt minimum of an empty account (the amount that froze the old guard for good), one lamport, 1 SOL,
and the exact rent of a guard together with the old guards' (system-owned) addresses.

Read from the chains: each recipient holds exactly its amount, each id was delivered by exactly one Solana
transaction, the co-signers' guards are Memo-owned with GUARD_SPACE bytes whatever lamports were there first,
the daemon never said DELIVERED before the tokens were there, and a later normal transfer is still delivered.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.transaction import VersionedTransaction

from adapters.base import Height
from adapters.message import MessageId
from adapters.solana import GUARD_OWNER, GUARD_SPACE, guard_address
from tests.integration.harness import DevnetClient, wait_for_async

pytestmark = pytest.mark.integration

SCALE = 10**9  # TST: 18 decimals on l1, 9 on Solana
VARIATIONS = ("rent_minimum", "one_lamport", "large", "guard_rent_and_old_addresses")
DELIVERY_TIMEOUT_S = 240


async def _state(http: httpx.AsyncClient, api_url: str, message_id: bytes) -> tuple[str | None, str | None]:
    """(state, delivery tx) the daemon's public API shows for a message (None before it is indexed)."""
    resp = await http.get(f"{api_url}/v1/messages/0x{bytes(message_id).hex()}")
    if resp.status_code == 404:
        return None, None
    resp.raise_for_status()
    (record,) = resp.json()["messages"]
    return record["state"], record["delivery_tx"]


async def _cosigners(rpc_url: str, delivery_tx: str) -> list[Pubkey]:
    """The co-signers of a Solana delivery: its required signers but the fee payer (the relayer)."""
    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        answer = (await client.get_transaction(Signature.from_string(delivery_tx), encoding="base64",
                                               commitment=Confirmed, max_supported_transaction_version=0)).value
    assert answer is not None and answer.transaction.meta is not None and answer.transaction.meta.err is None
    tx = answer.transaction.transaction
    assert isinstance(tx, VersionedTransaction)
    return list(tx.message.account_keys[1:tx.message.header.num_required_signatures])


async def _deliver_watching(client: DevnetClient, api_url: str, sends: dict[str, tuple[str, int]],
                            ids: dict[str, MessageId], premature: list[str]) -> None:
    """Wait until every message is DELIVERED with its tokens there; record any DELIVERED seen before them."""
    sol = client.adapters["solana"]
    async with httpx.AsyncClient(timeout=10) as http:
        async def arrived() -> bool:
            done = True
            for name, (recipient, amount) in sends.items():
                state, _ = await _state(http, api_url, ids[name])
                balance = await sol.token_balance("TST", recipient)  # type: ignore[attr-defined]
                if state == "DELIVERED" and balance != amount // SCALE:  # read after the state: it only grows
                    premature.append(f"{name}: DELIVERED with {balance} of {amount // SCALE}")
                    raise AssertionError(f"the daemon says DELIVERED before the tokens arrived: {premature}")
                done = done and state == "DELIVERED" and balance == amount // SCALE
            return done

        await wait_for_async(arrived, DELIVERY_TIMEOUT_S, "every transfer DELIVERED with its tokens on Solana")


async def _wait_ready(path: Path, race: asyncio.Task[Any]) -> None:
    async def ready() -> bool:
        if race.done():
            race.result()  # the attacker exited early: raise its error
        return path.exists()

    await wait_for_async(ready, 120, "the attacker watching l1")


async def test_prefunded_guards_do_not_freeze_transfers_to_solana(bridge_devnet: Any, attacker: Any,
                                                                  bridge_daemon: Any, tmp_path: Path) -> None:
    client = DevnetClient(bridge_devnet)
    try:
        l1, sol = client.adapters["l1"], client.adapters["solana"]
        threshold = client.settings.chains["solana"].multisig_threshold  # type: ignore[union-attr]
        members = await sol.multisig_members()  # type: ignore[attr-defined]
        recipients = {v: str(Keypair().pubkey()) for v in VARIATIONS}  # fresh: only these messages pay them
        amounts = {v: (i + 1) * 10**18 for i, v in enumerate(VARIATIONS)}
        ready = tmp_path / "attacker-ready"
        race = asyncio.create_task(asyncio.to_thread(
            attacker.run, "solana_guards.race_guard_prefunding", plan={recipients[v]: v for v in VARIATIONS},
            from_block=int(await l1.latest_height()), ready_file=str(ready), timeout_s=DELIVERY_TIMEOUT_S))
        await _wait_ready(ready, race)
        sol_start = int(await sol.latest_height())

        ids: dict[str, MessageId] = {}
        for v in VARIATIONS:
            _tx, ids[v] = await l1.send_token(client.key("l1"), "TST", amounts[v], client.domain("solana"),  # type: ignore[attr-defined]
                                              sol.account_bytes32(recipients[v]))  # type: ignore[attr-defined]
        seen = await race
        premature: list[str] = []
        await _deliver_watching(client, bridge_daemon.api_url, {v: (recipients[v], amounts[v]) for v in VARIATIONS},
                                ids, premature)

        # the attacker got there first, every time, with what each variation says
        assert seen["complete"], seen
        for v in VARIATIONS:
            mine = seen["messages"][recipients[v]]
            assert mine["id"] == "0x" + bytes(ids[v]).hex()
            assert mine["recipient_balance_after_prefund"] == 0, f"{v}: the attacker was late"
            if v == "one_lamport":  # the chain itself refuses an account below rent
                assert all(not s["landed"] and "insufficient funds for rent" in s["error"] for s in mine["sent"]), mine
            else:
                assert all(s["landed"] for s in mine["sent"]), mine
                for address, owner in mine["owners_after_prefund"].items():  # nothing there was a guard yet
                    assert owner == [str(SYSTEM_PROGRAM_ID), 0], (v, address, owner)

        # read from the chains: delivered exactly once, the co-signers' guards made, DELIVERED never early
        assert premature == []
        async with httpx.AsyncClient(timeout=10) as http:
            for v in VARIATIONS:
                assert await sol.token_balance("TST", recipients[v]) == amounts[v] // SCALE  # type: ignore[attr-defined]
                state, delivery_tx = await _state(http, bridge_daemon.api_url, ids[v])
                assert state == "DELIVERED" and delivery_tx
                cosigners = await _cosigners(client.settings.chains["solana"].rpc_url, delivery_tx)
                assert len(cosigners) == threshold and set(cosigners) <= set(members)
                async with AsyncClient(client.settings.chains["solana"].rpc_url, commitment=Confirmed) as rpc:
                    accounts = (await rpc.get_multiple_accounts([guard_address(m, ids[v]) for m in members])).value
                for member, account in zip(members, accounts, strict=True):
                    if member in cosigners:
                        assert account is not None and (account.owner, len(account.data)) == (GUARD_OWNER, GUARD_SPACE)
                    else:  # at most the attacker's lamports: no guard
                        assert account is None or (account.owner, len(account.data)) == (SYSTEM_PROGRAM_ID, 0)
        assert await sol.delivered([ids[v] for v in VARIATIONS]) == [True] * len(VARIATIONS)  # type: ignore[attr-defined]
        processed = await sol.processed_messages(Height(sol_start), await sol.latest_height())  # type: ignore[attr-defined]
        for v in VARIATIONS:
            assert [mid for mid, _height in processed].count(ids[v]) == 1, v

        # the daemon keeps relaying: a later transfer nobody races is delivered too
        plain = str(Keypair().pubkey())
        _tx, plain_id = await l1.send_token(client.key("l1"), "TST", 7 * 10**18, client.domain("solana"),  # type: ignore[attr-defined]
                                            sol.account_bytes32(plain))  # type: ignore[attr-defined]
        await _deliver_watching(client, bridge_daemon.api_url, {"plain": (plain, 7 * 10**18)}, {"plain": plain_id},
                                premature)
        assert premature == []
        for v in VARIATIONS:  # still exactly once
            assert await sol.token_balance("TST", recipients[v]) == amounts[v] // SCALE  # type: ignore[attr-defined]
    finally:
        await client.close()
