"""Routing API against the real daemon on the devnet: live chains, quotes, bad input, intents, and who may spend
the operator accounts (issue 12): the start-up refusal, the call allow-list, per-client limits (429 + Retry-After),
nothing stored for refused or unserved input, the integrator report from receipts, reported hashes checked."""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from adapters.evm.devnet import USER_A, USER_B, address_of, devnet_key
from devnets.devnet import RECEIVED_SELECTOR
from router.client import RoutingClient, RoutingError
from tests.integration.harness import (
    ROOT,
    DaemonProcess,
    DevnetClient,
    free_port_block,
    start_routing_daemon,
    write_daemon_config,
)

pytestmark = pytest.mark.integration
NATIVE_USD = 3000.0  # router.native_usd's default: the devnet config does not set it


@pytest.fixture(scope="module")
def api_daemon(devnet, tmp_path_factory):
    daemon = start_routing_daemon(devnet, tmp_path_factory.mktemp("routing"), "routing")
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def api(api_daemon):
    return api_daemon.api_url


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    return httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                      timeout=10).json()["result"]


def _receipt_fee(rpc_url: str, tx_hash: str) -> int:
    """Gas used x effective gas price, read from the node (what the intent's fee must be)."""
    receipt = _rpc(rpc_url, "eth_getTransactionReceipt", [tx_hash])
    return int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)


def _nonces(manifest: dict[str, Any], holders: list[str]) -> dict[tuple[str, str], int]:
    return {(c, h): int(_rpc(info["rpc_url"], "eth_getTransactionCount", [h, "pending"]), 16)
            for c, info in manifest["chains"].items() for h in holders}


def _intent_rows(daemon: DaemonProcess) -> int:
    """Rows in the daemon's intents table, read from its SQLite file (read-only)."""
    path = daemon.config.parent / "relayer.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT count(*) FROM intents").fetchone()[0])


def test_chains_report_live_capacity(api, devnet):
    chains = {c["name"]: c for c in httpx.get(f"{api}/v1/chains").json()["chains"]}
    manifest = devnet.manifest()["chains"]
    assert set(chains) == set(manifest)
    for name, c in chains.items():
        assert c["healthy"] and c["gas_limit"] == manifest[name]["gas_limit"]
        assert c["spare_gas_per_s"] > 0 and c["transfer_fee_usd"] > 0
    # rollup_b (40 Mgas / 0.25 s) has more room than l1 (30 Mgas / 1 s)
    assert chains["rollup_b"]["spare_gas_per_s"] > chains["l1"]["spare_gas_per_s"]


def test_quote_honours_allowed_chains_and_lists_options(api):
    q = httpx.post(f"{api}/v1/quote", json={"amount": "10", "chains": ["rollup_a"]}).json()
    assert q["route"]["chain"] == "rollup_a" and [o["chain"] for o in q["options"]] == ["rollup_a"]
    q = httpx.post(f"{api}/v1/quote", json={"amount": "1.5"}).json()
    assert q["route"]["chain"] in {"l1", "rollup_a", "rollup_b"} and len(q["options"]) == 3
    fees = [o["fee_usd"] for o in q["options"]]
    assert fees == sorted(fees)
    x = httpx.post(f"{api}/v1/quote", json={"kind": "xchain", "amount": "5", "from_chain": "l1"}).json()
    assert x["route"]["origin"] == "l1" and x["route"]["chain"] in {"rollup_a", "rollup_b"}
    assert all(o["chain"] != "l1" for o in x["options"])
    slow = httpx.post(f"{api}/v1/quote", json={"amount": "1", "max_latency_s": 0.001}).json()
    assert slow["route"] is None and slow["unserved_reason"] == "latency"


@pytest.mark.parametrize(
    ("body", "status", "field", "needle"),
    [
        ({"amount": "10", "chains": ["l1", "mars"]}, 400, "chains[1]", "unknown chain 'mars'"),
        ({"amount": "-3"}, 400, "amount", "positive"),
        ({"amount": "ten"}, 400, "amount", "not a number"),
        ({"kind": "xchain", "amount": "1"}, 400, "from_chain", "needs its origin"),
        ({"amount": "1", "colour": "red"}, 400, "colour", "Extra inputs"),
        ({"amount": "1", "max_fee_usd": 0}, 400, "max_fee_usd", "greater than 0"),
        ({"amount": "1", "chains": ["l1", 7]}, 400, "chains[1]", "valid string"),
    ],
)
def test_bad_quotes_get_one_400_shape_naming_the_field(api, body, status, field, needle):
    """Whichever check finds it (the route's own or the request model's), bad input is 400 {field, error}."""
    resp = httpx.post(f"{api}/v1/quote", json=body)
    assert resp.status_code == status
    detail = resp.json()["detail"]
    assert detail["field"] == field and needle in detail["error"]


# ---- intents: submit, status, integrator report (operators: the two funded devnet user accounts)

def _recipient() -> str:
    return "0x" + secrets.token_bytes(20).hex()


@pytest.fixture(scope="module")
def chain_client(devnet):
    client = DevnetClient(devnet)
    yield client
    asyncio.run(client.close())


def _balances(chain_client: DevnetClient, holders: list[str]) -> dict[tuple[str, str], int]:
    async def go() -> dict[tuple[str, str], int]:
        out = {}
        for name, adapter in chain_client.adapters.items():
            for h in holders:
                out[(name, h)] = await adapter.token_balance("TST", h)  # type: ignore[attr-defined]
        return out

    return asyncio.run(go())


OPERATORS = [address_of(devnet_key(i)) for i in (USER_A, USER_B)]


def test_submitted_batch_moves_tokens_and_counts_for_the_integrator(api, api_daemon, chain_client, devnet):
    code = "dapp-" + secrets.token_hex(4)
    same = [{"amount": f"{1 + i / 10}", "recipient": _recipient(), "integrator": code} for i in range(20)]
    cross = [{"kind": "xchain", "from_chain": "l1", "chains": [dest], "amount": "2.5", "recipient": _recipient(),
              "integrator": code} for dest in ("rollup_a", "rollup_b")]
    unserved = {"amount": "7", "recipient": _recipient(), "integrator": code, "max_latency_s": 0.000001}
    rows_before = _intent_rows(api_daemon)
    with RoutingClient(api) as client:
        answer = client.submit_batch([*same, unserved, *cross])
        ids = answer["ids"]
        # the unserved one is answered inline and stored nowhere: no id, no row
        assert ids[20] is None and answer["statuses"][20] == "unserved" and answer["reasons"][20] == "latency"
        ids = ids[:20] + ids[21:]
        assert len(ids) == 22 and len(set(ids)) == 22 and None not in ids
        assert _intent_rows(api_daemon) == rows_before + 22
        done = [client.wait(i, until={"included"}, timeout=60) for i in ids[:20]]
        done += [client.wait(i, until={"delivered"}, timeout=180) for i in ids[20:]]
        report = client.report(code)
    for st in done:
        assert st["tx_hash"] and st["fee_estimate_usd"] > 0 and st["integrator"] == code
    # the fee each intent paid is its transaction's receipt (gas used x effective gas price), not the estimate
    manifest = devnet.manifest()["chains"]
    for st in done:
        assert int(st["fee_paid"]) == _receipt_fee(manifest[st["origin"]]["rpc_url"], st["tx_hash"]) > 0
        assert st["fee_paid_usd"] == pytest.approx(int(st["fee_paid"]) / 1e18 * NATIVE_USD)
    assert all(st["kind"] == "transfer" and st["chain"] == st["origin"] for st in done[:20])
    assert [st["chain"] for st in done[20:]] == ["rollup_a", "rollup_b"] and all(st["message_id"] for st in done[20:])

    async def received() -> list[int]:
        return [await chain_client.adapters[st["chain"]].token_balance("TST", st["recipient"])  # type: ignore[attr-defined]
                for st in done]

    got = asyncio.run(received())
    want = [int(Decimal(it["amount"]) * 10**18) for it in same + cross]
    assert got == want
    assert report["intents"] == 22 and report["pending"] == 0
    assert Decimal(report["volume"]) == sum(Decimal(it["amount"]) for it in same + cross)
    assert report["fees_usd"] == pytest.approx(sum(st["fee_paid_usd"] for st in done))
    assert report["fees_usd"] != pytest.approx(sum(st["fee_estimate_usd"] for st in done))
    assert report["fee_share_usd"] == pytest.approx(0.1 * report["fees_usd"])
    assert sum(c["intents"] for c in report["by_chain"].values()) == 22
    assert sum(d["intents"] for d in report["by_day"].values()) == 22
    assert httpx.get(f"{api}/v1/intents/int_nope").status_code == 404


@pytest.mark.parametrize(
    ("intents", "status", "field", "needle"),
    [
        ([{"amount": "1", "recipient": "0x01"}] * 1001, 413, "intents", "at most 1000"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20}, {"amount": "1", "recipient": "0x12zz"}], 400,
         "intents[1].recipient", "20-byte address"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "chains": ["l1", "mars"]}], 400, "intents[0].chains[1]",
         "mars"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20}, {"amount": "-2", "recipient": "0x" + "11" * 20}], 400,
         "intents[1].amount", "positive"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "integrator": "Bad Code!"}], 400, "intents[0].integrator",
         "[a-z0-9_-]"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "colour": "red"}], 400, "intents[0].colour", "Extra inputs"),
        ([{"kind": "call", "amount": "0", "recipient": "0x" + "11" * 20, "chains": ["l1"]}], 400, "intents[0].calldata",
         "needs calldata"),
        ([{"kind": "call", "amount": "0", "recipient": "0x" + "11" * 20, "calldata": "0xabc", "chains": ["l1"]}], 400,
         "intents[0].calldata", "whole bytes"),
        ([{"kind": "call", "amount": "5", "recipient": "0x" + "11" * 20, "calldata": "0x", "chains": ["l1"]}], 400,
         "intents[0].amount", "no value"),
        ([{"kind": "call", "amount": "0", "recipient": "0x" + "11" * 20, "calldata": "0x"}], 400, "intents[0].chains",
         "chains where its contract is"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "calldata": "0x00"}], 400, "intents[0].calldata",
         "only a call"),
    ],
)
def test_bad_batches_are_refused_whole_and_nothing_is_sent(api, chain_client, intents, status, field, needle):
    holders = [*OPERATORS, "0x" + "11" * 20]
    before = _balances(chain_client, holders)
    resp = httpx.post(f"{api}/v1/intents", json={"intents": intents})
    assert resp.status_code == status
    detail = resp.json()["detail"]
    assert detail["field"] == field and needle in detail["error"]
    assert _balances(chain_client, holders) == before


def test_call_intents_run_the_contract_call_on_the_chosen_chain(api, devnet):
    """A call intent to the allow-listed TestRecipient.received(), from an operator account: the transaction is read
    back from the chain (sender, contract, call data, success)."""
    manifest = devnet.manifest()["chains"]
    intents = [{"kind": "call", "amount": "0", "recipient": manifest[c]["contracts"]["test_recipient"],
                "calldata": RECEIVED_SELECTOR, "chains": [c], "work": 1.2} for c in ("rollup_a", "rollup_b")]
    with RoutingClient(api) as client:
        ids = client.submit(intents)
        done = [client.wait(i, until=("included",), timeout=60) for i in ids if i is not None]
    assert [d["status"] for d in done] == ["included", "included"]
    for d, chain in zip(done, ("rollup_a", "rollup_b"), strict=True):
        assert d["chain"] == chain and d["kind"] == "call" and d["calldata"] == RECEIVED_SELECTOR
        tx = _rpc(manifest[chain]["rpc_url"], "eth_getTransactionByHash", [d["tx_hash"]])
        receipt = _rpc(manifest[chain]["rpc_url"], "eth_getTransactionReceipt", [d["tx_hash"]])
        assert tx["to"].lower() == manifest[chain]["contracts"]["test_recipient"].lower()
        assert tx["input"] == RECEIVED_SELECTOR and tx["from"].lower() in {o.lower() for o in OPERATORS}
        assert int(receipt["status"], 16) == 1


def _allowance(rpc_url: str, token: str, owner: str, spender: str) -> int:
    data = "0xdd62ed3e" + owner[2:].lower().rjust(64, "0") + spender[2:].lower().rjust(64, "0")
    return int(_rpc(rpc_url, "eth_call", [{"to": token, "data": data}, "latest"]), 16)


def test_calls_outside_the_allowlist_are_refused_and_nothing_is_sent(api, api_daemon, devnet):
    """What the old call test did, USDC.approve(spender, n) from an operator account, lets the spender take the
    operator's tokens: refused (403 naming the field), and the chain shows no transaction and no allowance."""
    manifest = devnet.manifest()["chains"]
    spender = _recipient()
    approve = "0x095ea7b3" + spender[2:].rjust(64, "0") + hex(123_456)[2:].rjust(64, "0")
    transfer_all = "0xa9059cbb" + spender[2:].rjust(64, "0") + "f" * 64
    usdc = {c: manifest[c]["tokens"]["USDC"]["address"] for c in ("l1", "rollup_a")}
    recipient = manifest["l1"]["contracts"]["test_recipient"]
    cases = [
        ({"recipient": usdc["l1"], "calldata": approve, "chains": ["l1"]}, "intents[0].recipient"),
        ({"recipient": usdc["rollup_a"], "calldata": transfer_all, "chains": ["rollup_a"]}, "intents[0].recipient"),
        ({"recipient": recipient, "calldata": "0xa9059cbb" + "00" * 64, "chains": ["l1"]}, "intents[0].calldata"),
    ]
    nonces = _nonces(devnet.manifest(), OPERATORS)
    rows = _intent_rows(api_daemon)
    for fields, field in cases:
        resp = httpx.post(f"{api}/v1/intents", json={"intents": [{"kind": "call", "amount": "0", **fields}]})
        assert resp.status_code == 403, resp.text
        assert resp.json()["detail"]["field"] == field and resp.json()["detail"]["limit"] == "router.call_allowlist"
    assert _nonces(devnet.manifest(), OPERATORS) == nonces and _intent_rows(api_daemon) == rows
    for chain, token in usdc.items():
        assert all(_allowance(manifest[chain]["rpc_url"], token, o, spender) == 0 for o in OPERATORS)
    metrics = httpx.get(f"{api}/metrics").text
    assert 'router_intents_refused_total{reason="call_not_allowed"}' in metrics


def test_unsigned_mode_hands_the_dapp_transactions_to_sign_and_follows_them(api, devnet):
    """A dApp with its own account: the router plans, returns unsigned transactions, the dApp signs and
    broadcasts them, reports the hashes, and the intents are followed to inclusion."""
    from eth_account import Account
    from web3 import HTTPProvider, Web3

    manifest = devnet.manifest()["chains"]
    dapp = Account.create()
    funder = Account.from_key(devnet_key(USER_A))  # public anvil devnet test key
    someone_elses: dict[str, str] = {}  # the funder's real transactions: not the dApp's to report
    for name in ("l1", "rollup_a"):
        w3 = Web3(HTTPProvider(manifest[name]["rpc_url"]))
        w3.provider.make_request("anvil_setBalance", [dapp.address, hex(10**18)])
        usdc = manifest[name]["tokens"]["USDC"]["address"]
        data = "0xa9059cbb" + dapp.address[2:].lower().rjust(64, "0") + hex(5 * 10**6)[2:].rjust(64, "0")
        tx = funder.sign_transaction({"to": Web3.to_checksum_address(usdc), "data": data, "gas": 100_000,
                                      "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "chainId": w3.eth.chain_id,
                                      "nonce": w3.eth.get_transaction_count(funder.address, "pending"), "type": 2})
        receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction))
        assert receipt["status"] == 1
        someone_elses[name] = "0x" + bytes(receipt["transactionHash"]).hex()
    recipients = [_recipient() for _ in range(2)]
    code = "signer-" + secrets.token_hex(4)
    intents = [{"token": "USDC", "amount": "1.25", "recipient": r, "chains": [c], "integrator": code}
               for r, c in zip(recipients, ("l1", "rollup_a"), strict=True)]
    with RoutingClient(api) as client:
        with pytest.raises(RoutingError) as bad:
            client.submit_unsigned([{**intents[0], "kind": "xchain", "from_chain": "l1", "chains": ["rollup_a"]}],
                                   dapp.address)
        assert bad.value.status == 400 and bad.value.detail["field"] == bad.value.field == "intents[0].kind"
        answer = client.submit_unsigned(intents, dapp.address)
        assert answer["statuses"] == ["unsigned", "unsigned"]
        for intent_id, unsigned, chain in zip(answer["ids"], answer["transactions"], ("l1", "rollup_a"), strict=True):
            w3 = Web3(HTTPProvider(manifest[chain]["rpc_url"]))
            assert int(unsigned["chainId"], 16) == w3.eth.chain_id and unsigned["from"] == dapp.address
            fields = {k: (int(v, 16) if k in ("gas", "maxFeePerGas", "maxPriorityFeePerGas", "chainId", "value") else v)
                      for k, v in unsigned.items() if k not in ("from", "type")}
            signed = dapp.sign_transaction({**fields, "type": 2, "nonce": w3.eth.get_transaction_count(dapp.address)})
            tx_hash = "0x" + w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")
            assert client.broadcast(intent_id, tx_hash)["status"] in ("submitted", "included")
            with pytest.raises(RoutingError) as twice:
                client.broadcast(intent_id, tx_hash)
            assert twice.value.status == 409
        done = [client.wait(i, until=("included",), timeout=60) for i in answer["ids"]]
        # bogus reports, each for a fresh unsigned intent of the same code: someone else's real transaction (the
        # funder's, mined), a hash already reported for another intent (a replay), a hash no chain knows
        bogus = client.submit_unsigned([intents[0]] * 3, dapp.address)["ids"]
        with pytest.raises(RoutingError) as stolen:
            client.broadcast(bogus[0], someone_elses["l1"])
        assert stolen.value.status == 400 and stolen.value.detail["field"] == "tx_hash"
        assert "not by the intent's signer" in stolen.value.detail["error"]
        assert client.status(bogus[0])["status"] == "failed"
        with pytest.raises(RoutingError) as replay:
            client.broadcast(bogus[1], done[0]["tx_hash"])
        assert replay.value.status == 409 and client.status(bogus[1])["status"] == "unsigned"
        assert client.broadcast(bogus[2], "0x" + secrets.token_hex(32))["status"] == "submitted"  # fails unmined
        report = client.report(code)
    assert [d["status"] for d in done] == ["included", "included"]
    # only the two transactions the dApp really sent for its intents count, with their receipts' fees
    assert report["intents"] == 2 and Decimal(report["volume"]) == Decimal("2.5") and report["pending"] == 2
    assert report["fees_usd"] == pytest.approx(sum(d["fee_paid_usd"] for d in done)) and report["fees_usd"] > 0

    async def balances() -> list[int]:
        client = DevnetClient(devnet)
        try:
            return [await client.adapters[c].token_balance("USDC", r)  # type: ignore[attr-defined]
                    for r, c in zip(recipients, ("l1", "rollup_a"), strict=True)]
        finally:
            await client.close()

    assert asyncio.run(balances()) == [1_250_000, 1_250_000]


def test_batch_event_stream_follows_every_intent_to_the_end(api):
    code = "sse-" + secrets.token_hex(4)
    batch = [{"amount": "0.5", "recipient": _recipient(), "integrator": code} for _ in range(3)]
    batch.append({"kind": "xchain", "from_chain": "l1", "chains": ["rollup_b"], "amount": "1",
                  "recipient": _recipient(), "integrator": code})
    with RoutingClient(api) as client:
        submitted = client.submit_batch(batch)
        last: dict[str, str] = {}
        events = []
        for event, data in client.events(submitted["batch"], timeout=180):
            events.append(event)
            if event == "intent":
                last[data["id"]] = data["status"]
        assert events[-1] == "done"
        assert set(last) == set(submitted["ids"])
        assert [last[i] for i in submitted["ids"]] == ["included"] * 3 + ["delivered"]
        # the daemon moved them on by itself (no status calls were made): the report already counts them
        report = client.report(code)
        assert report["intents"] == 4 and report["pending"] == 0
        with pytest.raises(RoutingError) as err:
            next(client.events("no-such-batch"))
        assert err.value.status == 404


# ---- who may spend the operator accounts: start-up, per-client limits

def test_operator_keys_without_api_keys_refuse_to_start_off_loopback(devnet, tmp_path):
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    exposed = tmp_path / "exposed.toml"
    exposed.write_text(config.read_text().replace('url = "http://127.0.0.1:', 'url = "http://0.0.0.0:', 1))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    check = subprocess.run([sys.executable, "-m", "relayer.cli", "config", "check", str(exposed)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert check.returncode == 2 and "router.api_keys" in check.stderr and "loopback" in check.stderr, check.stderr
    run = subprocess.run([sys.executable, "-m", "relayer.cli", "run", "-c", str(exposed), "--no-status"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2 and "router.api_keys" in run.stderr, run.stderr[-2000:]
    # with an API key it may listen anywhere
    keyed = tmp_path / "keyed.toml"
    keyed.write_text(exposed.read_text().replace("[router]\n", '[router]\napi_keys = ["k-123"]\n', 1))
    ok = subprocess.run([sys.executable, "-m", "relayer.cli", "config", "check", str(keyed)], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr


def test_the_loopback_daemon_without_api_keys_says_so_at_start(api, api_daemon):
    """The devnet's case: allowed on loopback, with a warning event and a gauge."""
    assert "operator_api_unauthenticated" in api_daemon.log.read_text()
    assert "router_operator_api_unauthenticated 1" in httpx.get(f"{api}/metrics").text


@pytest.fixture(scope="module")
def limited(devnet, tmp_path_factory):
    """A second daemon (validator role: it relays nothing) with small per-client limits."""
    env = {"RELAYER__ROUTER__INTENTS_PER_S": "0.5", "RELAYER__ROUTER__INTENTS_BURST": "4",
           "RELAYER__ROUTER__VALUE_PER_DAY": "{ TST = 3.0 }"}
    daemon = start_routing_daemon(devnet, tmp_path_factory.mktemp("limited"), "limited", role="validator", env=env)
    yield daemon
    daemon.stop()


def test_over_the_intent_rate_is_429_with_retry_after_and_costs_nothing(limited, devnet, chain_client):
    url = limited.api_url
    recipient = _recipient()
    slow = {"amount": "0.5", "recipient": recipient, "max_latency_s": 0.000001}  # unserved by the planner
    first = httpx.post(f"{url}/v1/intents", json={"intents": [slow] * 4})
    assert first.status_code == 202 and first.json()["ids"] == [None] * 4 and first.json()["batch"] is None
    nonces = _nonces(devnet.manifest(), OPERATORS)
    refused = httpx.post(f"{url}/v1/intents", json={"intents": [{"amount": "0.5", "recipient": recipient}] * 2})
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    assert detail["limit"] == "router.intents_per_s" and 0 < detail["retry_after_s"] <= 4.0
    assert int(refused.headers["Retry-After"]) >= 1
    assert httpx.post(f"{url}/v1/intents",
                      json={"intents": [slow] * 5}).json()["detail"]["limit"] == "router.intents_burst"
    assert _intent_rows(limited) == 0 and _nonces(devnet.manifest(), OPERATORS) == nonces
    assert _balances(chain_client, [recipient]) == {(c, recipient): 0 for c in chain_client.adapters}
    metrics = httpx.get(f"{url}/metrics").text
    assert 'router_intents_refused_total{reason="rate_limit"}' in metrics


def test_value_per_day_is_429_once_the_clients_budget_is_spent(limited, chain_client):
    url = limited.api_url

    def post(body: dict[str, Any]) -> httpx.Response:  # waits out the intent rate (0.5/s), never the value limit
        deadline = time.monotonic() + 30
        while True:
            resp = httpx.post(f"{url}/v1/intents", json=body, timeout=30)
            if resp.status_code != 429 or resp.json()["detail"]["limit"] != "router.intents_per_s":
                return resp
            assert time.monotonic() < deadline, resp.text
            time.sleep(float(resp.json()["detail"]["retry_after_s"]))  # pacing: the server says when

    recipients = [_recipient() for _ in range(3)]
    ok = post({"intents": [{"amount": "2", "recipient": recipients[0], "chains": ["l1"]}]})
    assert ok.status_code == 202, ok.text
    over = post({"intents": [{"amount": "2", "recipient": recipients[1], "chains": ["l1"]}]})
    assert over.status_code == 429 and over.json()["detail"]["limit"] == "router.value_per_day.TST"
    assert int(over.headers["Retry-After"]) > 3600  # a day's budget of 3 TST refills 1 TST in 8 hours
    unlisted = post({"intents": [{"amount": "1", "token": "USDC", "recipient": recipients[2], "chains": ["l1"]}]})
    assert unlisted.status_code == 403 and unlisted.json()["detail"]["field"] == "intents[0].token"
    with RoutingClient(url) as client:
        assert client.wait(ok.json()["ids"][0], until={"included"}, timeout=60)["status"] == "included"

    async def got() -> list[int]:
        return [await chain_client.adapters["l1"].token_balance(t, r)  # type: ignore[attr-defined]
                for t, r in (("TST", recipients[0]), ("TST", recipients[1]), ("USDC", recipients[2]))]

    assert asyncio.run(got()) == [2 * 10**18, 0, 0]
    assert _intent_rows(limited) == 1
