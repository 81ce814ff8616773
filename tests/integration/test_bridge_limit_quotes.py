"""The token bridges' rate limits are visible before the user signs (issue 15): ``/v1/quote`` shows the wait they
cause, ``/v1/chains`` and the explorer's "Bridge limits" table their figures, each checked against the contract.

Set with the devnet deploy helper, on l1's TokenBridge: TST towards rollup_a 100 at once refilling 0.1 a second, and
towards rollup_b 100 (full); on rollup_a's: TST from l1 50 at once refilling 0.01 a second. 40 TST sent to rollup_a is
paid at delivery (its inbound room is 10), 30 more is delivered and queued on chain. The figures are read from the
chains with web3 (``TokenBridge.rateLimitRoom``, ``queued``) around each answer: a room that refills is between the
reads before and after it. Every limit is removed at the end and the queued transfer paid out. (Its own module: one
daemon at a time on the session devnet.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3 import HTTPProvider, Web3

from adapters.evm import deploy
from adapters.evm import devnet as evm_devnet
from adapters.evm.contracts import load_artifact
from adapters.message import address_to_bytes32
from tests.integration.harness import (
    ROOT,
    DaemonProcess,
    DevnetClient,
    delivered_on,
    on_devnet,
    start_routing_daemon,
    wait_for,
)

pytestmark = pytest.mark.integration

TST = 10**18
OUT_CAPACITY, OUT_RATE = 100 * TST, TST // 10
IN_CAPACITY, IN_RATE = 50 * TST, TST // 100
RELAY_TIMEOUT_S = 90.0


class Bridge:
    """One chain's TokenBridge, read with web3 (not with the adapter under test)."""

    def __init__(self, devnet: Any, chain: str) -> None:
        manifest = devnet.manifest()
        c = manifest["chains"][chain]
        self.w3 = Web3(HTTPProvider(c["rpc_url"]))
        self.address = Web3.to_checksum_address(c["contracts"]["token_bridge"])
        self.token = Web3.to_checksum_address(c["tokens"]["TST"]["address"])
        self.domains = {n: int(x["domain"]) for n, x in manifest["chains"].items()}
        self.contract = self.w3.eth.contract(address=self.address, abi=load_artifact("TokenBridge").abi_list)

    def set_limit(self, remote: str, *, inbound: bool, capacity: int, rate: int) -> None:
        deploy.set_rate_limit(self.w3, evm_devnet.devnet_key(evm_devnet.DEPLOYER), self.address, self.domains[remote],
                              self.token, inbound=inbound, capacity=capacity, rate_per_s=rate)

    def room(self, remote: str, *, inbound: bool) -> tuple[int, int, int]:
        """(available, capacity, ratePerSecond) as the contract says now."""
        a, c, r = self.contract.functions.rateLimitRoom(self.domains[remote], self.token, inbound).call()
        return int(a), int(c), int(r)

    def queued_from(self, remote: str) -> list[int]:
        """Amounts of the open queued transfers of TST from ``remote``, oldest first."""
        count = int(self.contract.functions.queuedCount().call())
        rows = [self.contract.functions.queued(i).call() for i in range(1, count + 1)]
        return [int(r[3]) for r in rows if int(r[3]) and int(r[0]) == self.domains[remote]
                and r[1].lower() == self.token.lower()]


def units(text: str) -> int:
    """An exact decimal string of whole TST in smallest units (exactly: it must be an integer)."""
    value = Decimal(text) * TST
    assert value == value.to_integral_value(), text
    return int(value)


def between(read: Callable[[], int], answer: Callable[[], tuple[Any, int]], timeout: float, what: str) -> Any:
    """``answer()`` (the API's body and the figure it shows) once the figure is between two chain reads around it
    (the daemon's cache is at most a few seconds old, so a refilling room soon is); the body."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        before = read()
        body, shown = answer()
        after = read()
        if before <= shown <= after:
            return body
        last = (before, shown, after)
        time.sleep(0.5)
    raise AssertionError(f"{what}: shown figure never between the chain's reads (last before, shown, after: {last})")


def send(devnet: Any, amount: int) -> bytes:
    async def go(client: DevnetClient) -> bytes:
        to = address_to_bytes32(client.address("rollup_a"))
        _tx, mid = await client.adapters["l1"].send_token(  # type: ignore[attr-defined]
            client.key("l1"), "TST", amount, client.domain("rollup_a"), to)
        return bytes(mid)
    return bytes(on_devnet(devnet, go))


@pytest.fixture(scope="module")
def limited(devnet: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, Bridge, Bridge]]:
    """The daemon, l1's and rollup_a's bridges, limited as the module says, 40 TST paid and 30 TST queued."""
    l1, rollup_a = Bridge(devnet, "l1"), Bridge(devnet, "rollup_a")
    daemon = start_routing_daemon(devnet, Path(tmp_path_factory.mktemp("bridge-limit-quotes")), "bridge-limit-quotes")
    try:
        l1.set_limit("rollup_a", inbound=False, capacity=OUT_CAPACITY, rate=OUT_RATE)
        l1.set_limit("rollup_b", inbound=False, capacity=OUT_CAPACITY, rate=OUT_RATE)
        rollup_a.set_limit("l1", inbound=True, capacity=IN_CAPACITY, rate=IN_RATE)
        first = send(devnet, 40 * TST)
        wait_for(lambda: delivered_on(devnet, "rollup_a", first), RELAY_TIMEOUT_S, "40 TST delivered (paid)")
        second = send(devnet, 30 * TST)
        wait_for(lambda: delivered_on(devnet, "rollup_a", second), RELAY_TIMEOUT_S, "30 TST delivered (queued)")
        assert rollup_a.queued_from("l1") == [30 * TST]
        yield daemon, l1, rollup_a
    finally:
        l1.set_limit("rollup_a", inbound=False, capacity=0, rate=0)
        l1.set_limit("rollup_b", inbound=False, capacity=0, rate=0)
        rollup_a.set_limit("l1", inbound=True, capacity=0, rate=0)
        try:
            wait_for(lambda: rollup_a.queued_from("l1") == [], 60, "the queued transfer paid out by the daemon")
        finally:
            daemon.stop()


def quote(daemon: DaemonProcess, amount: str, destination: str) -> dict[str, Any]:
    res = httpx.post(f"{daemon.api_url}/v1/quote", json={"kind": "xchain", "amount": amount, "token": "TST",
                                                          "from_chain": "l1", "chains": [destination]}, timeout=30)
    assert res.status_code == 200, res.text
    return dict(res.json())


def chains(daemon: DaemonProcess) -> dict[str, Any]:
    res = httpx.get(f"{daemon.api_url}/v1/chains", timeout=30)
    assert res.status_code == 200, res.text
    return {c["name"]: c["bridge_limits"] for c in res.json()["chains"]}


def test_quote_shows_no_wait_below_the_room_and_the_contract_wait_above_it(limited) -> None:
    daemon, l1, rollup_a = limited
    full = quote(daemon, "5", "rollup_b")  # l1 -> rollup_b: full bucket of 100, nothing limits rollup_b's side
    assert l1.room("rollup_b", inbound=False) == (OUT_CAPACITY, OUT_CAPACITY, OUT_RATE)
    assert full["bridge_limit"]["outbound"]["room"] == "100" and full["bridge_limit"]["outbound"]["wait_s"] == 0.0
    assert full["bridge_limit"]["inbound"]["status"] == "unlimited"
    assert full["bridge_limit"]["wait_s"] == 0.0 and full["route"]["bridge_limit"]["possible"] is True

    def out_answer() -> tuple[Any, int]:
        body = quote(daemon, "50", "rollup_a")
        return body, units(body["bridge_limit"]["outbound"]["room"])

    above = between(lambda: l1.room("rollup_a", inbound=False)[0], out_answer, 30, "l1's outbound room")
    out = above["bridge_limit"]["outbound"]
    room = units(out["room"])
    assert room < 50 * TST and units(out["capacity"]) == OUT_CAPACITY and units(out["refill_per_s"]) == OUT_RATE
    assert out["wait_s"] == -(-(50 * TST - room) // OUT_RATE) > 0  # the contract's _wait, from its room
    inbound = above["bridge_limit"]["inbound"]
    in_room = units(inbound["room"])
    assert in_room <= rollup_a.room("l1", inbound=True)[0] and units(inbound["queued"]) == sum(
        rollup_a.queued_from("l1"))
    assert inbound["wait_s"] == -(-(30 * TST + 50 * TST - in_room) // IN_RATE)  # queued 30 first, then 50
    latency = above["route"]["latency_s"]
    assert above["bridge_limit"]["wait_s"] == pytest.approx(max(out["wait_s"], inbound["wait_s"] - latency), abs=1e-3)
    assert above["wait_s"] is None or above["wait_s"] >= above["bridge_limit"]["wait_s"]

    never = quote(daemon, "150", "rollup_b")  # above l1's outbound capacity: can never pass in one transfer
    assert never["route"] is None and never["unserved_reason"] == "bridge_limit"
    assert never["options"][0]["bridge_limit"]["possible"] is False and "capacity" in never["bridge_limit"]["reason"]


def test_chains_show_the_contract_figures_and_the_queue(limited) -> None:
    daemon, l1, rollup_a = limited

    def in_answer() -> tuple[Any, int]:
        view = chains(daemon)
        row = next(r for r in view["rollup_a"]["limits"] if r["remote"] == "l1" and r["token"] == "TST")
        return view, units(row["inbound"]["room"])

    view = between(lambda: rollup_a.room("l1", inbound=True)[0], in_answer, 30, "rollup_a's inbound room")
    row = next(r for r in view["rollup_a"]["limits"] if r["remote"] == "l1")
    _room, capacity, rate = rollup_a.room("l1", inbound=True)
    assert (units(row["inbound"]["capacity"]), units(row["inbound"]["refill_per_s"])) == (capacity, rate)
    assert units(row["inbound"]["queued"]) == sum(rollup_a.queued_from("l1")) == 30 * TST
    assert row["inbound"]["queued_transfers"] == len(rollup_a.queued_from("l1")) == 1
    assert row["outbound"] == {"limited": False} and rollup_a.room("l1", inbound=False)[1] == 0
    assert view["rollup_a"]["status"] == "ok"

    def out_answer() -> tuple[Any, int]:
        v = chains(daemon)
        r = next(x for x in v["l1"]["limits"] if x["remote"] == "rollup_a")
        return v, units(r["outbound"]["room"])

    view = between(lambda: l1.room("rollup_a", inbound=False)[0], out_answer, 30, "l1's outbound room")
    rows = {r["remote"]: r for r in view["l1"]["limits"]}
    assert set(rows) == {"rollup_a", "rollup_b"}  # only the limited pairs
    for remote in rows:
        _room, capacity, rate = l1.room(remote, inbound=False)
        assert (units(rows[remote]["outbound"]["capacity"]), units(rows[remote]["outbound"]["refill_per_s"])) == (
            capacity, rate)
    assert units(rows["rollup_b"]["outbound"]["room"]) == l1.room("rollup_b", inbound=False)[0] == OUT_CAPACITY


def test_the_explorer_renders_the_bridge_limits(limited, tmp_path) -> None:
    from tests.integration.test_explorer import headless_chromium

    daemon, l1, rollup_a = limited

    def cells(driver: Any, chain: str, remote: str, direction: str) -> dict[str, str] | None:
        return driver.execute_script(
            "const tr = document.querySelector(`#bridge-limits-table tr[data-chain='${arguments[0]}']"
            "[data-remote='${arguments[1]}'][data-direction='${arguments[2]}']`);"
            "return tr && !document.getElementById('bridge-limits').hidden ? Object.fromEntries("
            "[...tr.querySelectorAll('[data-field]')].map(td => [td.dataset.field, td.textContent])) : null;",
            chain, remote, direction)

    with headless_chromium("bridge-limits-chromium-") as driver:
        driver.get(f"{daemon.api_url}/explorer")
        wait_for(lambda: cells(driver, "rollup_a", "l1", "inbound") is not None, 60, "the bridge limits table")
        inbound = cells(driver, "rollup_a", "l1", "inbound")
        assert inbound is not None
        assert units(inbound["capacity"]) == IN_CAPACITY and units(inbound["refill"]) == IN_RATE
        assert inbound["queued"] == f"{Decimal(sum(rollup_a.queued_from('l1'))) / TST:f} (1)"
        assert units(inbound["room"]) <= rollup_a.room("l1", inbound=True)[0]
        full = cells(driver, "l1", "rollup_b", "outbound")
        assert full is not None and units(full["room"]) == l1.room("rollup_b", inbound=False)[0] == OUT_CAPACITY
        shown = cells(driver, "l1", "rollup_a", "outbound")
        assert shown is not None and units(shown["capacity"]) == l1.room("rollup_a", inbound=False)[1]
        assert units(shown["room"]) <= l1.room("rollup_a", inbound=False)[0]
        assert cells(driver, "rollup_a", "l1", "outbound") is None  # no limit that way: no row
        driver.save_screenshot(str(tmp_path / "bridge-limits.png"))


def test_the_audit_counts_a_queued_transfer_as_owed(limited) -> None:
    """`relayer audit --json` lists rollup_a's queued TST as owed to its recipients (what the queue holds, read with
    web3), counted in what is outstanding, and the bridge is backed."""
    daemon, _l1, rollup_a = limited
    out = subprocess.run([sys.executable, "-m", "relayer.cli", "audit", "-c", str(daemon.config), "--json"],
                         check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    sheet = json.loads(out.stdout)
    [tst] = [t for t in sheet["tokens"] if t["token"] == "TST" and t["home_chain"] == "l1"]
    assert list(tst["queued"]) == ["rollup_a"] and tst["queued"]["rollup_a"]["kind"] == "queued"
    assert tst["queued"]["rollup_a"]["home_units"] == sum(rollup_a.queued_from("l1")) == 30 * TST
    assert tst["outstanding"] == sum(p["home_units"] for p in [*tst["chains"].values(), *tst["queued"].values()]
                                     if p["kind"] != "locked")
    assert out.returncode == 0 and sheet["ok"] and tst["shortfall"] == 0, out.stdout[-2000:]

