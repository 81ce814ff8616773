"""An L1 reorg under a posted output root (issue 16's failure case), on two bare automining anvils.

One anvil is the L1 (finality: 3 confirmations, one RPC node: ``trust_single_rpc``), the other a rollup that settles
on it (``settlement = {rule = "posted", challenge_window_s = 0}``) with the core contracts deployed, so its Mailbox
dispatches real messages. Each test deploys its own OutputOracle on the L1 (anvil dev accounts as proposer and
challenger) and builds the relayer's adapter and the validator's verifier from the config as the daemon does
(``build_adapters``, ``build_inclusion_verifier``). Blocks are mined by the transactions themselves and by ``evm_mine``:
every height below is known, nothing waits on a clock.

- The correct output root for a rollup block above a dispatch is posted, but its L1 block has fewer than 3
  confirmations: the relayer's finalized height of the rollup is still 0 and the validator's proof is pending (``no
  output root yet``). The L1 then reorgs those 3 blocks away (``anvil_reorg``: replaced by empty blocks; the posting
  transaction is gone, not back in the pool) and is mined past the confirmations: the finalized height stays 0 and the
  proof stays pending, since the root the L1 lost was never final. Posted again and 3 blocks deep, it covers the
  dispatch: the finalized height reaches its rollup block, the dispatch is proven and a forged one refused.
- A wrong root (``0x11 * 32``) final on the L1 for a later rollup block: the relayer's finalized height raises
  ``FinalityViolation`` (``output root mismatch``) and keeps raising; the validator refuses a claim only that output
  covers with the same reason, while a claim under the earlier, correct output is still proven.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_typing import HexStr
from web3 import HTTPProvider, Web3
from web3.types import BlockIdentifier

from adapters.base import (
    ChainAdapter,
    DispatchClaim,
    FinalityViolation,
    Height,
    InclusionPending,
    InclusionRefused,
    TxHash,
)
from adapters.evm import abi
from adapters.evm.adapter import EvmAdapter
from adapters.evm.deploy import deploy_core, deploy_output_oracle
from adapters.evm.devnet import MESSAGE_PASSER, address_of, devnet_key
from adapters.evm.settlement import RpcCall, encode_propose, rollup_output_root
from adapters.message import Domain
from config.errors import ConfigError
from config.loader import load_settings_dict
from config.settings import Settings
from light_clients.ethereum.rollup import RollupInclusionVerifier
from relayer.daemon.composition import build_adapters, build_inclusion_verifier, origin_trust
from tests.integration.anvil import Anvil, start_anvil

pytestmark = pytest.mark.integration

L1_ID, ROLLUP_ID = 41_201, 41_202  # chain ids, also the domains
CONFIRMATIONS = 3  # the L1's finality rule
DEPLOYER, SENDER, VALIDATOR, PROPOSER, CHALLENGER = 0, 3, 5, 8, 9  # anvil dev accounts (public test keys)
WRONG_ROOT = b"\x11" * 32


@dataclass
class Chains:
    l1: Anvil
    rollup: Anvil
    l1_w3: Web3
    rollup_w3: Web3
    l1_mailbox: str
    rollup_mailbox: str
    recipient: str  # TestRecipient on the rollup


@dataclass
class Stack:
    """One test's oracle and what the daemon builds from the config naming it."""

    chains: Chains
    settings: Settings
    oracle: str
    adapter: EvmAdapter  # the rollup's, whose finalized_height is RollupOutputFinality's
    verifier: RollupInclusionVerifier


@pytest.fixture(scope="module")
def chains() -> Iterator[Chains]:
    nodes: list[Anvil] = []
    try:
        nodes.append(start_anvil(L1_ID))
        nodes.append(start_anvil(ROLLUP_ID))
        l1, rollup = nodes
        l1_w3, rollup_w3 = (Web3(HTTPProvider(n.url, request_kwargs={"timeout": 20})) for n in nodes)
        l1_core = deploy_core(l1_w3, devnet_key(DEPLOYER), L1_ID)
        rollup_core = deploy_core(rollup_w3, devnet_key(DEPLOYER), ROLLUP_ID)
        yield Chains(l1, rollup, l1_w3, rollup_w3, l1_core["mailbox"], rollup_core["mailbox"],
                     rollup_core["test_recipient"])
    finally:
        for node in reversed(nodes):
            node.stop()


def _config(chains: Chains, oracle: str, *, trust_single_rpc: bool = True) -> dict[str, Any]:
    """The two chains; the validator attests the rollup (its L1 is no origin of its own here)."""
    return {
        "chains": {
            "l1": {"family": "evm", "domain": L1_ID, "chain_id": L1_ID, "rpc_url": chains.l1.url,
                   "mailbox": chains.l1_mailbox, "finality": CONFIRMATIONS, "trust_single_rpc": trust_single_rpc},
            "rollup": {"family": "evm", "domain": ROLLUP_ID, "chain_id": ROLLUP_ID, "rpc_url": chains.rollup.url,
                       "mailbox": chains.rollup_mailbox,
                       "settlement": {"l1": "l1", "output_oracle": oracle, "rule": "posted", "challenge_window_s": 0}},
        },
        "security": {"threshold": 1, "validators": [{"address": address_of(devnet_key(VALIDATOR)),
                                                     "url": "http://127.0.0.1:9/validators/0"}]},
        "validator": {"origins": ["rollup"]},
    }


@pytest.fixture
async def stack(chains: Chains) -> AsyncIterator[Stack]:
    oracle = deploy_output_oracle(chains.l1_w3, devnet_key(DEPLOYER), address_of(devnet_key(PROPOSER)),
                                  address_of(devnet_key(CHALLENGER)), 0)
    _mine(chains.l1_w3, CONFIRMATIONS)  # the empty oracle is itself final before anything is posted
    settings = load_settings_dict(_config(chains, oracle))
    adapters: dict[str, ChainAdapter] = build_adapters(settings, with_signers=False)
    verifier = build_inclusion_verifier("rollup", settings.chains["rollup"], settings.settlement_l1("rollup"))
    try:
        adapter = adapters["rollup"]
        assert isinstance(adapter, EvmAdapter) and adapter.settlement is not None
        assert isinstance(verifier, RollupInclusionVerifier)
        yield Stack(chains, settings, oracle, adapter, verifier)
    finally:
        if verifier is not None:
            await verifier.close()
        for each in adapters.values():
            await each.close()


# ---------------------------------------------------------------------------------------------------------- helpers
def _mine(w3: Web3, blocks: int) -> None:
    for _ in range(blocks):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _raw(w3: Web3, method: str, params: list[Any]) -> Any:
    reply = w3.provider.make_request(method, params)  # type: ignore[arg-type]
    assert "error" not in reply, f"{method}: {reply['error']}"
    return reply["result"]


def _rpc(url: str) -> RpcCall:
    async def call(method: str, params: list[Any]) -> Any:
        async with httpx.AsyncClient(timeout=10.0) as client:
            reply = (await client.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                                  "params": params})).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    return call


def _post(stack: Stack, root: bytes, l2_block: int) -> dict[str, Any]:
    """The proposer's ``proposeL2Output(root, l2_block)`` on the L1, mined (automine): its receipt."""
    w3 = stack.chains.l1_w3
    proposer = Account.from_key(devnet_key(PROPOSER))
    tx = {"chainId": L1_ID, "nonce": w3.eth.get_transaction_count(proposer.address, "pending"),
          "to": Web3.to_checksum_address(stack.oracle), "data": encode_propose(root, l2_block), "gas": 200_000,
          "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "value": 0, "type": 2}
    sent = w3.eth.send_raw_transaction(proposer.sign_transaction(tx).raw_transaction)
    receipt = dict(w3.eth.wait_for_transaction_receipt(sent, timeout=20, poll_latency=0.02))
    assert receipt["status"] == 1, receipt
    return receipt


def _outputs_at(stack: Stack, block: BlockIdentifier) -> int:
    """The oracle's ``nextOutputIndex()`` at L1 block ``block``, as the L1 node answers it."""
    data = stack.chains.l1_w3.eth.call({"to": Web3.to_checksum_address(stack.oracle),
                                        "data": abi.selector("nextOutputIndex()")}, block)
    return int.from_bytes(data, "big")


async def _dispatch(stack: Stack, body: bytes) -> DispatchClaim:
    """A message dispatched from the rollup's Mailbox, as the claim the indexer would make of it."""
    tx_hash, (mid,) = await stack.adapter.dispatch_messages(devnet_key(SENDER), Domain(L1_ID),
                                                            bytes.fromhex(stack.chains.recipient[2:]), [body])
    receipt = stack.chains.rollup_w3.eth.get_transaction_receipt(HexStr(tx_hash))
    (entry,) = [lg for lg in receipt["logs"] if lg["topics"][0].to_0x_hex() == abi.DISPATCH_TOPIC]
    raw = abi.decode_single_bytes(bytes(entry["data"]))
    assert Web3.keccak(raw) == mid
    return DispatchClaim(raw, Height(int(receipt["blockNumber"])), TxHash(tx_hash))


def _forged(claim: DispatchClaim) -> DispatchClaim:
    return DispatchClaim(claim.raw[:-1] + bytes([claim.raw[-1] ^ 0xFF]), claim.height, claim.tx_hash)


async def _pending_reason(stack: Stack, claims: list[DispatchClaim]) -> str:
    with pytest.raises(InclusionPending) as pending:
        await stack.verifier.verify_dispatches(claims, Height(0))
    return pending.value.reason


async def _refused(stack: Stack, claims: list[DispatchClaim]) -> InclusionRefused:
    with pytest.raises(InclusionRefused) as refused:
        await stack.verifier.verify_dispatches(claims, Height(0))
    assert not isinstance(refused.value, InclusionPending), f"pending, not refused: {refused.value}"
    return refused.value


async def _lag_blocks(stack: Stack) -> float:
    """How far the newest output at the L1's head is behind the rollup's tip (the relayer's lag metric)."""
    assert stack.adapter.settlement is not None
    lag = await stack.adapter.settlement.lag(stack.chains.rollup_w3.eth.block_number, time.time())
    return lag["output_lag_blocks"]


# ---------------------------------------------------------------------------------------------------------- tests
def test_the_validator_starts_on_this_config_only_with_a_trust_source_for_the_l1(chains: Chains) -> None:
    """The L1 has no beacon_url and no verify_rpc_urls: the start-up rule wants trust_single_rpc there."""
    oracle = "0x" + "42" * 20
    (trust,) = origin_trust(load_settings_dict(_config(chains, oracle)))
    assert (trust.chain, trust.source) == ("rollup", "single_rpc") and "settlement.l1" in trust.reason
    with pytest.raises(ConfigError) as refused:
        origin_trust(load_settings_dict(_config(chains, oracle, trust_single_rpc=False)))
    assert refused.value.path == "chains.rollup.settlement" and "trust_single_rpc = true" in str(refused.value)


async def test_a_root_the_l1_reorged_away_proves_nothing_until_posted_again(stack: Stack) -> None:
    l1_w3, rollup_w3 = stack.chains.l1_w3, stack.chains.rollup_w3
    claim = await _dispatch(stack, b"under a root the L1 loses")
    _mine(rollup_w3, 2)  # the output covers two blocks above the dispatch: the headers between are linked down
    covered = rollup_w3.eth.block_number
    assert covered == claim.height + 2
    root = await rollup_output_root(_rpc(stack.chains.rollup.url), MESSAGE_PASSER, covered)
    assert await stack.adapter.finalized_height() == 0
    assert await _lag_blocks(stack) == covered  # nothing posted yet

    # 1. posted, 0 then 2 confirmations: at the L1's head, not in its finalized block
    posting = _post(stack, root, covered)
    posted_in = int(posting["blockNumber"])
    assert l1_w3.eth.block_number == posted_in and _outputs_at(stack, "latest") == 1
    assert await _lag_blocks(stack) == rollup_w3.eth.block_number - covered  # the head sees it
    for confirmations in (0, 2):
        _mine(l1_w3, confirmations)
        assert await stack.verifier.l1.node_finalized_height(CONFIRMATIONS) == posted_in - CONFIRMATIONS + confirmations
        assert await stack.adapter.finalized_height() == 0
        assert await _pending_reason(stack, [claim]) == "no output root yet"
    assert l1_w3.eth.block_number == posted_in + 2

    # 2. the L1 replaces its last 3 blocks (all not final) with empty ones: the posting is gone, not pending again
    lost = l1_w3.eth.get_block(posted_in)
    assert _raw(l1_w3, "anvil_reorg", [CONFIRMATIONS, []]) is None
    replaced = l1_w3.eth.get_block(posted_in)
    assert l1_w3.eth.block_number == posted_in + 2
    assert replaced["hash"] != lost["hash"] and replaced["transactions"] == []
    assert replaced["parentHash"] == lost["parentHash"]  # the fork point is the last block the rule called final
    assert _raw(l1_w3, "eth_getTransactionReceipt", [posting["transactionHash"].to_0x_hex()]) is None
    assert _raw(l1_w3, "txpool_content", []) == {"pending": {}, "queued": {}}
    assert _outputs_at(stack, "latest") == 0 and _outputs_at(stack, posted_in) == 0
    assert await _lag_blocks(stack) == rollup_w3.eth.block_number  # the head no longer has it either
    _mine(l1_w3, CONFIRMATIONS)  # the replaced blocks are now final
    assert await stack.verifier.l1.node_finalized_height(CONFIRMATIONS) == posted_in + 2
    assert await stack.adapter.finalized_height() == 0
    assert await _pending_reason(stack, [claim]) == "no output root yet"
    # the validator's L1 light client walked the new blocks, linked to what it had verified before the reorg
    assert stack.verifier.l1.verified_hash(posted_in) == bytes(replaced["hash"])

    # 3. posted again: final at its 3rd confirmation, not before
    reposted_in = int(_post(stack, root, covered)["blockNumber"])
    assert reposted_in == posted_in + 6
    _mine(l1_w3, CONFIRMATIONS - 1)
    assert await stack.adapter.finalized_height() == 0
    assert await _pending_reason(stack, [claim]) == "no output root yet"
    _mine(l1_w3, 1)
    assert await stack.verifier.l1.node_finalized_height(CONFIRMATIONS) == reposted_in
    assert await stack.adapter.finalized_height() == covered
    await stack.verifier.verify_dispatches([claim], Height(0))
    assert (await _refused(stack, [_forged(claim)])).reason == "dispatch not in block"
    assert (await _refused(stack, [claim, _forged(claim)])).reason == "dispatch not in block"


async def test_a_wrong_root_final_on_the_l1_halts_the_relayer_and_is_refused_by_the_validator(stack: Stack) -> None:
    l1_w3, rollup_w3 = stack.chains.l1_w3, stack.chains.rollup_w3
    good = await _dispatch(stack, b"under the correct root")
    _post(stack, await rollup_output_root(_rpc(stack.chains.rollup.url), MESSAGE_PASSER, int(good.height)),
          int(good.height))
    _mine(l1_w3, CONFIRMATIONS)
    assert await stack.adapter.finalized_height() == good.height
    await stack.verifier.verify_dispatches([good], Height(0))

    bad = await _dispatch(stack, b"under a wrong root")
    _mine(rollup_w3, 1)
    wrong_block = rollup_w3.eth.block_number
    assert wrong_block == bad.height + 1
    assert await rollup_output_root(_rpc(stack.chains.rollup.url), MESSAGE_PASSER, wrong_block) != WRONG_ROOT
    wrong_in = int(_post(stack, WRONG_ROOT, wrong_block)["blockNumber"])
    _mine(l1_w3, CONFIRMATIONS - 1)  # posted, not final: not yet read, let alone checked
    assert await stack.adapter.finalized_height() == good.height
    assert await _pending_reason(stack, [bad]) == "no output root yet"

    _mine(l1_w3, 1)
    assert await stack.verifier.l1.node_finalized_height(CONFIRMATIONS) == wrong_in
    for _ in range(2):  # found once, raised on every call after (the indexer halts the origin on it)
        with pytest.raises(FinalityViolation) as violation:
            await stack.adapter.finalized_height()
        assert violation.value.reason == "output root mismatch" and violation.value.height == wrong_block
        assert "0x" + WRONG_ROOT.hex() in str(violation.value)
    assert (await _refused(stack, [bad])).reason == "output root mismatch"
    assert (await _refused(stack, [good, bad])).reason == "output root mismatch"
    # a dispatch the earlier, correct output covers is still proven from it
    await stack.verifier.verify_dispatches([good], Height(0))
