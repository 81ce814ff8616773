"""The admin API (``/admin/v1/...``) attacked: the operator denied the attacker's sender (``relayer.deny``), and the
attacker, without the admin key (none, empty, wrong, another scheme, a routing-API-style header, a guess), tries
every admin route: read and reload the lists, list stuck messages, retry, drop or execute its message (manual
execution with 5M gas), pause and resume a route, register an integrator code with its own payout address, read
the registrations. Every request is refused with 401; the lists in force are unchanged, no route is paused, no
integrator is registered, the attacker's message stays DROPPED(denied) and undelivered on its destination, and
another sender's message on the same route is delivered (both read from the chain).

Then the operator registers an integrator; the attacker tries to overwrite its payout address (every header, 401),
the registration stays the operator's, and the integrator's reward is paid on chain to the registered address only:
its balance rises by exactly floor(share x the receipts' fees), the attacker's not at all."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from router.client import RoutingClient
from tests.adversarial.conftest import start_daemon
from tests.faults.conftest import metric_samples
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    delivered_on,
    dispatch_to_test_recipient,
    message_record,
    wait_for,
)

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-" + secrets.token_hex(16)  # the operator's key (never given to the attacker)
PAYOUT_INTERVAL_S = 2.0
ROUTES = 12  # admin routes the attacker tries (tests/adversarial/attacks/admin.py)


@pytest.fixture(scope="module")
def admin_daemon(bridge_devnet: Any, attacker: Any, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[DaemonProcess]:
    deny = f'\n[[relayer.deny]]\norigin = "l1"\nsender = "{attacker.addresses["l1"]}"\n'
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("admin"), edit=lambda text: text + deny,
                          env={"RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]',
                               "RELAYER__ROUTER__INTEGRATOR_PAYOUT_INTERVAL_S": str(PAYOUT_INTERVAL_S)})
    yield daemon
    daemon.stop()


def _dispatch(net: Any, key: str) -> bytes:
    return dispatch_to_test_recipient(net, key, "l1", "rollup_a", [b"let me through"])[0]


def test_without_the_admin_key_the_lists_stay_and_nothing_is_delivered(attacker, bridge_devnet, admin_daemon) -> None:
    mid = _dispatch(bridge_devnet, attacker.keys["evm"])
    wait_for(lambda: (message_record(admin_daemon.api_url, mid) or {}).get("state") == "DROPPED", 120,
             "the attacker's message to be DROPPED(denied)")
    with httpx.Client(base_url=admin_daemon.api_url, timeout=10,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as operator:
        before = operator.get("/admin/v1/filters").json()
        seen = attacker.run("admin.without_the_admin_key", message="0x" + mid.hex(), code="victim",
                            payout=attacker.addresses["l1"])
        assert len(seen["answers"]) == ROUTES * 8
        assert {a["status"] for a in seen["answers"]} == {401}, [a for a in seen["answers"] if a["status"] != 401]
        assert all(a["www_authenticate"] == "Bearer" for a in seen["answers"])
        assert all(ADMIN_KEY not in a["body"] for a in seen["answers"])
        after = operator.get("/admin/v1/filters").json()
        assert operator.get("/admin/v1/routes/paused").json()["routes"] == []
        assert operator.get("/admin/v1/integrators").json()["integrators"] == []  # nothing registered
    assert after == before and after["reloads"] == 0  # nothing reloaded, the deny rule still in force
    assert after["deny"][0]["sender"] == attacker.addresses["l1"]
    record = message_record(admin_daemon.api_url, mid)
    assert record is not None and record["state"] == "DROPPED" and record["last_reason"] == "denied"
    assert not delivered_on(bridge_devnet, "rollup_a", mid)  # the chain shows nothing moved
    control = _dispatch(bridge_devnet, DevnetClient(bridge_devnet).key("l1", 1))
    wait_for(lambda: delivered_on(bridge_devnet, "rollup_a", control), 120, "another sender's message delivered")
    refused = sum(v for (name, _labels), v in metric_samples(admin_daemon.api_url).items()
                  if name == "relayer_admin_requests_refused_total")
    assert refused == ROUTES * 8


def _rpc(net: Any, chain: str, method: str, params: list[Any]) -> Any:
    url = net.manifest()["chains"][chain]["rpc_url"]
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10).json()[
        "result"]


def _balance(net: Any, chain: str, holder: str) -> int:
    return int(_rpc(net, chain, "eth_getBalance", [holder, "latest"]), 16)


def test_without_the_admin_key_the_payout_goes_to_the_registered_address(attacker, bridge_devnet,
                                                                         admin_daemon) -> None:
    code, payee = "victim-" + secrets.token_hex(3), "0x" + secrets.token_hex(20)
    registration = {"payout_addresses": {"l1": payee}, "share": 0.5}
    with httpx.Client(base_url=admin_daemon.api_url, timeout=10,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as operator:
        assert operator.put(f"/admin/v1/integrators/{code}", json=registration).status_code == 200
        stored = operator.get(f"/admin/v1/integrators/{code}").json()
        attacker_before = _balance(bridge_devnet, "l1", attacker.addresses["l1"])
        seen = attacker.run("admin.change_the_payout", code=code, payout=attacker.addresses["l1"])
        assert len(seen["answers"]) == 3 * 8 and {a["status"] for a in seen["answers"]} == {401}
        assert operator.get(f"/admin/v1/integrators/{code}").json() == stored  # nothing changed
    with RoutingClient(admin_daemon.api_url) as client:
        ids = client.submit_batch([{"token": "USDC", "amount": "0.3", "recipient": "0x" + secrets.token_hex(20),
                                    "chains": ["l1"], "integrator": code} for _ in range(2)])["ids"]
        done = [client.wait(i, until={"included"}, timeout=90) for i in ids]
    fees = sum(int(_rpc(bridge_devnet, "l1", "eth_getTransactionReceipt", [st["tx_hash"]])["gasUsed"], 16)
               * int(_rpc(bridge_devnet, "l1", "eth_getTransactionReceipt", [st["tx_hash"]])["effectiveGasPrice"], 16)
               for st in done)
    want = int(Decimal("0.5") * fees)  # fees is an integer: floor of half of it
    wait_for(lambda: _balance(bridge_devnet, "l1", payee) == want, 60, f"the registered payee to hold {want}")

    def payouts() -> list[dict[str, Any]]:
        return list(httpx.get(f"{admin_daemon.api_url}/v1/integrators/{code}/report").json()["rewards"]["payouts"])

    # one payout per epoch: the two intents may have been counted in one epoch or in two
    wait_for(lambda: all(p["status"] == "paid" for p in payouts()), 30, "the report to show every payout paid")
    assert {(p["chain"], p["address"]) for p in payouts()} == {("l1", payee)}
    assert sum(int(p["amount"]) for p in payouts()) == want
    for p in payouts():  # the chain as judge: each payout a native transfer to the registered address
        tx = _rpc(bridge_devnet, "l1", "eth_getTransactionByHash", [p["tx_hash"]])
        assert tx["to"].lower() == payee and int(tx["value"], 16) == int(p["amount"])
    assert _balance(bridge_devnet, "l1", attacker.addresses["l1"]) == attacker_before  # not a wei to the attacker
