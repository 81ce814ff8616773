"""An outside dApp suite as it would use the ``xchain`` plugin: only the ``xchain`` and ``xchain_client`` fixtures and
the ``xchain`` marker. Run by tests/integration/test_xchain_plugin.py in a pytest session of its own (the file name
keeps the project's own suite from collecting it)."""

import json
import os
import time
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.xchain(families=["evm"])


def test_message_delivered_once(xchain):
    mid = xchain.send_message("l1", "rollup_a", None, b"hello rollup_a")
    xchain.wait_delivered(mid, timeout=90)
    xchain.assert_delivered_once(mid)


def test_token_then_reset_restores_balance_and_the_relayer_follows(xchain):
    recipient = xchain.chains["rollup_a"].accounts[1].address
    before = xchain.balance("rollup_a", "TST", recipient)
    mid = xchain.send_token("l1", "rollup_a", "TST", Decimal("2.5"), recipient)
    xchain.wait_delivered(mid, timeout=90)
    assert xchain.balance("rollup_a", "TST", recipient) == before + Decimal("2.5")

    took = xchain.reset()
    print(f"XCHAIN_RESET_S {took:.3f}")
    assert xchain.balance("rollup_a", "TST", recipient) == before
    assert not xchain.delivered(mid)
    again = xchain.send_message("l1", "rollup_a", None, "after the reset")  # the store followed the chains back
    xchain.wait_delivered(again, timeout=90)
    xchain.assert_delivered_once(again)


def test_resets_are_fast(xchain):
    took = [xchain.reset() for _ in range(5)]
    print("XCHAIN_RESETS_S " + " ".join(f"{t:.3f}" for t in took))


def test_deploy_mine_and_warp(xchain):
    rollup_a = xchain.chains["rollup_a"]
    recipient = xchain.deploy("rollup_a", "TestRecipient", rollup_a.contracts["mailbox"])
    mid = xchain.send_message("rollup_b", "rollup_a", recipient, b"to my own contract")
    xchain.wait_delivered(mid, timeout=90)
    xchain.assert_delivered_once(mid)
    height = xchain.mine("rollup_b", 5)
    assert xchain.mine("rollup_b", 1) == height + 1
    xchain.warp("l1", 3600)


def test_deploy_from_solidity_source(xchain, tmp_path):
    source = tmp_path / "Counter.sol"
    source.write_text("// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
                      "contract Counter { uint256 public count; constructor(uint256 start) { count = start; } }\n")
    address = xchain.deploy("l1", source, 7)
    assert address.startswith("0x") and len(address) == 42


def test_routing_client(xchain_client):
    assert xchain_client.health().status == "ok"
    names = {c["name"] for c in xchain_client.chains()}
    assert {"l1", "rollup_a", "rollup_b"} <= names


def test_session_ports(xchain):
    """Where this session's devnet and daemon listen (for the test that runs two sessions)."""
    out = os.environ.get("XCHAIN_PORTS_FILE")
    if out:
        Path(out).write_text(json.dumps({"rpc": [c.rpc_url for c in xchain.chains.values()],
                                         "api": xchain.api_url, "pid": os.getpid(), "at": time.time()}))


def test_fails_on_purpose(xchain):
    """Fails so that the report shows what the plugin attaches: the message's timeline and the daemon's log."""
    mid = xchain.send_message("l1", "rollup_b", None, b"a message whose test fails")
    xchain.wait_delivered(mid, timeout=90)
    assert mid == "deliberately not this", "deliberate failure"
