"""Routing API (first slice) against the real daemon on the devnet: live chains, quotes, bad input."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.harness import DaemonProcess, free_port_block, wait_for, write_daemon_config

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
