"""CosmosAdapter and CosmosInclusionVerifier against the project's Cosmos devnet (a real process): lock
dispatches found with canonical messages in nonce order, invalid memos ignored, the inclusion proof accepted
for a real dispatch and refused for forged or failed ones, a delivery co-signed 2-of-3 by the vault's
members paying out on chain (refused by the chain with one signature), a delivery past its timeout height
refused by the chain, and the validators' once-per-message rule (``CosignService`` on a real store) judged
from the chain: no second payout while the first can land, one after its timeout or its sequence passed.

The devnet's ``uxtst`` is the vault's alone at genesis: the accounts that lock it here first get it paid out
of the vault (the ``funded`` fixture delivers token messages to them, as a bridge-in would).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from adapters.base import (
    CapacitySource,
    ChainAdapter,
    Checkpoint,
    CosignedDelivery,
    CosignRefused,
    CosignRequest,
    DeliveryBatch,
    DeliveryItem,
    DispatchClaim,
    DispatchedMessage,
    Height,
    InclusionRefused,
    MessageSender,
    RpcUnavailable,
    SequenceMismatch,
    SignedCheckpoint,
    SubmittedTx,
    TxHash,
    TxNotFound,
    TxReverted,
    TxState,
)
from adapters.capabilities import ContractCalls
from adapters.cosmos import CosmosAdapter
from adapters.cosmos.memo import TokenBody, decode_token_body, encode_dispatch_memo, native_home_token
from adapters.cosmos.transactions import bech32, multisig_key_address, pack_send, tokens_from_config
from adapters.message import MESSAGE_VERSION, Domain, Message, MessageId
from config.settings import CosmosChainConfig, CosmosTokenConfig
from devnets.cosmos import (
    GenesisSettings,
    devnet_account_key,
    genesis_accounts,
    start_cosmos_devnet,
    wait_until_ready,
)
from light_clients.tendermint.inclusion import CosmosInclusionVerifier
from tests.integration.harness import free_port_block

DOMAIN = 7001
EVM_DOMAIN = 31337
BRIDGE = bytes.fromhex("00" * 12 + "ab" * 20)  # the TokenBridge on the EVM side (bytes32)
MEMBERS = [devnet_account_key(f"vault-member-{i}") for i in range(3)]
VAULT = bech32(multisig_key_address(2, [m.pub_key for m in MEMBERS]), "cosmos")
ESCROW = 10_000_000  # uxtst: the vault's at genesis, nobody else's
SETTINGS = GenesisSettings(escrow_address=VAULT, escrow_balance=ESCROW)
ACCOUNTS = genesis_accounts(SETTINGS)
BRIDGED_IN = {1: 20_000, 2: 1_000}  # genesis account -> uxtst paid out to it before the tests lock some
BLOCK_MS = 250


@dataclass
class Devnet:
    rpc_url: str
    rest_url: str
    process: Any


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    state = tmp_path_factory.mktemp("cosmos-adapter") / "state"
    base = free_port_block(2)
    process = start_cosmos_devnet(rpc_port=base, rest_port=base + 1, state_dir=state, block_ms=BLOCK_MS,
                                  log_path=state.parent / "devnet.log", escrow=(VAULT, ESCROW))
    net = Devnet(f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}", process)
    try:
        wait_until_ready(net.rpc_url, net.rest_url, timeout=20, process=process)
        yield net
    finally:
        process.terminate()
        process.wait(timeout=10)


def chain_config(net: Devnet, **extra: Any) -> CosmosChainConfig:
    return CosmosChainConfig(
        family="cosmos", domain=DOMAIN, chain_id=SETTINGS.chain_id, rpc_url=net.rpc_url, rest_url=net.rest_url,
        fee_denom=SETTINGS.fee_denom, gas_price=0.01, vault=VAULT, multisig_threshold=2,
        multisig_pubkeys=[m.pub_key.hex() for m in MEMBERS], tokens={"XTST": CosmosTokenConfig(denom="uxtst")},
        poll_interval_s=0.1, request_timeout_s=5, **extra,
    )


class MemberCosigner:
    """The validators in-process: each checks the request and its terms on chain, then signs with its key."""

    def __init__(self, adapter: CosmosAdapter, members: list[int]) -> None:
        self.adapter = adapter
        self.members = members
        self.requests: list[CosignRequest] = []

    async def cosign(self, request: CosignRequest, threshold: int) -> list[tuple[str, bytes]]:
        self.requests.append(request)
        out = []
        for index in self.members:
            self.adapter.check_cosign(request)
            await self.adapter.cosign_terms(request)
            out.append(self.adapter.cosign_with(MEMBERS[index].private_key_hex, request))
        return out


@pytest.fixture(scope="module")
def funded(devnet: Devnet) -> None:
    """The vault gets fees from a genesis account (users hold the fee denom; the vault holds all uxtst), then
    the accounts that lock uxtst in these tests get it paid out of the vault, as a bridge-in would."""

    async def fund() -> None:
        async with adapter_for(devnet) as adapter:
            tx_hash = await adapter.transfer_token(ACCOUNTS[0].private_key_hex, SETTINGS.fee_denom, VAULT, 50_000_000)
            await wait_tx(adapter, tx_hash)
            adapter._cosigner = MemberCosigner(adapter, [0, 1])
            incoming = [token_message(ACCOUNTS[i].address, amount, nonce=1000 + i) for i, amount in BRIDGED_IN.items()]
            outcome = await wait_outcome(adapter, await adapter.submit_delivery(batch_of(incoming)))
            assert outcome.state is TxState.CONFIRMED, outcome.reason
            for i, amount in BRIDGED_IN.items():
                assert await adapter.token_balance("XTST", ACCOUNTS[i].address) == amount

    asyncio.run(fund())


class adapter_for:
    def __init__(self, net: Devnet, **kwargs: Any) -> None:
        self.adapter = CosmosAdapter("cosmos", chain_config(net), remote_bridges={EVM_DOMAIN: BRIDGE}, **kwargs)

    async def __aenter__(self) -> CosmosAdapter:
        return self.adapter

    async def __aexit__(self, *exc: object) -> None:
        await self.adapter.close()


async def wait_tx(adapter: CosmosAdapter, tx_hash: str, timeout: float = 20.0) -> tuple[Height, bool]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await adapter.tx_result(TxHash(tx_hash))
        except Exception:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


async def raw_send(adapter: CosmosAdapter, sender: int, memo: str, denom: str, amount: int) -> str:
    key = ACCOUNTS[sender].private_key
    tx_hash, _ = await adapter._send(key, [pack_send(ACCOUNTS[sender].address, VAULT, [(denom, amount)])], memo)
    return tx_hash


def token_message(recipient: str, amount: int, nonce: int) -> Message:
    recipient32 = b"\0" * 12 + bytes_of(recipient)
    body = TokenBody(DOMAIN, native_home_token("uxtst"), recipient32, amount).encode()
    vault32 = b"\0" * 12 + bytes_of(VAULT)
    return Message(MESSAGE_VERSION, nonce, Domain(EVM_DOMAIN), BRIDGE, Domain(DOMAIN), vault32, body)


def bytes_of(address: str) -> bytes:
    from adapters.cosmos.transactions import bech32_bytes

    return bech32_bytes(address)


def batch_of(messages: list[Message]) -> DeliveryBatch:
    checkpoint = SignedCheckpoint(Checkpoint(Domain(EVM_DOMAIN), BRIDGE, b"\0" * 32, 0), ())
    return DeliveryBatch(checkpoint, tuple(DeliveryItem(m.encode(), m.id, m.nonce) for m in messages), ())


async def test_lock_dispatches_get_canonical_messages_in_nonce_order(devnet: Devnet, funded: None) -> None:
    recipient = bytes.fromhex("00" * 12 + "cd" * 20)
    async with adapter_for(devnet) as adapter:
        first_hash, first_id = await adapter.send_token(ACCOUNTS[1].private_key_hex, "XTST", 1500,
                                                        Domain(EVM_DOMAIN), recipient)
        garbage = await raw_send(adapter, 2, "xchain:v1:not base64!", "uxtst", 10)
        wrong_amount = await raw_send(
            adapter, 2, encode_dispatch_memo(EVM_DOMAIN, BRIDGE, TokenBody(
                DOMAIN, native_home_token("uxtst"), recipient, 999).encode()), "uxtst", 10)
        for tx_hash in (garbage, wrong_amount):
            assert (await wait_tx(adapter, tx_hash))[1]
        second_hash, second_id = await adapter.send_token(ACCOUNTS[1].private_key_hex, "XTST", 2500,
                                                          Domain(EVM_DOMAIN), recipient)
        second_height, _ = await adapter.tx_result(second_hash)
        top = await finalized_above(adapter, second_height - 1)  # final once the next header proves its results
        found = await adapter.fetch_dispatched(Height(1), top)

    by_hash = {d.tx_hash: d for d in found}
    assert garbage not in by_hash and wrong_amount not in by_hash
    first, second = by_hash[TxHash(first_hash)], by_hash[TxHash(second_hash)]
    assert first.height < second.height
    assert (first.id, second.id) == (first_id, second_id)
    assert second.message.nonce == first.message.nonce + 1
    assert [d.message.nonce for d in found] == list(range(len(found)))
    vault32 = b"\0" * 12 + bytes_of(VAULT)
    for dispatch, amount in ((first, 1500), (second, 2500)):
        message = dispatch.message
        assert (message.version, message.origin, message.sender) == (MESSAGE_VERSION, DOMAIN, vault32)
        assert (message.destination, message.recipient) == (EVM_DOMAIN, BRIDGE)
        assert decode_token_body(message.body) == TokenBody(DOMAIN, native_home_token("uxtst"), recipient, amount)
        assert Message.decode(dispatch.raw) == message and dispatch.id == message.id

    async with adapter_for(devnet) as fresh:  # a restarted adapter counts the same nonces
        again = await fresh.fetch_dispatched(second.height, second.height)
        state = await fresh.mailbox_state(second.height)
    assert [d.id for d in again] == [second.id]
    assert state.count == second.message.nonce + 1


async def test_plain_message_has_the_signer_as_sender(devnet: Devnet, funded: None) -> None:
    async with adapter_for(devnet) as adapter:
        tx_hash, ids = await adapter.dispatch_messages(ACCOUNTS[3].private_key_hex, Domain(EVM_DOMAIN),
                                                       BRIDGE, [b"hello cosmos"])
        height, ok = await adapter.tx_result(tx_hash)
        found = [d for d in await adapter.fetch_dispatched(height, height) if d.tx_hash == tx_hash]
    assert ok and [d.id for d in found] == ids
    assert found[0].message.sender == b"\0" * 12 + bytes_of(ACCOUNTS[3].address)
    assert found[0].message.body == b"hello cosmos"


async def test_delivery_cosigned_two_of_three_pays_out_and_is_seen_delivered(devnet: Devnet, funded: None) -> None:
    recipient = devnet_account_key("delivery-recipient").address
    message = token_message(recipient, 4321, nonce=11)
    async with adapter_for(devnet) as adapter:
        assert isinstance(adapter, CosignedDelivery)
        before = await adapter.token_balance("XTST", recipient)
        vault_before = await adapter.token_supply("XTST")
        request = await adapter.cosign_request([message.encode()])
        assert adapter.check_cosign(request) == [message.id]

        for tampered in (token_message(recipient, 4322, nonce=11),
                         token_message(ACCOUNTS[4].address, 4321, nonce=11)):
            other = await adapter.cosign_request([tampered.encode()])
            with pytest.raises(CosignRefused):
                adapter.check_cosign(replace(request, payload=other.payload))
            with pytest.raises(CosignRefused):
                adapter.check_cosign(replace(other, messages=request.messages))
        with pytest.raises(CosignRefused):
            adapter.check_cosign(replace(request, context={**request.context, "fee_amount": "999999999"}))

        assert await adapter.delivered([message.id]) == [False]
        with pytest.raises(TxReverted) as refused:
            await adapter.submit_cosigned(request, [adapter.cosign_with(MEMBERS[1].private_key_hex, request)])
        assert refused.value.reason.startswith("code 4:")
        assert await adapter.token_balance("XTST", recipient) == before

        cosigner = MemberCosigner(adapter, [0, 2])
        adapter._cosigner = cosigner
        submitted = await adapter.submit_delivery(batch_of([message]))
        outcome = await wait_outcome(adapter, submitted)
        assert outcome.state is TxState.CONFIRMED, outcome.reason
        assert outcome.delivered_ids == (message.id,)
        assert len(cosigner.requests) == 1 and cosigner.requests[0].messages == (message.encode(),)
        assert await adapter.token_balance("XTST", recipient) == before + 4321
        assert await adapter.token_supply("XTST") == vault_before - 4321

    async with adapter_for(devnet) as fresh:  # answered from the chain, not from what the adapter sent
        assert await fresh.delivered([message.id, token_message(recipient, 1, 12).id]) == [True, False]
        processed = await fresh.processed_messages(Height(1), await fresh.latest_height())
    assert message.id in [i for i, _ in processed]


async def test_non_token_messages_to_cosmos_are_refused(devnet: Devnet, funded: None) -> None:
    plain = replace(token_message(ACCOUNTS[0].address, 1, 13), body=b"plain")
    forged = replace(token_message(ACCOUNTS[0].address, 1, 14), sender=b"\x01" * 32)
    async with adapter_for(devnet) as adapter:
        with pytest.raises(TxReverted, match="token transfers only"):
            await adapter.estimate_delivery(batch_of([plain]))
        with pytest.raises(TxReverted, match="enrolled token bridge"):
            await adapter.estimate_delivery(batch_of([forged]))
        estimate = await adapter.estimate_delivery(batch_of([token_message(ACCOUNTS[0].address, 1, 15)]))
    assert estimate.gas > 0


async def wait_outcome(adapter: CosmosAdapter, tx: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        outcome = await adapter.confirm(tx)
        if outcome.state is not TxState.PENDING:
            return outcome
        assert time.monotonic() < deadline, "tx stayed pending"
        await asyncio.sleep(0.05)


def verifier_for(net: Devnet, *, other_rpc_urls: tuple[str, ...] = ()) -> CosmosInclusionVerifier:
    config = chain_config(net)
    return CosmosInclusionVerifier("cosmos", net.rpc_url, VAULT, DOMAIN, other_rpc_urls=other_rpc_urls,
                                   trusting_period_s=3600, tokens=tokens_from_config(DOMAIN, config.tokens))


async def finalized_above(adapter: CosmosAdapter, height: int, timeout: float = 20.0) -> Height:
    deadline = time.monotonic() + timeout
    while (finalized := await adapter.finalized_height()) <= height:
        assert time.monotonic() < deadline, f"chain did not pass height {height}"
        await asyncio.sleep(0.05)
    return finalized


async def test_inclusion_verifier_accepts_real_dispatches_and_refuses_forged_and_failed(
        devnet: Devnet, funded: None) -> None:
    recipient = bytes.fromhex("00" * 12 + "ef" * 20)
    too_much = 10 * ESCROW  # more uxtst than exists
    async with adapter_for(devnet) as adapter:
        tx_hash, message_id = await adapter.send_token(ACCOUNTS[1].private_key_hex, "XTST", 777,
                                                       Domain(EVM_DOMAIN), recipient)
        failed = await raw_send(adapter, 4, encode_dispatch_memo(EVM_DOMAIN, BRIDGE, TokenBody(
            DOMAIN, native_home_token("uxtst"), recipient, too_much).encode()), "uxtst", too_much)
        failed_height, failed_ok = await wait_tx(adapter, failed)
        assert not failed_ok
        height, _ = await adapter.tx_result(tx_hash)
        finalized = await finalized_above(adapter, max(height, failed_height))
        dispatch = next(d for d in await adapter.fetch_dispatched(height, height) if d.id == message_id)

    claim = DispatchClaim(dispatch.raw, dispatch.height, dispatch.tx_hash)
    verifier = verifier_for(devnet, other_rpc_urls=(devnet.rpc_url,))
    try:
        with capture_logs() as logs:
            await verifier.verify_dispatches([claim], finalized)
        assert next(e for e in logs if e["event"] == "light_client_anchor")["height"] == 1

        forged_amount = replace(dispatch.message, body=TokenBody(
            DOMAIN, native_home_token("uxtst"), recipient, 778).encode())
        forged_nonce = replace(dispatch.message, nonce=dispatch.message.nonce + 1)
        for forged in (forged_amount, forged_nonce):
            with pytest.raises(InclusionRefused) as refused:
                await verifier.verify_dispatches([replace(claim, raw=forged.encode())], finalized)
            assert refused.value.reason == "message mismatch"

        failed_message = replace(dispatch.message, body=TokenBody(
            DOMAIN, native_home_token("uxtst"), recipient, too_much).encode())
        with pytest.raises(InclusionRefused) as refused:
            await verifier.verify_dispatches(
                [DispatchClaim(failed_message.encode(), failed_height, TxHash(failed))], finalized)
        assert refused.value.reason == "tx failed"

        with pytest.raises(InclusionRefused) as refused:
            await verifier.verify_dispatches([replace(claim, height=Height(claim.height - 1))], finalized)
        assert refused.value.reason == "tx not in block"
        with pytest.raises(InclusionRefused) as refused:
            await verifier.verify_dispatches([claim], Height(claim.height - 1))
        assert refused.value.reason == "above finalized"
    finally:
        await verifier.close()


def lying_http(net: Devnet, lie: Any) -> httpx.AsyncClient:
    """An HTTP client whose answers from host ``liar`` are the devnet's, passed through ``lie(method, result)``;
    other hosts are the devnet as it is."""
    upstream = httpx.AsyncClient(timeout=5)

    async def handle(request: httpx.Request) -> httpx.Response:
        method = request.url.path.strip("/")
        answer = await upstream.get(f"{net.rpc_url}/{method}", params=dict(request.url.params))
        document = answer.json()
        if request.url.host == "liar" and "result" in document:
            document["result"] = lie(method, document["result"])
        return httpx.Response(200, json=document)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_inclusion_verifier_refuses_lying_endpoints(devnet: Devnet, funded: None) -> None:
    async with adapter_for(devnet) as adapter:
        tx_hash, message_id = await adapter.send_token(ACCOUNTS[1].private_key_hex, "XTST", 5,
                                                       Domain(EVM_DOMAIN), bytes(32))
        height, _ = await adapter.tx_result(tx_hash)
        finalized = await finalized_above(adapter, height)
        dispatch = next(d for d in await adapter.fetch_dispatched(height, height) if d.id == message_id)
    claim = DispatchClaim(dispatch.raw, dispatch.height, dispatch.tx_hash)

    def other_app_hash(method: str, result: dict[str, Any]) -> dict[str, Any]:
        if method == "commit":
            result["signed_header"]["header"]["app_hash"] = "AB" * 32
        return result

    def drop_txs(method: str, result: dict[str, Any]) -> dict[str, Any]:
        if method == "block" and int(result["block"]["header"]["height"]) == height:
            result["block"]["data"]["txs"] = result["block"]["data"]["txs"][:-1]
        return result

    def more_gas_used(method: str, result: dict[str, Any]) -> dict[str, Any]:
        if method == "block_results":
            for tx in result.get("txs_results") or []:
                tx["gas_used"] = str(int(tx["gas_used"]) + 1)
        return result

    cases: list[tuple[Any, dict[str, Any], str, str]] = [
        (other_app_hash, {"other_rpc_urls": ("http://liar",)}, "devnet", "endpoints disagree"),
        (drop_txs, {}, "liar", "data hash mismatch"),
        (more_gas_used, {}, "liar", "results hash mismatch"),
    ]
    for lie, options, primary, reason in cases:
        config = chain_config(devnet)
        rpc_url = devnet.rpc_url if primary == "devnet" else "http://liar"
        verifier = CosmosInclusionVerifier(
            "cosmos", rpc_url, VAULT, DOMAIN, trusting_period_s=3600, tokens=tokens_from_config(DOMAIN, config.tokens),
            http=lying_http(devnet, lie), **options)  # light blocks too: the lies touch only what they name
        try:
            with capture_logs() as logs, pytest.raises(InclusionRefused) as refused:
                await verifier.verify_dispatches([claim], finalized)
        finally:
            await verifier.close()
        assert refused.value.reason == reason, lie.__name__
        if reason == "endpoints disagree":
            assert any(e["event"] == "rpc_endpoints_disagree" for e in logs)


async def test_heights_health_capacity_and_protocols(devnet: Devnet, funded: None) -> None:
    async with adapter_for(devnet) as adapter:
        assert isinstance(adapter, ChainAdapter) and isinstance(adapter, MessageSender)
        assert isinstance(adapter, CapacitySource)
        latest = await adapter.latest_height()
        assert latest - 1 <= await adapter.finalized_height() <= await adapter.latest_height()
        health = await adapter.health()
        assert health.healthy and health.latest_height is not None and health.latest_height >= latest
        stats = await adapter.chain_stats(blocks=5)
        assert stats.blocks == 5 and 0 < stats.block_time_s < 5
        assert stats.gas_limit > 0 and 0 <= stats.gas_used_ratio <= 1 and stats.native_decimals == 6
        with pytest.raises(TxNotFound):
            await adapter.tx_result(TxHash("00" * 32))
        assert not isinstance(adapter, ContractCalls)  # no contracts of ours to call on cosmos

    dead = CosmosAdapter("cosmos", chain_config(Devnet("http://127.0.0.1:9", "http://127.0.0.1:9", None)))
    try:
        with pytest.raises(RpcUnavailable):
            await dead.latest_height()
        assert not (await dead.health()).healthy
    finally:
        await dead.close()


def test_memo_formats_round_trip_and_refuse_malformed() -> None:
    from adapters.cosmos.memo import (
        MAX_DELIVERY_IDS,
        MAX_MEMO_CHARS,
        decode_delivery_memo,
        decode_dispatch_memo,
        encode_delivery_memo,
    )

    body = TokenBody(DOMAIN, native_home_token("uxtst"), b"\1" * 32, 10**30).encode()
    memo = encode_dispatch_memo(EVM_DOMAIN, BRIDGE, body)
    assert len(memo) <= MAX_MEMO_CHARS
    decoded = decode_dispatch_memo(memo)
    assert decoded is not None and (decoded.destination, decoded.recipient, decoded.body) == (EVM_DOMAIN, BRIDGE, body)
    assert decode_token_body(body) == TokenBody(DOMAIN, native_home_token("uxtst"), b"\1" * 32, 10**30)
    for bad in ("", "xchain:v1:", "xchain:v1:%%%", "xchain:v2:" + memo[10:], "xchain:v1:AAAA"):
        assert decode_dispatch_memo(bad) is None
    assert decode_token_body(b"\xff" * 128) is None and decode_token_body(body[:-1]) is None
    ids = [MessageId(bytes([i]) * 32) for i in range(MAX_DELIVERY_IDS)]
    delivery = encode_delivery_memo(ids)
    assert len(delivery) <= MAX_MEMO_CHARS and decode_delivery_memo(delivery) == ids
    assert decode_delivery_memo("xchain-delivery:zz") == [] and decode_delivery_memo(memo) == []
    with pytest.raises(ValueError):
        encode_delivery_memo([*ids, ids[0]])


async def test_a_chain_committed_by_less_than_two_thirds_is_refused(tmp_path) -> None:
    """The same chain, but only 2 of its 4 equal validators sign each commit (50% < 2/3): a plain message
    dispatched there is never proven, whatever the node says."""
    base = free_port_block(2)
    process = start_cosmos_devnet(rpc_port=base, rest_port=base + 1, state_dir=tmp_path / "state", block_ms=BLOCK_MS,
                                  signers=2, log_path=tmp_path / "devnet.log")
    weak = Devnet(f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}", process)
    try:
        wait_until_ready(weak.rpc_url, weak.rest_url, timeout=20, process=process)
        async with adapter_for(weak) as adapter:  # a plain message: nobody but the vault holds uxtst there
            tx_hash, (message_id,) = await adapter.dispatch_messages(ACCOUNTS[1].private_key_hex, Domain(EVM_DOMAIN),
                                                                     BRIDGE, [b"on a weak chain"])
            height, _ = await adapter.tx_result(tx_hash)
            finalized = await finalized_above(adapter, height)
            dispatch = next(d for d in await adapter.fetch_dispatched(height, height) if d.id == message_id)
        config = chain_config(weak)
        verifier = CosmosInclusionVerifier("cosmos", weak.rpc_url, VAULT, DOMAIN, trusting_period_s=3600,
                                           tokens=tokens_from_config(DOMAIN, config.tokens))
        try:
            with pytest.raises(InclusionRefused) as refused:
                await verifier.verify_dispatches([DispatchClaim(dispatch.raw, dispatch.height, dispatch.tx_hash)],
                                                 finalized)
        finally:
            await verifier.close()
        assert refused.value.reason == "header not verified"
        assert "no more than 2/3 of the voting power (20/40)" in str(refused.value)
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---- co-signed payouts expire, and validators sign a second payout only once the first can never land --------------

VALIDATOR_IDS = ["0x" + f"{i + 1:02x}" * 20 for i in range(3)]  # the validators' names in the co-sign store


@dataclass
class Validators:
    """The three vault members as validators: a ``CosignService`` on a real SQLite store, over ``adapter``."""

    service: Any
    adapter: CosmosAdapter

    async def sign(self, request: CosignRequest, members: tuple[int, ...] = (0, 2)) -> list[tuple[str, bytes]]:
        return [await self.service.cosign(VALIDATOR_IDS[i], request) for i in members]


def validators_for(adapter: CosmosAdapter, store_path: Any, messages: list[Message]) -> Validators:
    """Validators that indexed and attested ``messages`` (the store as the indexer and attester leave it)."""
    from relayer.daemon.metrics import Metrics
    from relayer.pipeline.cosign import CosignService
    from relayer.store import Store

    store = Store(f"sqlite:///{store_path}")
    found = [DispatchedMessage(m, m.encode(), m.id, Height(1), TxHash("0x" + "00" * 32), i, time.time())
             for i, m in enumerate(messages)]
    store.record_dispatched(found, cursor=(f"origin:{EVM_DOMAIN}", 1), known_destinations={DOMAIN})
    keys = {"cosmos": {VALIDATOR_IDS[i]: MEMBERS[i].private_key_hex for i in range(3)}}
    service = CosignService(store, {"cosmos": adapter}, keys, lambda _v, _o: 10**6, Metrics())
    return Validators(service, adapter)


async def wait_height(adapter: CosmosAdapter, height: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while await adapter.latest_height() < height:
        assert time.monotonic() < deadline, f"chain did not reach height {height}"
        await asyncio.sleep(0.05)


async def test_a_delivery_past_its_timeout_height_is_refused_by_the_chain_and_by_the_validators(
        devnet: Devnet, funded: None) -> None:
    recipient = devnet_account_key("timeout-recipient").address
    message = token_message(recipient, 999, nonce=21)
    async with adapter_for(devnet) as adapter:
        request = await adapter.cosign_request([message.encode()])
        timeout = int(request.context["timeout_height"])
        height = await adapter.latest_height()
        assert height < timeout <= height + 60 + 1  # latest + delivery_timeout_blocks (default 60)

        def altered(**changes: str) -> CosignRequest:
            """The same payout with other terms, re-encoded so its payload is what those terms sign."""
            context = {**request.context, **changes}
            plan = adapter._plan_from_request(replace(request, context=context), CosignRefused)
            return replace(request, payload=plan.sign_bytes(), context=context)

        past = altered(timeout_height=str(height - 1))
        signatures = [adapter.cosign_with(MEMBERS[i].private_key_hex, past) for i in (0, 2)]
        with pytest.raises(TxReverted) as refused:  # the member keys signed it: only the chain stops it
            await adapter.submit_cosigned(past, signatures)
        assert refused.value.reason.startswith("code 30:") and "tx timeout height" in refused.value.reason

        cases = [
            (past, "expired"),
            (altered(timeout_height=str(height + 2 * 60 + 50)), "timeout too far"),
            (altered(sequence=str(int(request.context["sequence"]) - 1)), "stale sequence"),
            (altered(account_number=str(int(request.context["account_number"]) + 1)), "bad context"),
        ]
        for bad, reason in cases:
            with pytest.raises(CosignRefused) as exc:
                await adapter.cosign_terms(bad)
            assert exc.value.reason == reason, (bad.context, exc.value)
        with pytest.raises(CosignRefused) as exc:
            adapter.check_cosign(altered(timeout_height="0"))
        assert exc.value.reason == "no timeout"
        terms = await adapter.cosign_terms(request)
        assert (terms.last_height, terms.sequence) == (timeout, int(request.context["sequence"]))
        assert await adapter.terms_can_land(terms)
        assert await adapter.token_balance("XTST", recipient) == 0

        # the relayer's view: a delivery it sent that is nowhere once its timeout height is committed is dropped
        never = SubmittedTx(TxHash("AB" * 32), 10**6, VAULT, time.time())
        adapter._timeouts[never.tx_hash] = int(await adapter.latest_height()) + 2
        assert (await adapter.confirm(never)).state is TxState.PENDING
        await wait_height(adapter, adapter._timeouts[never.tx_hash])
        dropped = await adapter.confirm(never)
        assert dropped.state is TxState.DROPPED and "timeout height" in dropped.reason


async def test_no_second_payout_while_the_first_can_land_and_one_after_its_timeout(
        devnet: Devnet, funded: None, tmp_path: Any) -> None:
    """Validators co-sign a payout, which is never broadcast; another payout of the message is refused while the
    first can still land, and co-signed once the chain passed the first's timeout height with the message
    undelivered. The second lands; the first, broadcast late, is refused by the chain: paid out once."""
    recipient = devnet_account_key("once-recipient").address
    message = token_message(recipient, 1234, nonce=22)
    async with adapter_for(devnet) as relayer_side:
        relayer_side._timeout_blocks = 8  # 2 s at 250 ms blocks
        validators = validators_for(relayer_side, tmp_path / "validators.db", [message])
        first = await relayer_side.cosign_request([message.encode()])
        first_signatures = await validators.sign(first)
        assert await validators.sign(first) == first_signatures  # the same payload: the same signatures

        await wait_height(relayer_side, await relayer_side.latest_height() + 1)
        second = await relayer_side.cosign_request([message.encode()])
        assert second.payload != first.payload  # another timeout height: another transaction
        for member in range(3):  # every validator: the third never signed, so it may sign (alone it is no quorum)
            if member == 1:
                continue
            with pytest.raises(CosignRefused) as exc:
                await validators.service.cosign(VALIDATOR_IDS[member], second)
            assert exc.value.reason == "already cosigned"
        assert validators.service.metrics.value("validator_cosign_refused_total", chain="cosmos",
                                                reason="already cosigned") == 2

        await wait_height(relayer_side, int(first.context["timeout_height"]))
        third = await relayer_side.cosign_request([message.encode()])
        submitted = await relayer_side.submit_cosigned(third, await validators.sign(third))
        outcome = await wait_outcome(relayer_side, submitted)
        assert outcome.state is TxState.CONFIRMED and outcome.delivered_ids == (message.id,)
        with pytest.raises(TxReverted) as late:  # the chain checks the timeout before the (used) sequence
            await relayer_side.submit_cosigned(first, first_signatures)
        assert late.value.reason.startswith("code 30:")
        with pytest.raises(CosignRefused) as exc:
            await validators.sign(await relayer_side.cosign_request([message.encode()]))
        assert exc.value.reason == "already delivered"
        assert await relayer_side.token_balance("XTST", recipient) == 1234


async def test_a_used_vault_sequence_frees_a_message_whose_payout_never_landed(
        devnet: Devnet, funded: None, tmp_path: Any) -> None:
    """A payout co-signed at sequence s is never broadcast; another message's payout takes s. The chain's sequence
    moved past s with the first message undelivered, so its new payout (at s + 1) is co-signed at once, well
    before the first one's timeout; the stale one can never land."""
    recipient = devnet_account_key("sequence-recipient").address
    held, other = token_message(recipient, 77, nonce=23), token_message(recipient, 88, nonce=24)
    async with adapter_for(devnet) as relayer_side:
        validators = validators_for(relayer_side, tmp_path / "validators.db", [held, other])
        stale = await relayer_side.cosign_request([held.encode()])
        stale_signatures = await validators.sign(stale)
        taking = await relayer_side.cosign_request([other.encode()])
        assert taking.context["sequence"] == stale.context["sequence"]
        outcome = await wait_outcome(relayer_side,
                                     await relayer_side.submit_cosigned(taking, await validators.sign(taking)))
        assert outcome.state is TxState.CONFIRMED

        fresh = await relayer_side.cosign_request([held.encode()])
        assert int(fresh.context["sequence"]) == int(stale.context["sequence"]) + 1
        assert await relayer_side.latest_height() < int(stale.context["timeout_height"])  # not by timeout
        outcome = await wait_outcome(relayer_side,
                                     await relayer_side.submit_cosigned(fresh, await validators.sign(fresh)))
        assert outcome.state is TxState.CONFIRMED and outcome.delivered_ids == (held.id,)
        with pytest.raises(SequenceMismatch) as late:
            await relayer_side.submit_cosigned(stale, stale_signatures)
        assert late.value.expected == int(fresh.context["sequence"]) + 1
        assert await relayer_side.token_balance("XTST", recipient) == 77 + 88
