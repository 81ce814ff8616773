"""Rewinding the Solana and Cosmos devnets under everyone else: ``xchain_snapshot`` / ``xchain_revert`` (the devnets'
in-place snapshots, ``devnets.snapshots``) called by whoever reaches their RPC ports, on a devnet started without
``--allow-snapshots`` (as ``relayer devnet up`` starts it).

The attacker spends from its own accounts once before the snapshot and once between the snapshot and the revert (a
rewind would undo the second spend: a double spend), and tries the methods in every form it can: JSON-RPC ``POST /``
and, on the CometBFT RPC, ``GET /xchain_...``; reverts to the ids a devnet would hand out first (``0x1``, ``0x0``,
``0x2``, ``1``). It reports every answer and what it sent; the test reads the chains itself afterwards.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from cosmpy.aerial.client import LedgerClient, NetworkConfig
from cosmpy.aerial.wallet import LocalWallet
from cosmpy.crypto.address import Address
from cosmpy.crypto.keypairs import PrivateKey
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from tests.adversarial.attacker import AttackerContext

GUESSED_IDS: tuple[Any, ...] = ("0x1", "0x0", "0x2", 1)
SOLANA_SPEND = 10**7  # lamports, each spend
COSMOS_SPEND = 1000  # fee denom units, each spend


async def rewind(ctx: AttackerContext) -> dict[str, Any]:
    """For the Solana and the Cosmos chain: height, a spend, a snapshot, a spend, reverts, height."""
    seen: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=15.0) as http:
        for name, chain in ctx.chains.items():
            if chain["family"] == "solana":
                seen[name] = await _solana(ctx, http, chain)
            elif chain["family"] == "cosmos":
                seen[name] = await asyncio.to_thread(_cosmos, ctx, chain)
    return seen


async def _call(http: httpx.AsyncClient, url: str, method: str, params: Any) -> dict[str, Any]:
    answer = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return {"method": method, "params": params, "status": answer.status_code, "body": answer.json()}


async def _solana(ctx: AttackerContext, http: httpx.AsyncClient, chain: dict[str, Any]) -> dict[str, Any]:
    url = chain["rpc_url"]
    attacker = Keypair.from_seed(bytes.fromhex(ctx.keys["solana"].removeprefix("0x")))
    recipient = Keypair().pubkey()
    async with AsyncClient(url, commitment=Confirmed) as client:
        slot_before = (await client.get_slot(Processed)).value
        first = await _send_lamports(client, attacker, recipient)
        answers = [await _call(http, url, "xchain_snapshot", [])]
        second = await _send_lamports(client, attacker, recipient)
        answers += [await _call(http, url, "xchain_revert", [guess]) for guess in GUESSED_IDS]
        slot_after = (await client.get_slot(Processed)).value
    return {"rpc_url": url, "recipient": str(recipient), "spent": [first, second], "spend": SOLANA_SPEND,
            "height_before": slot_before, "height_after": slot_after, "answers": answers}


async def _send_lamports(client: AsyncClient, attacker: Keypair, to: Pubkey) -> str:
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = Transaction.new_signed_with_payer(
        [transfer(TransferParams(from_pubkey=attacker.pubkey(), to_pubkey=to, lamports=SOLANA_SPEND))],
        attacker.pubkey(), [attacker], blockhash)
    signature: Signature = (await client.send_raw_transaction(bytes(tx))).value
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        status = (await client.get_signature_statuses([signature])).value[0]
        if status is not None and str(status.confirmation_status).lower().endswith(("confirmed", "finalized")):
            break
        await asyncio.sleep(0.05)
    return str(signature)


def _cosmos(ctx: AttackerContext, chain: dict[str, Any]) -> dict[str, Any]:
    url, fee_denom = chain["rpc_url"], chain["fee_denom"]
    client = LedgerClient(NetworkConfig(chain_id=chain["chain_id"], url=f"rest+{chain['rest_url']}",
                                        fee_minimum_gas_price=chain["gas_price"], fee_denomination=fee_denom,
                                        staking_denomination=fee_denom), query_interval_secs=1)
    wallet = LocalWallet(PrivateKey(bytes.fromhex(ctx.keys["cosmos"].removeprefix("0x"))),
                         prefix=chain["bech32_prefix"])
    recipient = str(LocalWallet.generate(prefix=chain["bech32_prefix"]).address())

    def height() -> int:
        status = httpx.get(f"{url}/status", timeout=15.0).json()["result"]
        return int(status["sync_info"]["latest_block_height"])

    def spend() -> str:
        submitted = client.send_tokens(Address(recipient), COSMOS_SPEND, fee_denom, wallet)
        submitted.wait_to_complete(timeout=60, poll_period=0.2)
        return str(submitted.tx_hash)

    def call(method: str, params: Any) -> dict[str, Any]:
        answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=15.0)
        return {"method": method, "params": params, "status": answer.status_code, "body": answer.json()}

    def get(method: str, query: dict[str, str]) -> dict[str, Any]:
        answer = httpx.get(f"{url}/{method}", params=query, timeout=15.0)
        return {"method": f"GET /{method}", "params": query, "status": answer.status_code, "body": answer.json()}

    height_before = height()
    first = spend()
    answers = [call("xchain_snapshot", {}), get("xchain_snapshot", {})]
    second = spend()
    answers += [call("xchain_revert", {"id": guess}) for guess in GUESSED_IDS]
    answers += [get("xchain_revert", {"id": "0x1"}), call("xchain_revert", ["0x1"])]
    return {"rpc_url": url, "rest_url": chain["rest_url"], "recipient": recipient, "spent": [first, second],
            "spend": COSMOS_SPEND, "fee_denom": fee_denom, "height_before": height_before,
            "height_after": height(), "answers": answers}
