"""Rollups whose finality follows the L1 (issue 16), end to end on a devnet of its own (EVM, ``rollup_finality =
optimistic``: the devnet proposer posts each rollup's output roots to its OutputOracle on the L1 every 4 rollup blocks,
challenge window 4 s), with a daemon (validators and relayer) on it.

- A message from rollup_a is delivered on the L1, and not before the output root covering its dispatch had sat the
  challenge window in the L1 (both times read from the chains).
- The validator's proof (light_clients.ethereum.rollup, built as the daemon builds it): a real dispatch is proven
  from the L1's light client down to its receipt; a forged message at the same height is refused; a height no final
  output covers waits (pending).
- The proposer stopped: the lag metric grows, and a message sent meanwhile waits; the proposer restarted: it is
  delivered, once.
- A bad output root posted on the L1 for rollup_b (the proposer's key, a rogue proposer): the validator's proof
  refuses it with reason ``output root mismatch``, the daemon halts rollup_b (relayer_origin_halted 1), a message from
  it is not delivered, and rollup_a is not affected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_abi import decode, encode
from eth_account import Account
from web3 import HTTPProvider, Web3

from adapters.base import DispatchClaim, Height, InclusionPending, InclusionRefused, TxHash
from adapters.evm import abi
from adapters.evm import devnet as evm_devnet
from adapters.evm.settlement import encode_propose
from config.loader import load_settings
from devnets.devnet import Devnet
from relayer.daemon.composition import build_inclusion_verifier
from tests.integration.harness import (
    DaemonProcess,
    delivered_on,
    dispatch_to_test_recipient,
    evm_devnet_of_its_own,
    start_routing_daemon,
    wait_for,
)

pytestmark = pytest.mark.integration

RELAY_TIMEOUT_S = 60.0
OUTPUT_AFTER = abi.selector("getL2OutputIndexAfter(uint256)")
GET_OUTPUT = abi.selector("getL2Output(uint256)")


@pytest.fixture(scope="module")
def rollup_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    with evm_devnet_of_its_own(tmp_path_factory, "devnet-rollup-settlement", rollup_finality="optimistic") as net:
        yield net


@pytest.fixture(scope="module")
def daemon(rollup_devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = start_routing_daemon(rollup_devnet, Path(tmp_path_factory.mktemp("rollup-daemon")), "rollup")
    yield process
    process.stop()


def _w3(devnet: Devnet, chain: str) -> Web3:
    return Web3(HTTPProvider(devnet.manifest()["chains"][chain]["rpc_url"]))


def _oracle(devnet: Devnet, rollup: str) -> str:
    return str(devnet.manifest()["chains"][rollup]["settlement"]["output_oracle"])


def _covering_output(devnet: Devnet, rollup: str, height: int) -> tuple[int, int, int]:
    """(index, L1 timestamp, l2 block number) of the oracle's lowest output covering ``height``, read now."""
    l1, oracle = _w3(devnet, "l1"), _oracle(devnet, rollup)
    (index,) = decode(["uint256"], l1.eth.call({"to": oracle, "data": OUTPUT_AFTER + encode(["uint256"], [height])}))
    _root, timestamp, number = decode(["bytes32", "uint128", "uint128"],
                                      l1.eth.call({"to": oracle, "data": GET_OUTPUT + encode(["uint256"], [index])}))
    return int(index), int(timestamp), int(number)


def _dispatch(devnet: Devnet, origin: str, mid: bytes) -> DispatchClaim:
    """The Dispatch of ``mid`` on ``origin``, as a claim: the message, its block and transaction."""
    w3 = _w3(devnet, origin)
    mailbox = devnet.manifest()["chains"][origin]["contracts"]["mailbox"]
    for entry in w3.eth.get_logs({"address": mailbox, "fromBlock": 0, "topics": [abi.DISPATCH_TOPIC]}):
        raw = abi.decode_single_bytes(bytes(entry["data"]))
        if Web3.keccak(raw) == mid:
            return DispatchClaim(raw, Height(int(entry["blockNumber"])), TxHash(entry["transactionHash"].to_0x_hex()))
    raise AssertionError(f"no Dispatch of 0x{mid.hex()} on {origin}")


def _delivery_time(devnet: Devnet, destination: str, mid: bytes) -> int:
    """The timestamp of the block where ``destination``'s mailbox processed ``mid``."""
    w3 = _w3(devnet, destination)
    mailbox = devnet.manifest()["chains"][destination]["contracts"]["mailbox"]
    logs = w3.eth.get_logs({"address": mailbox, "fromBlock": 0, "topics": [abi.PROCESS_TOPIC, "0x" + mid.hex()]})
    assert len(logs) == 1, f"processed {len(logs)} times"
    return int(w3.eth.get_block(logs[0]["blockNumber"])["timestamp"])


def _metric(api_url: str, name: str, chain: str) -> float | None:
    for line in httpx.get(f"{api_url}/metrics", timeout=5).text.splitlines():
        if line.startswith(f'{name}{{chain="{chain}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def _send(devnet: Devnet, origin: str, body: bytes) -> bytes:
    key = devnet.manifest()["chains"][origin]["accounts"][0]["private_key"]  # public devnet test key
    (mid,) = dispatch_to_test_recipient(devnet, key, origin, "l1", [body])
    return mid


def _verify(devnet: Devnet, daemon: DaemonProcess, origin: str, claims: list[DispatchClaim]) -> None:
    """The validator's proof of ``claims``, built from the daemon's config as the daemon builds it."""
    settings = load_settings(daemon.config, env={})

    async def go() -> None:
        verifier = build_inclusion_verifier(origin, settings.chains[origin], settings.settlement_l1(origin))
        assert verifier is not None
        try:
            await verifier.verify_dispatches(claims, Height(0))
        finally:
            await verifier.close()

    asyncio.run(go())


def test_a_rollup_message_is_delivered_only_after_its_output_root_sat_the_challenge_window(rollup_devnet,
                                                                                          daemon) -> None:
    mid = _send(rollup_devnet, "rollup_a", b"after the window")
    wait_for(lambda: delivered_on(rollup_devnet, "l1", mid), RELAY_TIMEOUT_S, "delivery on l1")
    height = int(_dispatch(rollup_devnet, "rollup_a", mid).height)
    _index, posted_at, covered = _covering_output(rollup_devnet, "rollup_a", height)
    window = rollup_devnet.manifest()["chains"]["rollup_a"]["settlement"]["challenge_window_s"]
    assert covered >= height
    assert _delivery_time(rollup_devnet, "l1", mid) >= posted_at + window


def test_the_validator_proves_a_dispatch_from_the_l1_and_refuses_a_forged_one(rollup_devnet, daemon) -> None:
    body = b"proven from the L1"
    mid = _send(rollup_devnet, "rollup_a", body)
    wait_for(lambda: delivered_on(rollup_devnet, "l1", mid), RELAY_TIMEOUT_S, "delivery on l1")
    claim = _dispatch(rollup_devnet, "rollup_a", mid)
    _verify(rollup_devnet, daemon, "rollup_a", [claim])
    forged = claim.raw[:-len(body)] + b"forged from the L1"[:len(body)]
    with pytest.raises(InclusionRefused) as refused:
        _verify(rollup_devnet, daemon, "rollup_a", [DispatchClaim(forged, claim.height, claim.tx_hash)])
    assert refused.value.reason == "dispatch not in block"
    far = Height(_w3(rollup_devnet, "rollup_a").eth.block_number + 10_000)
    with pytest.raises(InclusionPending) as pending:
        _verify(rollup_devnet, daemon, "rollup_a", [DispatchClaim(claim.raw, far, claim.tx_hash)])
    assert pending.value.reason == "no output root yet"


def test_a_stopped_proposer_shows_as_lag_and_holds_delivery_until_it_posts_again(rollup_devnet, daemon) -> None:
    rollup_devnet.stop_proposer()
    try:
        mid = _send(rollup_devnet, "rollup_a", b"waits for the proposer")
        wait_for(lambda: (_metric(daemon.api_url, "relayer_rollup_output_lag_blocks", "rollup_a") or 0) > 20, 60,
                 "the output lag to pass 20 rollup blocks")
        assert not delivered_on(rollup_devnet, "l1", mid)
    finally:
        rollup_devnet.start_proposer()
    wait_for(lambda: delivered_on(rollup_devnet, "l1", mid), RELAY_TIMEOUT_S, "delivery once the proposer posts")
    _delivery_time(rollup_devnet, "l1", mid)  # processed exactly once
    wait_for(lambda: (_metric(daemon.api_url, "relayer_rollup_output_lag_blocks", "rollup_a") or 99) < 20, 60,
             "the output lag to fall back")


def _post_bad_root(devnet: Devnet, rollup: str, l2_block: int) -> None:
    """A rogue proposer (the proposer's own key, a public devnet test key) posts a root no rollup block has."""
    l1 = _w3(devnet, "l1")
    proposer = Account.from_key(evm_devnet.devnet_key(evm_devnet.PROPOSER))
    tx = {"chainId": l1.eth.chain_id, "nonce": l1.eth.get_transaction_count(proposer.address, "pending"),
          "to": Web3.to_checksum_address(_oracle(devnet, rollup)), "data": encode_propose(b"\x11" * 32, l2_block),
          "gas": 200_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "value": 0, "type": 2}
    receipt = l1.eth.wait_for_transaction_receipt(
        l1.eth.send_raw_transaction(proposer.sign_transaction(tx).raw_transaction))
    assert receipt["status"] == 1


def test_a_bad_output_root_is_refused_and_halts_only_that_rollup(rollup_devnet, daemon) -> None:
    rollup_devnet.stop_proposer()
    try:
        mid = _send(rollup_devnet, "rollup_b", b"under a bad root")
        claim = _dispatch(rollup_devnet, "rollup_b", mid)
        _post_bad_root(rollup_devnet, "rollup_b", _w3(rollup_devnet, "rollup_b").eth.block_number + 4)
        wait_for(lambda: _metric(daemon.api_url, "relayer_origin_halted", "rollup_b") == 1.0, 60,
                 "the daemon to halt rollup_b")
        refusal: InclusionRefused | None = None

        def refused() -> bool:
            nonlocal refusal
            try:
                _verify(rollup_devnet, daemon, "rollup_b", [claim])
            except InclusionPending:
                return False  # the bad output's challenge window is still open
            except InclusionRefused as exc:
                refusal = exc
                return True
            raise AssertionError("the validator proved a dispatch under a bad output root")

        wait_for(refused, 60, "the validator's proof to reach the bad output")
        assert refusal is not None and refusal.reason == "output root mismatch", refusal
        assert not delivered_on(rollup_devnet, "l1", mid)
        assert _metric(daemon.api_url, "relayer_origin_halted", "rollup_a") in (None, 0.0)
    finally:
        rollup_devnet.start_proposer()
    other = _send(rollup_devnet, "rollup_a", b"rollup_a goes on")
    wait_for(lambda: delivered_on(rollup_devnet, "l1", other), RELAY_TIMEOUT_S, "rollup_a still delivering")
    assert not delivered_on(rollup_devnet, "l1", mid)
