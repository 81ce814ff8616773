"""EvmAdapter against real anvil chains: dispatch, scan, root, attest, deliver, confirm, replace, recover.

Two automining anvils (origin domain 1000, destination domain 2000) on free loopback ports with our
contracts deployed by ``adapters.evm.deploy``. Keys are anvil's well-known public test keys (see
``adapters.evm.devnet``): devnet only, they guard nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from adapters.base import (
    ChainAdapter,
    Checkpoint,
    DeliveryBatch,
    DeliveryItem,
    DispatchedMessage,
    Height,
    MessageSender,
    RpcUnavailable,
    SignedCheckpoint,
    SubmittedTx,
    TxHash,
    TxOutcome,
    TxReverted,
    TxState,
)
from adapters.checkpoint import CheckpointSigner, sorted_signatures
from adapters.evm import abi, deploy
from adapters.evm.adapter import EvmAdapter, UnknownToken
from adapters.evm.devnet import devnet_key
from adapters.evm.errors import LogQueryTooLarge
from adapters.merkle import MerkleTree, multiproof
from adapters.message import Domain, address_to_bytes32
from config.settings import EvmChainConfig
from tests.integration.anvil import Anvil, start_anvil

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules" / ".bin" / "anvil"
ORIGIN_DOMAIN, DEST_DOMAIN = 1000, 2000

# anvil's public devnet test keys (mnemonic "test test ... junk"): NOT secrets, devnet only
DEPLOYER_KEY = devnet_key(0)
RELAYER_KEY = devnet_key(1)
USER_KEYS = [devnet_key(i) for i in (3, 4, 8)]
VALIDATOR_KEYS = [devnet_key(i) for i in (5, 6, 7)]
THRESHOLD = 2


# anvil processes come from tests/integration/anvil.py


@dataclass
class Chains:
    origin: Anvil
    dest: Anvil
    origin_contracts: dict[str, str]
    dest_contracts: dict[str, str]
    token: str

    def config(self, which: str, **over: object) -> EvmChainConfig:
        node, contracts, domain = (
            (self.origin, self.origin_contracts, ORIGIN_DOMAIN) if which == "origin"
            else (self.dest, self.dest_contracts, DEST_DOMAIN)
        )
        fields: dict[str, object] = {
            "family": "evm", "domain": domain, "chain_id": node.chain_id, "rpc_url": node.url,
            "mailbox": contracts["mailbox"],
            "finality": 0, "confirmation_depth": 1, "log_chunk_blocks": 50, "poll_interval_s": 0.05,
            "request_timeout_s": 5, "token_bridge": contracts["token_bridge"],
            "tokens": {"TST": {"address": self.token, "decimals": 18}} if which == "origin" else {},
        }
        fields.update(over)
        return EvmChainConfig.model_validate(fields)


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chains]:
    logs = tmp_path_factory.mktemp("anvil")
    origin = start_anvil(31401, logs)
    dest = start_anvil(31402, logs)
    try:
        w3o = Web3(HTTPProvider(origin.url, request_kwargs={"timeout": 30}))
        w3d = Web3(HTTPProvider(dest.url, request_kwargs={"timeout": 30}))
        oc = deploy.deploy_core(w3o, DEPLOYER_KEY, ORIGIN_DOMAIN)
        dc = deploy.deploy_core(w3d, DEPLOYER_KEY, DEST_DOMAIN)
        validators = [CheckpointSigner.from_hex(k).address for k in VALIDATOR_KEYS]
        deploy.set_validators(w3d, DEPLOYER_KEY, dc["multisig_ism"], [ORIGIN_DOMAIN], validators, THRESHOLD)
        deploy.enroll_remote_bridges(w3o, DEPLOYER_KEY, oc["token_bridge"], {DEST_DOMAIN: dc["token_bridge"]})
        token = deploy.deploy_test_token(w3o, DEPLOYER_KEY, "Test Token", "TST", 18, 10**24)
        deploy.enroll_routes(w3o, DEPLOYER_KEY, oc["token_bridge"], [deploy.RouteSpec(DEST_DOMAIN, token)])
        for key in USER_KEYS:
            deploy.mint_test_token(w3o, DEPLOYER_KEY, token, Account.from_key(key).address, 10**21)
        yield Chains(origin, dest, oc, dc, token)
    finally:
        origin.stop()
        dest.stop()


@pytest.fixture
async def origin(chains: Chains) -> AsyncIterator[EvmAdapter]:
    adapter = EvmAdapter("origin", chains.config("origin"))
    yield adapter
    await adapter.close()


@pytest.fixture
async def dest(chains: Chains) -> AsyncIterator[EvmAdapter]:
    adapter = EvmAdapter("dest", chains.config("dest"), signer_key=RELAYER_KEY)
    yield adapter
    await adapter.close()


# ---------------------------------------------------------------- helpers
async def dispatch(origin: EvmAdapter, chains: Chains, n: int, key: str = USER_KEYS[0],
                   tag: bytes = b"m") -> list[bytes]:
    recipient = address_to_bytes32(chains.dest_contracts["test_recipient"])
    _, ids = await origin.dispatch_messages(key, DEST_DOMAIN, recipient, [tag + b"-%d" % i for i in range(n)])  # type: ignore[arg-type]
    return ids


async def all_dispatched(origin: EvmAdapter) -> list[DispatchedMessage]:
    return await origin.fetch_dispatched(Height(0), await origin.latest_height())


def signed_checkpoint(mailbox32: bytes, root: bytes, index: int, signers: int = THRESHOLD) -> SignedCheckpoint:
    cp = Checkpoint(ORIGIN_DOMAIN, mailbox32, root, index)  # type: ignore[arg-type]
    sigs = [(s.address, s.sign(cp)) for s in (CheckpointSigner.from_hex(k) for k in VALIDATOR_KEYS[:signers])]
    return SignedCheckpoint(cp, sorted_signatures(sigs))


async def batch_for(origin: EvmAdapter, ids: list[bytes]) -> DeliveryBatch:
    """Everything the relayer does between origin and destination: scan, rebuild the tree, attest, prove."""
    found = await all_dispatched(origin)
    tree = MerkleTree([d.id for d in found])
    state = await origin.mailbox_state(await origin.latest_height())
    assert state.root == tree.root() and state.count == tree.count
    signed = signed_checkpoint(state.mailbox, state.root, state.count - 1)
    by_id = {d.id: d for d in found}
    items = tuple(sorted((DeliveryItem(by_id[i].raw, by_id[i].id, by_id[i].message.nonce) for i in ids),  # type: ignore[index]
                         key=lambda it: it.leaf_index))
    return DeliveryBatch(signed, items, tuple(multiproof(tree, [it.leaf_index for it in items], state.count)))


async def settle(adapter: EvmAdapter, tx: SubmittedTx, timeout: float = 30.0) -> TxOutcome:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = await adapter.confirm(tx)
        if outcome.replacement is not None:
            tx = outcome.replacement
        if outcome.state is not TxState.PENDING:
            return outcome
        await asyncio.sleep(0.05)
    raise AssertionError(f"{tx.tx_hash} not settled within {timeout}s")


# ---------------------------------------------------------------- tests
async def test_protocols(origin: EvmAdapter, dest: EvmAdapter) -> None:
    assert isinstance(origin, ChainAdapter) and isinstance(origin, MessageSender)
    assert RELAYER_KEY[2:] not in repr(dest)
    health = await dest.health()
    assert health.healthy and health.latest_height is not None and health.finalized_height == health.latest_height
    assert health.latency_s < 1.0


async def test_dispatch_then_scan_gives_ids_nonces_and_the_mailbox_root(origin: EvmAdapter, chains: Chains) -> None:
    before = (await origin.mailbox_state(await origin.latest_height())).count
    ids = await dispatch(origin, chains, 7, tag=b"scan")
    assert len(ids) == 7
    found = await all_dispatched(origin)
    assert [d.message.nonce for d in found] == list(range(len(found)))
    mine = found[before:]
    assert [d.id for d in mine] == ids
    assert [d.message.body for d in mine] == [b"scan-%d" % i for i in range(7)]
    assert all(d.message.origin == ORIGIN_DOMAIN and d.message.destination == DEST_DOMAIN for d in mine)
    assert all(d.timestamp > 1e9 and d.tx_hash == mine[0].tx_hash for d in mine)
    height = await origin.latest_height()
    state = await origin.mailbox_state(height)
    assert state.count == len(found) and state.root == MerkleTree([d.id for d in found]).root()
    # the root as of an earlier height matches the prefix
    earlier = await origin.mailbox_state(Height(mine[0].height - 1))
    assert earlier.root == MerkleTree([d.id for d in found[:before]]).root()


async def test_log_chunk_halves_when_the_node_refuses_a_wide_range(origin: EvmAdapter, chains: Chains,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    await dispatch(origin, chains, 3, tag=b"halve")
    expected = [d.id for d in await all_dispatched(origin)]
    adapter = EvmAdapter("origin", chains.config("origin", log_chunk_blocks=64))
    real_rpc = adapter._rpc
    widths: list[int] = []

    async def picky_rpc(method: str, params: list[object]) -> object:
        if method == "eth_getLogs":
            query = params[0]
            assert isinstance(query, dict)
            width = int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
            widths.append(width)
            if width > 8:
                raise LogQueryTooLarge("query returned more than 10000 results", chain="origin")
        return await real_rpc(method, params)

    monkeypatch.setattr(adapter, "_rpc", picky_rpc)
    try:
        found = await adapter.fetch_dispatched(Height(0), await adapter.latest_height())
    finally:
        await adapter.close()
    assert [d.id for d in found] == expected
    span = min(64, widths[0])
    assert widths[1] == span // 2 and all(w <= 8 for w in widths[2:]) and all(w <= span // 2 for w in widths[1:])


async def test_finalized_tag(chains: Chains) -> None:
    adapter = EvmAdapter("origin", chains.config("origin", finality="finalized"))
    try:
        latest, finalized = await adapter.latest_height(), await adapter.finalized_height()
        assert 0 <= finalized <= latest
    finally:
        await adapter.close()


async def test_deliver_confirm_and_redeliver_is_a_no_op(origin: EvmAdapter, dest: EvmAdapter, chains: Chains) -> None:
    ids = await dispatch(origin, chains, 20, tag=b"deliver")
    assert await dest.delivered(ids) == [False] * 20  # type: ignore[arg-type]
    batch = await batch_for(origin, ids)
    estimate = await dest.estimate_delivery(batch)
    assert estimate.gas > 21_000 and estimate.max_fee_per_gas >= estimate.priority_fee_per_gas
    tx = await dest.submit_delivery(batch, estimate)
    outcome = await settle(dest, tx)
    assert outcome.state is TxState.CONFIRMED, outcome
    assert list(outcome.delivered_ids) == ids
    assert outcome.gas_used > 0 and outcome.fee_paid > 0 and outcome.height is not None
    assert await dest.delivered(ids) == [True] * 20  # type: ignore[arg-type]
    processed = await dest.processed_messages(outcome.height, outcome.height)
    assert [i for i, _ in processed] == ids

    again = await settle(dest, await dest.submit_delivery(batch))  # already delivered: skipped, not reverted
    assert again.state is TxState.CONFIRMED and again.delivered_ids == ()


async def test_bad_proof_reverts_with_the_decoded_error(origin: EvmAdapter, dest: EvmAdapter, chains: Chains) -> None:
    ids = await dispatch(origin, chains, 2, tag=b"badproof")
    batch = await batch_for(origin, ids)
    bad = DeliveryBatch(batch.checkpoint, batch.items, (b"\x13" * 32,) + batch.proof[1:])
    with pytest.raises(TxReverted) as err:
        await dest.estimate_delivery(bad)
    assert "InvalidProof" in err.value.reason, err.value.reason
    short = DeliveryBatch(batch.checkpoint, batch.items, batch.proof[:-1])
    with pytest.raises(TxReverted) as err:
        await dest.estimate_delivery(short)
    assert "ProofLengthMismatch" in err.value.reason, err.value.reason
    unsorted = DeliveryBatch(batch.checkpoint, batch.items[::-1], batch.proof)
    with pytest.raises(TxReverted) as err:
        await dest.estimate_delivery(unsorted)
    assert "NoncesNotIncreasing(1)" in err.value.reason, err.value.reason
    too_few = DeliveryBatch(signed_checkpoint(batch.checkpoint.checkpoint.origin_mailbox,
                                              batch.checkpoint.checkpoint.root,
                                              batch.checkpoint.checkpoint.index, signers=1), batch.items, batch.proof)
    with pytest.raises(TxReverted) as err:
        await dest.estimate_delivery(too_few)
    assert "ThresholdNotMet" in err.value.reason, err.value.reason


async def test_nonce_too_low_after_another_process_used_the_key(origin: EvmAdapter, dest: EvmAdapter,
                                                                chains: Chains) -> None:
    ids = await dispatch(origin, chains, 4, tag=b"nonce")
    first = await batch_for(origin, ids[:2])
    assert (await settle(dest, await dest.submit_delivery(first))).state is TxState.CONFIRMED
    # another process sends with the relayer key behind the adapter's back
    w3 = Web3(HTTPProvider(chains.dest.url))
    me = Account.from_key(RELAYER_KEY)
    for _ in range(2):
        tx = {"type": 2, "chainId": chains.dest.chain_id, "to": me.address, "value": 0, "gas": 21_000,
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
              "nonce": w3.eth.get_transaction_count(me.address, "pending")}
        w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(me.sign_transaction(tx).raw_transaction),
                                            timeout=10)
    second = await batch_for(origin, ids[2:])
    sent = await dest.submit_delivery(second)
    assert (sent.nonce == w3.eth.get_transaction_count(me.address) - 1
            or sent.nonce == w3.eth.get_transaction_count(me.address, "pending") - 1)
    assert (await settle(dest, sent)).state is TxState.CONFIRMED
    assert await dest.delivered(ids) == [True] * 4  # type: ignore[arg-type]


async def test_stuck_transaction_is_replaced_with_bumped_fees(origin: EvmAdapter, chains: Chains) -> None:
    now = [time.time()]
    dest = EvmAdapter("dest", chains.config("dest"), signer_key=RELAYER_KEY, clock=lambda: now[0])
    w3 = Web3(HTTPProvider(chains.dest.url))
    try:
        ids = await dispatch(origin, chains, 3, tag=b"stuck")
        batch = await batch_for(origin, ids)
        estimate = await dest.estimate_delivery(batch)
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        tx = await dest.submit_delivery(batch, estimate)
        assert (await dest.confirm(tx)).state is TxState.PENDING and (await dest.confirm(tx)).replacement is None
        now[0] += chains.config("dest").gas.stuck_after_s + 1
        outcome = await dest.confirm(tx)
        assert outcome.state is TxState.PENDING and outcome.replacement is not None
        new = outcome.replacement
        assert new.nonce == tx.nonce and new.tx_hash != tx.tx_hash and new.max_fee >= tx.max_fee * 115 // 100
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        final = await settle(dest, new)
        assert final.state is TxState.CONFIRMED and list(final.delivered_ids) == ids
        # the original is gone for good; asking about it reports the sibling that was mined
        assert (await dest.confirm(tx)).state is TxState.CONFIRMED
    finally:
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        await dest.close()


async def test_unknown_transaction_is_dropped(dest: EvmAdapter) -> None:
    ghost = SubmittedTx(TxHash("0x" + "ab" * 32), 10_000, Account.from_key(RELAYER_KEY).address, time.time())
    assert (await dest.confirm(ghost)).state is TxState.DROPPED


async def test_concurrent_senders_and_token_transfer(origin: EvmAdapter, chains: Chains) -> None:
    results = await asyncio.gather(*(dispatch(origin, chains, 3, key=k, tag=b"k%d" % i)
                                     for i, k in enumerate(USER_KEYS)))
    assert all(len(ids) == 3 for ids in results) and len({i for ids in results for i in ids}) == 9
    results = await asyncio.gather(*(dispatch(origin, chains, 2, key=USER_KEYS[0], tag=b"same%d" % i)
                                     for i in range(4)))
    assert len({i for ids in results for i in ids}) == 8

    user = Account.from_key(USER_KEYS[1]).address
    before = await origin.token_balance("TST", user)
    locked_before = await origin.token_balance("TST", chains.origin_contracts["token_bridge"])
    supply = await origin.token_supply("TST")
    tx, mid = await origin.send_token(USER_KEYS[1], "TST", 5 * 10**18, DEST_DOMAIN, address_to_bytes32(user))  # type: ignore[arg-type]
    assert tx.startswith("0x") and len(mid) == 32
    assert await origin.token_balance("TST", user) == before - 5 * 10**18
    assert await origin.token_balance("TST", chains.origin_contracts["token_bridge"]) == locked_before + 5 * 10**18
    assert await origin.token_supply("TST") == supply
    assert mid in [d.id for d in await all_dispatched(origin)]
    with pytest.raises(UnknownToken, match="known symbols: TST"):
        await origin.token_balance("NOPE", user)


async def test_route_refusals_are_tx_reverted_with_the_contract_error(origin: EvmAdapter, chains: Chains) -> None:
    """A destination with 6 decimals (scale 10**12): send_token refuses a finer amount before sending anything
    (no approval either), with the contract's error as the reason; the same transfer sent straight to the bridge
    is refused by the chain with the decoded custom error; the audit reads answer from the bridge."""
    foreign = 6000
    w3o = Web3(HTTPProvider(chains.origin.url, request_kwargs={"timeout": 30}))
    bridge = chains.origin_contracts["token_bridge"]
    deploy.enroll_remote_bridges(w3o, DEPLOYER_KEY, bridge, {foreign: "0x" + "ab" * 32, 7000: "0x" + "cd" * 32})
    deploy.enroll_routes(w3o, DEPLOYER_KEY, bridge, [deploy.RouteSpec(foreign, chains.token, 10**12)])
    assert await origin.bridge_route(foreign, "TST") == (10**12, deploy.ROUTE_UNBOUNDED)
    assert await origin.bridge_route(7000, "TST") == (0, 0)
    key = USER_KEYS[2]
    sender = Account.from_key(key).address
    to = address_to_bytes32(sender)
    nonce = w3o.eth.get_transaction_count(sender)
    balance = await origin.token_balance("TST", sender)
    with pytest.raises(TxReverted) as refused:
        await origin.send_token(key, "TST", 10**18 + 1, Domain(foreign), to)
    assert refused.value.reason == f"AmountNotRepresentable({foreign},{chains.token},{10**18 + 1},{10**12})"
    with pytest.raises(TxReverted) as no_route:
        await origin.send_token(key, "TST", 10**18, Domain(7000), to)
    assert no_route.value.reason == f"NoRoute(7000,{chains.token})"
    assert w3o.eth.get_transaction_count(sender) == nonce, "a refused transfer sent a transaction"
    assert await origin.token_balance("TST", sender) == balance
    call = abi.encode_transfer_remote(chains.token, foreign, to, 10**18 + 1)
    with pytest.raises(TxReverted) as on_chain:
        await origin.call_contract(key, bridge, call)
    assert (on_chain.value.reason.startswith("AmountNotRepresentable(6000,")
            and "execution reverted" in str(on_chain.value))
    # the solvency audit's reads
    home = address_to_bytes32(chains.token)
    assert await origin.bridge_home_of("TST") == (ORIGIN_DOMAIN, home)
    holding = await origin.bridge_holding(ORIGIN_DOMAIN, home)
    assert holding is not None and not holding.wrapped and holding.decimals == 18
    assert holding.amount == await origin.token_balance("TST", bridge)
    assert await origin.bridge_holding(4242, home) is None


async def test_rpc_down_is_rpc_unavailable(tmp_path: Path) -> None:
    node = start_anvil(31403, tmp_path)
    cfg = EvmChainConfig(family="evm", domain=9, chain_id=31403, rpc_url=node.url, mailbox="0x" + "11" * 20,
                         request_timeout_s=2)
    adapter = EvmAdapter("doomed", cfg, signer_key=RELAYER_KEY)
    try:
        assert await adapter.latest_height() >= 0
        node.stop()
        with pytest.raises(RpcUnavailable):
            await adapter.latest_height()
        with pytest.raises(RpcUnavailable):
            await adapter.fetch_dispatched(Height(0), Height(10))
        with pytest.raises(RpcUnavailable):
            await adapter.delivered([b"\0" * 32])  # type: ignore[list-item]
        assert not (await adapter.health()).healthy
    finally:
        node.stop()
        await adapter.close()


async def test_throughput_figures(origin: EvmAdapter, dest: EvmAdapter, chains: Chains) -> None:
    """Prints fetch_dispatched logs/s over 5,000 logs and processBatch encode+sign time for 200 messages."""
    total = 5_000
    have = (await origin.mailbox_state(await origin.latest_height())).count
    start_height = await origin.latest_height()
    for _ in range(total // 250):
        await dispatch(origin, chains, 250, key=USER_KEYS[2], tag=b"x" * 40)
    end_height = await origin.latest_height()
    fresh = EvmAdapter("origin", chains.config("origin", log_chunk_blocks=2_000))
    try:
        t0 = time.perf_counter()
        found = await fresh.fetch_dispatched(Height(start_height + 1), end_height)
        elapsed = time.perf_counter() - t0
    finally:
        await fresh.close()
    assert len(found) == total and found[0].message.nonce == have
    rate = total / elapsed
    print(f"\nfetch_dispatched: {total} logs in {elapsed * 1000:.0f} ms = {rate:,.0f} logs/s")
    assert rate > 1_000

    ids = [d.id for d in found[:200]]
    batch = await batch_for(origin, ids)
    signer = Account.from_key(RELAYER_KEY)
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        data = abi.encode_process_batch(batch)
        signer.sign_transaction({"type": 2, "chainId": 1, "nonce": 0, "to": chains.dest_contracts["mailbox"],
                                 "data": data,
                                 "value": 0, "gas": 30_000_000, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
        runs.append(time.perf_counter() - t0)
    best = min(runs) * 1000
    print(f"processBatch encode+sign, 200 messages: {best:.1f} ms (calldata {len(data):,} bytes)")
    t0 = time.perf_counter()
    flags = await dest.delivered(ids)  # type: ignore[arg-type]
    print(f"delivered() for {len(ids)} ids: {(time.perf_counter() - t0) * 1000:.1f} ms")
    assert flags == [False] * 200
    if os.environ.get("EVM_DELIVER_200"):
        outcome = await settle(dest, await dest.submit_delivery(batch))
        print(f"delivered 200 in one tx: gas {outcome.gas_used:,}")
        assert outcome.state is TxState.CONFIRMED and len(outcome.delivered_ids) == 200
