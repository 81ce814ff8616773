"""The operator lanes and the queue under attack (issue 14). Who may make the operator accounts sign: only the lane
that holds the (chain, account) lease signs, and only intents ``POST /v1/intents`` admitted (API key where
configured, the call allow-list, the per-client quotas). Queueing changes none of that: an intent is refused
before it is stored or queued, never later. A signed lane transaction is public once sent; replaying it pays
nothing more. Checked from the chains, with the attacker in its own process."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx

from adapters.evm.devnet import USER_A, USER_B, address_of, devnet_key
from router.client import RoutingClient
from tests.adversarial.test_router import OPERATORS, _chain_state, _intent_rows, _legit_transfer
from tests.integration.harness import DevnetClient, token_balance, wait_for


def test_queueing_admits_nothing_the_api_would_refuse(attacker, bridge_daemon, bridge_devnet) -> None:
    me = attacker.addresses["l1"]
    before, rows = _chain_state(bridge_devnet, me), _intent_rows(bridge_daemon)
    answers = attacker.run("lanes.queue_abuse", signer=address_of(attacker.keys["evm"]))["answers"]
    forbidden = answers["a forbidden call asking to wait a day"]
    assert forbidden["status"] == 403 and forbidden["limit"] == "router.call_allowlist", forbidden
    for what in ("a wait longer than a day", "a negative wait"):
        assert answers[what]["status"] in (400, 422) and answers[what]["field"] == "intents[0].max_wait_s", answers
    signer = answers["signer mode asking to queue"]
    assert signer["status"] == 400 and signer["field"] == "intents[0].max_wait_s", signer
    assert _intent_rows(bridge_daemon) == rows  # nothing stored, nothing queued
    assert _chain_state(bridge_devnet, me) == before  # and nothing signed


def test_a_replayed_lane_transaction_pays_nothing_more(attacker, bridge_daemon, bridge_devnet) -> None:
    me = attacker.addresses["l1"]
    done = _legit_transfer(bridge_daemon.api_url, "0.5", "legit-" + secrets.token_hex(3))
    assert done["nonce"] is not None and done["executor"]  # signed by a lane, write-ahead
    before = _chain_state(bridge_devnet, me)
    seen = attacker.run("lanes.replay_lane_tx", tx_hash=done["tx_hash"], chain=done["chain"])
    assert seen["raw_found"]
    for chain, answer in seen["answers"].items():  # its own chain: nonce used; the others: wrong chain id
        assert answer["error"] is not None and answer["result"] is None, (chain, answer)
    assert _chain_state(bridge_devnet, me) == before


def test_the_operators_standing_bridge_approval_pays_no_one_else(attacker, bridge_daemon, bridge_devnet) -> None:
    """A cross-chain intent leaves its operator's standing approval of the token bridge on l1. The attacker tries to
    spend it: ``transferFrom`` straight from the token, and ``transferRemote`` (which pulls from its caller only).
    Neither moves any of the operators' tokens."""
    with RoutingClient(bridge_daemon.api_url) as client:
        ids = client.submit([{"kind": "xchain", "from_chain": "l1", "chains": ["rollup_a"], "amount": "0.5",
                              "token": "TST", "recipient": "0x" + secrets.token_hex(20)}])
        done = client.wait(ids[0], until={"included"}, timeout=120)
    assert done["nonce"] is not None and done["message_id"]  # a lane signed it, write-ahead
    me = attacker.addresses["l1"]
    before = _chain_state(bridge_devnet, me)
    own_on_rollup_a = token_balance(bridge_devnet, "rollup_a", "TST", me)
    seen = attacker.run("lanes.spend_standing_approvals", operators=OPERATORS)
    allowances = {op.lower(): value for op, value in seen["allowances"].items()}
    assert allowances[done["operator"].lower()] >= 2**255, allowances  # standing: there is something to try
    for what, attempt in seen["attempts"].items():
        if what.startswith("transferFrom"):
            assert not attempt["sent"] and "InsufficientAllowance" in attempt["error"], (what, attempt)
    if seen["attempts"]["transferRemote from the attacker"]["sent"]:
        # its own 1 wei to itself on rollup_a (transferRemote pulls from its caller): let it land before anything
        # else reads balances (CI 50: mined and delivered during the next tests, it moved the attacker's balances)
        wait_for(lambda: token_balance(bridge_devnet, "rollup_a", "TST", me) == own_on_rollup_a + 1, 120,
                 "the attacker's own 1 wei transfer delivered on rollup_a")
    after = _chain_state(bridge_devnet, me)
    for key, value in before.items():
        if any(op in key for op in OPERATORS) and ":nonce:" not in key:
            assert after[key] == value, key  # the operators hold what they held


def test_the_operators_solana_and_cosmos_accounts_sign_only_what_their_lanes_may(
        attacker, bridge_daemon, bridge_devnet) -> None:
    """The lanes on Solana and Cosmos sign cross-chain transfers admitted by the API (within the client's daily
    budget), nothing else; a Solana lane transaction replayed from the chain, with preflight or without, pays nothing
    more. Read from the chains: the operators' Solana and Cosmos accounts and the attacker's l1 account."""
    me = attacker.addresses["l1"]
    before, rows = _non_evm_state(bridge_devnet, me), _intent_rows(bridge_daemon)
    answers = attacker.run("lanes.non_evm_lane_abuse")["answers"]
    for what in ("SOLX same-chain on solana", "TST same-chain on cosmos"):
        assert answers[what]["status"] == 400 and answers[what]["field"] == "intents[0].chains", answers[what]
        assert "sign transfer intents on none of" in answers[what]["error"], answers[what]
    for what, token in (("20,000 SOLX from solana", "SOLX"), ("20,000 TST from cosmos", "TST")):
        assert answers[what]["status"] == 403 and answers[what]["limit"] == f"router.value_per_day.{token}", answers
    assert _intent_rows(bridge_daemon) == rows and _non_evm_state(bridge_devnet, me) == before

    recipient = "0x" + secrets.token_hex(20)
    with RoutingClient(bridge_daemon.api_url) as client:
        ids = client.submit([{"kind": "xchain", "from_chain": "solana", "chains": ["l1"], "amount": "0.5",
                              "token": "SOLX", "recipient": recipient}])
        done = client.wait(ids[0], until={"included", "delivered"}, timeout=180)
    assert done["nonce"] is not None and done["message_id"]  # a Solana lane signed it, write-ahead
    paid = _non_evm_state(bridge_devnet, me)
    seen = attacker.run("lanes.replay_solana_lane_tx", signature=done["tx_hash"])
    assert seen["raw_found"]
    assert seen["answers"]["with preflight"]["error"] is not None, seen  # already processed
    _wait_for_slot(bridge_devnet, seen["slot"] + 4)  # a few slots later, in which a replay could have landed
    assert _non_evm_state(bridge_devnet, me) == paid  # the replays moved nothing


def _non_evm_state(net: Any, attacker_address: str) -> dict[str, int]:
    """The operators' SOLX and TST on Solana and TST on Cosmos, and the attacker's TST and SOLX on l1."""
    async def read() -> dict[str, int]:
        client = DevnetClient(net)
        try:
            out: dict[str, int] = {}
            for chain, symbols in (("solana", ("SOLX", "TST")), ("cosmos", ("TST",))):
                adapter = client.adapters[chain]
                for i in (USER_A, USER_B):
                    account = adapter.account_of(devnet_key(i))  # type: ignore[attr-defined]
                    for symbol in symbols:
                        out[f"{chain}:{symbol}:{account}"] = await adapter.token_balance(symbol, account)  # type: ignore[attr-defined]
            l1 = client.adapters["l1"]
            for symbol in ("TST", "SOLX"):
                out[f"l1:{symbol}:{attacker_address}"] = await l1.token_balance(symbol, attacker_address)  # type: ignore[attr-defined]
            return out
        finally:
            await client.close()

    return asyncio.run(read())


def _wait_for_slot(net: Any, slot: int) -> None:
    rpc = net.manifest()["chains"]["solana"]["rpc_url"]
    wait_for(lambda: httpx.post(rpc, json={"jsonrpc": "2.0", "id": 1, "method": "getSlot",
                                           "params": [{"commitment": "confirmed"}]}).json()["result"] >= slot,
             30, f"solana slot {slot}")
