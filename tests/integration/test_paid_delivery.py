"""Paid delivery on the devnet (issue 15): the daemon keeps l1's GasOracle current, delivers l1 -> rollup_a only once a
message paid the paymaster's quote (relayer.gas_payment on_chain_quote), holds an underpaid one as waiting for
payment (no attempt spent) until `relayer messages add-gas` tops it up, delivers unmatched routes unpaid, and counts
the route's fees against its gas. (Its own module: one daemon at a time on the session devnet.)"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.capabilities import GasPaymaster
from tests.faults.conftest import metric
from tests.integration.harness import (
    ROOT,
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    free_port_block,
    message_record,
    message_status,
    on_devnet,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

RELAY_TIMEOUT_S = 90.0
GAS_AMOUNT = 300_000  # above what one ordinary delivery to rollup_a needs (else it must pay for what it needs)
BURN_ROUNDS = 30_000  # ~70 gas a round in TestRecipient._burn: ~2.1M gas
PAID_RULE = f"""
[[relayer.gas_payment]]
origin = "l1"
destination = "rollup_a"
policy = "on_chain_quote"
fraction = 1.0
gas_amount = {GAS_AMOUNT}
"""


def _paymaster(client: DevnetClient, chain: str) -> GasPaymaster:
    adapter = client.adapters[chain]
    assert isinstance(adapter, GasPaymaster) and adapter.has_paymaster()
    return adapter


def oracle_entry(devnet: Any, destination: str) -> Any:
    """l1's gas oracle entry for ``destination``, read from the chain."""
    async def read(client: DevnetClient) -> Any:
        [entry] = await _paymaster(client, "l1").gas_oracle_entries([client.domain(destination)])
        return entry
    return on_devnet(devnet, read)


def _pay(devnet: Any, mid: bytes, destination: str, gas_limit: int, value: int, payer: int = 1) -> str:
    async def pay(client: DevnetClient) -> str:
        return await _paymaster(client, "l1").pay_for_gas(client.key("l1", payer), mid, client.domain(destination),
                                                          gas_limit, value)
    return str(on_devnet(devnet, pay))


def native_balance(devnet: Any, chain: str, address: str) -> int:
    url = devnet.manifest()["chains"][chain]["rpc_url"]
    return int(httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance",
                                     "params": [address, "latest"]}).json()["result"], 16)


@pytest.fixture(scope="module")
def paid_daemon(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("paid")
    path = write_daemon_config(devnet, directory, api_port=free_port_block(1))
    path.write_text(path.read_text() + PAID_RULE)
    daemon = DaemonProcess(path, directory / "daemon.log", instance="paid-delivery").start()
    try:
        # every devnet daemon keeps the oracles (with the devnet's updater key): an earlier one may have written it
        wait_for(lambda: oracle_entry(devnet, "rollup_a").updated_at > 0, 60, "l1's gas oracle written for rollup_a")
        yield daemon
    finally:
        daemon.stop()


def test_the_daemon_keeps_the_oracle_current_from_live_fees(devnet, paid_daemon) -> None:
    """The oracle's l1 -> rollup_a entry was written by the updater key: a price per gas at least rollup_a's base fee
    (same native token: exchange rate 1e10), and the USD floor ($0.01 at $3000 per ETH) as the minimum payment."""
    entry = oracle_entry(devnet, "rollup_a")
    base_fee = int(httpx.post(devnet.manifest()["chains"]["rollup_a"]["rpc_url"], json={
        "jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]}).json()[
        "result"]["baseFeePerGas"], 16)
    assert entry.updated_at > 0
    assert entry.gas_price * entry.exchange_rate >= base_fee * 10**10 // 2
    assert entry.minimum_payment == -(-10**18 // 300_000)  # ceil($0.01 / $3000 in wei)
    assert metric(paid_daemon.api_url, "relayer_gas_oracle_age_seconds", origin="l1", destination="rollup_a") >= 0


def test_an_underpaid_message_waits_and_a_top_up_delivers_it(devnet, paid_daemon, tmp_path) -> None:
    """Unpaid: waiting for payment, no attempt spent, not on chain. Paid below the quote: still waiting, the detail
    says how much. `relayer messages add-gas` pays the rest: delivered once, and the paymaster holds exactly what was
    paid (the excess sent along was refunded)."""
    api = paid_daemon.api_url
    [mid] = dispatch_to_test_recipient(devnet, DevnetClient(devnet).key("l1", 1), "l1", "rollup_a", [b"unpaid"])
    wait_for(lambda: message_status(api, mid) == ("waiting", "payment"), RELAY_TIMEOUT_S, "the message underpaid")
    rec = message_record(api, mid)
    assert rec and rec["attempts"] == 0 and rec["last_reason"] == "underpaid" and "paid 0 of" in rec["last_error"]
    assert metric(api, "relayer_messages_underpaid_total", destination="rollup_a") >= 1
    paymaster = devnet.manifest()["chains"]["l1"]["contracts"]["gas_paymaster"]
    held_before = native_balance(devnet, "l1", paymaster)

    entry = oracle_entry(devnet, "rollup_a")
    _pay(devnet, mid, "rollup_a", 1, entry.quote(1))  # the minimum payment: far below the quote for GAS_AMOUNT gas
    wait_for(lambda: f"paid {entry.quote(1)} of" in ((message_record(api, mid) or {}).get("last_error") or ""),
             RELAY_TIMEOUT_S, "the partial payment indexed")
    assert message_status(api, mid) == ("waiting", "payment") and not delivered_on(devnet, "rollup_a", mid)

    owed = httpx.get(f"{api}/v1/messages/0x{mid.hex()}/gas").json()
    assert owed["policy"] == "on_chain_quote" and int(owed["paid"]) == entry.quote(1)
    assert int(owed["shortfall"]) == int(owed["required"]) - entry.quote(1) > 0
    out = subprocess.run([sys.executable, "-m", "relayer.cli", "messages", "add-gas", f"0x{mid.hex()}", "--json",
                          "-c", str(paid_daemon.config), "--devnet", str(devnet.dir)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    paid = json.loads(out.stdout)
    assert paid["tx"] and int(paid["sent_value"]) > int(paid["value"]) >= int(owed["shortfall"])
    wait_for(lambda: message_status(api, mid) == ("delivered", None), RELAY_TIMEOUT_S,
             "the topped-up message delivered")
    assert delivered_on(devnet, "rollup_a", mid)
    assert message_record(api, mid)["attempts"] == 0  # type: ignore[index]
    refunded_excess = native_balance(devnet, "l1", paymaster) - held_before == entry.quote(1) + int(paid["value"])
    assert refunded_excess


def test_a_message_paid_up_front_and_an_unmatched_route_go_at_once(devnet, paid_daemon) -> None:
    """A message paid its quote in advance is delivered without waiting; l1 -> rollup_b matches no rule: delivered
    unpaid. The route's fees collected show in /metrics and /v1/routes/profit."""
    api = paid_daemon.api_url
    client_key = DevnetClient(devnet).key("l1", 1)
    [paid] = dispatch_to_test_recipient(devnet, client_key, "l1", "rollup_a", [b"paid up front"])
    _pay(devnet, paid, "rollup_a", GAS_AMOUNT, oracle_entry(devnet, "rollup_a").quote(GAS_AMOUNT) * 2)
    [free] = dispatch_to_test_recipient(devnet, client_key, "l1", "rollup_b", [b"no rule for this route"])
    wait_for(lambda: delivered_on(devnet, "rollup_a", paid) and delivered_on(devnet, "rollup_b", free),
             RELAY_TIMEOUT_S, "both delivered")
    assert (message_record(api, free) or {}).get("last_reason") != "underpaid"

    def counted() -> bool:
        routes = httpx.get(f"{api}/v1/routes/profit").json()["routes"]
        return any(r["origin"] == "l1" and r["destination"] == "rollup_a" and r["fees_collected_usd"] > 0
                   and r["gas_spent_usd"] > 0 for r in routes)
    wait_for(counted, 30, "the route's profit and loss")
    wait_for(lambda: metric(api, "relayer_route_fees_collected_usd", origin="l1", destination="rollup_a") > 0, 30,
             "the route's fees in /metrics")


def test_a_message_needing_more_gas_than_it_paid_for_waits_until_topped_up(devnet, paid_daemon) -> None:
    """Paid the quote for GAS_AMOUNT gas, a message whose recipient burns ~2.1M gas is not delivered at the relayer's
    expense: it waits for payment, saying what its delivery needs, and `GET .../gas` asks the quote for that gas.
    `relayer messages add-gas` pays it; then it is delivered once, with more gas than GAS_AMOUNT, read from the
    chain."""
    api = paid_daemon.api_url
    [heavy] = dispatch_to_test_recipient(devnet, DevnetClient(devnet).key("l1", 1), "l1", "rollup_a",
                                         [b"burn:" + struct.pack(">I", BURN_ROUNDS)])
    _pay(devnet, heavy, "rollup_a", GAS_AMOUNT, oracle_entry(devnet, "rollup_a").quote(GAS_AMOUNT))
    wait_for(lambda: "its delivery needs" in ((message_record(api, heavy) or {}).get("last_error") or ""),
             RELAY_TIMEOUT_S, "the costly message held for the gas it needs")
    assert message_status(api, heavy) == ("waiting", "payment") and not delivered_on(devnet, "rollup_a", heavy)
    owed = httpx.get(f"{api}/v1/messages/0x{heavy.hex()}/gas").json()
    assert int(owed["required"]) > 5 * int(owed["paid"]) > 0 and int(owed["shortfall"]) > 0
    out = subprocess.run([sys.executable, "-m", "relayer.cli", "messages", "add-gas", f"0x{heavy.hex()}", "--json",
                          "-c", str(paid_daemon.config), "--devnet", str(devnet.dir)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    wait_for(lambda: message_status(api, heavy) == ("delivered", None), RELAY_TIMEOUT_S,
             "the topped-up costly message delivered")
    tx = (message_record(api, heavy) or {})["delivery_tx"]
    receipt = httpx.post(devnet.manifest()["chains"]["rollup_a"]["rpc_url"], json={
        "jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [tx]}).json()["result"]
    assert int(receipt["status"], 16) == 1 and int(receipt["gasUsed"], 16) > 5 * GAS_AMOUNT
