"""The bridge's accounts on the Solana devnet.

- an SPL Token native multisig of the validators (M of N; their ed25519 keys are derived from 32-byte hex
  seeds, on the devnet the validators' PUBLIC DEVNET TEST keys): the wrapped mints' authority and the vault's
  owner; its address is the chain's ``bridge`` in messages;
- ``TST``: the wrapped form of the L1's TST (9 decimals here, 18 at home), minted only by the multisig;
- ``SOLX``: a token native to Solana (9 decimals), locked in the vault (the multisig's associated token
  account) when it leaves, unlocked from it when it comes home;
- the users' and the router operators' associated token accounts, and SOLX minted to them (the operators also get
  lamports: they are not genesis accounts).

All keypairs are derived from fixed labels: PUBLIC DEVNET TEST KEYS.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import CreateAccountParams, TransferParams, create_account, transfer
from solders.transaction import Transaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    initialize_multisig,
    mint_to,
)
from spl.token.models import InitializeMintParams, InitializeMultisigParams, MintToParams

MULTISIG_SPACE, MINT_SPACE = 355, 82


def labelled_keypair(label: str) -> Keypair:
    """A deterministic keypair from a label: a PUBLIC DEVNET TEST KEY."""
    return Keypair.from_seed(hashlib.sha256(b"xchain-relayer/solana-devnet/" + label.encode()).digest())


@dataclass(frozen=True)
class SolanaBridge:
    multisig: str                 # base58; also the chain's bridge identity and the vault's owner
    threshold: int
    validators: list[str]         # base58 pubkeys of the multisig's members, in order
    tst_mint: str                 # wrapped TST
    solx_mint: str                # native SOLX
    solx_vault: str               # the multisig's SOLX token account
    decimals: int = 9


async def _send(client: AsyncClient, payer: Keypair, ixs: list[Instruction], *signers: Keypair) -> Signature:
    blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
    tx = Transaction.new_signed_with_payer(ixs, payer.pubkey(), [payer, *signers], blockhash)
    return (await client.send_transaction(tx)).value  # type: ignore[arg-type]  # legacy transactions are accepted


async def _confirmed(client: AsyncClient, sig: Signature, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = (await client.get_signature_statuses([sig])).value[0]
        if status is not None and status.err is not None:
            raise RuntimeError(f"bridge set-up transaction {sig} failed: {status.err}")
        if status is not None and status.confirmation_status is not None and \
                str(status.confirmation_status).lower().endswith(("confirmed", "finalized")):
            return
        await asyncio.sleep(0.05)  # polling the devnet's status with a deadline
    raise TimeoutError(f"bridge set-up transaction {sig} not confirmed within {timeout_s}s")


async def setup_solana_bridge(rpc_url: str, *, validator_seeds_hex: Sequence[str], threshold: int,
                              payer: Keypair, users: Sequence[Pubkey], user_solx: int = 10**6 * 10**9,
                              operators: Sequence[Pubkey] = (), operator_lamports: int = 1_000 * 10**9
                              ) -> SolanaBridge:
    """The bridge's multisig and mints, and the token accounts of ``users`` and ``operators`` (the router's operator
    accounts: ``operator_lamports`` each for fees and rent, as they are not genesis accounts), each given
    ``user_solx`` SOLX."""
    validators = [Keypair.from_seed(bytes.fromhex(s.removeprefix("0x"))) for s in validator_seeds_hex]
    multisig = labelled_keypair("bridge-multisig")
    tst, solx = labelled_keypair("mint-TST"), labelled_keypair("mint-SOLX")
    async with AsyncClient(rpc_url, commitment=Confirmed) as client:
        if (await client.get_account_info(multisig.pubkey())).value is None:
            ms_rent = (await client.get_minimum_balance_for_rent_exemption(MULTISIG_SPACE)).value
            mint_rent = (await client.get_minimum_balance_for_rent_exemption(MINT_SPACE)).value
            ixs: list[Instruction] = [
                create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=multisig.pubkey(),
                                                   lamports=ms_rent, space=MULTISIG_SPACE, owner=TOKEN_PROGRAM_ID)),
                initialize_multisig(InitializeMultisigParams(program_id=TOKEN_PROGRAM_ID, multisig=multisig.pubkey(),
                                                             m=threshold, signers=[v.pubkey() for v in validators])),
            ]
            for mint, authority in ((tst, multisig.pubkey()), (solx, payer.pubkey())):
                ixs += [
                    create_account(CreateAccountParams(from_pubkey=payer.pubkey(), to_pubkey=mint.pubkey(),
                                                       lamports=mint_rent, space=MINT_SPACE, owner=TOKEN_PROGRAM_ID)),
                    initialize_mint(InitializeMintParams(decimals=9, program_id=TOKEN_PROGRAM_ID, mint=mint.pubkey(),
                                                         mint_authority=authority)),
                ]
            await _confirmed(client, await _send(client, payer, ixs, multisig, tst, solx))
            accounts: list[Instruction] = [
                transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=o, lamports=operator_lamports))
                for o in operators]
            users = [*users, *operators]
            for owner in [multisig.pubkey(), *users]:
                for mint in (tst, solx):
                    accounts.append(create_idempotent_associated_token_account(payer.pubkey(), owner, mint.pubkey()))
            for user in users:
                accounts.append(mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=solx.pubkey(),
                                                     dest=get_associated_token_address(user, solx.pubkey()),
                                                     mint_authority=payer.pubkey(), amount=user_solx)))
            for start in range(0, len(accounts), 6):  # keep each transaction under the size limit
                await _confirmed(client, await _send(client, payer, accounts[start:start + 6]))
    return SolanaBridge(str(multisig.pubkey()), threshold, [str(v.pubkey()) for v in validators], str(tst.pubkey()),
                        str(solx.pubkey()), str(get_associated_token_address(multisig.pubkey(), solx.pubkey())))
