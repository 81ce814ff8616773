"""Opposite flows netted off chain and settled on chain per epoch (issue 16), end to end on a devnet of its own (EVM):
USDC is issued natively on every chain, each with a LiquidityPool of 10,000 USDC (epochs of 8 s), and a daemon runs the
validators, the relayer and its netting keeper.

- Symmetric flows l1 <-> rollup_a: every recipient is paid out of the destination's pool (read from the chain), one
  settlement per direction and epoch goes on chain, and once both are applied each pool holds exactly what it held
  before and the supply of the two chains together has not changed.
- A drained pool: a transfer to rollup_b above what its pool holds is deferred, with its reason, never refused; the
  epoch's settlement mints the pool's share back and the keeper releases it: the recipient gets exactly the amount.
- A settlement that fails (rollup_a's pool may no longer mint) waits and is retried by the keeper; once the pool may
  mint again it completes, and nothing was lost.
- The routing API quotes the pool route for USDC, and says when the destination pool cannot pay at once.

After every test the supply audit: the three chains' USDC supply together equals what was issued, every pool holds its
seed (no payout owed, no settlement waiting), read from the chains.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_abi import decode, encode
from web3 import HTTPProvider, Web3

from adapters.evm import abi
from adapters.evm import devnet as evm_devnet
from adapters.message import Domain
from devnets.devnet import Devnet
from relayer.daemon.audit import Auditor
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    evm_devnet_of_its_own,
    on_devnet,
    start_routing_daemon,
    token_balance,
    wait_for,
)

pytestmark = pytest.mark.integration

USDC = 10**6
CHAINS = ("l1", "rollup_a", "rollup_b")
SETTLE_TIMEOUT_S = 90.0
DEPOSITED = abi.topic("Deposited(bytes32,uint32,uint64,bytes32,uint256)")
SETTLEMENT_SENT = abi.topic("SettlementSent(bytes32,uint32,uint64,uint256,uint256)")
FILL_DEFERRED = abi.topic("FillDeferred(uint256,uint32,address,uint256,string)")


@pytest.fixture(scope="module")
def pool_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    with evm_devnet_of_its_own(tmp_path_factory, "devnet-netting") as net:
        yield net


@pytest.fixture(scope="module")
def issued(pool_devnet: Devnet) -> int:
    """USDC issued on the three chains together when the devnet came up."""
    return _supply(pool_devnet)


@pytest.fixture(scope="module")
def daemon(pool_devnet: Devnet, issued: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    process = start_routing_daemon(pool_devnet, Path(tmp_path_factory.mktemp("netting-daemon")), "netting")
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def supply_audit(pool_devnet: Devnet, issued: int, daemon: DaemonProcess) -> Iterator[None]:
    yield
    wait_for(lambda: _audit(pool_devnet, issued) == [], SETTLE_TIMEOUT_S,
             "the supply audit: issued = supply, every pool at its seed, nothing owed or waiting")


def _supply(net: Devnet) -> int:
    return sum(int(on_devnet(net, lambda c, n=n: c.adapters[n].token_supply("USDC"))) for n in CHAINS)


def _pool(net: Devnet, chain: str) -> str:
    return str(net.manifest()["chains"][chain]["tokens"]["USDC"]["pool"])


def _audit(net: Devnet, issued: int) -> list[str]:
    """What the supply audit (``relayer audit``'s pools section) finds wrong; empty: the books balance."""
    async def read(client: DevnetClient) -> Any:
        return await Auditor(client.settings, client.adapters).audit(confirm=False)

    sheet = on_devnet(net, read)
    problems = [f"could not read {e.chain}: {e.error}" for e in sheet.errors]
    usdc = [p for p in sheet.pools if p.symbol == "USDC"]
    assert sorted(p.chain for p in usdc) == sorted(CHAINS)
    if (supply := sum(p.supply for p in usdc)) != issued:
        problems.append(f"supply {supply} != issued {issued}")
    problems += [f"{p.chain}: pool holds {p.pooled}, owes {p.owed}" for p in usdc
                 if p.pooled != evm_devnet.POOL_LIQUIDITY or p.owed]
    return problems


def _send(net: Devnet, origin: str, destination: str, amount: int, recipient: str) -> bytes:
    async def go(client: DevnetClient) -> bytes:
        _tx, mid = await client.adapters[origin].pool_deposit(  # type: ignore[attr-defined]
            client.key(origin), "USDC", amount, Domain(client.domain(destination)),
            bytes.fromhex(recipient.removeprefix("0x")))
        return bytes(mid)
    return bytes(on_devnet(net, go))


def _logs(net: Devnet, chain: str, topic: str, from_block: int) -> list[Any]:
    w3 = Web3(HTTPProvider(net.manifest()["chains"][chain]["rpc_url"]))
    return list(w3.eth.get_logs({"address": Web3.to_checksum_address(_pool(net, chain)), "fromBlock": from_block,
                                 "topics": [topic]}))


def _height(net: Devnet, chain: str) -> int:
    return int(Web3(HTTPProvider(net.manifest()["chains"][chain]["rpc_url"])).eth.block_number)


def _recipients(n: int) -> list[str]:
    return ["0x" + secrets.token_hex(20) for _ in range(n)]


def test_symmetric_flows_are_paid_from_the_pools_and_settled_once_per_direction_and_epoch(pool_devnet) -> None:
    start = {c: _height(pool_devnet, c) for c in ("l1", "rollup_a")}
    to_a, to_l1 = _recipients(3), _recipients(3)
    for i in range(3):
        _send(pool_devnet, "l1", "rollup_a", (10 + i) * USDC, to_a[i])
        _send(pool_devnet, "rollup_a", "l1", (10 + i) * USDC, to_l1[i])
    wait_for(lambda: all(token_balance(pool_devnet, "rollup_a", "USDC", r) == (10 + i) * USDC
                         for i, r in enumerate(to_a))
             and all(token_balance(pool_devnet, "l1", "USDC", r) == (10 + i) * USDC for i, r in enumerate(to_l1)),
             SETTLE_TIMEOUT_S, "every recipient paid out of the destination's pool")
    deposits = {c: _logs(pool_devnet, c, DEPOSITED, start[c]) for c in start}
    epochs = {c: {int.from_bytes(bytes(lg["topics"][3]), "big") for lg in deposits[c]} for c in start}
    assert [len(deposits[c]) for c in start] == [3, 3]

    with_flow = epochs["l1"] | epochs["rollup_a"]

    def settlements(chain: str) -> list[int]:
        return [int.from_bytes(bytes(lg["topics"][3]), "big")
                for lg in _logs(pool_devnet, chain, SETTLEMENT_SENT, start[chain])]
    wait_for(lambda: all(set(settlements(c)) >= with_flow for c in start), SETTLE_TIMEOUT_S,
             "a settlement from each side for every epoch with flow")
    for chain in start:  # exactly one per direction and epoch with flow, never one per transfer
        assert sorted(settlements(chain)) == sorted(with_flow), chain


def test_a_drained_pool_defers_the_payout_and_pays_it_after_the_epochs_settlement(pool_devnet) -> None:
    start = _height(pool_devnet, "rollup_b")
    (recipient,) = _recipients(1)
    amount = evm_devnet.POOL_LIQUIDITY + 250 * USDC  # more than rollup_b's pool holds
    _send(pool_devnet, "l1", "rollup_b", amount, recipient)
    wait_for(lambda: _logs(pool_devnet, "rollup_b", FILL_DEFERRED, start) != [], SETTLE_TIMEOUT_S,
             "the payout deferred on rollup_b")
    (deferred,) = _logs(pool_devnet, "rollup_b", FILL_DEFERRED, start)
    _amount, reason = decode(["uint256", "string"], bytes(deferred["data"]))
    assert reason == "pool short"
    assert token_balance(pool_devnet, "rollup_b", "USDC", recipient) in (0, amount)  # never a part of it
    wait_for(lambda: token_balance(pool_devnet, "rollup_b", "USDC", recipient) == amount, SETTLE_TIMEOUT_S,
             "the deferred payout released after the settlement")


def _set_minter(net: Devnet, chain: str, allowed: bool) -> None:
    """The deployer (USDC's owner on the devnet; a public anvil test key) grants or revokes the pool's minting."""
    c = net.manifest()["chains"][chain]
    w3 = Web3(HTTPProvider(c["rpc_url"]))
    account = w3.eth.account.from_key(evm_devnet.devnet_key(evm_devnet.DEPLOYER))
    data = abi.selector("setMinter(address,bool)") + encode(["address", "bool"], [_pool(net, chain), allowed])
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
          "to": Web3.to_checksum_address(c["tokens"]["USDC"]["address"]), "data": data, "gas": 100_000,
          "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "value": 0, "type": 2}
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt["status"] == 1


def _settlement_waiting(net: Devnet, chain: str, remote: str) -> list[str]:
    """The reasons rollup_a's pool gave for waiting on the remote's settlements since the test began."""
    topic = abi.topic("SettlementWaiting(uint32,uint64,string)")
    return [decode(["string"], bytes(lg["data"]))[0] for lg in _logs(net, chain, topic, 0)]


def test_a_settlement_that_fails_is_retried_and_loses_nothing(pool_devnet, daemon) -> None:
    (recipient,) = _recipients(1)
    _set_minter(pool_devnet, "rollup_a", False)
    try:
        _send(pool_devnet, "l1", "rollup_a", 40 * USDC, recipient)
        wait_for(lambda: token_balance(pool_devnet, "rollup_a", "USDC", recipient) == 40 * USDC, SETTLE_TIMEOUT_S,
                 "the payout out of rollup_a's pool")
        wait_for(lambda: "mint or burn failed" in _settlement_waiting(pool_devnet, "rollup_a", "l1"),
                 SETTLE_TIMEOUT_S, "rollup_a's settlement failing to mint, and waiting")
        state = on_devnet(pool_devnet, lambda c: c.adapters["rollup_a"].pool_state("USDC"))
        assert state.balance == evm_devnet.POOL_LIQUIDITY - 40 * USDC  # the mint did not happen, nothing else moved
    finally:
        _set_minter(pool_devnet, "rollup_a", True)
    wait_for(lambda: on_devnet(pool_devnet, lambda c: c.adapters["rollup_a"].pool_state("USDC")).balance
             == evm_devnet.POOL_LIQUIDITY, SETTLE_TIMEOUT_S, "the settlement completed by the keeper's retry")


def test_the_routing_api_quotes_the_pool_route_and_says_when_it_must_wait(pool_devnet, daemon) -> None:
    def quote(amount: str) -> dict[str, Any]:
        answer = httpx.post(f"{daemon.api_url}/v1/quote", json={"kind": "xchain", "token": "USDC", "amount": amount,
                                                                "from_chain": "l1", "chains": ["rollup_a"]}, timeout=10)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    small = quote("25")
    assert small["route"]["chain"] == "rollup_a"
    assert small["pool"]["route"] == "pool" and small["pool"]["pays_at_once"] is True, small["pool"]
    assert small["pool"]["destination_pool_free"] == "10000"
    large = quote("20000")
    assert large["pool"]["pays_at_once"] is False and "waits" in large["pool"]["reason"], large["pool"]
    tst = httpx.post(f"{daemon.api_url}/v1/quote", json={"kind": "xchain", "token": "TST", "amount": "1",
                                                         "from_chain": "l1", "chains": ["rollup_a"]}, timeout=10).json()
    assert tst["pool"] is None  # TST takes the token bridge


def test_an_operator_signed_usdc_intent_takes_the_pool_route(pool_devnet, daemon) -> None:
    from router.client import RoutingClient

    start = _height(pool_devnet, "l1")
    (recipient,) = _recipients(1)
    with RoutingClient(daemon.api_url) as client:
        [intent_id] = client.submit_batch([{"kind": "xchain", "token": "USDC", "from_chain": "l1",
                                            "chains": ["rollup_a"], "amount": "12", "recipient": recipient}])["ids"]
        done = client.wait(intent_id, until={"delivered"}, timeout=SETTLE_TIMEOUT_S)
    assert done["chain"] == "rollup_a" and done["message_id"]
    assert token_balance(pool_devnet, "rollup_a", "USDC", recipient) == 12 * USDC
    deposits = _logs(pool_devnet, "l1", DEPOSITED, start)  # the operator's transfer went into l1's pool
    assert [bytes(lg["topics"][1]).hex() for lg in deposits] == [done["message_id"].removeprefix("0x")]
