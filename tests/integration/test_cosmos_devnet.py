"""The project's Cosmos devnet as a real process on loopback ports: cosmpy (unmodified) talks to its REST
gateway, the SDK's refusals come back with the SDK's codes, a multisig account spends, every block is
verified by the project's Tendermint light client, a restart continues the chain, and at genesis the token
denom (``uxtst``) is held by the escrow multisig alone.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cosmpy.aerial.client import LedgerClient, NetworkConfig
from cosmpy.aerial.client.bank import create_bank_send_msg
from cosmpy.aerial.tx import SigningCfg, Transaction, TxFee
from cosmpy.aerial.wallet import LocalWallet
from cosmpy.crypto.address import Address
from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import TxBody, TxRaw
from cosmpy.protos.tendermint.abci.types_pb2 import ExecTxResult

from devnets.cosmos import (
    GenesisSettings,
    build_multisig_send_tx,
    genesis_accounts,
    genesis_manifest,
    multisig_address,
    multisig_pub_key,
    start_cosmos_devnet,
    wait_until_ready,
)
from devnets.cosmos.accounts import bech32_address
from light_clients.tendermint import LightBlock, Success, VerifyOptions, verify, verify_commit
from light_clients.tendermint.hashing import merkle_root
from light_clients.tendermint.rpc_json import (
    parse_block_response,
    parse_commit_response,
    parse_genesis_validators,
    parse_validators_response,
)
from light_clients.tendermint.timestamps import now_unix_nanos
from tests.integration.harness import free_port_block

CHAIN_ID = "xchain-devnet-1"
BLOCK_MS = 250
ACCOUNTS = genesis_accounts(GenesisSettings())
MULTISIG_MEMBERS = [ACCOUNTS[i].private_key for i in (2, 3, 4)]
MULTISIG = multisig_pub_key(2, [bytes(k.public_key.public_key_bytes) for k in MULTISIG_MEMBERS])
ESCROW_ADDRESS = bech32_address(multisig_address(MULTISIG), "cosmos")  # the 2-of-3 multisig holds all uxtst
ESCROW_BALANCE = 777_000
SETTINGS = GenesisSettings(escrow_address=ESCROW_ADDRESS, escrow_balance=ESCROW_BALANCE)
OPTIONS = VerifyOptions.from_seconds(trusting_period=3600, clock_drift=10)


@dataclass
class RunningDevnet:
    rpc_url: str
    rest_url: str
    process: Any
    state_dir: Path
    rpc_port: int
    rest_port: int

    def rpc(self, method: str, **params: Any) -> Any:
        body = httpx.get(f"{self.rpc_url}/{method}", params=params, timeout=5).json()
        assert "result" in body, body
        return body["result"]

    def height(self) -> int:
        return int(self.rpc("status")["sync_info"]["latest_block_height"])

    def wait_for_height(self, height: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.height() < height:
            assert time.monotonic() < deadline, f"chain did not reach height {height}"
            time.sleep(0.05)

    def wait_for_tx(self, tx_hash: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = httpx.get(f"{self.rpc_url}/tx", params={"hash": "0x" + tx_hash}, timeout=5).json()
            if "result" in body:
                return dict(body["result"])
            assert time.monotonic() < deadline, f"tx {tx_hash} not included"
            time.sleep(0.05)

    def broadcast(self, tx_bytes: bytes) -> dict[str, Any]:
        body = {"tx_bytes": base64.b64encode(tx_bytes).decode(), "mode": "BROADCAST_MODE_SYNC"}
        response = httpx.post(f"{self.rest_url}/cosmos/tx/v1beta1/txs", json=body, timeout=5)
        response.raise_for_status()
        return dict(response.json()["tx_response"])

    def account(self, address: str) -> tuple[int, int]:
        account = httpx.get(f"{self.rest_url}/cosmos/auth/v1beta1/accounts/{address}", timeout=5).json()[
            "account"
        ]
        return int(account["account_number"]), int(account["sequence"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def launch(state_dir: Path, *, signers: int | None = None) -> RunningDevnet:
    base = free_port_block(2)
    process = start_cosmos_devnet(
        rpc_port=base,
        rest_port=base + 1,
        state_dir=state_dir,
        block_ms=BLOCK_MS,
        signers=signers,
        log_path=state_dir.parent / f"{state_dir.name}.log",
        escrow=(ESCROW_ADDRESS, ESCROW_BALANCE),
    )
    net = RunningDevnet(
        f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}", process, state_dir, base, base + 1
    )
    wait_until_ready(net.rpc_url, net.rest_url, timeout=20, process=process)
    return net


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDevnet]:
    net = launch(tmp_path_factory.mktemp("cosmos") / "state")
    yield net
    net.stop()


def ledger(net: RunningDevnet) -> LedgerClient:
    config = NetworkConfig(
        chain_id=CHAIN_ID,
        url=f"rest+{net.rest_url}",
        fee_minimum_gas_price=0.01,
        fee_denomination="ustake",
        staking_denomination="ustake",
    )
    return LedgerClient(config, query_interval_secs=1)


def wallet(index: int) -> LocalWallet:
    return LocalWallet(ACCOUNTS[index].private_key, prefix="cosmos")


def signed_send(
    sender: LocalWallet,
    *,
    account_number: int,
    sequence: int,
    to: str,
    amount: int,
    denom: str = "ustake",
    fee: str = "1000ustake",
    gas: int = 200_000,
    chain_id: str = CHAIN_ID,
    memo: str = "",
) -> bytes:
    tx = Transaction()
    tx.add_message(create_bank_send_msg(sender.address(), Address(to), amount, denom))
    tx.seal(SigningCfg.direct(sender.public_key(), sequence), fee=TxFee(amount=fee, gas_limit=gas), memo=memo)
    tx.sign(sender.signer(), chain_id, account_number)
    tx.complete()
    return bytes(tx.tx.SerializeToString())


def test_manifest_lists_public_test_keys_and_validators() -> None:
    manifest = genesis_manifest(SETTINGS)
    assert "PUBLIC DEVNET TEST KEYS" in manifest["warning"]
    assert [a["address"] for a in manifest["accounts"]] == [k.address for k in ACCOUNTS]
    assert all(a["address"].startswith("cosmos1") for a in manifest["accounts"])
    assert all(a["balances"] == {"ustake": SETTINGS.fee_balance} for a in manifest["accounts"])
    assert manifest["escrow"] == {"address": ESCROW_ADDRESS, "balances": {"uxtst": ESCROW_BALANCE}}
    assert len(manifest["validators"]) == 4


def test_at_genesis_only_the_escrow_holds_the_token_denom(tmp_path: Path) -> None:
    """A fresh chain: every genesis account holds the fee denom and no ``uxtst``; the escrow holds all of it (the
    bank supply equals its balance), as the genesis document the node serves says too."""
    net = launch(tmp_path / "state")
    try:
        client = ledger(net)
        for account in ACCOUNTS:
            assert client.query_bank_balance(Address(account.address), "uxtst") == 0, account.name
            assert client.query_bank_balance(Address(account.address), "ustake") == SETTINGS.fee_balance
        assert client.query_bank_balance(Address(ESCROW_ADDRESS), "uxtst") == ESCROW_BALANCE
        supply = httpx.get(f"{net.rest_url}/cosmos/bank/v1beta1/supply/by_denom", params={"denom": "uxtst"},
                           timeout=5).json()
        assert supply == {"amount": {"denom": "uxtst", "amount": str(ESCROW_BALANCE)}}
        bank = net.rpc("genesis")["genesis"]["app_state"]["bank"]
        holders = {b["address"] for b in bank["balances"] if any(c["denom"] == "uxtst" for c in b["coins"])}
        assert holders == {ESCROW_ADDRESS}
        assert {b["address"] for b in bank["balances"]} == {a.address for a in ACCOUNTS} | {ESCROW_ADDRESS}
        assert {"denom": "uxtst", "amount": str(ESCROW_BALANCE)} in bank["supply"]
    finally:
        net.stop()


def test_cosmpy_sends_tokens_with_a_memo_found_by_hash_and_by_search(devnet: RunningDevnet) -> None:
    client = ledger(devnet)
    sender, recipient = wallet(0), ACCOUNTS[1].address
    assert client.query_chain_id() == CHAIN_ID
    received_before = client.query_bank_balance(Address(recipient), "ustake")
    before = client.query_bank_balance(sender.address(), "ustake")

    submitted = client.send_tokens(Address(recipient), 1234, "ustake", sender, memo="xchain devnet memo")
    submitted.wait_to_complete(timeout=20, poll_period=0.1)
    response = submitted.response
    assert response is not None and response.code == 0 and response.height > 0
    fee = int(response.events["tx"]["fee"].removesuffix("ustake"))
    assert fee > 0
    assert client.query_bank_balance(sender.address(), "ustake") == before - 1234 - fee
    assert client.query_bank_balance(Address(recipient), "ustake") == received_before + 1234
    assert response.events["transfer"]["amount"] == "1234ustake"
    assert response.events["message"]["module"] == "bank"
    assert client.query_tx(submitted.tx_hash).hash == submitted.tx_hash

    found = devnet.wait_for_tx(submitted.tx_hash)
    assert found["hash"] == submitted.tx_hash and int(found["height"]) == response.height
    raw = base64.b64decode(found["tx"])
    assert hashlib.sha256(raw).hexdigest().upper() == submitted.tx_hash
    assert TxBody.FromString(TxRaw.FromString(raw).body_bytes).memo == "xchain devnet memo"
    types = [event["type"] for event in found["tx_result"]["events"]]
    for expected in ("coin_spent", "coin_received", "transfer", "message", "tx"):
        assert expected in types

    by_json_rpc = httpx.post(
        devnet.rpc_url,
        json={
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tx",
            "params": {"hash": base64.b64encode(bytes.fromhex(submitted.tx_hash)).decode()},
        },
        timeout=5,
    ).json()
    assert by_json_rpc["id"] == 7 and by_json_rpc["result"]["hash"] == submitted.tx_hash

    sender_address = str(sender.address())
    for query in (
        f"tx.height={response.height}",
        f"message.sender='{sender_address}'",
        f"transfer.recipient='{recipient}' AND tx.height={response.height}",
    ):
        result = devnet.rpc("tx_search", query=f'"{query}"')
        assert submitted.tx_hash in [tx["hash"] for tx in result["txs"]], query
    rest = httpx.get(
        f"{devnet.rest_url}/cosmos/tx/v1beta1/txs",
        params={"query": f"message.sender='{sender_address}'"},
        timeout=5,
    ).json()
    assert any(r["txhash"] == submitted.tx_hash for r in rest["tx_responses"])
    assert rest["txs"][0]["body"]["memo"] == "xchain devnet memo"


def test_refusals_carry_the_sdk_codes(devnet: RunningDevnet) -> None:
    sender = wallet(2)
    number, sequence = devnet.account(str(sender.address()))
    to = ACCOUNTS[3].address

    wrong_sequence = devnet.broadcast(
        signed_send(sender, account_number=number, sequence=sequence + 5, to=to, amount=1)
    )
    assert (wrong_sequence["code"], wrong_sequence["codespace"]) == (32, "sdk")
    assert f"account sequence mismatch, expected {sequence}, got {sequence + 5}" in wrong_sequence["raw_log"]

    bad_signature = devnet.broadcast(
        signed_send(sender, account_number=number + 1, sequence=sequence, to=to, amount=1)
    )
    assert bad_signature["code"] == 4
    assert bad_signature["raw_log"] == (
        f"signature verification failed; please verify account number ({number}), sequence ({sequence}) "
        f"and chain-id ({CHAIN_ID}): unauthorized"
    )
    wrong_chain = devnet.broadcast(
        signed_send(sender, account_number=number, sequence=sequence, to=to, amount=1, chain_id="other-chain")
    )
    assert wrong_chain["code"] == 4

    low_fee = devnet.broadcast(
        signed_send(sender, account_number=number, sequence=sequence, to=to, amount=1, fee="1ustake")
    )
    assert (
        low_fee["code"] == 13 and "insufficient fees; got: 1ustake required: 500ustake" in low_fee["raw_log"]
    )

    no_gas = devnet.broadcast(
        signed_send(
            sender, account_number=number, sequence=sequence, to=to, amount=1, fee="10ustake", gas=1000
        )
    )
    assert no_gas["code"] == 11 and "out of gas in location" in no_gas["raw_log"]
    assert devnet.account(str(sender.address())) == (number, sequence)

    too_much = signed_send(  # a user holds no uxtst at all
        sender, account_number=number, sequence=sequence, to=to, amount=1, denom="uxtst"
    )
    accepted = devnet.broadcast(too_much)
    assert accepted["code"] == 0 and accepted["txhash"] == hashlib.sha256(too_much).hexdigest().upper()
    included = devnet.wait_for_tx(accepted["txhash"])
    assert included["tx_result"]["code"] == 5 and included["tx_result"]["codespace"] == "sdk"
    assert "insufficient funds" in included["tx_result"]["log"]
    assert devnet.account(str(sender.address())) == (number, sequence + 1)  # fee and sequence are kept

    rpc_refusal = devnet.rpc(
        "broadcast_tx_sync",
        tx="0x" + signed_send(sender, account_number=number, sequence=0, to=to, amount=1).hex(),
    )
    assert rpc_refusal["code"] == 32


def test_two_of_three_multisig_sends_with_two_signatures_and_not_with_one(devnet: RunningDevnet) -> None:
    """The escrow multisig (2 of accounts 2, 3, 4) pays out of its genesis uxtst."""
    members = MULTISIG_MEMBERS
    address = ESCROW_ADDRESS
    client = ledger(devnet)
    client.send_tokens(Address(address), 5_000_000, "ustake", wallet(1)).wait_to_complete(
        timeout=20, poll_period=0.1
    )
    number, sequence = devnet.account(address)
    recipient = ACCOUNTS[0].address

    def multisig_send(signing: list[int]) -> bytes:
        return build_multisig_send_tx(
            chain_id=CHAIN_ID, threshold=2, member_keys=members, signing_members=signing,
            account_number=number, sequence=sequence, from_address=address, to_address=recipient,
            amount=1000, denom="uxtst", fee_amount=1000, fee_denom="ustake", gas_limit=200_000, memo="multisig",
        )  # fmt: skip

    one = devnet.broadcast(multisig_send([1]))
    assert one["code"] == 4 and "signature verification failed" in one["raw_log"]
    two = devnet.broadcast(multisig_send([0, 2]))
    assert two["code"] == 0, two["raw_log"]
    result = devnet.wait_for_tx(two["txhash"])["tx_result"]
    assert result["code"] == 0
    assert client.query_bank_balance(Address(address), "uxtst") == ESCROW_BALANCE - 1000
    account = httpx.get(f"{devnet.rest_url}/cosmos/auth/v1beta1/accounts/{address}", timeout=5).json()[
        "account"
    ]
    assert account["pub_key"]["@type"] == "/cosmos.crypto.multisig.LegacyAminoPubKey"
    assert account["sequence"] == str(sequence + 1)


def light_block(net: RunningDevnet, height: int) -> LightBlock:
    signed_header = parse_commit_response(net.rpc("commit", height=height))
    validators = parse_validators_response(net.rpc("validators", height=height))
    block_id, header = parse_block_response(net.rpc("block", height=height))
    assert header == signed_header.header and block_id == signed_header.commit.block_id
    return LightBlock(signed_header, validators, validators)


def test_every_block_verifies_with_the_light_client(devnet: RunningDevnet) -> None:
    sender = wallet(4)
    number, sequence = devnet.account(str(sender.address()))
    txs = [
        signed_send(
            sender, account_number=number, sequence=sequence + i, to=ACCOUNTS[0].address, amount=10 + i
        )
        for i in range(3)
    ]
    hashes = [devnet.broadcast(tx)["txhash"] for tx in txs]
    tx_heights = sorted({int(devnet.wait_for_tx(tx_hash)["height"]) for tx_hash in hashes})
    devnet.wait_for_height(tx_heights[-1] + 2)
    top = devnet.height() - 1

    genesis_validators = parse_genesis_validators(devnet.rpc("genesis"))
    blocks = {h: light_block(devnet, h) for h in range(1, top + 1)}
    assert verify_commit(blocks[1].signed_header, genesis_validators) == Success()
    now = now_unix_nanos()
    for height in range(1, top):
        assert verify(blocks[height], blocks[height + 1], OPTIONS, now) == Success(), height
    assert verify(blocks[1], blocks[top], OPTIONS, now) == Success()

    included: set[str] = set()
    for tx_height in tx_heights:
        block = devnet.rpc("block", height=tx_height)["block"]
        raw_txs = [base64.b64decode(tx) for tx in block["data"]["txs"]]
        included |= {hashlib.sha256(tx).hexdigest().upper() for tx in raw_txs}
        expected_data_hash = merkle_root([hashlib.sha256(tx).digest() for tx in raw_txs])
        assert blocks[tx_height].header.data_hash == expected_data_hash

        results = devnet.rpc("block_results", height=tx_height)["txs_results"]
        leaves = [
            ExecTxResult(
                code=r["code"],
                data=base64.b64decode(r["data"] or ""),
                gas_wanted=int(r["gas_wanted"]),
                gas_used=int(r["gas_used"]),
            ).SerializeToString()
            for r in results
        ]
        assert blocks[tx_height + 1].header.last_results_hash == merkle_root(leaves)
        assert blocks[tx_height + 1].header.last_block_id == blocks[tx_height].commit.block_id
    assert included >= set(hashes)


def test_restart_continues_the_chain_with_balances_intact(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    net = launch(state_dir, signers=3)
    try:
        client = ledger(net)
        recipient = Address(ACCOUNTS[2].address)
        client.send_tokens(recipient, 4242, "ustake", wallet(0)).wait_to_complete(timeout=20, poll_period=0.1)
        balance = client.query_bank_balance(recipient, "ustake")
        seen_height = net.height()
        seen_block_id = net.rpc("block", height=seen_height)["block_id"]
    finally:
        net.stop()
    restarted = launch(state_dir, signers=3)
    try:
        restarted.wait_for_height(seen_height + 2)
        assert restarted.rpc("block", height=seen_height)["block_id"] == seen_block_id
        assert ledger(restarted).query_bank_balance(recipient, "ustake") == balance
        assert ledger(restarted).query_bank_balance(Address(ESCROW_ADDRESS), "uxtst") == ESCROW_BALANCE
        blocks = {h: light_block(restarted, h) for h in range(1, restarted.height() + 1)}
        signatures = blocks[1].commit.signatures
        assert sum(1 for sig in signatures if sig.signature) == 3 and len(signatures) == 4
        now = now_unix_nanos()
        for height in range(1, max(blocks)):
            assert verify(blocks[height], blocks[height + 1], OPTIONS, now) == Success(), height
    finally:
        restarted.stop()
