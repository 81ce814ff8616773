"""The global accountant on real devnets (three anvils and the Cosmos chain) and a real daemon (role all).

* After l1 -> rollup_a -> rollup_b -> l1 and l1 -> cosmos -> l1 trips the accountant the daemon built agrees with
  the chains: what is outstanding on each chain is its wrapped supply (on Cosmos: the escrow paid out, in home
  units), the home lock is what l1's bridge holds; a restart rebuilds the same ledger from the store.
* A burn with nothing behind it (wrapped TST minted on rollup_a by the test, impersonating the bridge, then bridged
  back to l1) is never attested: nothing is unlocked on l1, the refusal is in /metrics and in the log, and the
  daemon goes on relaying the other origins.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.evm import devnet as evm_devnet
from adapters.message import address_to_bytes32, keccak256
from devnets.devnet import Devnet
from tests.faults.conftest import metric, metric_samples
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for,
    wait_for_async,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

TOKEN = 10**18
SCALE = 10**12  # TST has 18 decimals on the L1, uxtst 6 on Cosmos


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    devnet = Devnet(tmp_path_factory.mktemp("devnet-accountant"), base_port=free_port_block(21),
                    api_port=free_port_block(1), families=("evm", "cosmos"))
    devnet.up()
    yield devnet
    devnet.down()


@pytest.fixture(scope="module")
def daemon_dir(tmp_path_factory, net) -> Path:
    directory = tmp_path_factory.mktemp("daemon")
    write_daemon_config(net, directory, api_port=free_port_block(1))
    return directory


def start(directory: Path) -> DaemonProcess:
    return DaemonProcess(directory / "relayer.toml", directory / "daemon.log", instance="accountant").start()


def gauges(api_url: str) -> dict[str, float]:
    """The accountant's view of TST: ``chain -> outstanding`` and ``"locked"`` (home units)."""
    out: dict[str, float] = {}
    for (name, labels), value in metric_samples(api_url).items():
        tags = dict(labels)
        if tags.get("token") != "TST":
            continue
        if name == "validator_accountant_outstanding":
            out[tags["chain"]] = value
        elif name == "validator_accountant_locked":
            out["locked"] = value
    return out


async def chain_view(client: DevnetClient) -> dict[str, float]:
    """The same, read from the chains: wrapped supplies, the escrow paid out, what l1's bridge holds."""
    a = client.adapters
    bridge_l1 = client.manifest["chains"]["l1"]["contracts"]["token_bridge"]
    return {
        "rollup_a": float(await a["rollup_a"].token_supply("TST")),  # type: ignore[attr-defined]
        "rollup_b": float(await a["rollup_b"].token_supply("TST")),  # type: ignore[attr-defined]
        "cosmos": float(await a["cosmos"].token_supply("TST") * SCALE),  # type: ignore[attr-defined]
        "locked": float(await a["l1"].token_balance("TST", bridge_l1)),  # type: ignore[attr-defined]
    }


async def send_and_wait(client: DevnetClient, origin: str, dest: str, amount: int, *, timeout: float = 120) -> bytes:
    """``amount`` (origin's smallest units) of TST from the origin's first account to the destination's first
    account; returns once the recipient's balance moved by it (scaled to the destination's decimals)."""
    src, dst = client.adapters[origin], client.adapters[dest]
    recipient = client.address(dest)
    to32 = getattr(dst, "account_bytes32", address_to_bytes32)
    arriving = amount // SCALE if dest == "cosmos" else amount * SCALE if origin == "cosmos" else amount
    before = await dst.token_balance("TST", recipient)  # type: ignore[attr-defined]
    _tx, mid = await src.send_token(client.key(origin), "TST", amount, client.domain(dest), to32(recipient))  # type: ignore[attr-defined]

    async def arrived() -> bool:
        return await dst.token_balance("TST", recipient) == before + arriving  # type: ignore[attr-defined,no-any-return]

    await wait_for_async(arrived, timeout, f"{amount} TST {origin} -> {dest}")
    return bytes(mid)


def log_events(path: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for line in path.read_text().splitlines():
        if f'"{event}"' in line:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("event") == event:
                found.append(doc)
    return found


async def test_the_ledger_agrees_with_the_chains_after_round_trips_and_a_restart(net, daemon_dir):
    client = DevnetClient(net)
    daemon = start(daemon_dir)
    try:
        await send_and_wait(client, "l1", "rollup_a", 5 * TOKEN)
        await send_and_wait(client, "rollup_a", "rollup_b", 3 * TOKEN)
        await send_and_wait(client, "rollup_b", "l1", 2 * TOKEN)
        await send_and_wait(client, "l1", "cosmos", 4 * TOKEN)
        await send_and_wait(client, "cosmos", "l1", 1 * TOKEN // SCALE)
        chains = await chain_view(client)
        assert chains == {"rollup_a": 2.0 * TOKEN, "rollup_b": 1.0 * TOKEN, "cosmos": 3.0 * TOKEN,
                          "locked": 6.0 * TOKEN}
        wait_for(lambda: gauges(daemon.api_url) == chains, 30, f"the accountant's view {gauges(daemon.api_url)} "
                                                               f"to equal the chains' {chains}")
        assert metric(daemon.api_url, "validator_accountant_refused_total", origin="rollup_a",
                      reason="exceeds_outstanding") == 0
        assert not any(n == "validator_accountant_cosign_refused_total" for n, _ in metric_samples(daemon.api_url))
    finally:
        daemon.stop()
    # a restart rebuilds the ledger from the store: the same view before anything moves again
    daemon = start(daemon_dir)
    try:
        assert gauges(daemon.api_url) == chains
        first, again = log_events(daemon_dir / "daemon.log", "accountant_loaded")
        assert first["locked"] == {} and first["outstanding"] == {}  # a fresh store
        (locked,) = again["locked"].values()  # exact amounts, beyond the gauges' floats
        (outstanding,) = again["outstanding"].values()
        assert locked == 6 * TOKEN
        assert outstanding == {str(client.domain("rollup_a")): 2 * TOKEN, str(client.domain("rollup_b")): 1 * TOKEN,
                               str(client.domain("cosmos")): 3 * TOKEN}
    finally:
        daemon.stop()
        await client.close()


def _mint_wrapped_unbacked(client: DevnetClient, chain: str, to: str, amount: int) -> None:
    """Cheat (test side, devnet keys): mint wrapped TST on ``chain`` by impersonating its TokenBridge."""
    info = client.manifest["chains"][chain]
    rpc, bridge, token = info["rpc_url"], info["contracts"]["token_bridge"], info["tokens"]["TST"]["address"]
    data = keccak256(b"mint(address,uint256)")[:4] + address_to_bytes32(to) + amount.to_bytes(32, "big")
    evm_devnet.rpc_call(rpc, "anvil_impersonateAccount", [bridge])
    evm_devnet.rpc_call(rpc, "anvil_setBalance", [bridge, hex(10**18)])
    tx = evm_devnet.rpc_call(rpc, "eth_sendTransaction", [{"from": bridge, "to": token, "data": "0x" + data.hex()}])
    evm_devnet.rpc_call(rpc, "anvil_stopImpersonatingAccount", [bridge])
    wait_for(lambda: evm_devnet.rpc_call(rpc, "eth_getTransactionReceipt", [tx]) is not None, 30, "the mint mined")
    assert int(evm_devnet.rpc_call(rpc, "eth_getTransactionReceipt", [tx])["status"], 16) == 1


async def test_an_unbacked_burn_is_never_attested_and_nothing_is_unlocked(net, daemon_dir):
    client = DevnetClient(net)
    daemon = start(daemon_dir)
    try:
        l1, rollup_a = client.adapters["l1"], client.adapters["rollup_a"]
        user_a, user_l1 = client.address("rollup_a"), client.address("l1")
        bridge_l1 = client.manifest["chains"]["l1"]["contracts"]["token_bridge"]
        wait_for(lambda: gauges(daemon.api_url).get("rollup_a") == 2.0 * TOKEN, 30, "the accountant loaded")
        # rollup_a holds 2 TST backed by l1's lock; 4 more appear out of thin air
        _mint_wrapped_unbacked(client, "rollup_a", user_a, 4 * TOKEN)
        assert await rollup_a.token_supply("TST") == 6 * TOKEN  # type: ignore[attr-defined]
        locked = await l1.token_balance("TST", bridge_l1)  # type: ignore[attr-defined]
        assert locked == 6 * TOKEN  # l1's bridge could pay the 5 below: only the validators stand in the way
        user_before = await l1.token_balance("TST", user_l1)  # type: ignore[attr-defined]

        _tx, burn = await rollup_a.send_token(client.key("rollup_a"), "TST", 5 * TOKEN, client.domain("l1"),  # type: ignore[attr-defined]
                                              address_to_bytes32(user_l1))
        burn_id = "0x" + bytes(burn).hex()
        wait_for(lambda: metric(daemon.api_url, "validator_accountant_refused_total", origin="rollup_a",
                                reason="exceeds_outstanding") == 1, 60, "the accountant's refusal in /metrics")
        (refusal,) = [e for e in log_events(daemon_dir / "daemon.log", "accountant_refused")
                      if e["message_id"] == burn_id]
        assert {k: refusal[k]
                for k in ("origin", "chain", "token", "reason", "amount", "available", "destination")} == {
            "origin": "rollup_a", "chain": "rollup_a", "token": "TST", "reason": "exceeds_outstanding",
            "amount": 5 * TOKEN, "available": 2 * TOKEN, "destination": "l1"}

        # the daemon goes on: a transfer from another origin arrives meanwhile
        await send_and_wait(client, "l1", "rollup_b", 1 * TOKEN)
        # no validator signed the burn's index; nothing was unlocked on l1
        for v in client.manifest["validators"]:
            doc = httpx.get(f"{daemon.api_url}/validators/{v['address']}/checkpoints/"
                            f"{client.domain('rollup_a')}/latest", timeout=5).json()
            assert doc["index"] == refusal["nonce"] - 1, doc
        assert await l1.delivered([burn]) == [False]
        assert await l1.token_balance("TST", user_l1) == user_before - 1 * TOKEN  # type: ignore[attr-defined]
        assert await l1.token_balance("TST", bridge_l1) == locked + 1 * TOKEN  # type: ignore[attr-defined]
        (msg,) = httpx.get(f"{daemon.api_url}/v1/messages/{burn_id}", timeout=5).json()["messages"]
        assert msg["state"] == "DISPATCHED", msg
        # re-checked at every poll since, counted once
        assert metric(daemon.api_url, "validator_accountant_refused_total", origin="rollup_a",
                      reason="exceeds_outstanding") == 1
    finally:
        daemon.stop()
        await client.close()
