"""``relayer audit`` and the daemon's periodic audit on the full devnet (3 anvils, Cosmos, Solana, one daemon).

TST goes from the L1 to rollup_a, Cosmos and Solana and is delivered; the audit's figures must equal the
balances read straight from the chains, with no shortfall. Then wrapped TST is minted on rollup_a outside any
transfer (anvil impersonating rollup_a's TokenBridge): the CLI exits 1 naming the shortfall, the daemon's gauges
show it and ``audit_shortfall`` is logged once; burnt again, it clears. A chain that cannot be read is exit 2
naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.evm import abi
from adapters.evm import devnet as evm_devnet
from adapters.message import address_to_bytes32
from devnets.devnet import Devnet
from tests.integration.harness import (
    ROOT,
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

TST = 10**18
COSMOS_SCALE, SOLANA_SCALE = 10**12, 10**9
SENT = {"rollup_a": 3 * TST, "cosmos": 7 * TST, "solana": 5 * TST}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Any:
    devnet = Devnet(tmp_path_factory.mktemp("devnet-audit"), base_port=free_port_block(21), api_port=free_port_block(1))
    devnet.up()
    yield devnet
    devnet.down()


@pytest.fixture(scope="module")
def daemon(net: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("daemon-audit")
    path = write_daemon_config(net, directory, api_port=free_port_block(1))
    text = path.read_text()
    assert "interval_s = 30.0" in text, "relayer devnet up writes the [audit] section"
    path.write_text(text.replace("interval_s = 30.0", "interval_s = 1.0"))
    proc = DaemonProcess(path, directory / "daemon.log").start()
    yield proc
    proc.stop()


def run_audit(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relayer.cli", "audit", "-c", str(config), *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("RELAYER")},
                               "PYTHONPATH": str(ROOT)})


def metrics(daemon: DaemonProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{daemon.api_url}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def gauge(daemon: DaemonProcess, name: str, **labels: str) -> float | None:
    return metrics(daemon).get((name, tuple(sorted(labels.items()))))


def audit_runs(daemon: DaemonProcess) -> float:
    return sum(v for (name, _), v in metrics(daemon).items() if name == "relayer_audit_runs_total")


def log_events(daemon: DaemonProcess, event: str) -> list[dict[str, Any]]:
    found = []
    for line in daemon.log.read_text().splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            doc = json.loads(line)
            if doc.get("event") == event:
                found.append(doc)
    return found


def mint_as_bridge(net: Devnet, chain: str, selector_sig: str, holder: str, amount: int) -> None:
    """Calls the wrapped TST's mint/burn from rollup's own TokenBridge address (anvil impersonation: the test, not
    an attacker, can do this): wrapped tokens that no transfer backs."""
    c = net.manifest()["chains"][chain]
    bridge, token = c["contracts"]["token_bridge"], c["tokens"]["TST"]["address"]
    url = c["rpc_url"]
    evm_devnet.rpc_call(url, "anvil_impersonateAccount", [bridge])
    evm_devnet.rpc_call(url, "anvil_setBalance", [bridge, hex(10**18)])
    data = abi.selector(selector_sig) + address_to_bytes32(holder) + abi.word(amount)
    tx = evm_devnet.rpc_call(url, "eth_sendTransaction", [{"from": bridge, "to": token, "data": "0x" + data.hex(),
                                                            "gas": hex(200_000)}])
    wait_for(lambda: evm_devnet.rpc_call(url, "eth_getTransactionReceipt", [tx]) is not None, 30, "the mint mined")
    assert int(evm_devnet.rpc_call(url, "eth_getTransactionReceipt", [tx])["status"], 16) == 1
    evm_devnet.rpc_call(url, "anvil_stopImpersonatingAccount", [bridge])


async def test_audit_after_transfers_is_backed_and_matches_the_chains(net: Devnet, daemon: DaemonProcess) -> None:
    client = DevnetClient(net)
    try:
        l1 = client.adapters["l1"]
        ids = {}
        for dest, amount in SENT.items():
            adapter = client.adapters[dest]
            to32 = getattr(adapter, "account_bytes32", None)
            recipient = to32(client.address(dest)) if callable(to32) else address_to_bytes32(client.address(dest))
            _tx, ids[dest] = await l1.send_token(client.key("l1"), "TST", amount, client.domain(dest), recipient)  # type: ignore[attr-defined]

        async def all_delivered() -> bool:
            return all([(await client.adapters[d].delivered([mid]))[0] for d, mid in ids.items()])

        await wait_for_async(all_delivered, 180, "TST delivered on rollup_a, cosmos and solana")
        done = run_audit(net.config_path, "--json")
        assert done.returncode == 0, done.stderr
        sheet = json.loads(done.stdout)
        # figures read straight from the chains, after the audit (nothing moves any more)
        bridge_l1 = client.manifest["chains"]["l1"]["contracts"]["token_bridge"]
        locked = await l1.token_balance("TST", bridge_l1)  # type: ignore[attr-defined]
        rollup_a = await client.adapters["rollup_a"].token_supply("TST")  # type: ignore[attr-defined]
        rollup_b = await client.adapters["rollup_b"].token_supply("TST")  # type: ignore[attr-defined]
        cosmos_paid = await client.adapters["cosmos"].token_supply("TST")  # type: ignore[attr-defined]
        solana = await client.adapters["solana"].token_supply("TST")  # type: ignore[attr-defined]
        solx_vault = await client.adapters["solana"].vault_balance("SOLX")  # type: ignore[attr-defined]
    finally:
        await client.close()
    assert sheet["ok"] is True and sheet["shortfall"] == 0 and sheet["tokens_short"] == [] and sheet["errors"] == []
    tokens = {t["token"]: t for t in sheet["tokens"]}
    assert set(tokens) == {"TST", "SOLX"}, "USDC is not bridged: not audited"
    tst = tokens["TST"]
    assert (tst["home_chain"], tst["home_domain"], tst["home_decimals"]) == ("l1", 1000, 18)
    assert locked == sum(SENT.values()) and tst["locked"] == locked
    chains = tst["chains"]
    assert chains["l1"] == {"kind": "locked", "token": chains["l1"]["token"], "amount": locked, "decimals": 18,
                            "home_units": locked}
    assert chains["rollup_a"]["amount"] == rollup_a == SENT["rollup_a"] == chains["rollup_a"]["home_units"]
    assert chains["rollup_b"]["amount"] == rollup_b == 0
    assert chains["cosmos"]["kind"] == "escrow_paid_out"
    assert chains["cosmos"]["amount"] == cosmos_paid == SENT["cosmos"] // COSMOS_SCALE
    assert chains["cosmos"]["home_units"] == SENT["cosmos"]
    assert chains["solana"]["amount"] == solana == SENT["solana"] // SOLANA_SCALE
    assert chains["solana"]["home_units"] == SENT["solana"]
    assert tst["outstanding"] == tst["locked"] and tst["surplus"] == 0 and tst["shortfall"] == 0
    solx = tokens["SOLX"]
    assert solx["home_chain"] == "solana" and solx["locked"] == solx_vault
    assert {c: v["kind"] for c, v in solx["chains"].items()} == {
        "l1": "wrapped_supply", "rollup_a": "wrapped_supply", "rollup_b": "wrapped_supply", "solana": "locked"}
    table = run_audit(net.config_path)
    assert table.returncode == 0 and "every bridged token is backed" in table.stdout, table.stdout
    # the daemon's periodic audit agrees
    wait_for(lambda: gauge(daemon, "relayer_audit_locked", token="TST", home="l1") == float(locked), 60,
             "relayer_audit_locked{TST} to show what the L1 bridge holds")
    assert gauge(daemon, "relayer_audit_outstanding", token="TST", home="l1") == float(locked)
    assert gauge(daemon, "relayer_audit_shortfall", token="TST", home="l1") == 0.0
    assert gauge(daemon, "relayer_audit_shortfall", token="SOLX", home="solana") == 0.0
    assert gauge(daemon, "relayer_audit_up") == 1.0
    text = httpx.get(f"{daemon.api_url}/metrics", timeout=5).text
    assert "# HELP relayer_audit_shortfall" in text and "smallest units" in text


def test_relayer_send_explains_a_route_refusal_and_sends_nothing(net: Devnet) -> None:
    l1 = net.manifest()["chains"]["l1"]
    sender = l1["accounts"][0]["address"]
    nonce = evm_devnet.rpc_call(l1["rpc_url"], "eth_getTransactionCount", [sender, "latest"])
    cases = [
        ("cosmos", "TST", "1.0000000001", "cosmos holds TST in steps of 0.000001"),
        ("solana", "TST", "1.0000000001", "solana holds TST in steps of 0.000000001"),
        ("solana", "TST", "20000000000", "at most 18446744073.709551615 TST fits solana's amounts"),
        ("cosmos", "USDC", "1", "no route for USDC to cosmos"),  # pooled between EVM chains only
    ]
    for destination, token, amount, words in cases:
        done = subprocess.run([sys.executable, "-m", "relayer.cli", "send", "--devnet", str(net.dir), "--from", "l1",
                               "--to", destination, "--token", token, "--amount", amount], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 1, done.stdout + done.stderr
        assert words in done.stderr and "nothing was sent" in done.stderr, done.stderr
    assert evm_devnet.rpc_call(l1["rpc_url"], "eth_getTransactionCount", [sender, "latest"]) == nonce


async def test_unbacked_wrapped_tokens_are_a_shortfall(net: Devnet, daemon: DaemonProcess) -> None:
    holder = net.manifest()["chains"]["rollup_a"]["accounts"][1]["address"]
    before = json.loads(run_audit(net.config_path, "--json").stdout)
    assert before["shortfall"] == 0
    mint_as_bridge(net, "rollup_a", "mint(address,uint256)", holder, 2 * TST)
    done = run_audit(net.config_path, "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    sheet = json.loads(done.stdout)
    assert sheet["ok"] is False and sheet["tokens_short"] == ["TST"] and sheet["readings"] == 2
    tst = next(t for t in sheet["tokens"] if t["token"] == "TST")
    assert tst["shortfall"] == 2 * TST == sheet["shortfall"]
    assert tst["chains"]["rollup_a"]["amount"] == SENT["rollup_a"] + 2 * TST
    table = run_audit(net.config_path)
    assert table.returncode == 1 and "SHORT 2" in table.stdout and "shortfall" in table.stdout, table.stdout
    # the daemon: gauge, one audit_shortfall error line however many audits see it
    wait_for(lambda: gauge(daemon, "relayer_audit_shortfall", token="TST", home="l1") == float(2 * TST), 60,
             "relayer_audit_shortfall{TST} = 2 TST")
    runs = audit_runs(daemon)
    wait_for(lambda: audit_runs(daemon) >= runs + 3, 60, "three more audits")
    shortfalls = log_events(daemon, "audit_shortfall")
    assert len(shortfalls) == 1, shortfalls
    assert shortfalls[0]["level"] == "error" and shortfalls[0]["token"] == "TST"
    assert shortfalls[0]["shortfall"] == str(2 * TST)
    # burnt again (still as the bridge): backed, and the daemon says so once
    mint_as_bridge(net, "rollup_a", "burn(address,uint256)", holder, 2 * TST)
    assert run_audit(net.config_path, "--json").returncode == 0
    wait_for(lambda: gauge(daemon, "relayer_audit_shortfall", token="TST", home="l1") == 0.0, 60, "the shortfall gone")
    wait_for(lambda: len(log_events(daemon, "audit_shortfall_cleared")) == 1, 30, "audit_shortfall_cleared logged")


def test_a_chain_that_cannot_be_read_is_exit_2_naming_it(net: Devnet, tmp_path: Path) -> None:
    text = net.config_path.read_text()
    rollup_b = net.manifest()["chains"]["rollup_b"]["rpc_url"]
    dead = f"http://127.0.0.1:{free_port_block(1)}"
    config = tmp_path / "relayer.toml"
    config.write_text(text.replace(f'rpc_url = "{rollup_b}"', f'rpc_url = "{dead}"'))
    done = run_audit(config, "--json")
    assert done.returncode == 2, done.stdout + done.stderr
    sheet = json.loads(done.stdout)
    assert [e["chain"] for e in sheet["errors"]] == ["rollup_b"] and sheet["ok"] is False
    assert "audit could not read rollup_b" in done.stderr
