"""The Solana and Cosmos devnets' in-place snapshots (``xchain_snapshot`` / ``xchain_revert``, ``devnets.snapshots``)
on real devnet processes started with ``--allow-snapshots``, seen through unmodified clients (solana-py, cosmpy): what
happened after the snapshot is gone after the revert (transfers, a new mint, their transactions), balances,
sequences and the height or slot are back, block production goes on from there, and a new transaction works.

(Refusal without the opt-in: tests/adversarial/test_devnet_snapshots.py and tests/unit/test_devnet_snapshots.py.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cosmpy.aerial.client import LedgerClient, NetworkConfig
from cosmpy.aerial.wallet import LocalWallet
from cosmpy.crypto.address import Address
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.keypair import Keypair
from solders.signature import Signature
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import initialize_mint
from spl.token.models import InitializeMintParams

from devnets import snapshots
from devnets.cosmos import GenesisSettings, genesis_accounts, start_cosmos_devnet
from devnets.cosmos import wait_until_ready as cosmos_ready
from devnets.solana import devnet_keypair, start_solana_devnet, stop_solana_devnet
from devnets.solana import wait_until_ready as solana_ready
from tests.integration.harness import free_port_block

pytestmark = pytest.mark.integration

SLOT_MS = 100
BLOCK_MS = 200
SETTINGS = GenesisSettings()
ACCOUNTS = genesis_accounts(SETTINGS)


def _eventually(probe: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---- Solana ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def solana_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("solana-snapshots")
    port = free_port_block(1)
    process = start_solana_devnet(port, directory / "state", slot_ms=SLOT_MS, log_path=directory / "solana.log",
                                  allow_snapshots=True)
    url = f"http://127.0.0.1:{port}"
    try:
        solana_ready(url, timeout=30, process=process)
        yield url
    finally:
        stop_solana_devnet(process)


async def _confirmed(client: AsyncClient, sig: Signature) -> None:
    for _ in range(400):
        status = (await client.get_signature_statuses([sig])).value[0]
        if status is not None and status.confirmation_status is not None and str(
                status.confirmation_status).rsplit(".", 1)[-1].lower() in ("confirmed", "finalized"):
            assert status.err is None, status
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sig} not confirmed")


async def _send(client: AsyncClient, payer: Keypair, ixs: list[Any], *signers: Keypair) -> Signature:
    blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
    tx = Transaction.new_signed_with_payer(ixs, payer.pubkey(), [payer, *signers], blockhash)
    sig = (await client.send_transaction(tx)).value
    await _confirmed(client, sig)
    return sig


async def _slot_at_least(client: AsyncClient, slot: int) -> int:
    for _ in range(400):
        now = (await client.get_slot(Processed)).value
        if now >= slot:
            return int(now)
        await asyncio.sleep(0.05)
    raise AssertionError(f"slot {slot} not reached")


def test_solana_revert_through_solana_py(solana_url: str) -> None:
    async def scenario() -> None:
        payer, recipient = devnet_keypair(1), devnet_keypair(2).pubkey()
        async with AsyncClient(solana_url, commitment=Confirmed) as client:
            before = await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(),
                                                                         to_pubkey=recipient, lamports=10**9))])
            paid = (await client.get_balance(payer.pubkey(), Processed)).value
            received = (await client.get_balance(recipient, Processed)).value
            slot = (await client.get_slot(Processed)).value  # the snapshot's slot is this one or a later one
            snapshot_id = snapshots.take("solana", solana_url)

            after = await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(),
                                                                        to_pubkey=recipient, lamports=2 * 10**9))])
            mint = Keypair()
            rent = (await client.get_minimum_balance_for_rent_exemption(82)).value
            await _send(client, payer, [
                create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(),
                                                   lamports=rent, space=82, owner=TOKEN_PROGRAM_ID)),
                initialize_mint(InitializeMintParams(decimals=6, program_id=TOKEN_PROGRAM_ID, mint=mint.pubkey(),
                                                     mint_authority=payer.pubkey())),
            ], mint)
            assert (await client.get_account_info(mint.pubkey(), Processed)).value is not None
            reached = await _slot_at_least(client, slot + 20)  # far enough ahead that going back shows

            snapshots.revert("solana", solana_url, snapshot_id)
            now = (await client.get_slot(Processed)).value
            assert slot <= now < reached, (slot, now, reached)
            assert (await client.get_balance(payer.pubkey(), Processed)).value == paid
            assert (await client.get_balance(recipient, Processed)).value == received
            assert (await client.get_account_info(mint.pubkey(), Processed)).value is None
            assert (await client.get_signature_statuses([after])).value == [None]
            assert (await client.get_transaction(after, max_supported_transaction_version=0)).value is None
            assert (await client.get_signature_statuses([before])).value[0] is not None
            mints = await client.get_program_accounts(TOKEN_PROGRAM_ID, Processed)
            assert mint.pubkey() not in [a.pubkey for a in mints.value]

            # slots go on from the reverted one, and a new transfer lands and is confirmed
            await _slot_at_least(client, now + 3)
            again = await _send(client, payer, [transfer(TransferParams(from_pubkey=payer.pubkey(),
                                                                        to_pubkey=recipient, lamports=3 * 10**8))])
            assert (await client.get_balance(recipient, Confirmed)).value == received + 3 * 10**8
            found = (await client.get_transaction(again, max_supported_transaction_version=0)).value
            assert found is not None and found.slot > now

    asyncio.run(scenario())


# ---- Cosmos ----------------------------------------------------------------------------------------------------


class Cosmos:
    def __init__(self, rpc_url: str, rest_url: str) -> None:
        self.rpc_url, self.rest_url = rpc_url, rest_url
        self.client = LedgerClient(NetworkConfig(chain_id=SETTINGS.chain_id, url=f"rest+{rest_url}",
                                                 fee_minimum_gas_price=0.01, fee_denomination=SETTINGS.fee_denom,
                                                 staking_denomination=SETTINGS.fee_denom), query_interval_secs=1)

    def height(self) -> int:
        status = httpx.get(f"{self.rpc_url}/status", timeout=5).json()["result"]
        return int(status["sync_info"]["latest_block_height"])

    def balance(self, index: int) -> int:
        return int(self.client.query_bank_balance(Address(ACCOUNTS[index].address), SETTINGS.fee_denom))

    def sequence(self, index: int) -> int:
        return int(self.client.query_account(Address(ACCOUNTS[index].address)).sequence)

    def send(self, sender: int, to: int, amount: int) -> str:
        wallet = LocalWallet(ACCOUNTS[sender].private_key, prefix=SETTINGS.prefix)
        submitted = self.client.send_tokens(Address(ACCOUNTS[to].address), amount, SETTINGS.fee_denom, wallet)
        submitted.wait_to_complete(timeout=20, poll_period=0.1)
        return str(submitted.tx_hash)

    def tx_height(self, tx_hash: str) -> int | None:
        body = httpx.get(f"{self.rpc_url}/tx", params={"hash": "0x" + tx_hash}, timeout=5).json()
        return int(body["result"]["height"]) if "result" in body else None


@pytest.fixture(scope="module")
def cosmos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cosmos]:
    directory: Path = tmp_path_factory.mktemp("cosmos-snapshots")
    base = free_port_block(2)
    process = start_cosmos_devnet(rpc_port=base, rest_port=base + 1, state_dir=directory / "state",
                                  block_ms=BLOCK_MS, log_path=directory / "cosmos.log", allow_snapshots=True)
    try:
        net = Cosmos(f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}")
        cosmos_ready(net.rpc_url, net.rest_url, timeout=30, process=process)
        yield net
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cosmos_revert_through_cosmpy(cosmos: Cosmos) -> None:
    before = cosmos.send(1, 2, 1000)
    paid, received, sequence = cosmos.balance(1), cosmos.balance(2), cosmos.sequence(1)
    top = cosmos.height()  # the snapshot's height is this one or a later one
    snapshot_id = snapshots.take("cosmos", cosmos.rpc_url)

    after = cosmos.send(1, 2, 5000)
    cosmos.send(1, 3, 7000)
    assert cosmos.balance(2) == received + 5000 and cosmos.sequence(1) == sequence + 2
    reached = _eventually(lambda: (h := cosmos.height()) >= top + 10 and h, "10 blocks")  # going back shows
    after_height = cosmos.tx_height(after)
    assert after_height is not None and after_height > top

    snapshots.revert("cosmos", cosmos.rpc_url, snapshot_id)
    now = cosmos.height()
    assert top <= now < reached, (top, now, reached)
    assert cosmos.balance(1) == paid and cosmos.balance(2) == received and cosmos.sequence(1) == sequence
    assert cosmos.tx_height(after) is None and cosmos.tx_height(before) is not None
    assert httpx.get(f"{cosmos.rest_url}/cosmos/tx/v1beta1/txs/{after}", timeout=5).status_code == 404

    # blocks go on from the reverted height; cosmpy's next send takes the reverted sequence and lands
    _eventually(lambda: cosmos.height() >= now + 2, "blocks after the revert")
    again = cosmos.send(1, 2, 300)
    landed = cosmos.tx_height(again)
    assert landed is not None and landed > top
    assert cosmos.balance(2) == received + 300 and cosmos.sequence(1) == sequence + 1

    # the snapshot is reusable
    snapshots.revert("cosmos", cosmos.rpc_url, snapshot_id)
    assert cosmos.balance(2) == received and cosmos.tx_height(again) is None
