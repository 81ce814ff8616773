"""Paid delivery from Solana and Cosmos origins on the devnet (issue 15): the daemon asks solana -> l1 and
cosmos -> l1 messages to pay the relayer's quote (relayer.gas_payment on_chain_quote, computed from l1's live fees,
the chains' prices and the route's USD floor) to the relayer's gas_fee_account. An unpaid message waits for payment
(no attempt spent, not on chain); `relayer messages add-gas` tops it up in a transaction of its own (a transfer to
the fee account with the gas memo naming it) and it is delivered by itself. One paying in its dispatch transaction is
delivered at once. Each time the fee account's balance, read from the chain, rose by exactly what was paid, and the
route's fees show in /metrics and /v1/routes/profit. (Its own devnet with every family, and one daemon.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from devnets.devnet import Devnet
from tests.faults.conftest import metric
from tests.integration.fee_accounts import PAYING_RULES, dispatch_paying, fee_account, native_balance, owed
from tests.integration.harness import (
    ROOT,
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    free_port_block,
    message_record,
    message_status,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

RELAY_TIMEOUT_S = 120.0
GAS_AMOUNT = 1_000_000  # above what one delivery to l1 needs (else it must pay for what it needs)


@pytest.fixture(scope="module")
def all_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet-paid"), base_port=free_port_block(21), api_port=free_port_block(1),
                 families=("evm", "cosmos", "solana"))
    net.up()
    yield net
    net.down()


@pytest.fixture(scope="module")
def paid_daemon(all_devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("paid-sc")
    path = write_daemon_config(all_devnet, directory, api_port=free_port_block(1))
    path.write_text(path.read_text() + PAYING_RULES.format(gas=GAS_AMOUNT))
    daemon = DaemonProcess(path, directory / "daemon.log", instance="paid-solana-cosmos").start()
    yield daemon
    daemon.stop()


def _unpaid_waits(devnet: Devnet, api: str, origin: str) -> tuple[bytes, int]:
    """An unpaid message from ``origin``: waiting for payment, 0 attempts, not on l1; its id and what it must pay."""
    [mid] = dispatch_to_test_recipient(devnet, DevnetClient(devnet).key(origin, 1), origin, "l1", [b"unpaid"])
    wait_for(lambda: message_status(api, mid) == ("waiting", "payment"), RELAY_TIMEOUT_S, f"{origin}: underpaid")
    rec = message_record(api, mid)
    assert rec and rec["attempts"] == 0 and rec["last_reason"] == "underpaid" and "paid 0 of" in rec["last_error"]
    assert not delivered_on(devnet, "l1", mid)
    view = owed(api, mid)
    assert view["policy"] == "on_chain_quote" and view["paid"] == "0" and int(view["required"]) > 0
    assert view["fee_account"] == fee_account(devnet, origin) and "top-up transaction" in view["how_to_pay"]
    pay = view["pay"]  # what a wallet signs instead of add-gas
    assert pay["to"] == view["fee_account"] and pay["value"] == view["shortfall"] == view["required"]
    assert pay["memo"] == f"xchain-gas:v1:{all_domains(devnet)['l1']}:{mid.hex()}"
    return mid, int(view["required"])


def all_domains(devnet: Devnet) -> dict[str, int]:
    return {name: int(spec["domain"]) for name, spec in devnet.manifest()["chains"].items()}


def _top_up_delivers(devnet: Devnet, daemon: DaemonProcess, mid: bytes, origin: str) -> None:
    """``relayer messages add-gas``: one top-up transaction; the message is delivered by itself, and the fee account
    holds exactly what the top-up sent more."""
    account = fee_account(devnet, origin)
    before = native_balance(devnet, origin, account)
    out = subprocess.run([sys.executable, "-m", "relayer.cli", "messages", "add-gas", f"0x{mid.hex()}", "--json",
                          "-c", str(daemon.config), "--devnet", str(devnet.dir)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    sent = json.loads(out.stdout)
    assert sent["tx"] and int(sent["sent_value"]) >= int(sent["shortfall"]) > 0
    wait_for(lambda: delivered_on(devnet, "l1", mid), RELAY_TIMEOUT_S, f"the topped-up {origin} message delivered")
    assert native_balance(devnet, origin, account) - before == int(sent["sent_value"])
    assert owed(daemon.api_url, mid)["paid"] == sent["sent_value"]
    wait_for(lambda: (message_status(daemon.api_url, mid) or ("",))[0] == "delivered", 60, "status delivered")


def _route_counted(api: str, origin: str) -> None:
    def counted() -> bool:
        routes = httpx.get(f"{api}/v1/routes/profit").json()["routes"]
        return any(r["origin"] == origin and r["destination"] == "l1" and r["payments"] >= 1
                   and r["fees_collected_usd"] > 0 for r in routes)
    wait_for(counted, 60, f"{origin} -> l1 fees in /v1/routes/profit")
    wait_for(lambda: metric(api, "relayer_route_fees_collected_usd", origin=origin, destination="l1") > 0, 60,
             f"{origin} -> l1 fees in /metrics")


def test_solana_pays_in_its_dispatch_transaction_or_in_a_top_up(all_devnet, paid_daemon) -> None:
    """Unpaid: waits, then add-gas tops it up and it is delivered. `relayer send --pay-gas` twice the quote: delivered
    on l1, the fee account holds exactly that much more, and the route's fees are counted."""
    api = paid_daemon.api_url
    unpaid, required = _unpaid_waits(all_devnet, api, "solana")
    _top_up_delivers(all_devnet, paid_daemon, unpaid, "solana")
    account = fee_account(all_devnet, "solana")
    before = native_balance(all_devnet, "solana", account)
    out = subprocess.run([sys.executable, "-m", "relayer.cli", "send", "--from", "solana", "--to", "l1", "--body",
                          "paid in the dispatch", "--pay-gas", str(2 * required), "--json",
                          "-c", str(paid_daemon.config), "--devnet", str(all_devnet.dir)],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    paid = bytes.fromhex(json.loads(out.stdout)["id"][2:])
    wait_for(lambda: delivered_on(all_devnet, "l1", paid), RELAY_TIMEOUT_S, "the paid Solana message delivered")
    assert native_balance(all_devnet, "solana", account) - before == 2 * required
    assert owed(api, paid)["paid"] == str(2 * required)
    _route_counted(api, "solana")


def test_cosmos_pays_in_its_dispatch_transaction_or_in_a_top_up(all_devnet, paid_daemon) -> None:
    """The same from Cosmos: a bank send of the fee denom to the fee account beside the dispatch's send to the
    vault, or in a top-up transaction with the gas memo."""
    api = paid_daemon.api_url
    unpaid, required = _unpaid_waits(all_devnet, api, "cosmos")
    _top_up_delivers(all_devnet, paid_daemon, unpaid, "cosmos")
    account = fee_account(all_devnet, "cosmos")
    before = native_balance(all_devnet, "cosmos", account)
    paid = dispatch_paying(all_devnet, "cosmos", 2 * required, b"paid in the dispatch")
    wait_for(lambda: delivered_on(all_devnet, "l1", paid), RELAY_TIMEOUT_S, "the paid Cosmos message delivered")
    assert native_balance(all_devnet, "cosmos", account) - before == 2 * required
    assert owed(api, paid)["paid"] == str(2 * required)
    _route_counted(api, "cosmos")
