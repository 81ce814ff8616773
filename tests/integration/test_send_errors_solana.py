"""``relayer send`` from a Solana origin whose sender has no SOL (issue 17's fee refusal, off EVM): before anything is
sent it says what the sender has, what the dispatch or the transfer needs (one signature), and the devnet's airdrop
that funds it; that command works, and then the send goes. The real CLI in a child process on a devnet of its own
(the EVM chains and the Solana devnet)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction

from devnets.devnet import Devnet
from tests.integration.harness import ROOT, free_port_block, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet(tmp_path_factory.mktemp("devnet-send-errors-solana"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", "solana"))
    devnet.up()
    yield devnet
    devnet.down()


def rpc(url: str, method: str, params: list[Any]) -> Any:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()
    assert "error" not in answer, answer
    return answer["result"]


def lamports(url: str, address: str) -> int:
    return int(rpc(url, "getBalance", [address, {"commitment": "confirmed"}])["value"])


def drain(url: str, key: Keypair, to: Pubkey) -> None:
    """Move every lamport of ``key``'s account to ``to``, its fee included: the account then holds nothing."""
    owner = key.pubkey()
    blockhash = Hash.from_string(rpc(url, "getLatestBlockhash", [{"commitment": "confirmed"}])["value"]["blockhash"])

    def message(amount: int) -> Message:
        ix = transfer(TransferParams(from_pubkey=owner, to_pubkey=to, lamports=amount))
        return Message.new_with_blockhash([ix], owner, blockhash)

    held = lamports(url, str(owner))
    fee = rpc(url, "getFeeForMessage", [base64.b64encode(bytes(message(held))).decode(),
                                        {"commitment": "confirmed"}])["value"]
    tx = Transaction([key], message(held - fee), blockhash)
    rpc(url, "sendTransaction", [base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}])
    wait_for(lambda: lamports(url, str(owner)) == 0, 30, "the sender drained")


def send(net: Devnet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relayer.cli", "send", "--devnet", str(net.dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("RELAYER")},
                               "PYTHONPATH": str(ROOT)})


def test_a_solana_sender_without_sol_is_told_what_it_needs_and_how_to_airdrop_some(net: Devnet) -> None:
    solana = net.manifest()["chains"]["solana"]
    url = solana["rpc_url"]
    first, second = solana["accounts"]
    who = first["address"]
    drain(url, Keypair.from_base58_string(first["private_key"]), Pubkey.from_string(second["address"]))
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "requestAirdrop", "params": [who, 10**9]},
                         separators=(",", ":"))
    fund = (f"nothing was sent. Fund it on the devnet (requestAirdrop gives it 1 SOL; or send it some from another of "
            f"the devnet's funded accounts, chains.solana.accounts in {net.manifest_path}):\n"
            f"  curl -s -H 'content-type: application/json' -d '{request}' {url}\n")
    for args, what in ((("--body", "hello"), "the dispatch"), (("--token", "SOLX", "--amount", "1"), "the transfer")):
        done = send(net, "--from", "solana", "--to", "l1", *args)
        assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr, done.stdout + done.stderr
        assert done.stderr == (f"error: the sender {who} has 0 SOL on solana for fees; {what} needs about 0.000005 "
                               f"SOL; {fund}"), done.stderr
        assert lamports(url, who) == 0
    # the command it gives funds it: then the message goes
    subprocess.run(fund.splitlines()[-1].strip(), shell=True, check=True, capture_output=True, timeout=30)
    wait_for(lambda: lamports(url, who) == 10**9, 30, "the airdrop")
    done = send(net, "--from", "solana", "--to", "l1", "--body", "hello")
    assert done.returncode == 0 and "dispatched 0x" in done.stdout, done.stdout + done.stderr
