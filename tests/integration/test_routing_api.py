"""Routing API (first slice) against the real daemon on the devnet: live chains, quotes, bad input."""

from __future__ import annotations

import asyncio
import secrets
from decimal import Decimal

import httpx
import pytest

from adapters.evm.devnet import USER_A, USER_B, address_of, devnet_key
from router.client import RoutingClient, RoutingError
from tests.integration.harness import (
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(devnet, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("routing")
    daemon = DaemonProcess(write_daemon_config(devnet, tmp, api_port=free_port_block(1)), tmp / "d.log",
                           instance="routing").start()
    wait_for(lambda: httpx.get(f"{daemon.api_url}/v1/chains").status_code == 200, 30, "capacity to be sampled")
    yield daemon.api_url
    daemon.stop()


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
        ({"amount": "1", "colour": "red"}, 422, "colour", "Extra inputs"),
        ({"amount": "1", "max_fee_usd": 0}, 422, "max_fee_usd", "greater than 0"),
    ],
)
def test_bad_quotes_get_4xx_naming_the_field(api, body, status, field, needle):
    resp = httpx.post(f"{api}/v1/quote", json=body)
    assert resp.status_code == status
    detail = resp.json()["detail"]
    if status == 400:
        assert detail["field"] == field and needle in detail["error"]
    else:
        assert any(field in [str(p) for p in d["loc"]] and needle in d["msg"] for d in detail)


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


def test_submitted_batch_moves_tokens_and_counts_for_the_integrator(api, chain_client):
    code = "dapp-" + secrets.token_hex(4)
    same = [{"amount": f"{1 + i / 10}", "recipient": _recipient(), "integrator": code} for i in range(20)]
    cross = [{"kind": "xchain", "from_chain": "l1", "chains": [dest], "amount": "2.5", "recipient": _recipient(),
              "integrator": code} for dest in ("rollup_a", "rollup_b")]
    with RoutingClient(api) as client:
        ids = client.submit(same + cross)
        assert len(ids) == 22 and len(set(ids)) == 22
        done = [client.wait(i, until={"included"}, timeout=60) for i in ids[:20]]
        done += [client.wait(i, until={"delivered"}, timeout=180) for i in ids[20:]]
        report = client.report(code)
    for st in done:
        assert st["tx_hash"] and st["fee_estimate_usd"] > 0 and st["integrator"] == code
    assert all(st["kind"] == "transfer" and st["chain"] == st["origin"] for st in done[:20])
    assert [st["chain"] for st in done[20:]] == ["rollup_a", "rollup_b"] and all(st["message_id"] for st in done[20:])

    async def received() -> list[int]:
        return [await chain_client.adapters[st["chain"]].token_balance("TST", st["recipient"])  # type: ignore[attr-defined]
                for st in done]

    got = asyncio.run(received())
    want = [int(Decimal(it["amount"]) * 10**18) for it in same + cross]
    assert got == want
    assert report["intents"] == 22 and report["served"] == 22
    assert Decimal(report["volume"]) == sum(Decimal(it["amount"]) for it in same + cross)
    assert report["fees_usd"] > 0 and report["fee_share_usd"] == pytest.approx(0.1 * report["fees_usd"])
    assert sum(c["intents"] for c in report["by_chain"].values()) == 22
    assert sum(d["intents"] for d in report["by_day"].values()) == 22
    assert httpx.get(f"{api}/v1/intents/int_nope").status_code == 404


@pytest.mark.parametrize(
    ("intents", "status", "field", "needle"),
    [
        ([{"amount": "1", "recipient": "0x01"}] * 1001, 413, "intents", "at most 1000"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20}, {"amount": "1", "recipient": "0x12zz"}], 400,
         "intents[1].recipient", "20-byte address"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "chains": ["l1", "mars"]}], 400, "intents[0].chains[1]", "mars"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20}, {"amount": "-2", "recipient": "0x" + "11" * 20}], 400,
         "intents[1].amount", "positive"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "integrator": "Bad Code!"}], 400, "intents[0].integrator", "[a-z0-9_-]"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "colour": "red"}], 400, "intents[0].colour", "Extra inputs"),
        ([{"kind": "call", "amount": "0", "recipient": "0x" + "11" * 20, "chains": ["l1"]}], 400, "intents[0].calldata",
         "needs calldata"),
        ([{"kind": "call", "amount": "0", "recipient": "0x" + "11" * 20, "calldata": "0xabc", "chains": ["l1"]}], 400,
         "intents[0].calldata", "whole bytes"),
        ([{"kind": "call", "amount": "5", "recipient": "0x" + "11" * 20, "calldata": "0x", "chains": ["l1"]}], 400,
         "intents[0].amount", "no value"),
        ([{"kind": "call", "amount": "0", "recipient": "0x" + "11" * 20, "calldata": "0x"}], 400, "intents[0].chains",
         "chains where its contract is"),
        ([{"amount": "1", "recipient": "0x" + "11" * 20, "calldata": "0x00"}], 400, "intents[0].calldata", "only a call"),
        ([{"kind": "xchain", "token": "USDC", "from_chain": "l1", "amount": "1", "recipient": "0x" + "11" * 20}], 400,
         "intents[0].token", "not bridged"),
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
    """A call intent: USDC.approve(spender, n) from an operator account; the allowance is read back on chain."""
    from web3 import HTTPProvider, Web3

    manifest = devnet.manifest()["chains"]
    spender = _recipient()
    approve = "0x095ea7b3" + spender[2:].rjust(64, "0") + hex(123_456)[2:].rjust(64, "0")
    intents = [{"kind": "call", "amount": "0", "recipient": manifest[c]["tokens"]["USDC"]["address"], "calldata": approve,
                "chains": [c], "work": 1.2} for c in ("rollup_a", "rollup_b")]
    with RoutingClient(api) as client:
        ids = client.submit(intents)
        done = [client.wait(i, until=("included",), timeout=60) for i in ids]
    assert [d["status"] for d in done] == ["included", "included"]
    for d, chain in zip(done, ("rollup_a", "rollup_b"), strict=True):
        assert d["chain"] == chain and d["kind"] == "call" and d["calldata"] == approve
        w3 = Web3(HTTPProvider(manifest[chain]["rpc_url"]))
        token = w3.eth.contract(address=Web3.to_checksum_address(manifest[chain]["tokens"]["USDC"]["address"]),
                                abi=[{"name": "allowance", "type": "function", "stateMutability": "view",
                                      "inputs": [{"name": "o", "type": "address"}, {"name": "s", "type": "address"}],
                                      "outputs": [{"name": "", "type": "uint256"}]}])
        owners = [Web3.to_checksum_address(o) for o in OPERATORS]
        allowances = [token.functions.allowance(o, Web3.to_checksum_address(spender)).call() for o in owners]
        assert 123_456 in allowances


def test_unsigned_mode_hands_the_dapp_transactions_to_sign_and_follows_them(api, devnet):
    """A dApp with its own account: the router plans, returns unsigned transactions, the dApp signs and
    broadcasts them, reports the hashes, and the intents are followed to inclusion."""
    from eth_account import Account
    from web3 import HTTPProvider, Web3

    manifest = devnet.manifest()["chains"]
    dapp = Account.create()
    funder = Account.from_key(devnet_key(USER_A))  # public anvil devnet test key
    for name in ("l1", "rollup_a"):
        w3 = Web3(HTTPProvider(manifest[name]["rpc_url"]))
        w3.provider.make_request("anvil_setBalance", [dapp.address, hex(10**18)])
        usdc = manifest[name]["tokens"]["USDC"]["address"]
        data = "0xa9059cbb" + dapp.address[2:].lower().rjust(64, "0") + hex(5 * 10**6)[2:].rjust(64, "0")
        tx = funder.sign_transaction({"to": Web3.to_checksum_address(usdc), "data": data, "gas": 100_000,
                                      "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "chainId": w3.eth.chain_id,
                                      "nonce": w3.eth.get_transaction_count(funder.address, "pending"), "type": 2})
        assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(tx.raw_transaction))["status"] == 1
    recipients = [_recipient() for _ in range(2)]
    intents = [{"token": "USDC", "amount": "1.25", "recipient": r, "chains": [c]}
               for r, c in zip(recipients, ("l1", "rollup_a"), strict=True)]
    with RoutingClient(api) as client:
        with pytest.raises(RoutingError) as bad:
            client.submit_unsigned([{**intents[0], "kind": "xchain", "from_chain": "l1", "chains": ["rollup_a"]}],
                                   dapp.address)
        assert bad.value.status == 400 and bad.value.detail["field"] == "intents[0].kind"
        answer = client.submit_unsigned(intents, dapp.address)
        assert answer["statuses"] == ["unsigned", "unsigned"]
        for intent_id, unsigned, chain in zip(answer["ids"], answer["transactions"], ("l1", "rollup_a"), strict=True):
            w3 = Web3(HTTPProvider(manifest[chain]["rpc_url"]))
            assert int(unsigned["chainId"], 16) == w3.eth.chain_id and unsigned["from"] == dapp.address
            fields = {k: (int(v, 16) if k in ("gas", "maxFeePerGas", "maxPriorityFeePerGas", "chainId", "value") else v)
                      for k, v in unsigned.items() if k not in ("from", "type")}
            signed = dapp.sign_transaction({**fields, "type": 2, "nonce": w3.eth.get_transaction_count(dapp.address)})
            tx_hash = "0x" + w3.eth.send_raw_transaction(signed.raw_transaction).hex().removeprefix("0x")
            assert client.broadcast(intent_id, tx_hash)["status"] == "submitted"
            with pytest.raises(RoutingError) as twice:
                client.broadcast(intent_id, tx_hash)
            assert twice.value.status == 409
        done = [client.wait(i, until=("included",), timeout=60) for i in answer["ids"]]
    assert [d["status"] for d in done] == ["included", "included"]

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
    batch.append({"kind": "xchain", "from_chain": "l1", "chains": ["rollup_b"], "amount": "1", "recipient": _recipient(),
                  "integrator": code})
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
        assert report["intents"] == 4 and report["served"] == 4
        with pytest.raises(RoutingError) as err:
            next(client.events("no-such-batch"))
        assert err.value.status == 404
