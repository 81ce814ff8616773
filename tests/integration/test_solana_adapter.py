"""``SolanaAdapter`` against a real Solana devnet process (LiteSVM behind JSON-RPC, ``devnets/solana``).

The bridge is set up here with solana-py: an SPL Token multisig of three deterministic validator keys
(2 of 3), a native mint ``SOLX`` whose vault is the multisig's associated token account, a wrapped mint
``TST`` whose mint authority is the multisig; the bridge address is the multisig. All keys are PUBLIC
DEVNET TEST KEYS.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solana.rpc.core import RPCException
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message as SolanaMessage
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import (
    AllocateWithSeedParams,
    CreateAccountParams,
    CreateAccountWithSeedParams,
    allocate_with_seed,
    create_account,
    create_account_with_seed,
)
from solders.system_program import TransferParams as SystemTransferParams
from solders.system_program import transfer as system_transfer
from solders.transaction import Transaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    initialize_multisig,
    mint_to,
    transfer,
)
from spl.token.models import InitializeMintParams, InitializeMultisigParams, MintToParams, TransferParams
from structlog.testing import capture_logs

from adapters.base import (
    Checkpoint,
    CosignRefused,
    CosignRequest,
    DeliveryBatch,
    DeliveryItem,
    InsufficientFunds,
    NoCosignQuorum,
    RpcError,
    RpcUnavailable,
    SignedCheckpoint,
    SubmittedTx,
    TxHash,
    TxOutcome,
    TxReverted,
    TxState,
)
from adapters.merkle import MerkleTree
from adapters.message import MESSAGE_VERSION, Domain, Message, MessageId
from adapters.solana import (
    GUARD_OWNER,
    GUARD_SPACE,
    SolanaAdapter,
    TokenBody,
    encode_dispatch_memo,
    guard_address,
    guard_instructions,
    guard_seed,
)
from adapters.solana.adapter import DELIVERY_COMPUTE_PER_MESSAGE, MAX_GUARD_LAMPORTS, UnknownToken
from adapters.solana.errors import BLOCKHASH_EXPIRED, map_exception
from config.errors import ConfigError
from config.settings import SolanaChainConfig
from devnets.solana import devnet_keypair, start_solana_devnet, stop_solana_devnet, wait_until_ready
from tests.integration.rpc_rewriter import RewritingRpcProxy

pytestmark = pytest.mark.integration

T = TypeVar("T")
SLOT_MS = 50
DOMAIN = 1_399_811_149
L1 = 31337
L1_BRIDGE = bytes.fromhex("00" * 12 + "b7" * 20)
L1_TST = bytes.fromhex("00" * 12 + "c5" * 20)
MULTISIG_SPACE, MINT_SPACE = 355, 82


def _key(label: str) -> Keypair:
    """A PUBLIC DEVNET TEST KEY derived from a label."""
    return Keypair.from_seed(_seed(label))


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"xchain-relayer/test-solana-adapter/" + label.encode()).digest()


VALIDATOR_SEEDS = [_seed(f"validator/{i}").hex() for i in range(3)]
VALIDATORS = [Keypair.from_seed(bytes.fromhex(s)) for s in VALIDATOR_SEEDS]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await probe()
        if value is not None and value is not False:
            return value
        await asyncio.sleep(0.05)  # polling the devnet with a deadline
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Bridge:
    url: str
    multisig: Keypair
    solx: Keypair
    tst: Keypair
    payer: Keypair  # sets the bridge up; SOLX mint authority
    relayer: Keypair  # pays deliveries
    alice: Keypair
    bob: Keypair

    def config(self, **overrides: Any) -> SolanaChainConfig:
        doc: dict[str, Any] = {
            "family": "solana", "domain": DOMAIN, "rpc_url": self.url, "multisig": str(self.multisig.pubkey()),
            "multisig_threshold": 2, "bridge": str(self.multisig.pubkey()),
            "remote_bridges": {L1: "0x" + L1_BRIDGE.hex()},
            "tokens": {
                "SOLX": {"mint": str(self.solx.pubkey()), "decimals": 9},
                "TST": {"mint": str(self.tst.pubkey()), "decimals": 9, "wrapped": True, "home_domain": L1,
                        "home_token": "0x" + L1_TST.hex(), "home_decimals": 18},
            },
            "signer": {"private_key": bytes(self.relayer.secret())[:32].hex()},
            "poll_interval_s": 0.05,
        }
        doc.update(overrides)
        return SolanaChainConfig.model_validate(doc)


async def _send(client: AsyncClient, payer: Keypair, ixs: list[Instruction], *signers: Keypair) -> Signature:
    blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
    tx = Transaction.new_signed_with_payer(ixs, payer.pubkey(), [payer, *signers], blockhash)
    return (await client.send_raw_transaction(bytes(tx))).value


async def _confirmed(client: AsyncClient, sig: Signature) -> Any:
    async def probe() -> Any:
        status = (await client.get_signature_statuses([sig])).value[0]
        if status is not None and str(status.confirmation_status).lower().endswith(("confirmed", "finalized")):
            return status
        return None

    return await _eventually(probe, f"{sig} confirmed")


async def _set_up(url: str) -> Bridge:
    bridge = Bridge(url, _key("multisig"), _key("mint/SOLX"), _key("mint/TST"), devnet_keypair(0),
                    devnet_keypair(3), devnet_keypair(1), devnet_keypair(2))
    async with AsyncClient(url, commitment=Confirmed) as client:
        ms_rent = (await client.get_minimum_balance_for_rent_exemption(MULTISIG_SPACE)).value
        mint_rent = (await client.get_minimum_balance_for_rent_exemption(MINT_SPACE)).value
        payer, multisig = bridge.payer.pubkey(), bridge.multisig.pubkey()
        ixs: list[Instruction] = [
            create_account(CreateAccountParams(from_pubkey=payer, to_pubkey=multisig, lamports=ms_rent,
                                               space=MULTISIG_SPACE, owner=TOKEN_PROGRAM_ID)),
            initialize_multisig(InitializeMultisigParams(program_id=TOKEN_PROGRAM_ID, multisig=multisig, m=2,
                                                         signers=[v.pubkey() for v in VALIDATORS])),
        ]
        for mint, authority in ((bridge.tst, multisig), (bridge.solx, payer)):
            ixs += [
                create_account(CreateAccountParams(from_pubkey=payer, to_pubkey=mint.pubkey(), lamports=mint_rent,
                                                   space=MINT_SPACE, owner=TOKEN_PROGRAM_ID)),
                initialize_mint(InitializeMintParams(decimals=9, program_id=TOKEN_PROGRAM_ID, mint=mint.pubkey(),
                                                     mint_authority=authority)),
            ]
        await _confirmed(client, await _send(client, bridge.payer, ixs, bridge.multisig, bridge.tst, bridge.solx))
        accounts: list[Instruction] = []
        for owner in (multisig, bridge.alice.pubkey(), bridge.bob.pubkey()):
            for mint_key in (bridge.tst.pubkey(), bridge.solx.pubkey()):
                accounts.append(create_idempotent_associated_token_account(payer, owner, mint_key))
        for owner in (bridge.alice.pubkey(), bridge.bob.pubkey(), multisig):
            accounts.append(mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=bridge.solx.pubkey(),
                                                 dest=get_associated_token_address(owner, bridge.solx.pubkey()),
                                                 mint_authority=payer, amount=1_000 * 10**9)))
        for start in range(0, len(accounts), 5):
            await _confirmed(client, await _send(client, bridge.payer, accounts[start:start + 5]))
    return bridge


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state: Path = tmp_path_factory.mktemp("solana-adapter") / "state"
    port = _free_port()
    process = start_solana_devnet(port, state, slot_ms=SLOT_MS, log_path=state.parent / "devnet.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, timeout=30, process=process)
        yield url
    finally:
        stop_solana_devnet(process)


@pytest.fixture(scope="module")
def bridge(devnet: str) -> Bridge:
    return asyncio.run(_set_up(devnet))


class QuorumCosigner:
    """The validators, in process: each checks the request (``check_cosign``) and signs with its own key."""

    def __init__(self, validator_side: SolanaAdapter, seeds: list[str]) -> None:
        self.validator_side = validator_side
        self.seeds = seeds
        self.requests: list[CosignRequest] = []

    async def cosign(self, request: CosignRequest, threshold: int) -> list[tuple[str, bytes]]:
        self.requests.append(request)
        wanted = request.context["signers"].split(",")
        signatures = [self.validator_side.cosign_with(seed, request) for seed in self.seeds
                      if str(Keypair.from_seed(bytes.fromhex(seed)).pubkey()) in wanted]
        if len(signatures) < threshold:
            raise NoCosignQuorum("too few validators agreed")
        return signatures[:threshold]


@pytest_asyncio.fixture
async def adapter(bridge: Bridge) -> AsyncIterator[SolanaAdapter]:
    validator_side = SolanaAdapter("solana", bridge.config())
    made = SolanaAdapter("solana", bridge.config(), cosigner=QuorumCosigner(validator_side, VALIDATOR_SEEDS))
    try:
        yield made
    finally:
        await made.close()
        await validator_side.close()


def _inbound(nonce: int, body: TokenBody, *, sender: bytes = L1_BRIDGE, recipient: bytes | None = None,
             bridge: Bridge) -> Message:
    return Message(MESSAGE_VERSION, nonce, Domain(L1), sender, Domain(DOMAIN),
                   recipient if recipient is not None else bytes(bridge.multisig.pubkey()), body.encode())


def _batch(*messages: Message) -> DeliveryBatch:
    checkpoint = SignedCheckpoint(Checkpoint(Domain(L1), L1_BRIDGE, b"\0" * 32, max(m.nonce for m in messages)), ())
    return DeliveryBatch(checkpoint, tuple(DeliveryItem(m.encode(), m.id, m.nonce) for m in messages), ())


async def _settled(adapter: SolanaAdapter, tx: SubmittedTx) -> TxOutcome:
    async def probe() -> TxOutcome | None:
        outcome = await adapter.confirm(tx)
        return None if outcome.state is TxState.PENDING else outcome

    return await _eventually(probe, f"delivery {tx.tx_hash} settled")


async def test_dispatches_are_indexed_in_chain_order_and_forged_ones_ignored(bridge: Bridge,
                                                                            adapter: SolanaAdapter) -> None:
    alice_key = bytes(bridge.alice.secret())[:32].hex()
    user_on_l1 = bytes.fromhex("00" * 12 + "a1" * 20)
    vault_before = await adapter.vault_balance("SOLX")
    start = int(await adapter.latest_height())

    token_tx, token_id = await adapter.send_token(alice_key, "SOLX", 5 * 10**9, Domain(L1), user_on_l1)

    # a dispatch whose memo claims more than it locks: tokens move, no message
    forged_body = TokenBody(DOMAIN, bytes(bridge.solx.pubkey()), user_on_l1, 7 * 10**9).encode()
    vault = get_associated_token_address(bridge.multisig.pubkey(), bridge.solx.pubkey())
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        forged = await _send(client, bridge.alice, [
            transfer(TransferParams(program_id=TOKEN_PROGRAM_ID, source=get_associated_token_address(
                bridge.alice.pubkey(), bridge.solx.pubkey()), dest=vault, owner=bridge.alice.pubkey(), amount=10**9)),
            create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=bridge.alice.pubkey(),
                                   message=encode_dispatch_memo(L1, L1_BRIDGE, forged_body).encode())),
            system_transfer(SystemTransferParams(from_pubkey=bridge.alice.pubkey(), to_pubkey=bridge.multisig.pubkey(),
                                                 lamports=0)),  # listed with the bridge's transactions
        ])
        await _confirmed(client, forged)

    bob_key = bytes(bridge.bob.secret())[:32].hex()
    plain_tx, plain_ids = await adapter.dispatch_messages(bob_key, Domain(L1), b"\x11" * 32, [b"hello solana"])

    deadline = time.monotonic() + 60
    while True:  # both are final when dispatch returns; under load the node's finalized history may lag a poll
        finalized = await adapter.finalized_height()
        found = await adapter.fetch_dispatched(start, finalized)  # type: ignore[arg-type]
        if len(found) >= 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert [d.tx_hash for d in found] == [token_tx, plain_tx]
    assert [d.message.nonce for d in found] == [0, 1]
    assert [d.id for d in found] == [token_id, *plain_ids]
    token, plain = found[0].message, found[1].message
    assert (token.version, token.origin, token.destination) == (MESSAGE_VERSION, DOMAIN, L1)
    assert token.sender == bytes(bridge.multisig.pubkey()) and token.recipient == L1_BRIDGE
    assert TokenBody.decode(token.body) == TokenBody(DOMAIN, bytes(bridge.solx.pubkey()), user_on_l1, 5 * 10**9)
    assert plain.sender == bytes(bridge.bob.pubkey()) and plain.recipient == b"\x11" * 32
    assert plain.body == b"hello solana"
    assert found[0].height <= found[1].height
    assert await adapter.vault_balance("SOLX") == vault_before + 6 * 10**9

    state = await adapter.mailbox_state(finalized)
    assert state.count == 2 and state.mailbox == bytes(bridge.multisig.pubkey())
    assert state.root == MerkleTree([token_id, *plain_ids]).root()
    # a fresh adapter (a validator, a restarted relayer) rebuilds the same messages from the chain
    fresh = SolanaAdapter("solana", bridge.config())
    try:
        with capture_logs() as events:
            refound = await fresh.fetch_dispatched(start, finalized)  # type: ignore[arg-type]
        assert [d.raw for d in refound] == [d.raw for d in found]
        ignored = [e for e in events if e["event"] == "dispatch_ignored"]
        assert [e["tx"] for e in ignored] == [str(forged)] and "differs from the moved" in ignored[0]["reason"]
        assert (await fresh.mailbox_state(finalized)).root == state.root
    finally:
        await fresh.close()


async def test_cosigned_delivery_mints_once_and_replays_fail_on_chain(bridge: Bridge, adapter: SolanaAdapter) -> None:
    recipient = Keypair.from_seed(_seed("recipient/1")).pubkey()
    message = _inbound(0, TokenBody(L1, L1_TST, bytes(recipient), 3 * 10**18), bridge=bridge)
    assert await adapter.delivered([message.id]) == [False]
    estimate = await adapter.estimate_delivery(_batch(message))
    assert estimate.max_cost >= 5000 * 3

    # the validators' check: the exact delivery of these messages, nothing else
    request = await adapter.cosign_request([message.encode()])
    assert adapter.check_cosign(request) == [message.id]
    for tampered in (TokenBody(L1, L1_TST, bytes(recipient), 4 * 10**18),
                     TokenBody(L1, L1_TST, b"\x07" * 32, 3 * 10**18)):
        other = _inbound(0, tampered, bridge=bridge)
        forged = await adapter.cosign_request([other.encode()])
        with pytest.raises(CosignRefused) as refused:
            adapter.check_cosign(CosignRequest(request.chain, forged.payload, request.messages, request.context))
        assert refused.value.reason == "payload mismatch"
    with pytest.raises(CosignRefused) as not_signer:
        adapter.cosign_with(VALIDATOR_SEEDS[2], request)  # the request names validators 0 and 1
    assert not_signer.value.reason == "not a signer"

    tx = await adapter.submit_delivery(_batch(message))
    outcome = await _settled(adapter, tx)
    assert outcome.state is TxState.CONFIRMED, outcome
    assert outcome.delivered_ids == (message.id,)
    assert await adapter.token_balance("TST", str(recipient)) == 3 * 10**9
    assert await adapter.delivered([message.id]) == [True]
    supply = await adapter.token_supply("TST")

    # the same message again, co-signed by another quorum (validators 1 and 2): the shared member's guard exists
    replay = await adapter.cosign_request([message.encode()], [VALIDATORS[1].pubkey(), VALIDATORS[2].pubkey()])
    signatures = [adapter.cosign_with(seed, replay) for seed in VALIDATOR_SEEDS[1:]]
    with pytest.raises(TxReverted) as reverted:
        await adapter.submit_cosigned(replay, signatures)
    assert "already in use" in str(reverted.value)
    assert await adapter.token_balance("TST", str(recipient)) == 3 * 10**9
    assert await adapter.token_supply("TST") == supply


async def test_native_token_comes_home_from_the_vault(bridge: Bridge, adapter: SolanaAdapter) -> None:
    recipient = Keypair.from_seed(_seed("recipient/2")).pubkey()
    vault_before = await adapter.vault_balance("SOLX")
    message = _inbound(1, TokenBody(DOMAIN, bytes(bridge.solx.pubkey()), bytes(recipient), 2 * 10**9), bridge=bridge)
    tx = await adapter.submit_delivery(_batch(message))
    outcome = await _settled(adapter, tx)
    assert outcome.state is TxState.CONFIRMED and outcome.delivered_ids == (message.id,)
    assert await adapter.token_balance("SOLX", str(recipient)) == 2 * 10**9
    assert await adapter.vault_balance("SOLX") == vault_before - 2 * 10**9
    processed = await adapter.processed_messages(outcome.height or 0, await adapter.latest_height())  # type: ignore[arg-type]
    assert (message.id, outcome.height) in processed


async def test_one_validator_signature_is_refused_by_the_chain(bridge: Bridge, adapter: SolanaAdapter) -> None:
    recipient = Keypair.from_seed(_seed("recipient/3")).pubkey()
    message = _inbound(2, TokenBody(L1, L1_TST, bytes(recipient), 10**18), bridge=bridge)
    one = [VALIDATORS[0].pubkey()]
    request = await adapter.cosign_request([message.encode()], one)
    with pytest.raises(CosignRefused) as too_few:
        adapter.check_cosign(request)
    assert too_few.value.reason == "too few signers"
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        blockhash = (await client.get_latest_blockhash(Confirmed)).value.blockhash
        rent = (await client.get_minimum_balance_for_rent_exemption(GUARD_SPACE)).value
        delivery, _ = adapter.rules.delivery_message([message.encode()], fee_payer=bridge.relayer.pubkey(),
                                                     signers=one, blockhash=blockhash, guard_lamports=rent)
        tx = Transaction([bridge.relayer, VALIDATORS[0]], delivery, blockhash)
        with pytest.raises(RPCException) as refused:
            await client.send_raw_transaction(bytes(tx))
    assert "simulation failed" in refused.value.args[0].message.lower()
    assert await adapter.token_balance("TST", str(recipient)) == 0
    assert await adapter.delivered([message.id]) == [False]
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        assert (await client.get_account_info(guard_address(VALIDATORS[0].pubkey(), message.id))).value is None


async def test_undeliverable_messages_are_refused_before_signing(bridge: Bridge, adapter: SolanaAdapter) -> None:
    body = TokenBody(L1, L1_TST, b"\x05" * 32, 10**18)
    cases = {
        "unknown sender": _inbound(3, body, sender=b"\x66" * 32, bridge=bridge),
        "unknown recipient": _inbound(3, body, recipient=b"\x42" * 32, bridge=bridge),
        "amount not divisible": _inbound(3, TokenBody(L1, L1_TST, b"\x05" * 32, 10**18 + 1), bridge=bridge),
        "unknown token": _inbound(3, TokenBody(L1, b"\x09" * 32, b"\x05" * 32, 10**18), bridge=bridge),
    }
    for reason, message in cases.items():
        with pytest.raises(TxReverted) as refused:
            await adapter.estimate_delivery(_batch(message))
        assert refused.value.reason == reason


async def test_heights_health_stats_and_unavailable_node(bridge: Bridge, adapter: SolanaAdapter) -> None:
    latest, finalized = await adapter.latest_height(), await adapter.finalized_height()
    assert latest >= finalized > 0
    health = await adapter.health()
    assert health.healthy and health.latest_height is not None
    stats = await adapter.chain_stats()
    assert stats.gas_limit == 48_000_000 and stats.native_decimals == 9 and 0 < stats.block_time_s < 5
    dead = SolanaAdapter("dead", bridge.config(rpc_url=f"http://127.0.0.1:{_free_port()}", request_timeout_s=2))
    try:
        with pytest.raises(RpcUnavailable):
            await dead.latest_height()
        assert not (await dead.health()).healthy
    finally:
        await dead.close()


async def test_wrapped_token_leaves_by_burning(bridge: Bridge, adapter: SolanaAdapter) -> None:
    alice = bridge.alice.pubkey()
    incoming = _inbound(10, TokenBody(L1, L1_TST, bytes(alice), 4 * 10**18), bridge=bridge)
    outcome = await _settled(adapter, await adapter.submit_delivery(_batch(incoming)))
    assert outcome.state is TxState.CONFIRMED
    supply = await adapter.token_supply("TST")
    user_on_l1 = bytes.fromhex("00" * 12 + "a2" * 20)
    tx_hash, message_id = await adapter.send_token(bytes(bridge.alice.secret())[:32].hex(), "TST", 10**9, Domain(L1),
                                                   user_on_l1)
    assert await adapter.token_supply("TST") == supply - 10**9
    assert await adapter.token_balance("TST", str(alice)) == 3 * 10**9
    (found,) = [d for d in await adapter.fetch_dispatched(0, await adapter.finalized_height())  # type: ignore[arg-type]
                if d.tx_hash == tx_hash]
    assert found.id == message_id and found.message.sender == bytes(bridge.multisig.pubkey())
    assert TokenBody.decode(found.message.body) == TokenBody(L1, L1_TST, user_on_l1, 10**18)  # scaled back up


async def test_verify_endpoints_must_agree(bridge: Bridge, adapter: SolanaAdapter) -> None:
    start = int(await adapter.latest_height())
    tx_hash, ids = await adapter.dispatch_messages(bytes(bridge.bob.secret())[:32].hex(), Domain(L1), b"\x12" * 32,
                                                   [b"checked twice"])
    finalized = await adapter.finalized_height()
    honest, lying_list, lying_tx = (RewritingRpcProxy(bridge.url) for _ in range(3))

    def drop_newest(text: str) -> str:
        doc = json.loads(text)
        doc["result"] = doc["result"][1:]
        return json.dumps(doc)

    def shift_slot(text: str) -> str:
        doc = json.loads(text)
        if doc.get("result"):
            doc["result"]["slot"] += 1
        return json.dumps(doc)

    lying_list.rewrite("getSignaturesForAddress", drop_newest)
    lying_tx.rewrite("getTransaction", shift_slot)
    adapters = {name: SolanaAdapter("solana", bridge.config(start_height=start, verify_rpc_urls=[proxy.url]))
                for name, proxy in (("honest", honest), ("list", lying_list), ("tx", lying_tx))}
    try:
        found = await adapters["honest"].fetch_dispatched(start, finalized)  # type: ignore[arg-type]
        # counting starts at start_height: nonce 0 here, while the adapter indexing from slot 0 gave it a later one
        assert [(d.tx_hash, d.message.nonce, d.message.body) for d in found] == [(tx_hash, 0, b"checked twice")]
        assert found[0].id != ids[0]
        for name in ("list", "tx"):
            with pytest.raises(RpcError) as disagree:
                await adapters[name].fetch_dispatched(start, finalized)  # type: ignore[arg-type]
            assert disagree.value.reason == "endpoints disagree"
    finally:
        for made in adapters.values():
            await made.close()
        for proxy in (honest, lying_list, lying_tx):
            proxy.close()


async def test_confirm_reports_expired_blockhash_as_dropped(adapter: SolanaAdapter) -> None:
    never_sent = str(Signature.from_bytes(hashlib.sha512(b"never sent").digest()))
    expired = SubmittedTx(TxHash(never_sent), 1, "relayer", time.time())
    assert (await adapter.confirm(expired)) == TxOutcome(TxState.DROPPED, reason=BLOCKHASH_EXPIRED)
    waiting = SubmittedTx(TxHash(never_sent), 10**12, "relayer", time.time())
    assert (await adapter.confirm(waiting)).state is TxState.PENDING


async def test_errors_are_mapped(bridge: Bridge, adapter: SolanaAdapter) -> None:
    broke = Keypair.from_seed(_seed("unfunded"))
    with pytest.raises(InsufficientFunds):
        await adapter.dispatch_messages(bytes(broke.secret())[:32].hex(), Domain(L1), b"\x01" * 32, [b"x"])
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        stale = Transaction.new_signed_with_payer([], bridge.bob.pubkey(), [bridge.bob], Hash.new_unique())
        with pytest.raises(RPCException) as refused:
            await client.send_raw_transaction(bytes(stale))
    mapped = map_exception(refused.value, chain="solana", context="send")
    assert isinstance(mapped, RpcError) and mapped.reason == BLOCKHASH_EXPIRED
    with pytest.raises(UnknownToken):
        await adapter.token_balance("NOPE", str(bridge.bob.pubkey()))


async def test_multisig_threshold_must_match_and_be_a_majority(bridge: Bridge) -> None:
    wrong = SolanaAdapter("solana", bridge.config(multisig_threshold=3))
    try:
        with pytest.raises(ConfigError, match="requires 2"):
            await wrong.delivered([MessageId(b"\0" * 32)])
    finally:
        await wrong.close()
    minority = _key("multisig/1-of-3")
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        rent = (await client.get_minimum_balance_for_rent_exemption(MULTISIG_SPACE)).value
        await _confirmed(client, await _send(client, bridge.payer, [
            create_account(CreateAccountParams(from_pubkey=bridge.payer.pubkey(), to_pubkey=minority.pubkey(),
                                               lamports=rent, space=MULTISIG_SPACE, owner=TOKEN_PROGRAM_ID)),
            initialize_multisig(InitializeMultisigParams(program_id=TOKEN_PROGRAM_ID, multisig=minority.pubkey(), m=1,
                                                         signers=[v.pubkey() for v in VALIDATORS])),
        ], minority))
    weak = SolanaAdapter("solana", bridge.config(multisig=str(minority.pubkey()), multisig_threshold=1))
    try:
        with pytest.raises(ConfigError, match="not a majority"):
            await weak.delivered([MessageId(b"\0" * 32)])
    finally:
        await weak.close()


# ---- replay guards a third party cannot occupy first (issue 12, finding 2)

def _legacy_guard(member: Pubkey, message_id: bytes) -> Pubkey:
    """Where the old guard (``CreateAccountWithSeed``, owner System) of ``member`` was: pre-funding it froze a
    delivery for good."""
    return Pubkey.create_with_seed(member, guard_seed(message_id), SYSTEM_PROGRAM_ID)


async def _prefund(client: AsyncClient, payer: Keypair, amounts: dict[Pubkey, int]) -> None:
    """What anyone can do to a guard address: send it lamports (one transaction per address)."""
    for address, lamports in amounts.items():
        await _confirmed(client, await _send(client, payer, [system_transfer(SystemTransferParams(
            from_pubkey=payer.pubkey(), to_pubkey=address, lamports=lamports))]))


async def _accounts(client: AsyncClient, addresses: list[Pubkey]) -> list[Any]:
    return (await client.get_multiple_accounts(addresses, commitment=Confirmed)).value


async def test_prefunded_guard_addresses_do_not_block_the_delivery(bridge: Bridge, adapter: SolanaAdapter) -> None:
    recipient = Keypair.from_seed(_seed("recipient/prefunded")).pubkey()
    message = _inbound(20, TokenBody(L1, L1_TST, bytes(recipient), 5 * 10**18), bridge=bridge)
    guards = [guard_address(v.pubkey(), message.id) for v in VALIDATORS]
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        rent_empty = (await client.get_minimum_balance_for_rent_exemption(0)).value
        rent_guard = (await client.get_minimum_balance_for_rent_exemption(GUARD_SPACE)).value
        # every validator's guard pre-funded, each differently: the rent-exempt minimum of an empty account
        # (what froze the old guard), one lamport over a guard's rent, a large amount; the old addresses too
        prefunded = dict(zip(guards, (rent_empty, rent_guard + 1, 3 * 10**9), strict=True))
        await _prefund(client, bridge.payer, {**prefunded, **{_legacy_guard(v.pubkey(), message.id): rent_empty
                                                              for v in VALIDATORS}})
        for account in await _accounts(client, guards):
            assert account.owner == SYSTEM_PROGRAM_ID and len(account.data) == 0 and account.lamports >= rent_empty
        # topping a funded address up by one lamport is allowed too
        await _prefund(client, bridge.payer, {guards[0]: 1})
        prefunded[guards[0]] += 1
    assert await adapter.delivered([message.id]) == [False]
    supply = await adapter.token_supply("TST")

    tx = await adapter.submit_delivery(_batch(message))
    outcome = await _settled(adapter, tx)
    assert outcome.state is TxState.CONFIRMED, outcome
    assert outcome.delivered_ids == (message.id,)
    assert await adapter.token_balance("TST", str(recipient)) == 5 * 10**9
    assert await adapter.token_supply("TST") == supply + 5 * 10**9
    assert await adapter.delivered([message.id]) == [True]
    quorum = adapter._cosigner.requests[-1].context["signers"].split(",")  # type: ignore[union-attr]
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        for validator, account in zip(VALIDATORS, await _accounts(client, guards), strict=True):
            if str(validator.pubkey()) in quorum:  # a guard: Memo-owned, GUARD_SPACE bytes, what was there + rent
                assert (account.owner, len(account.data)) == (GUARD_OWNER, GUARD_SPACE)
                assert account.lamports == prefunded[guard_address(validator.pubkey(), message.id)] + rent_guard
            else:  # still just the attacker's lamports
                assert account.owner == SYSTEM_PROGRAM_ID and len(account.data) == 0
        answer = (await client.get_transaction(Signature.from_string(tx.tx_hash),
                                               commitment=Confirmed, max_supported_transaction_version=0)).value
    assert answer is not None and answer.transaction.meta is not None
    used = answer.transaction.meta.compute_units_consumed
    assert used is not None and used <= DELIVERY_COMPUTE_PER_MESSAGE

    # the same message again, co-signed by the other quorum: fails on the shared member's guard, atomically
    others = [v for v in VALIDATORS if str(v.pubkey()) not in quorum]
    replay_quorum = sorted([others[0], next(v for v in VALIDATORS if str(v.pubkey()) in quorum)],
                           key=VALIDATORS.index)
    replay = await adapter.cosign_request([message.encode()], [v.pubkey() for v in replay_quorum])
    signatures = [adapter.cosign_with(VALIDATOR_SEEDS[VALIDATORS.index(v)], replay) for v in replay_quorum]
    with pytest.raises(TxReverted) as reverted:
        await adapter.submit_cosigned(replay, signatures)
    assert "already in use" in str(reverted.value)
    assert await adapter.token_balance("TST", str(recipient)) == 5 * 10**9
    assert await adapter.token_supply("TST") == supply + 5 * 10**9



async def test_prefunded_but_never_delivered_message_is_not_delivered(bridge: Bridge, adapter: SolanaAdapter) -> None:
    message = _inbound(21, TokenBody(L1, L1_TST, b"\x21" * 32, 10**18), bridge=bridge)
    guards = [guard_address(v.pubkey(), message.id) for v in VALIDATORS]
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        rent_guard = (await client.get_minimum_balance_for_rent_exemption(GUARD_SPACE)).value
        # one lamport to an empty address: the chain itself refuses (it would leave an account below rent)
        with pytest.raises(RPCException) as refused:
            await _send(client, bridge.payer, [system_transfer(SystemTransferParams(
                from_pubkey=bridge.payer.pubkey(), to_pubkey=guards[0], lamports=1))])
        assert "insufficient funds for rent" in refused.value.args[0].message
        # the exact rent of a guard, on every validator's address: lamports alone are never a guard
        await _prefund(client, bridge.payer, dict.fromkeys(guards, rent_guard))
        assert all(a is not None and a.lamports == rent_guard for a in await _accounts(client, guards))
    assert await adapter.delivered([message.id]) == [False]


async def test_a_guard_made_by_one_validator_alone_is_not_a_delivery(bridge: Bridge, adapter: SolanaAdapter) -> None:
    """A dishonest validator can sign its own guard without a payout: fewer than ``threshold`` guards are not
    a delivery, and the relayer delivers with a quorum that leaves that validator out."""
    recipient = Keypair.from_seed(_seed("recipient/partial")).pubkey()
    message = _inbound(22, TokenBody(L1, L1_TST, bytes(recipient), 2 * 10**18), bridge=bridge)
    rogue = VALIDATORS[0]
    async with AsyncClient(bridge.url, commitment=Confirmed) as client:
        rent_guard = (await client.get_minimum_balance_for_rent_exemption(GUARD_SPACE)).value
        await _confirmed(client, await _send(client, bridge.payer, guard_instructions(
            bridge.payer.pubkey(), rogue.pubkey(), message.id, rent_guard), rogue))
        (made,) = await _accounts(client, [guard_address(rogue.pubkey(), message.id)])
        assert (made.owner, len(made.data)) == (GUARD_OWNER, GUARD_SPACE)
    with capture_logs() as events:
        assert await adapter.delivered([message.id]) == [False]
    partial = [e for e in events if e["event"] == "solana_guards_partial"]
    assert len(partial) == 1 and partial[0]["guards"] == [str(rogue.pubkey())] and partial[0]["threshold"] == 2

    outcome = await _settled(adapter, await adapter.submit_delivery(_batch(message)))
    assert outcome.state is TxState.CONFIRMED, outcome
    requests = adapter._cosigner.requests  # type: ignore[union-attr]
    assert requests[-1].context["signers"] == f"{VALIDATORS[1].pubkey()},{VALIDATORS[2].pubkey()}"
    assert await adapter.token_balance("TST", str(recipient)) == 2 * 10**9
    assert await adapter.delivered([message.id]) == [True]


async def test_validators_refuse_any_other_guard_than_the_rule(bridge: Bridge, adapter: SolanaAdapter) -> None:
    message = _inbound(23, TokenBody(L1, L1_TST, b"\x23" * 32, 10**18), bridge=bridge)
    request = await adapter.cosign_request([message.encode()])
    assert adapter.check_cosign(request) == [message.id]
    payer = bridge.relayer.pubkey()
    signers = [v.pubkey() for v in VALIDATORS[:2]]
    lamports = int(request.context["guard_lamports"])
    ixs, _ = adapter.rules.delivery_instructions([message.encode()], fee_payer=payer, signers=signers,
                                                 guard_lamports=lamports)
    first = ixs.index(guard_instructions(payer, signers[0], message.id, lamports)[1])  # signers[0]'s allocate
    seed, member = guard_seed(message.id), signers[0]

    def allocate(owner: Pubkey, space: int, seed: str = seed) -> Instruction:
        return allocate_with_seed(AllocateWithSeedParams(address=Pubkey.create_with_seed(member, seed, owner),
                                                         base=member, seed=seed, space=space, owner=owner))

    variants: dict[str, list[Instruction]] = {
        "owner System": [*ixs[:first], allocate(SYSTEM_PROGRAM_ID, GUARD_SPACE), *ixs[first + 1:]],
        "owner Token": [*ixs[:first], allocate(TOKEN_PROGRAM_ID, GUARD_SPACE), *ixs[first + 1:]],
        "space 0": [*ixs[:first], allocate(GUARD_OWNER, 0), *ixs[first + 1:]],
        "space 64": [*ixs[:first], allocate(GUARD_OWNER, 64), *ixs[first + 1:]],
        "other seed": [*ixs[:first], allocate(GUARD_OWNER, GUARD_SPACE, "x" + seed[1:]), *ixs[first + 1:]],
        "no transfer": [*ixs[:first - 1], *ixs[first:]],
        "old guard": [*ixs[:first - 1], create_account_with_seed(CreateAccountWithSeedParams(
            from_pubkey=payer, to_pubkey=_legacy_guard(member, message.id), base=member, seed=seed,
            lamports=lamports, space=0, owner=SYSTEM_PROGRAM_ID)), *ixs[first + 1:]],
        "more rent": [*ixs[:first - 1], system_transfer(SystemTransferParams(
            from_pubkey=payer, to_pubkey=guard_address(member, message.id), lamports=lamports + 1)), *ixs[first:]],
    }
    blockhash = Hash.from_string(request.context["blockhash"])
    for name, tampered in variants.items():
        payload = bytes(SolanaMessage.new_with_blockhash(tampered, payer, blockhash))
        assert payload != request.payload, name
        with pytest.raises(CosignRefused) as refused:
            adapter.check_cosign(CosignRequest(request.chain, payload, request.messages, request.context))
        assert refused.value.reason == "payload mismatch", name
    # the rent is the one number the request carries: bounded (and then the payload must match it)
    for bad in ("0", "-1", str(MAX_GUARD_LAMPORTS + 1), "lots"):
        context = {**request.context, "guard_lamports": bad}
        with pytest.raises(CosignRefused) as refused:
            adapter.check_cosign(CosignRequest(request.chain, request.payload, request.messages, context))
        assert refused.value.reason in ("bad fee", "bad context"), bad
    within = {**request.context, "guard_lamports": str(lamports + 1)}
    with pytest.raises(CosignRefused) as refused:
        adapter.check_cosign(CosignRequest(request.chain, request.payload, request.messages, within))
    assert refused.value.reason == "payload mismatch"
