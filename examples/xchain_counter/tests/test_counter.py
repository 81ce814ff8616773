"""The counter app on a devnet of its own, through the ``xchain`` plugin only: its fixtures (``xchain``,
``xchain_client``, ``xchain_session`` in conftest.py) and what the package installs (web3, eth_abi, the routing
client). Every test starts from the session's baseline: the counters deployed and enrolled, nothing counted."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import asdict

import pytest
from counter import COUNTER_SOL, CounterError, address32
from eth_abi import encode
from eth_utils import keccak

pytestmark = pytest.mark.xchain(families=["evm"])

COUNTER_PY = COUNTER_SOL.parent.parent / "counter.py"
UNKNOWN_SENDER = keccak(text="UnknownSender(uint32,bytes32)")[:4].hex()  # the custom error's selector


def test_increment_is_counted_on_the_destination(xchain, counters):
    mid = counters.increment("l1", "rollup_a")
    xchain.wait_delivered(mid, timeout=90, destination="rollup_a")
    xchain.assert_delivered_once(mid, destination="rollup_a")
    assert counters.count("rollup_a", origin="l1") == 1


def test_handle_takes_calls_from_the_mailbox_only(xchain, counters):
    l1 = xchain.chains["l1"]
    attacker = counters.on("rollup_a", sender=0)
    call = attacker.contract.functions.handle(l1.domain, address32(counters.addresses["l1"]), encode(["uint256"], [7]))
    with pytest.raises(CounterError, match=r"NotMailbox\(" + attacker.sender):
        attacker.transact(call)
    assert counters.count("rollup_a", origin="l1") == 0
    assert counters.on("rollup_a").total() == 0


def test_messages_from_unenrolled_senders_are_not_counted(xchain, xchain_client, counters):
    # an attacker's own counter on l1, enrolling the real rollup_a counter as its remote, and a plain account:
    # both dispatch through l1's real Mailbox to the real rollup_a counter, which knows neither sender
    rogue_address = xchain.deploy("l1", COUNTER_SOL, xchain.chains["l1"].contracts["mailbox"], sender=0)
    rogue = counters.on("l1", sender=0, address=rogue_address)
    rogue.enroll(xchain.chains["rollup_a"].domain, counters.addresses["rollup_a"])
    from_rogue, _tx = rogue.increment(xchain.chains["rollup_a"].domain, 100)
    from_account = xchain.send_message("l1", "rollup_a", counters.addresses["rollup_a"], encode(["uint256"], [100]))
    legit = counters.increment("l1", "rollup_a")

    xchain.wait_delivered(legit, timeout=90, destination="rollup_a")  # the refused ones do not hold it up
    for mid, sender in ((from_rogue, rogue_address), (from_account, xchain.chains["l1"].accounts[0].address)):
        # the relayer tried, the counter's handle reverted, the relayer keeps retrying: it shows why
        view = _wait_for(lambda m=mid: _attempted(xchain_client, m), timeout=60, what=f"delivery attempt of {mid}")
        assert (view.status, view.substate, view.last_reason) == ("waiting", "retry", "estimate_reverted"), view
        # the relayer names the error (its own contracts declare an UnknownSender(uint32,bytes32) too), else it
        # shows the raw revert data, which starts with the error's selector
        named = f"UnknownSender({xchain.chains['l1'].domain},0x{address32(sender).hex()})"
        assert view.last_error == named or UNKNOWN_SENDER in (view.last_error or ""), view.last_error
        assert not xchain.delivered(mid, destination="rollup_a")
        assert xchain.delivered_count(mid, destination="rollup_a") == 0
    assert counters.count("rollup_a", origin="l1") == 1
    assert counters.on("rollup_a").total() == 1


def test_reset_brings_the_counts_back_to_zero(xchain, counters):
    mid = counters.increment("rollup_a", "l1", by=5)
    xchain.wait_delivered(mid, timeout=90, destination="l1")
    assert counters.count("l1", origin="rollup_a") == 5

    xchain.reset()
    assert counters.count("l1", origin="rollup_a") == 0
    assert counters.on("rollup_a").sent_to(xchain.chains["l1"].domain) == 0
    again = counters.increment("rollup_a", "l1", by=2)  # the relayer went back with the chains
    xchain.wait_delivered(again, timeout=90, destination="l1")
    xchain.assert_delivered_once(again, destination="l1")
    assert counters.count("l1", origin="rollup_a") == 2


def test_the_script_deploys_sends_and_follows(xchain, tmp_path):
    manifest = tmp_path / "devnet.json"  # what the script reads from `make run`'s .devnet/devnet.json
    manifest.write_text(json.dumps({"chains": {name: asdict(chain) for name, chain in xchain.chains.items()}}))
    done = subprocess.run([sys.executable, str(COUNTER_PY), "--manifest", str(manifest), "--api-url", xchain.api_url,
                           "--from", "rollup_a", "-n", "3", "--timeout", "150", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and sorted(result["deployed"]) == ["l1", "rollup_a", "rollup_b"]
    assert {d["chain"] for d in result["destinations"]} <= {"l1", "rollup_b"}  # the healthy ones, by capacity
    for inc in result["increments"]:
        assert inc["status"] == "delivered", inc
        xchain.assert_delivered_once(inc["message_id"], destination=inc["destination"])
    assert sum(c["from_origin"] for c in result["counts"].values()) == 3
    assert "private_key" not in done.stdout + done.stderr

    again = subprocess.run([sys.executable, str(COUNTER_PY), "--manifest", str(manifest), "--api-url", xchain.api_url,
                            "--from", "rollup_a", "--to", "l1", "-n", "1", "--json"],
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    reused = json.loads(again.stdout)
    assert reused["deployed"] == [] and reused["enrolled"] == 0  # the state file's counters, still enrolled
    assert reused["counts"]["l1"]["from_origin"] == reused["counts"]["l1"]["before"] + 1


def test_the_script_explains_a_missing_daemon(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manifest = tmp_path / "devnet.json"
    manifest.write_text(json.dumps({"api_url": f"http://127.0.0.1:{port}", "chains": {}}))
    done = subprocess.run([sys.executable, str(COUNTER_PY), "--manifest", str(manifest)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "no relayer daemon answers" in done.stderr and "make run" in done.stderr


def _attempted(client, message_id):
    """The relayer's view of the message once a delivery attempt of it failed or it was delivered, else None."""
    found = client.message(message_id).messages
    return found[0] if found and (found[0].last_reason or found[0].status != "waiting") else None


def _wait_for(probe, timeout, what):
    deadline = time.monotonic() + timeout
    while (value := probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.2)
    return value
