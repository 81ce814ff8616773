"""``relayer send`` says in words why a send cannot go, before anything is sent (issue 17: the newcomer's first ten
minutes), on a devnet of its own (EVM chains only): a sender without the token (with the exact command that bridges
some in from its home, which then works), a sender on the token's home without enough, a token the origin does not
carry, an amount finer than the origin's decimals, a sender without gas money (with the exact command that funds it,
which then works). Each is the real CLI in a child process: exit 1, the exact words, no traceback, and the sender's
nonce unmoved."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from adapters.base import NativeCoin, SendPlan
from adapters.evm import devnet as evm_devnet
from adapters.evm.adapter import EvmAdapter
from adapters.message import Domain, address_to_bytes32
from config.loader import load_settings
from config.settings import EvmChainConfig
from devnets.devnet import Devnet
from tests.integration.harness import ROOT, DaemonProcess, free_port_block, write_daemon_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    devnet = Devnet(tmp_path_factory.mktemp("devnet-send-errors"), base_port=free_port_block(3),
                    api_port=free_port_block(1), families=("evm",))
    devnet.up()
    yield devnet
    devnet.down()


def relayer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relayer.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, check=False,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("RELAYER")},
                               "PYTHONPATH": str(ROOT)})


def send(net: Devnet, *args: str) -> subprocess.CompletedProcess[str]:
    return relayer("send", "--devnet", str(net.dir), *args)


def chain(net: Devnet, name: str) -> dict[str, Any]:
    return net.manifest()["chains"][name]


def sender(net: Devnet, name: str) -> str:
    return str(chain(net, name)["accounts"][0]["address"])


def nonce(net: Devnet, name: str) -> int:
    return int(evm_devnet.rpc_call(chain(net, name)["rpc_url"], "eth_getTransactionCount",
                                   [sender(net, name), "pending"]), 16)


def refused(net: Devnet, origin: str, *args: str) -> str:
    """``relayer send --from origin ARGS``: exit 1, no traceback, the sender's nonce on the origin unmoved; its
    stderr."""
    before = nonce(net, origin)
    done = send(net, "--from", origin, *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and done.stdout == "", done.stdout + done.stderr
    assert nonce(net, origin) == before, "something was sent"
    return done.stderr


def test_a_sender_without_the_token_is_told_what_it_holds_and_how_to_bridge_some_in(net: Devnet,
                                                                                  tmp_path: Path) -> None:
    who = sender(net, "rollup_a")  # the devnet funds its users with TST on l1 only
    for destination in ("l1", "rollup_b"):
        err = refused(net, "rollup_a", "--to", destination, "--token", "TST", "--amount", "1")
        assert err == (f"error: the sender {who} holds 0 TST on rollup_a (needs 1); nothing was sent. TST's home is "
                       f"l1: bridge some to rollup_a first:\n"
                       f"  relayer send --from l1 --to rollup_a --token TST --amount 1 --wait --devnet {net.dir}\n")
    # a config of its own given with -c is named in the command too (the devnet's own is the default)
    config = tmp_path / "relayer.toml"
    config.write_text(net.config_path.read_text())
    err = refused(net, "rollup_a", "--to", "l1", "--token", "TST", "--amount", "2.5", "-c", str(config))
    assert err.endswith(f"holds 0 TST on rollup_a (needs 2.5); nothing was sent. TST's home is l1: bridge some to "
                        f"rollup_a first:\n  relayer send --from l1 --to rollup_a --token TST --amount 2.5 --wait "
                        f"--devnet {net.dir} -c {config}\n"), err


def test_a_sender_on_the_tokens_home_is_told_where_the_funded_accounts_are(net: Devnet) -> None:
    who, other = (a["address"] for a in chain(net, "l1")["accounts"])
    err = refused(net, "l1", "--to", "rollup_a", "--token", "TST", "--amount", "2000000")
    assert err == (f"error: the sender {who} holds 1000000 TST on l1 (needs 2000000); nothing was sent. l1 is TST's "
                   f"home, so nothing can be bridged in; the devnet funded its accounts on l1 with TST "
                   f"(chains.l1.accounts in {net.manifest_path}; relayer send sends from the first): {who} (the "
                   f"sender) holds 1000000; {other} holds 1000000 TST. Send less, or move some to the sender from "
                   f"another account\n")


def test_an_unknown_token_names_the_chains_that_carry_it_and_what_the_origin_carries(net: Devnet,
                                                                                    tmp_path: Path) -> None:
    err = refused(net, "rollup_a", "--to", "l1", "--token", "DOGE", "--amount", "1")
    assert err == (f"error: --token DOGE is not known on rollup_a, which carries TST, USDC; no chain in "
                   f"{net.config_path} carries DOGE; nothing was sent\n")
    # a config whose rollup_a carries no USDC
    text = net.config_path.read_text()
    section = text.index("[chains.rollup_a]")
    usdc = re.compile(r", USDC = \{[^}]*\}")
    config = tmp_path / "relayer.toml"
    config.write_text(text[:section] + usdc.sub("", text[section:], count=1))
    err = refused(net, "rollup_a", "--to", "l1", "--token", "USDC", "--amount", "1", "-c", str(config))
    assert err == ("error: --token USDC is not known on rollup_a, which carries TST; USDC is on l1, rollup_b; "
                   "nothing was sent\n")


def test_an_amount_finer_than_the_origins_decimals_is_refused_in_the_routes_words(net: Devnet) -> None:
    err = refused(net, "l1", "--to", "rollup_a", "--token", "USDC", "--amount", "1.0000001")
    assert err == ("error: cannot send 1.0000001 USDC from l1 to rollup_a: l1 holds USDC in steps of 0.000001 "
                   "(6 decimals); send a multiple of 0.000001; nothing was sent\n")
    err = refused(net, "l1", "--to", "rollup_b", "--token", "TST", "--amount", "0.0000000000000000001")
    assert err == ("error: cannot send 0.0000000000000000001 TST from l1 to rollup_b: l1 holds TST in steps of "
                   "0.000000000000000001 (18 decimals); send a multiple of 0.000000000000000001; nothing was sent\n")


def test_a_sender_without_gas_money_is_told_what_it_has_what_it_needs_and_how_to_fund_it(net: Devnet) -> None:
    l1 = chain(net, "l1")
    who = sender(net, "l1")
    wei = evm_devnet.rpc_call(l1["rpc_url"], "eth_getBalance", [who, "latest"])
    evm_devnet.rpc_call(l1["rpc_url"], "anvil_setBalance", [who, "0x0"])  # it still holds TST and USDC
    try:
        fund = (f"nothing was sent. Fund it on the devnet (anvil_setBalance gives it 1 ETH; or send it some from "
                f"another of the devnet's funded accounts, chains.l1.accounts in {net.manifest_path}):\n"
                f"  curl -s -H 'content-type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":"
                f"\"anvil_setBalance\",\"params\":[\"{who}\",\"0xde0b6b3a7640000\"]}}' {l1['rpc_url']}\n")
        cases = [(("--to", "rollup_a", "--token", "TST", "--amount", "1"), "the approval and the transfer need"),
                 (("--to", "rollup_b", "--token", "USDC", "--amount", "1"), "the approval and the deposit need"),
                 (("--to", "rollup_a", "--body", "hello"), "the dispatch needs")]
        for args, what in cases:
            err = refused(net, "l1", *args)
            head = re.fullmatch(rf"error: the sender {who} has 0 ETH on l1 for fees; {what} about (\S+) ETH; (.*)",
                                err, re.DOTALL)
            assert head is not None and head.group(2) == fund, err
            # gas at the max fee the adapter offers: ~1 gwei on the devnet, a few hundred thousand gas
            assert 0.00001 < float(head.group(1)) < 0.01, err
        # the command it gives funds it: then the message goes
        command = fund.splitlines()[-1].strip()
        subprocess.run(command, shell=True, check=True, capture_output=True, timeout=30)
        assert evm_devnet.rpc_call(l1["rpc_url"], "eth_getBalance", [who, "latest"]) == "0xde0b6b3a7640000"
        done = send(net, "--from", "l1", "--to", "rollup_a", "--body", "hello")
        assert done.returncode == 0 and "dispatched 0x" in done.stdout, done.stdout + done.stderr
    finally:
        evm_devnet.rpc_call(l1["rpc_url"], "anvil_setBalance", [who, wei])


def test_the_bridge_command_it_gives_works_and_then_the_send_goes(net: Devnet, tmp_path: Path) -> None:
    err = refused(net, "rollup_a", "--to", "l1", "--token", "TST", "--amount", "1")
    command = shlex.split(err.splitlines()[-1])
    assert command[:2] == ["relayer", "send"], err
    daemon = DaemonProcess(write_daemon_config(net, tmp_path, api_port=free_port_block(1)), tmp_path / "daemon.log")
    daemon.start()
    try:
        done = relayer(*command[1:])
        assert done.returncode == 0 and "delivered on rollup_a" in done.stdout, done.stdout + done.stderr
    finally:
        daemon.stop()
    done = send(net, "--from", "rollup_a", "--to", "l1", "--token", "TST", "--amount", "1")
    assert done.returncode == 0 and "dispatched 0x" in done.stdout, done.stdout + done.stderr


async def test_the_evm_adapter_answers_what_relayer_send_words(net: Devnet) -> None:
    """What the refusals above are worded from, asked of the l1 adapter itself (``SendCosts``, ``BridgeRefusals``):
    the sender's ETH and pending nonce as the node says, a dispatch without an approval, a token transfer and a pool
    deposit behind one (the devnet's sender has approved nothing it has not spent), each needing a few hundred
    thousand gas at about a gwei, and the bridge refusing a transfer to a domain it has no route to."""
    config = load_settings(net.config_path, env={}).chains["l1"]
    assert isinstance(config, EvmChainConfig)
    adapter = EvmAdapter("l1", config)
    who, l1 = sender(net, "l1"), chain(net, "l1")
    rollup_a, rollup_b = (Domain(chain(net, name)["domain"]) for name in ("rollup_a", "rollup_b"))
    recipient = address_to_bytes32(sender(net, "rollup_a"))
    try:
        assert adapter.native_coin == NativeCoin("ETH", 18)
        assert await adapter.native_balance(who) == int(evm_devnet.rpc_call(l1["rpc_url"], "eth_getBalance",
                                                                            [who, "latest"]), 16)
        assert await adapter.transactions_sent(who) == nonce(net, "l1")
        dispatch = await adapter.send_fee_need(SendPlan(who, rollup_a, recipient, bodies=(b"hello",)))
        transfer = await adapter.send_fee_need(SendPlan(who, rollup_a, recipient, symbol="TST", amount=10**18))
        deposit = await adapter.send_fee_need(SendPlan(who, rollup_b, recipient, symbol="USDC", amount=10**6,
                                                       pooled=True))
        assert (dispatch.approval, transfer.approval, deposit.approval) == (False, True, True)
        for need in (dispatch, transfer, deposit):
            assert 10**13 < need.units < 10**16, need
        assert transfer.units > dispatch.units
        assert await adapter.bridge_refusal("TST", 10**18, rollup_a) is None
        token = to_checksum_address(l1["tokens"]["TST"]["address"])
        assert await adapter.bridge_refusal("TST", 10**18, Domain(9999)) == f"NoRoute(9999,{token})"
    finally:
        await adapter.close()
