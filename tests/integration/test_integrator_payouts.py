"""Integrator rewards paid on chain (issue 15), with the chain as judge, on the real devnet.

One daemon of this module's own (the only one holding validator keys on the devnet while it runs), with an admin
key, payouts every ``INTERVAL_S`` and a failpoint file:
- registration through the admin API: bad input is 400 naming the field, a read is the registration;
- intents with a code, same-chain on l1 and rollup_a and one cross-chain from l1 (its fee is paid on l1), settled
  before the code is registered; then the daemon is made to die (``intent_after_sign=exit``) right after a payout's
  transaction was stored and before it was sent, and restarted: each fresh payout address's balance, read from the
  chain, is exactly ``floor(share x sum of the receipts' fees)`` per chain (receipts read from the chain), paid in
  one native transfer from an operator account, the stored transaction being the one that landed;
- later epochs pay nothing twice; more fees later are paid so that the total is again the floor of the share of all
  fees (the carry);
- the report shows each payout's transaction hash, amount and chain, rewards paid and pending, quotes and
  conversion; the explorer's page for the code (headless Chromium) shows the same.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest

from adapters.evm.devnet import USER_A, USER_B, address_of, devnet_key
from router.client import RoutingClient
from tests.integration.harness import DaemonProcess, free_port_block, wait_for, write_daemon_config

pytestmark = pytest.mark.integration

ADMIN_KEY = "admin-payouts-" + secrets.token_hex(12)
INTERVAL_S = 2.0
SHARE = Decimal("0.25")
OPERATORS = {address_of(devnet_key(i)).lower() for i in (USER_A, USER_B)}
PAGE_TIMEOUT_S = 30.0


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                      timeout=10).json()["result"]


def _balance(devnet: Any, chain: str, holder: str) -> int:
    return int(_rpc(devnet.manifest()["chains"][chain]["rpc_url"], "eth_getBalance", [holder, "latest"]), 16)


def _receipt_fee(devnet: Any, chain: str, tx_hash: str) -> int:
    receipt = _rpc(devnet.manifest()["chains"][chain]["rpc_url"], "eth_getTransactionReceipt", [tx_hash])
    return int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)


def _admin(daemon: DaemonProcess, method: str, path: str, body: Any = None, key: str | None = ADMIN_KEY
           ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, f"{daemon.api_url}/admin/v1{path}", json=body, headers=headers, timeout=10)


def _db_rows(daemon: DaemonProcess, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    path = daemon.config.parent / "relayer.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return list(db.execute(sql, args).fetchall())


def _floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


@pytest.fixture(scope="module")
def payouts_daemon(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    directory = tmp_path_factory.mktemp("payouts")
    points = directory / "failpoints"
    points.write_text("")
    daemon = DaemonProcess(write_daemon_config(devnet, directory, api_port=free_port_block(1)), directory / "d.log",
                           instance="payouts", env={"RELAYER__ADMIN__API_KEYS": f'["{ADMIN_KEY}"]',
                                                    "RELAYER__ROUTER__INTEGRATOR_PAYOUT_INTERVAL_S": str(INTERVAL_S),
                                                    "RELAYER_FAILPOINTS": f"@{points}"}).start()
    wait_for(lambda: httpx.get(f"{daemon.api_url}/v1/chains").status_code == 200, 30, "capacity to be sampled")
    daemon.points = points  # type: ignore[attr-defined]
    yield daemon
    daemon.stop()


def test_registration_is_the_admins_and_bad_input_names_the_field(payouts_daemon: DaemonProcess) -> None:
    good = {"payout_addresses": {"l1": "0x" + secrets.token_hex(20)}, "share": 0.2}
    assert _admin(payouts_daemon, "PUT", "/integrators/reg-check", good, key=None).status_code == 401
    assert _admin(payouts_daemon, "GET", "/integrators/reg-check").status_code == 404
    for body, field in [({"payout_addresses": {"mars": "0x" + "11" * 20}}, "payout_addresses.mars"),
                        ({"payout_addresses": {"l1": "0x1234"}}, "payout_addresses.l1"),
                        ({"payout_addresses": {"l1": "0x" + "aB" * 20}}, "payout_addresses.l1"),
                        ({"payout_addresses": {"l1": "0x" + "11" * 20}, "share": 1.5}, "share"),
                        ({"payout_addresses": {}}, "payout_addresses")]:
        resp = _admin(payouts_daemon, "PUT", "/integrators/reg-check", body)
        assert resp.status_code == 400 and resp.json()["detail"]["field"] == field, (body, resp.text)
    assert _admin(payouts_daemon, "PUT", "/integrators/Bad!", good).json()["detail"]["field"] == "code"
    assert _admin(payouts_daemon, "GET", "/integrators/reg-check").status_code == 404  # nothing stored
    put = _admin(payouts_daemon, "PUT", "/integrators/reg-check", good).json()
    assert put["created"] and put["integrator"]["share"] == "0.2"
    assert _admin(payouts_daemon, "GET", "/integrators/reg-check").json()["payout_addresses"] == good[
        "payout_addresses"]
    listed = _admin(payouts_daemon, "GET", "/integrators").json()["integrators"]
    assert [i["code"] for i in listed] == ["reg-check"]


def _settled_intents(api: str, code: str) -> list[dict[str, Any]]:
    """Same-chain USDC transfers on l1 and rollup_a, and a cross-chain TST transfer from l1, with ``code``."""
    def recipient() -> str:
        return "0x" + secrets.token_hex(20)

    same = [{"token": "USDC", "amount": f"0.{i + 1}", "recipient": recipient(), "chains": [chain], "integrator": code}
            for chain in ("l1", "rollup_a") for i in range(3)]
    cross = [{"kind": "xchain", "from_chain": "l1", "chains": ["rollup_b"], "amount": "1.5", "recipient": recipient(),
              "integrator": code}]
    with RoutingClient(api) as client:
        ids = client.submit_batch([*same, *cross])["ids"]
        assert None not in ids
        done = [client.wait(i, until={"included"}, timeout=90) for i in ids[:len(same)]]
        done += [client.wait(i, until={"delivered"}, timeout=180) for i in ids[len(same):]]
    return done


def _fees_by_chain(devnet: Any, done: list[dict[str, Any]]) -> dict[str, int]:
    """Per chain that paid them: the fees of the intents' transactions, read from their receipts on chain."""
    out: dict[str, int] = {}
    for st in done:
        out[st["origin"]] = out.get(st["origin"], 0) + _receipt_fee(devnet, st["origin"], st["tx_hash"])
    return out


def _report(daemon: DaemonProcess, code: str) -> dict[str, Any]:
    return httpx.get(f"{daemon.api_url}/v1/integrators/{code}/report", timeout=10).json()


def _paid(daemon: DaemonProcess, code: str) -> dict[str, int]:
    chains = _report(daemon, code)["rewards"]["by_chain"]
    return {c: int(b["paid"]) for c, b in chains.items()}


@pytest.fixture(scope="module")
def paid(payouts_daemon: DaemonProcess, devnet: Any) -> dict[str, Any]:
    """The scenario: intents settled, the code registered, the daemon dead with a payout stored and unsent,
    restarted, every payout landed; what the tests below check."""
    code = "payee-" + secrets.token_hex(4)
    payees = {"l1": "0x" + secrets.token_hex(20), "rollup_a": "0x" + secrets.token_hex(20)}
    done = _settled_intents(payouts_daemon.api_url, code)
    fees = _fees_by_chain(devnet, done)
    assert set(fees) == {"l1", "rollup_a"} and all(f > 0 for f in fees.values())
    before = {c: _balance(devnet, c, a) for c, a in payees.items()}
    assert before == {"l1": 0, "rollup_a": 0}

    payouts_daemon.points.write_text("intent_after_sign=exit\n")  # type: ignore[attr-defined]
    put = _admin(payouts_daemon, "PUT", f"/integrators/{code}", {"payout_addresses": payees, "share": float(SHARE)})
    assert put.status_code == 200, put.text
    proc = payouts_daemon.proc
    assert proc is not None
    wait_for(lambda: proc.poll() is not None, 60, "the daemon to die right after storing a payout's transaction")
    stored = _db_rows(payouts_daemon, "SELECT p.chain, p.amount, i.status, i.tx_hash FROM integrator_payouts p "
                                      "JOIN intents i ON i.id = p.intent_id WHERE p.code = ?", code)
    signed = {chain: tx for chain, _amount, status, tx in stored if status == "signed"}
    assert signed, stored  # one payout's transaction stored before it was sent ...
    assert {c: _balance(devnet, c, a) for c, a in payees.items()} == before  # ... and nothing sent

    payouts_daemon.points.write_text("")  # type: ignore[attr-defined]
    payouts_daemon.start()
    expected = {c: _floor(SHARE * fees[c]) for c in payees}
    wait_for(lambda: _paid(payouts_daemon, code) == expected, 120,
             f"both payouts to land ({expected}; report: {_paid(payouts_daemon, code)})")
    print(f"\npayouts: share {SHARE}, receipts' fees {fees}, floor(share x fees) {expected}, "
          f"stored before the kill {signed}")
    return {"code": code, "payees": payees, "fees": fees, "expected": expected, "signed_before_kill": signed,
            "intents": done}


def test_each_payout_address_gets_exactly_floor_share_of_the_receipts_fees_once(paid: dict[str, Any],
                                                                                 payouts_daemon: DaemonProcess,
                                                                                 devnet: Any) -> None:
    code, payees, expected = paid["code"], paid["payees"], paid["expected"]
    balances = {c: _balance(devnet, c, a) for c, a in payees.items()}
    assert balances == expected, (balances, paid["fees"])
    report = _report(payouts_daemon, code)
    payouts = report["rewards"]["payouts"]
    assert sorted(p["chain"] for p in payouts) == ["l1", "rollup_a"] and all(p["status"] == "paid" for p in payouts)
    for p in payouts:  # one native transfer per chain, from an operator account, to the registered address
        tx = _rpc(devnet.manifest()["chains"][p["chain"]]["rpc_url"], "eth_getTransactionByHash", [p["tx_hash"]])
        assert tx["to"].lower() == payees[p["chain"]] and int(tx["value"], 16) == int(p["amount"])
        assert tx["from"].lower() in OPERATORS and tx["input"] == "0x"
        assert p["intents"] == sum(1 for st in paid["intents"] if st["origin"] == p["chain"])
    for chain, tx in paid["signed_before_kill"].items():  # the transaction stored before the kill is the one mined
        assert next(p["tx_hash"] for p in payouts if p["chain"] == chain) == tx
    assert {c: b["pending"] for c, b in report["rewards"]["by_chain"].items()} == {"l1": "0", "rollup_a": "0"}
    assert report["rewards"]["share"] == str(SHARE) and report["fee_share"] == float(SHARE)

    time.sleep(3 * INTERVAL_S)  # later epochs: nothing paid twice
    assert {c: _balance(devnet, c, a) for c, a in payees.items()} == expected
    assert len(_report(payouts_daemon, code)["rewards"]["payouts"]) == 2


def test_later_fees_are_paid_so_the_total_is_the_floor_of_the_share_of_all(paid: dict[str, Any],
                                                                           payouts_daemon: DaemonProcess,
                                                                           devnet: Any) -> None:
    code, payees = paid["code"], paid["payees"]
    with RoutingClient(payouts_daemon.api_url) as client:
        ids = client.submit_batch([{"token": "USDC", "amount": "0.7", "recipient": "0x" + secrets.token_hex(20),
                                    "chains": ["l1"], "integrator": code} for _ in range(2)])["ids"]
        more = [client.wait(i, until={"included"}, timeout=90) for i in ids]
    total_l1 = paid["fees"]["l1"] + sum(_receipt_fee(devnet, "l1", st["tx_hash"]) for st in more)
    want = _floor(SHARE * total_l1)
    wait_for(lambda: _balance(devnet, "l1", payees["l1"]) == want, 60,
             f"the l1 payee to hold floor({SHARE} x {total_l1}) = {want}")
    print(f"\nsecond l1 payout: all l1 fees {total_l1}, floor({SHARE} x fees) {want}, payee balance "
          f"{_balance(devnet, 'l1', payees['l1'])}")
    time.sleep(2 * INTERVAL_S)
    assert _balance(devnet, "l1", payees["l1"]) == want
    assert _balance(devnet, "rollup_a", payees["rollup_a"]) == paid["expected"]["rollup_a"]
    report = _report(payouts_daemon, code)
    assert [p["chain"] for p in report["rewards"]["payouts"]].count("l1") == 2
    assert report["rewards"]["by_chain"]["l1"]["paid"] == str(want)


def test_quotes_and_conversion_count_for_a_registered_code_only(paid: dict[str, Any],
                                                                payouts_daemon: DaemonProcess) -> None:
    api, code = payouts_daemon.api_url, paid["code"]
    for _ in range(3):
        assert httpx.post(f"{api}/v1/quote", json={"amount": "1", "integrator": code}).status_code == 200
    ghost = "ghost-" + secrets.token_hex(4)
    assert httpx.post(f"{api}/v1/quote", json={"amount": "1", "integrator": ghost}).status_code == 200
    bad = httpx.post(f"{api}/v1/quote", json={"amount": "1", "integrator": "Bad!"})
    assert bad.status_code == 400 and bad.json()["detail"]["field"] == "integrator"
    report = _report(payouts_daemon, code)
    assert report["quotes"]["total"] == 3
    assert report["conversion"]["intents"] >= 9 and report["conversion"]["quotes"] == 3
    assert _report(payouts_daemon, ghost)["quotes"]["total"] == 0  # a made-up code leaves no row
    assert not _db_rows(payouts_daemon, "SELECT * FROM integrator_quotes WHERE code = ?", ghost)
    days = report["by_chain_day"]
    assert {d["chain"] for d in days} == {"l1", "rollup_a"}
    assert sum(int(d["fee_paid"]) for d in days if d["chain"] == "rollup_a") == paid["fees"]["rollup_a"]


def test_the_explorer_page_of_the_code_shows_payouts_with_their_hashes(paid: dict[str, Any],
                                                                       payouts_daemon: DaemonProcess) -> None:
    from tests.integration.test_explorer import headless_chromium
    from tests.integration.test_explorer_stuck import js, open_page, until

    code = paid["code"]
    report = _report(payouts_daemon, code)
    with headless_chromium("explorer-payouts-chromium-") as driver:
        open_page(driver, payouts_daemon, f"#integrator/{code}")
        until(driver, lambda: js(driver, "return !document.getElementById('integrator').hidden && "
                                         "+(document.getElementById('integrator').dataset.loaded || 0) > 0"),
              PAGE_TIMEOUT_S, "the integrator page to load the report")
        rows = js(driver, "return [...document.querySelectorAll('#integrator-payouts tbody tr')].map(r => ["
                          "r.children[1].textContent, r.querySelector('[data-field=amount]').textContent, "
                          "r.querySelector('[data-field=status]').textContent, "
                          "r.querySelector('[data-field=tx]').title])")
        assert sorted(map(tuple, rows)) == sorted((p["chain"], p["amount"], p["status"], p["tx_hash"])
                                                  for p in report["rewards"]["payouts"])
        paid_cells = js(driver, "return Object.fromEntries([...document.querySelectorAll('#integrator-rewards tbody "
                                "tr')].map(r => [r.dataset.chain, r.querySelector('[data-field=paid]').textContent]))")
        assert paid_cells == {c: b["paid"] for c, b in report["rewards"]["by_chain"].items()}
        assert js(driver, "return document.querySelector('[data-field=quotes] strong').textContent") == str(
            report["quotes"]["total"])
        assert js(driver, "return location.hash") == f"#integrator/{code}"
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert errors == []
