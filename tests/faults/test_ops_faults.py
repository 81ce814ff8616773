"""Operator-side faults on the session devnet: the relayer's wallet runs out of gas; validators go offline.

Neither is the messages' fault, so neither may spend their attempts or drop them: they wait, with the reason
in ``messages show`` and in the metrics, and are delivered once the operator fixes the cause (nothing lost,
nothing delivered twice: read from the chains).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import time
from pathlib import Path

import httpx
import pytest

from adapters.evm.devnet import DEPLOYER, RELAYER_A, address_of, devnet_key
from relayer.cli.commands import main as relayer_cli
from tests.faults.conftest import metric, metric_samples
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    all_delivered_once,
    dispatch_spread,
    free_port_block,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

CHAINS = ("l1", "rollup_a", "rollup_b")


def rpc(url: str, method: str, params: list) -> object:  # type: ignore[type-arg]
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()
    assert "error" not in answer, f"{method}: {answer['error']}"
    return answer["result"]


def send_eth(rpc_url: str, to: str, wei: int) -> None:
    """Pay ``wei`` from the devnet deployer account (anvil signs for its own dev accounts) and wait for it."""
    tx = rpc(rpc_url, "eth_sendTransaction", [{"from": address_of(devnet_key(DEPLOYER)), "to": to, "value": hex(wei)}])
    wait_for(lambda: rpc(rpc_url, "eth_getTransactionReceipt", [tx]) is not None, 30, f"funding tx {tx}")


def messages_show(config: Path, key: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:  # type: ignore[type-arg]
    """``relayer messages show KEY --json -c CONFIG``, run in this process: the operator's command, without the
    interpreter start-up that took over a minute per call on the loaded test machine."""
    capsys.readouterr()
    assert relayer_cli(["messages", "show", key, "-c", str(config), "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def api_messages(api: str, ids: list[str]) -> list[dict]:  # type: ignore[type-arg]
    """The daemon's view of ``ids`` over HTTP (the same record ``messages show`` prints; the CLI takes seconds
    per call on a loaded machine, so tests ask it for a sample and the API for the rest)."""
    found = []
    for i in ids:
        answer = httpx.get(f"{api}/v1/messages/{i}", timeout=5)
        if answer.status_code != 404:  # 404: not indexed yet
            found += answer.json()["messages"]
    return found


def edit_config(config: Path, old: str, new: str, count: int = 1) -> None:
    text = config.read_text()
    assert text.count(old) == count, f"{old!r} appears {text.count(old)} times in {config}, expected {count}"
    config.write_text(text.replace(old, new))


async def test_wallet_out_of_gas_waits_for_a_top_up_then_delivers_each_once(devnet, tmp_path, capsys):
    client = DevnetClient(devnet)
    await client.mark()
    key = "0x" + secrets.token_hex(32)  # a fresh relayer wallet, so the shared devnet accounts are never drained
    wallet = address_of(key)
    too_little = 10**12  # 0.000001 ETH: not even a 21,000-gas transfer at 1 gwei
    for chain in CHAINS:
        send_eth(client.settings.chains[chain].rpc_url, wallet, too_little)
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    edit_config(config, devnet_key(RELAYER_A), key, count=len(CHAINS))
    # few attempts allowed: if running out of gas spent them, these messages would be DROPPED within seconds
    edit_config(config, "[relayer]\n", "[relayer]\nmax_attempts = 2\nbackoff_max_s = 2.0\n")
    for chain in CHAINS:
        edit_config(config, f"[chains.{chain}]\n", f"[chains.{chain}]\nmin_wallet_balance = 0.01\n")
    daemon = DaemonProcess(config, tmp_path / "d.log", instance="broke").start()
    api = daemon.api_url
    try:
        ids = await dispatch_spread(client, per_route=2)
        hex_ids = ["0x" + i.hex() for i in ids]
        starved = ("relayer_failures_total", "insufficient_funds")

        def failed_often() -> bool:  # every destination refused several rounds: more than max_attempts each
            s = metric_samples(api)
            return all(s.get((starved[0], frozenset({("destination", c), ("reason", starved[1])})), 0) >= 3 * 4
                       for c in CHAINS)
        wait_for(failed_often, 120, "repeated insufficient_funds failures on every destination")
        (sample,) = messages_show(config, hex_ids[0], capsys)
        assert sample["state"] in ("DISPATCHED", "ATTESTED") and sample["last_reason"] == "insufficient_funds"
        assert sample["attempts"] == 0
        shown = api_messages(api, hex_ids)
        assert len(shown) == len(ids)
        assert {m["state"] for m in shown} <= {"DISPATCHED", "ATTESTED"}, {m["state"] for m in shown}
        assert {m["last_reason"] for m in shown} == {"insufficient_funds"}
        assert all(m["attempts"] == 0 for m in shown)
        assert "insufficient funds" in shown[0]["last_error"].lower()
        for chain in CHAINS:
            labels = {"chain": chain, "address": wallet}
            assert metric(api, "relayer_wallet_balance", **labels) == too_little / 10**18
            assert metric(api, "relayer_wallet_balance_low", **labels) == 1
        # a gauge sampled by the 2-s health job: it catches up with the store within a round
        wait_for(lambda: metric(api, "relayer_messages_waiting", reason="insufficient_funds") >= len(ids), 10,
                 "relayer_messages_waiting{reason=insufficient_funds} to count every waiting message")
        log_text = (tmp_path / "d.log").read_text()
        assert "wallet_balance_low" in log_text and key[2:] not in log_text  # the key never reaches the log

        for chain in CHAINS:  # the operator tops the wallet up
            send_eth(client.settings.chains[chain].rpc_url, wallet, 10**18)
        await all_delivered_once(client, ids, timeout=150)
        wait_for(lambda: all(metric(api, "relayer_wallet_balance_low", chain=c, address=wallet) == 0 for c in CHAINS),
                 30, "relayer_wallet_balance_low back to 0")
        wait_for(lambda: {m["state"] for m in api_messages(api, hex_ids)} == {"DELIVERED"}, 60,
                 "every message DELIVERED")
        assert messages_show(config, hex_ids[-1], capsys)[0]["state"] == "DELIVERED"
        assert all(metric(api, "relayer_fee_paid_total", destination=c) > 0 for c in CHAINS)
    finally:
        daemon.stop()
        await client.close()


def validator_config(devnet, directory: Path, port: int, keep: int) -> Path:  # type: ignore[no-untyped-def]
    """A validator-role config holding only the ``keep``-th validator key, serving at ``port``."""
    config = write_daemon_config(devnet, directory, api_port=port)
    text = config.read_text()
    block = re.search(r"\[validator\]\nkeys = \[[^\n]*\n((?:  \{ private_key = [^\n]*\n)+)\]", text)
    assert block is not None, "no [validator] keys block in the written config"
    lines = block.group(1).splitlines(keepends=True)
    assert len(lines) == 3
    config.write_text(text.replace(block.group(1), lines[keep]))
    return config


def start_together(processes: list[DaemonProcess]) -> None:
    for p in processes:
        p.start(wait=False)
    wait_for(lambda: all(p.healthy() for p in processes), 90, "the daemons to serve /healthz")


async def delivery_time(client: DevnetClient, per_route: int) -> tuple[list[bytes], float]:
    """Dispatch ``per_route`` messages on every route; seconds from the last dispatch until all were delivered."""
    ids = await dispatch_spread(client, per_route=per_route)
    started = time.monotonic()
    await all_delivered_once(client, ids, timeout=150)
    return ids, time.monotonic() - started


async def test_validators_offline_quorum_still_met_then_waits_then_delivers_each_once(devnet, tmp_path, capsys):
    client = DevnetClient(devnet)
    await client.mark()
    addresses = [v["address"].lower() for v in client.manifest["validators"]]
    ports = [free_port_block(1) for _ in addresses]
    validators = [DaemonProcess(validator_config(devnet, tmp_path / f"v{i}", ports[i], keep=i), tmp_path / f"v{i}.log",
                                role="validator", instance=f"v{i}") for i in range(3)]
    relayer_port = free_port_block(1)
    config = write_daemon_config(devnet, tmp_path / "r", api_port=relayer_port)
    for address, port in zip(addresses, ports):  # each validator at its own process's API
        edit_config(config, f'"http://127.0.0.1:{relayer_port}/validators/{address}"',
                    f'"http://127.0.0.1:{port}/validators/{address}"')
    relayer = DaemonProcess(config, tmp_path / "r.log", role="relayer", instance="r")
    api = relayer.api_url
    figures: dict[str, float] = {}
    try:
        start_together([*validators, relayer])
        for i, v in enumerate(validators):  # each process signs with its one key only
            status = httpx.get(f"{v.api_url}/v1/status", timeout=5).json()
            assert status["validators"] == [addresses[i]]
        all_ids, figures["all_up_s"] = await delivery_time(client, per_route=2)

        # (a) one validator killed: 2 of 3 still make the threshold
        validators[0].kill9()
        ids, figures["one_killed_s"] = await delivery_time(client, per_route=2)
        all_ids += ids
        assert metric(api, "relayer_validator_up", validator=addresses[0]) == 0
        assert metric(api, "relayer_checkpoint_fetch_failures_total", validator=addresses[0], reason="unreachable") > 0
        assert metric(api, "relayer_validator_up", validator=addresses[1]) == 1

        # (b) a second one killed: no quorum; messages wait, no attempt spent, nothing dropped
        validators[1].kill9()
        waiting = await dispatch_spread(client, per_route=1)
        all_ids += waiting
        hex_waiting = ["0x" + i.hex() for i in waiting]

        def all_waiting_on_quorum() -> bool:
            # a message first waits behind the last quorum checkpoint gathered before the kill ("latest quorum
            # checkpoint is index N"), then, once the collector asks again, on the missing signatures ("need 2")
            shown = api_messages(api, hex_waiting)
            quorum = metric_samples(api)
            return (len(shown) == len(waiting) and all(m["last_reason"] == "no_quorum" for m in shown)
                    and all("need 2" in (m["last_error"] or "") for m in shown)
                    and all(quorum.get(("relayer_checkpoint_quorum", frozenset({("origin", c)}))) == 0 for c in CHAINS)
                    # gauges are sampled by the 2-s health job: they catch up with the store within a round
                    and quorum.get(("relayer_messages_waiting", frozenset({("reason", "no_quorum")})), 0)
                    >= len(waiting))
        wait_for(all_waiting_on_quorum, 120, "every new message waiting with last_reason no_quorum, no quorum anywhere")
        (sample,) = messages_show(config, hex_waiting[0], capsys)
        assert sample["last_reason"] == "no_quorum" and sample["attempts"] == 0
        shown = api_messages(api, hex_waiting)
        assert all(m["attempts"] == 0 and m["state"] in ("DISPATCHED", "ATTESTED") for m in shown)
        assert "need 2" in shown[0]["last_error"]
        s = metric_samples(api)
        assert all(s[("relayer_checkpoint_quorum", frozenset({("origin", c)}))] == 0 for c in CHAINS)
        assert s[("relayer_validator_up", frozenset({("validator", addresses[1])}))] == 0
        assert all(s.get(("relayer_failures_total", frozenset({("destination", c), ("reason", "no_quorum")})), 0) > 0
                   for c in CHAINS)
        assert s[("relayer_messages_waiting", frozenset({("reason", "no_quorum")}))] >= len(waiting)

        # both come back: everything delivered once
        start_together(validators[:2])
        await all_delivered_once(client, all_ids, timeout=180)

        # (c) one validator hung (SIGSTOP: accepts connections, never answers): the collector does not wait on it
        os.killpg(validators[2].proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
        try:
            ids, figures["one_hung_s"] = await delivery_time(client, per_route=2)
            all_ids += ids
            assert metric(api, "relayer_validator_up", validator=addresses[2]) == 0
            assert metric(api, "relayer_checkpoint_fetch_failures_total", validator=addresses[2], reason="slow") > 0
            # with 2 hung, every quorum since needed the restarted validator 0: the relayer saw it answer (it only
            # learns of a validator when it asks one, so this is checked here, not while no work is waiting)
            assert metric(api, "relayer_validator_up", validator=addresses[0]) == 1
        finally:
            os.killpg(validators[2].proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        await all_delivered_once(client, all_ids, timeout=60)
        with capsys.disabled():
            print("\ndelivery of 12 messages after their dispatch (s): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    finally:
        relayer.stop()
        for v in validators:
            v.stop()
        await client.close()
