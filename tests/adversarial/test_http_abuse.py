"""The attacker tries to stop the bridge through its HTTP API (issue 12): who may call it is anyone, so every
route must survive anything. Each attack runs in the attacker's own process (tests/adversarial/attacks/http.py)
against the devnet's daemon; each is refused as designed, the daemon stays up, its traces stay bounded (metric
series, log lines), and a token transfer sent afterwards arrives: read from the destination chain."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from adapters.evm.devnet import address_of, devnet_key
from adapters.message import Domain
from tests.adversarial.conftest import start_daemon
from tests.api_routes import every_route
from tests.faults.conftest import metric_samples
from tests.integration.harness import DevnetClient, wait_for_async

pytestmark = pytest.mark.integration

AMOUNT = 10**15  # 0.001 TST


@pytest.fixture(scope="module")
def bridge_daemon(bridge_devnet, attacker, tmp_path_factory):
    """The devnet's daemon, whose validators also serve the attacker as a relayer (a malicious allow-listed one)."""
    daemon = start_daemon(bridge_devnet, tmp_path_factory.mktemp("daemon"), edit=attacker.allow_as_relayer)
    yield daemon
    daemon.stop()


def test_deep_bodies_to_every_route_are_400_and_the_daemon_lives(attacker, bridge_daemon) -> None:
    routes = every_route()
    seen = attacker.run("http.deep_bodies", routes=routes)
    assert set(seen["statuses"]) == {f"{m} {p}" for m, p in routes}, "every route was tried"
    wrong = {route: s for route, s in seen["statuses"].items() if s != [400, 400]}
    assert not wrong, wrong
    assert seen["healthz_after"] == 200 and bridge_daemon.healthy()
    assert _metric(bridge_daemon.api_url, "relayer_python_recursion_limit") == 1000


def test_stream_floods_meet_the_stream_caps(attacker, bridge_daemon) -> None:
    batch = _unsigned_batch(bridge_daemon.api_url)
    seen = attacker.run("http.streams",
                        paths=["/v1/explorer/events?max_s=60", f"/v1/batches/{batch}/events?timeout_s=60"],
                        n=300, seconds=8)
    statuses: dict[str, int] = {}
    for run in seen["spread"]:
        for status, count in run["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    assert statuses.get("200", 0) >= 200 and statuses.get("503", 0) > 0, statuses  # 256 in all, from anyone
    refusals = [s for run in seen["spread"] for s in run["samples"].values()]
    assert any("api.max_streams" in s or "api.max_requests_in_flight" in s for s in refusals), refusals
    assert seen["one_address"].count(200) == 8 and seen["one_address"].count(429) == 4, seen["one_address"]
    assert ("api.max_streams_per_client" in seen["one_address_refusal"]
            and "Retry-After: 1" in seen["one_address_refusal"])
    assert bridge_daemon.healthy()


def test_oversized_and_slow_headers_and_connection_floods_are_cut_off(attacker, bridge_daemon) -> None:
    headers = attacker.run("http.oversized_headers")
    assert headers["streamed"]["status"] == 431 and "api.max_header_bytes" in headers["streamed"]["body"]
    assert headers["streamed"]["sent_before_answer"] < 8 << 20
    assert headers["one_piece"]["status"] == 431
    slow = attacker.run("http.slow_headers", n=50, seconds=14)
    assert slow["counts"]["closed_by_server"] >= 50 and set(slow["statuses"]) == {"408"}, slow
    assert 9.5 <= slow["latency_p50_s"] <= 13, slow  # api.header_timeout_s = 10, whatever the trickle
    conns = attacker.run("http.connections", n=100)
    assert conns["refused"] >= 36 and conns["other_address"] == 200, conns
    assert conns["refusal"].startswith("HTTP/1.1 429") and "api.max_connections_per_client" in conns["refusal"]
    assert bridge_daemon.healthy()


def test_made_up_chain_names_grow_no_metric_and_no_log_line(attacker, bridge_daemon) -> None:
    """Unsigned, the requests stop at authentication (401); signed as an allow-listed (malicious) relayer, they reach
    the co-sign checks and are refused naming a chain nobody configured: neither grows /metrics or the log."""
    before = metric_samples(bridge_daemon.api_url)
    log_size = bridge_daemon.log.stat().st_size
    unsigned = attacker.run("http.cosign_labels", n=400, per_s=200.0)
    assert set(unsigned["statuses"]) <= {"401", "429", "503"} and unsigned["statuses"].get("401", 0) > 300, unsigned
    seen = attacker.run("http.cosign_labels", n=2000, per_s=200.0, signed=True)
    assert set(seen["statuses"]) <= {"403", "429", "503"} and seen["statuses"].get("403", 0) > 1500, seen
    after = metric_samples(bridge_daemon.api_url)
    refused = {dict(labels).get("chain") for (name, labels) in after if name == "validator_cosign_refused_total"}
    assert refused <= {"unknown", "l1", "rollup_a", "rollup_b", "cosmos", "solana"}, sorted(refused)[:5]
    assert len(after) - len(before) < 20, "2,000 made-up chains added metric series"
    page = httpx.get(f"{bridge_daemon.api_url}/metrics", timeout=10).text
    assert len(page) < 200_000 and "attacker-" not in page
    with bridge_daemon.log.open("rb") as log:
        log.seek(log_size)
        lines = log.read().splitlines()
    assert max((len(line) for line in lines), default=0) < 2000, "a log line grew with the request"


async def test_a_transfer_still_arrives_after_the_attacks(attacker, bridge_daemon, bridge_devnet) -> None:
    """Runs after the attacks above (same module daemon): l1 -> rollup_a, the recipient's balance read on chain."""
    client = DevnetClient(bridge_devnet)
    recipient = "0x" + secrets.token_hex(20)
    try:
        t0 = time.monotonic()
        await client.adapters["l1"].send_token(client.key("l1"), "TST", AMOUNT,  # type: ignore[attr-defined]
                                               Domain(client.domain("rollup_a")), bytes.fromhex(recipient[2:]))

        async def arrived() -> bool:
            return int(await client.adapters["rollup_a"].token_balance("TST", recipient)) == AMOUNT  # type: ignore[attr-defined]

        await wait_for_async(arrived, 90, "the transfer to arrive on rollup_a")
        print(f"transfer l1 -> rollup_a after the attacks: {time.monotonic() - t0:.1f} s")
        assert bridge_daemon.healthy()
    finally:
        await client.close()


def _metric(api_url: str, name: str) -> float:
    return next(v for (n, _labels), v in metric_samples(api_url).items() if n == name)


def _unsigned_batch(api_url: str) -> str:
    """A batch planned for a signer who never signs (it stays open): the test's own, set up with devnet data."""
    signer = address_of(devnet_key(0))
    intents = [{"amount": "0.000001", "token": "TST", "recipient": "0x" + f"{i + 1:040x}", "chains": ["l1"]}
               for i in range(20)]
    resp = httpx.post(f"{api_url}/v1/intents", json={"intents": intents, "signer": signer}, timeout=120)
    assert resp.status_code == 202, resp.text[:300]
    return str(resp.json()["batch"])
