"""The Solana devnet (LiteSVM behind JSON-RPC) driven by solana-py's AsyncClient, unmodified, over HTTP.

One server process per module on a free loopback port (short slots so finality comes quickly); the
restart test kills its own server with SIGKILL and starts another on the same state directory.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.models import MemcmpOpts, TokenAccountOpts, TxOpts
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import (
    AdvanceNonceAccountParams,
    CreateAccountParams,
    CreateAccountWithSeedParams,
    TransferParams,
    advance_nonce_account,
    create_account,
    create_account_with_seed,
    create_nonce_account,
    transfer,
)
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    initialize_multisig,
    mint_to,
    transfer_checked,
)
from spl.token.models import (
    InitializeMintParams,
    InitializeMultisigParams,
    MintToParams,
    TransferCheckedParams,
)

from devnets.solana import devnet_keypair, start_solana_devnet, stop_solana_devnet, wait_until_ready
from devnets.solana.base58 import b58encode

pytestmark = pytest.mark.integration

SLOT_MS = 50
B64 = {"encoding": "base64"}
BLOCKHASH_VALID_SLOTS = 60
LAMPORTS_PER_SOL = 10**9
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningDevnet:
    url: str
    port: int
    state_dir: Path
    process: Any


def _start(state_dir: Path, port: int | None = None) -> RunningDevnet:
    port = port or _free_port()
    process = start_solana_devnet(
        port,
        state_dir,
        slot_ms=SLOT_MS,
        extra_args=["--blockhash-valid-slots", str(BLOCKHASH_VALID_SLOTS)],
        log_path=state_dir.parent / f"{state_dir.name}.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(url, timeout=30, process=process)
    return RunningDevnet(url, port, state_dir, process)


@pytest.fixture(scope="module")
def solana_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    net = _start(tmp_path_factory.mktemp("solana") / "state")
    yield net
    stop_solana_devnet(net.process)


async def _eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await probe()
        if value is not None and value is not False:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def _send(client: AsyncClient, payer: Keypair, ixs: list[Instruction], *signers: Keypair) -> Signature:
    blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
    tx = Transaction.new_signed_with_payer(ixs, payer.pubkey(), [payer, *signers], blockhash)
    return (await client.send_transaction(tx)).value


_LEVELS = ("processed", "confirmed", "finalized")


async def _wait_status(client: AsyncClient, sig: Signature, level: str) -> Any:
    """The status once ``sig`` reached ``level`` or a later one: with 50 ms slots "confirmed" lasts ~1.5 s before
    it turns "finalized", and a poll that comes later (a loaded machine) must not wait for a level already past."""
    wanted = _LEVELS[_LEVELS.index(level):]

    async def probe() -> Any:
        status = (await client.get_signature_statuses([sig])).value[0]
        if status is not None and str(status.confirmation_status).lower().rsplit(".", 1)[-1] in wanted:
            return status
        return None

    return await _eventually(probe, f"{sig} {level}")


@dataclass
class MultisigMint:
    mint: Keypair
    multisig: Keypair
    signers: list[Keypair]
    decimals: int = 6


async def _create_multisig_mint(client: AsyncClient, payer: Keypair) -> MultisigMint:
    """A mint whose mint authority is a native SPL Token 2-of-3 multisig."""
    made = MultisigMint(Keypair(), Keypair(), [Keypair() for _ in range(3)])
    multisig_rent = (await client.get_minimum_balance_for_rent_exemption(355)).value
    mint_rent = (await client.get_minimum_balance_for_rent_exemption(82)).value
    ixs = [
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=made.multisig.pubkey(),
                lamports=multisig_rent,
                space=355,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_multisig(
            InitializeMultisigParams(
                program_id=TOKEN_PROGRAM_ID,
                multisig=made.multisig.pubkey(),
                m=2,
                signers=[s.pubkey() for s in made.signers],
            )
        ),
        create_account(
            CreateAccountParams(
                from_pubkey=payer.pubkey(),
                to_pubkey=made.mint.pubkey(),
                lamports=mint_rent,
                space=82,
                owner=TOKEN_PROGRAM_ID,
            )
        ),
        initialize_mint(
            InitializeMintParams(
                decimals=made.decimals,
                program_id=TOKEN_PROGRAM_ID,
                mint=made.mint.pubkey(),
                mint_authority=made.multisig.pubkey(),
            )
        ),
    ]
    sig = await _send(client, payer, ixs, made.multisig, made.mint)
    await _wait_status(client, sig, "confirmed")
    return made


def _mint_to(made: MultisigMint, dest: Pubkey, amount: int, signers: list[Keypair]) -> Instruction:
    return mint_to(
        MintToParams(
            program_id=TOKEN_PROGRAM_ID,
            mint=made.mint.pubkey(),
            dest=dest,
            mint_authority=made.multisig.pubkey(),
            amount=amount,
            signers=[s.pubkey() for s in signers],
        )
    )


async def _blockhash(client: AsyncClient) -> Hash:
    return (await client.get_latest_blockhash(Processed)).value.blockhash


def _transfer_message(payer: Keypair, to: Keypair, blockhash: Hash) -> Message:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to.pubkey(), lamports=1))
    return Message.new_with_blockhash([ix], payer.pubkey(), blockhash)


def _signed_transfer(payer: Keypair, to: Keypair, blockhash: Hash) -> Transaction:
    return Transaction([payer], _transfer_message(payer, to, blockhash), blockhash)


def _rpc(url: str, method: str, params: list[Any]) -> dict[str, Any]:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, timeout=10)
    body: dict[str, Any] = answer.json()
    return body


async def test_airdrop_and_sol_transfer_reach_finalized(solana_devnet: RunningDevnet) -> None:
    async with AsyncClient(solana_devnet.url, commitment=Confirmed) as client:
        assert await client.is_connected()
        alice, bob = Keypair(), Keypair()
        airdrop = (await client.request_airdrop(alice.pubkey(), 2 * LAMPORTS_PER_SOL)).value
        await _wait_status(client, airdrop, "confirmed")
        assert (await client.get_balance(alice.pubkey())).value == 2 * LAMPORTS_PER_SOL

        ix = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(), lamports=1_000_000))
        sig = await _send(client, alice, [ix])
        processed = (await client.get_signature_statuses([sig])).value[0]
        assert processed is not None and processed.err is None
        early = (await client.get_transaction(sig, commitment=Finalized)).value
        if early is not None:  # the slot ticker may finalize it before this read on a loaded machine
            assert (await client.get_slot(Finalized)).value >= processed.slot

        seen: list[str] = []

        async def finalized_status() -> Any:
            status = (await client.get_signature_statuses([sig])).value[0]
            assert status is not None
            level = str(status.confirmation_status).rsplit(".", 1)[-1].lower()
            if not seen or seen[-1] != level:
                seen.append(level)
            if level == "confirmed":
                assert status.confirmations is not None and status.confirmations >= 1
                assert (await client.get_balance(bob.pubkey(), Confirmed)).value == 1_000_000
            return status if level == "finalized" else None

        finalized = await _eventually(finalized_status, "finalization")
        if early is None:
            assert seen[-2:] == ["confirmed", "finalized"] and seen[0] in ("processed", "confirmed")
        else:
            assert seen[-1] == "finalized"
        assert finalized.confirmations is None and finalized.slot == processed.slot
        assert (await client.get_balance(bob.pubkey(), Finalized)).value == 1_000_000
        got = (await client.get_transaction(sig, commitment=Finalized)).value
        assert got is not None and got.slot == processed.slot and got.transaction.meta is not None
        assert got.transaction.meta.fee == 5000
        assert got.transaction.meta.post_balances[1] == 1_000_000

        block = (await client.get_block(processed.slot)).value
        assert sig in [t.transaction.signatures[0] for t in block.transactions or []]  # type: ignore[union-attr]
        assert block.parent_slot == processed.slot - 1 and block.block_time is not None
        assert (await client.get_block(1)).value.parent_slot == 0  # the first block's parent is genesis (CI once
        # saw the transfer land in slot 1, whose parent the devnet gave as slot 1)
        assert processed.slot in (await client.get_blocks(processed.slot - 1)).value
        assert (await client.get_block_time(processed.slot)).value == block.block_time

        multiple = (await client.get_multiple_accounts([alice.pubkey(), Keypair().pubkey()])).value
        assert multiple[0] is not None and multiple[0].lamports > 0 and multiple[1] is None
        assert (
            await client.get_fee_for_message(_transfer_message(alice, bob, await _blockhash(client)))
        ).value == 5000
        assert (
            await client.get_fee_for_message(_transfer_message(alice, bob, Hash.new_unique()))
        ).value is None
        simulated = (
            await client.simulate_transaction(
                VersionedTransaction(_transfer_message(alice, bob, await _blockhash(client)), [alice])
            )
        ).value
        assert simulated.err is None and simulated.logs
        assert (await client.get_version()).value.solana_core
        assert (await client.get_epoch_info()).value.absolute_slot >= 1
        assert str((await client.get_genesis_hash()).value)

        for level in ("processed", "confirmed", "finalized"):
            assert (await client.get_slot(level)).value >= 1  # type: ignore[arg-type]

        async def past_the_lag() -> bool:  # finalized trails processed by 32 slots once there are that many
            return (await client.get_slot(Processed)).value >= 34

        await _eventually(past_the_lag, "slot 34")  # (CI once ran the whole test within slots 1-2)
        assert (await client.get_slot(Processed)).value - (await client.get_slot(Finalized)).value >= 30


async def test_multisig_mint_memo_transfer_and_history(solana_devnet: RunningDevnet) -> None:
    async with AsyncClient(solana_devnet.url, commitment=Confirmed) as client:
        payer, holder = devnet_keypair(0), devnet_keypair(1)
        made = await _create_multisig_mint(client, payer)
        mint = made.mint.pubkey()

        multisig = (await client.get_account_info_json_parsed(made.multisig.pubkey())).value
        assert multisig is not None
        parsed_multisig = multisig.data.parsed  # type: ignore[union-attr]
        assert parsed_multisig["type"] == "multisig"
        assert parsed_multisig["info"]["numRequiredSigners"] == 2
        assert parsed_multisig["info"]["numValidSigners"] == 3

        payer_ata = get_associated_token_address(payer.pubkey(), mint)
        holder_ata = get_associated_token_address(holder.pubkey(), mint)
        create_atas = [
            create_associated_token_account(payer.pubkey(), payer.pubkey(), mint),
            create_associated_token_account(payer.pubkey(), holder.pubkey(), mint),
        ]
        await _wait_status(client, await _send(client, payer, create_atas), "confirmed")

        one_signer = [made.signers[0]]
        with pytest.raises(RPCException) as refused:
            await _send(client, payer, [_mint_to(made, payer_ata, 1_000, one_signer)], *one_signer)
        assert "MissingRequiredSignature" in repr(refused.value.args[0].data.err)
        raw_tx = Transaction.new_signed_with_payer(
            [_mint_to(made, payer_ata, 1_000, one_signer)],
            payer.pubkey(),
            [payer, *one_signer],
            (await client.get_latest_blockhash(Processed)).value.blockhash,
        )
        raw = _rpc(solana_devnet.url, "sendTransaction", [bytes(raw_tx).hex(), {"encoding": "base64"}])
        assert raw["error"]["code"] == -32602
        raw = _rpc(
            solana_devnet.url,
            "sendTransaction",
            [base64.b64encode(bytes(raw_tx)).decode(), {"encoding": "base64"}],
        )
        assert raw["error"]["code"] == -32002
        assert raw["error"]["message"].startswith(
            "Transaction simulation failed: Error processing Instruction 0"
        )
        assert raw["error"]["data"]["err"] == {"InstructionError": [0, "MissingRequiredSignature"]}
        assert raw["error"]["data"]["logs"]

        two_signers = made.signers[:2]
        minted = await _send(client, payer, [_mint_to(made, payer_ata, 5_000_000, two_signers)], *two_signers)
        await _wait_status(client, minted, "confirmed")
        assert (await client.get_token_account_balance(payer_ata)).value.amount == "5000000"

        memo_text = "bridge:deposit:42"
        ixs = [
            transfer_checked(
                TransferCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    source=payer_ata,
                    mint=mint,
                    dest=holder_ata,
                    owner=payer.pubkey(),
                    amount=1_250_000,
                    decimals=made.decimals,
                )
            ),
            create_memo(
                MemoParams(program_id=MEMO_PROGRAM_ID, signer=payer.pubkey(), message=memo_text.encode())
            ),
        ]
        sig = await _send(client, payer, ixs)
        await _wait_status(client, sig, "confirmed")

        history = (await client.get_signatures_for_address(holder_ata, limit=10)).value
        assert history[0].signature == sig
        assert history[0].memo == f"[{len(memo_text)}] {memo_text}" and history[0].err is None
        older = (await client.get_signatures_for_address(holder_ata, before=sig, limit=10)).value
        assert sig not in [h.signature for h in older] and len(older) == len(history) - 1

        got = (await client.get_transaction(sig, encoding="jsonParsed", commitment=Confirmed)).value
        assert got is not None and got.transaction.meta is not None
        meta = got.transaction.meta
        assert meta.err is None and meta.log_messages
        instructions = got.transaction.transaction.message.instructions  # type: ignore[union-attr]
        memo_ix = instructions[1]
        assert memo_ix.program == "spl-memo" and memo_ix.parsed == memo_text  # type: ignore[union-attr]
        post = {str(b.owner): b.ui_token_amount.amount for b in meta.post_token_balances or []}
        assert post == {str(payer.pubkey()): "3750000", str(holder.pubkey()): "1250000"}
        pre = {str(b.owner): b.ui_token_amount.amount for b in meta.pre_token_balances or []}
        assert pre[str(holder.pubkey())] == "0"

        plain = (await client.get_transaction(sig, commitment=Confirmed)).value
        assert plain is not None
        keys = [str(k) for k in plain.transaction.transaction.message.account_keys]  # type: ignore[union-attr]
        assert str(MEMO_PROGRAM_ID) in keys

        owned = await client.get_token_accounts_by_owner_json_parsed(
            holder.pubkey(), TokenAccountOpts(mint=mint)
        )
        assert [str(a.pubkey) for a in owned.value] == [str(holder_ata)]
        info = owned.value[0].account.data.parsed["info"]
        assert info["tokenAmount"]["amount"] == "1250000" and info["mint"] == str(mint)
        by_program = await client.get_token_accounts_by_owner_json_parsed(
            holder.pubkey(), TokenAccountOpts(program_id=TOKEN_PROGRAM_ID)
        )
        assert str(holder_ata) in [str(a.pubkey) for a in by_program.value]
        holders_of_mint = await client.get_program_accounts(
            TOKEN_PROGRAM_ID, encoding="base64", filters=[165, MemcmpOpts(offset=0, bytes=str(mint))]
        )
        assert sorted(str(a.pubkey) for a in holders_of_mint.value) == sorted(
            [str(payer_ata), str(holder_ata)]
        )

        await _wait_status(client, sig, "finalized")
        finalized_history = (await client.get_signatures_for_address(holder_ata, commitment=Finalized)).value
        assert finalized_history[0].signature == sig


async def test_blockhash_expiry_and_error_shapes(solana_devnet: RunningDevnet) -> None:
    async with AsyncClient(solana_devnet.url, commitment=Confirmed) as client:
        payer = devnet_keypair(2)
        ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=Keypair().pubkey(), lamports=1))

        unknown = Transaction.new_signed_with_payer([ix], payer.pubkey(), [payer], Hash.new_unique())
        with pytest.raises(RPCException) as refused:
            await client.send_transaction(unknown)
        assert refused.value.args[0].message == "Transaction simulation failed: Blockhash not found"

        nonce = Keypair()
        nonce_rent = (await client.get_minimum_balance_for_rent_exemption(80)).value
        create_nonce = create_nonce_account(payer.pubkey(), nonce.pubkey(), payer.pubkey(), nonce_rent)
        await _wait_status(client, await _send(client, payer, list(create_nonce), nonce), "confirmed")
        nonce_data = (await client.get_account_info(nonce.pubkey())).value
        assert nonce_data is not None
        durable = Transaction.new_signed_with_payer(
            [
                advance_nonce_account(
                    AdvanceNonceAccountParams(nonce_pubkey=nonce.pubkey(), authorized_pubkey=payer.pubkey())
                ),
                create_memo(
                    MemoParams(program_id=MEMO_PROGRAM_ID, signer=payer.pubkey(), message=b"durable")
                ),
            ],
            payer.pubkey(),
            [payer],
            Hash(bytes(nonce_data.data)[40:72]),
        )

        latest = (await client.get_latest_blockhash(Processed)).value
        stale = Transaction.new_signed_with_payer([ix], payer.pubkey(), [payer], latest.blockhash)

        async def expired() -> bool:
            return (await client.get_block_height(Processed)).value > latest.last_valid_block_height

        await _eventually(expired, "the blockhash to expire")
        assert (
            _rpc(solana_devnet.url, "isBlockhashValid", [str(latest.blockhash)])["result"]["value"] is False
        )

        durable_sig = (await client.send_transaction(durable)).value
        assert (await _wait_status(client, durable_sig, "confirmed")).err is None

        raw = _rpc(
            solana_devnet.url,
            "sendTransaction",
            [base64.b64encode(bytes(stale)).decode(), {"encoding": "base64"}],
        )
        assert raw["error"]["code"] == -32002
        assert raw["error"]["message"] == "Transaction simulation failed: Blockhash not found"
        assert raw["error"]["data"]["err"] == "BlockhashNotFound"

        poor = Keypair()
        await _wait_status(
            client, (await client.request_airdrop(poor.pubkey(), 10_000_000)).value, "confirmed"
        )
        too_much = transfer(
            TransferParams(from_pubkey=poor.pubkey(), to_pubkey=payer.pubkey(), lamports=10**12)
        )
        with pytest.raises(RPCException) as broke:
            await _send(client, poor, [too_much])
        assert broke.value.args[0].data.logs
        tx = Transaction.new_signed_with_payer(
            [too_much], poor.pubkey(), [poor], (await client.get_latest_blockhash(Processed)).value.blockhash
        )
        raw = _rpc(
            solana_devnet.url,
            "sendTransaction",
            [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}],
        )
        assert raw["error"]["data"]["err"] == {"InstructionError": [0, {"Custom": 1}]}
        assert raw["error"]["message"].endswith("custom program error: 0x1")

        landed = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
        failed = await _wait_status(client, landed, "confirmed")
        assert failed.err is not None
        history = (await client.get_signatures_for_address(poor.pubkey(), limit=1)).value
        assert history[0].signature == landed and history[0].err is not None

        forged = Transaction.new_signed_with_payer([ix], payer.pubkey(), [payer], latest.blockhash)
        forged_bytes = bytearray(bytes(forged))
        forged_bytes[5] ^= 0xFF
        raw = _rpc(
            solana_devnet.url,
            "sendTransaction",
            [base64.b64encode(bytes(forged_bytes)).decode(), {"encoding": "base64"}],
        )
        assert raw["error"]["code"] == -32003

        good = _signed_transfer(payer, devnet_keypair(3), await _blockhash(client))
        sent = _rpc(solana_devnet.url, "sendTransaction", [b58encode(bytes(good))])
        assert sent["result"] == str(good.signatures[0])

        assert _rpc(solana_devnet.url, "noSuchMethod", [])["error"]["code"] == -32601
        assert _rpc(solana_devnet.url, "getBalance", ["not-a-key"])["error"]["code"] == -32602
        batch = httpx.post(
            solana_devnet.url,
            json=[{"jsonrpc": "2.0", "id": i, "method": m} for i, m in enumerate(["getSlot", "getHealth"])],
            timeout=10,
        ).json()
        assert [b["id"] for b in batch] == [0, 1] and batch[1]["result"] == "ok"


async def test_create_with_seed_twice_second_fails_already_in_use(solana_devnet: RunningDevnet) -> None:
    async with AsyncClient(solana_devnet.url, commitment=Confirmed) as client:
        base = devnet_keypair(3)
        seed = f"msg-{time.time_ns()}"
        owner = Pubkey.from_string("11111111111111111111111111111111")
        derived = Pubkey.create_with_seed(base.pubkey(), seed, owner)
        ix = create_account_with_seed(
            CreateAccountWithSeedParams(
                from_pubkey=base.pubkey(),
                to_pubkey=derived,
                base=base.pubkey(),
                seed=seed,
                lamports=(await client.get_minimum_balance_for_rent_exemption(0)).value,
                space=0,
                owner=owner,
            )
        )
        first = await _send(client, base, [ix])
        await _wait_status(client, first, "confirmed")
        assert (await client.get_account_info(derived)).value is not None

        again = [
            ix,
            create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=base.pubkey(), message=b"retry")),
        ]
        with pytest.raises(RPCException) as refused:
            await _send(client, base, again)
        failure = refused.value.args[0]
        assert any("already in use" in line for line in failure.data.logs)
        again_tx = Transaction.new_signed_with_payer(again, base.pubkey(), [base], await _blockhash(client))
        raw = _rpc(solana_devnet.url, "sendTransaction", [base64.b64encode(bytes(again_tx)).decode(), B64])
        assert raw["error"]["code"] == -32002
        assert raw["error"]["data"]["err"] == {"InstructionError": [0, {"Custom": 0}]}
        assert [h.signature for h in (await client.get_signatures_for_address(derived)).value] in (
            [],
            [first],
        )

        duplicate = Transaction.new_signed_with_payer([ix], base.pubkey(), [base], await _blockhash(client))
        await client.send_transaction(duplicate, opts=TxOpts(skip_preflight=True))
        raw = _rpc(solana_devnet.url, "sendTransaction", [base64.b64encode(bytes(duplicate)).decode(), B64])
        assert (
            raw["error"]["message"]
            == "Transaction simulation failed: This transaction has already been processed"
        )
        assert raw["error"]["data"]["err"] == "AlreadyProcessed"


async def test_state_survives_kill_9_and_restart(tmp_path: Path) -> None:
    net = _start(tmp_path / "state")
    try:
        async with AsyncClient(net.url, commitment=Confirmed) as client:
            payer, receiver = devnet_keypair(0), Keypair()
            made = await _create_multisig_mint(client, payer)
            ata = get_associated_token_address(receiver.pubkey(), made.mint.pubkey())
            ixs = [
                transfer(
                    TransferParams(
                        from_pubkey=payer.pubkey(), to_pubkey=receiver.pubkey(), lamports=1_000_000
                    )
                ),
                create_associated_token_account(payer.pubkey(), receiver.pubkey(), made.mint.pubkey()),
                _mint_to(made, ata, 4_200, made.signers[1:]),
                create_memo(
                    MemoParams(program_id=MEMO_PROGRAM_ID, signer=payer.pubkey(), message=b"before crash")
                ),
            ]
            signers = [payer, *made.signers[1:]]
            before_crash = Transaction.new_signed_with_payer(
                ixs, payer.pubkey(), signers, await _blockhash(client)
            )
            sig = (await client.send_transaction(before_crash)).value
            await _wait_status(client, sig, "confirmed")
            slot_before = (await client.get_slot(Processed)).value
    finally:
        os.kill(net.process.pid, signal.SIGKILL)
        net.process.wait(10)

    net = _start(net.state_dir, port=_free_port())
    try:
        async with AsyncClient(net.url, commitment=Confirmed) as client:
            assert (await client.get_slot(Processed)).value > slot_before
            assert (await client.get_balance(receiver.pubkey())).value == 1_000_000
            assert (await client.get_token_account_balance(ata)).value.amount == "4200"
            mint = (await client.get_account_info_json_parsed(made.mint.pubkey())).value
            assert mint is not None
            assert mint.data.parsed["info"]["mintAuthority"] == str(made.multisig.pubkey())  # type: ignore[union-attr]
            assert mint.data.parsed["info"]["supply"] == "4200"  # type: ignore[union-attr]
            multisig = (await client.get_account_info_json_parsed(made.multisig.pubkey())).value
            assert multisig is not None and multisig.data.parsed["type"] == "multisig"  # type: ignore[union-attr]
            resent = await client.send_transaction(before_crash, opts=TxOpts(skip_preflight=True))
            assert resent.value == sig
            history = (await client.get_signatures_for_address(receiver.pubkey(), commitment=Confirmed)).value
            assert history[0].signature == sig and history[0].memo == "[12] before crash"
            assert (await client.get_transaction(sig)).value is not None

            more = _mint_to(made, ata, 1, made.signers[:2])
            await _wait_status(client, await _send(client, payer, [more], *made.signers[:2]), "finalized")
            assert (await client.get_token_account_balance(ata, Finalized)).value.amount == "4201"
            assert (await client.get_balance(receiver.pubkey(), Finalized)).value == 1_000_000
            history = (await client.get_signatures_for_address(ata, commitment=Finalized)).value
            assert len(history) == 2 and history[1].signature == sig
    finally:
        stop_solana_devnet(net.process)


def test_a_descheduled_server_does_not_make_up_missed_slots(tmp_path: Path) -> None:
    """The devnet process stopped for 2 s (SIGSTOP: what a loaded machine does to it) goes on one slot at a time
    when it runs again. It used to make up the 40 missed slots at once, so a transaction went from processed to
    finalized between two polls (never seen "confirmed") and a blockhash handed out before the stall expired."""
    net = _start(tmp_path / "state")

    def slot() -> int:
        answer = httpx.post(net.url, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot",
                                           "params": [{"commitment": "processed"}]}, timeout=10)
        return int(answer.json()["result"])

    try:
        before = slot()
        os.kill(net.process.pid, signal.SIGSTOP)
        try:
            time.sleep(2.0)  # the stall itself (40 slots of 50 ms), not a wait for anything
        finally:
            os.kill(net.process.pid, signal.SIGCONT)
        assert slot() - before < 20  # made up: 40 at once; not made up: the few that pass around the stall
    finally:
        stop_solana_devnet(net.process)
