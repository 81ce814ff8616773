"""Operator-signed cross-chain transfers that start on Solana, in durable lanes (``adapters/solana/writeahead.py``,
``router/lanes.py``), on the Solana devnet: SOLX from the operators' Solana accounts to l1 through the routing API.

- Each intent lands once: two intents alike in everything are two transactions (the lane's memo tells them apart),
  and each recipient holds its amount once on l1, read from the chain.
- ``kill -9`` with the transactions signed and stored but not sent: the restarted daemon sends the same signed bytes
  (the stored signature is the one that lands).
- ``kill -9`` likewise, restarted only once the stored transactions' blockhash has expired: they can never land, so
  the lane signs each intent again, and it lands once (the first signature is never seen on chain).

The devnet's blockhashes stay valid for 25 slots (10 s) instead of a real cluster's 150, so that expiry comes soon.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solders.commitment_config import CommitmentLevel
from solders.rpc.config import RpcContextConfig
from solders.rpc.requests import IsBlockhashValid
from solders.rpc.responses import IsBlockhashValidResp
from solders.signature import Signature
from solders.transaction import Transaction

from adapters.evm.devnet import USER_A, USER_B, devnet_key
from adapters.solana.chain import keypair_from_hex
from devnets.devnet import Devnet
from tests.integration.harness import DevnetClient, free_port_block, wait_for, wait_for_async
from tests.integration.lane_daemons import (
    boot,
    dead_transactions,
    intent_rows,
    lane_config,
    lane_daemon,
    post_intents,
)

pytestmark = pytest.mark.integration

AMOUNT = "0.25"  # SOLX, 9 decimals on Solana and wrapped on l1
UNITS = 250_000_000


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet-solana-lanes"), base_port=free_port_block(21),
                 api_port=free_port_block(1), families=("evm", "solana"), solana_blockhash_valid_slots=25)
    net.up()
    yield net
    net.down()


def _xchain(recipient: str) -> dict[str, Any]:
    return {"kind": "xchain", "from_chain": "solana", "chains": ["l1"], "token": "SOLX", "amount": AMOUNT,
            "recipient": recipient}


async def _paid(client: DevnetClient, recipients: list[str]) -> dict[str, int]:
    return {r: int(await client.adapters["l1"].token_balance("SOLX", r)) for r in set(recipients)}  # type: ignore[attr-defined]


async def _operator_solx(client: DevnetClient) -> int:
    """What the two operator accounts hold of SOLX on Solana, together."""
    accounts = [str(keypair_from_hex(devnet_key(i)).pubkey()) for i in (USER_A, USER_B)]
    return sum([int(await client.adapters["solana"].token_balance("SOLX", a)) for a in accounts])  # type: ignore[attr-defined]


def test_the_operators_sign_on_solana_only_what_its_lanes_take(devnet: Devnet, tmp_path: Path) -> None:
    """A same-chain transfer on Solana names a 0x recipient, which is no Solana account: refused, naming where the
    operators do sign transfers; a cross-chain transfer from Solana is planned there."""
    daemon = lane_daemon(lane_config(devnet, tmp_path))
    boot(daemon)
    try:
        refused = post_intents(daemon, [{"amount": "1", "token": "SOLX", "recipient": "0x" + "ab" * 20,
                                  "chains": ["solana"]}])
        assert refused.status_code == 400 and refused.json()["detail"]["field"] == "intents[0].chains"
        assert "sign transfer intents on none of ['solana']" in refused.json()["detail"]["error"]
        planned = post_intents(daemon, [_xchain("0x" + os.urandom(20).hex())])
        assert planned.status_code == 202 and planned.json()["statuses"] == ["planned"], planned.text
    finally:
        daemon.stop()


@pytest.mark.parametrize("expired", [False, True], ids=["resent", "expired_then_signed_again"])
async def test_kill_9_with_solana_lane_transactions_signed_and_unsent_lands_each_once(
        devnet: Devnet, tmp_path: Path, expired: bool) -> None:
    client = DevnetClient(devnet)
    failpoints = tmp_path / "failpoints"
    config = lane_config(devnet, tmp_path)
    doomed = lane_daemon(config, failpoints=failpoints)
    survivor = lane_daemon(config)  # the same config and store: the daemon restarted
    try:
        boot(doomed)
        operator_before = await _operator_solx(client)
        twin = "0x" + os.urandom(20).hex()
        recipients = [twin, twin, "0x" + os.urandom(20).hex()]  # two intents alike in everything, and another
        before = await _paid(client, recipients)
        failpoints.write_text("intent_after_sign=hang")
        answer = post_intents(doomed, [_xchain(r) for r in recipients])
        assert answer.status_code == 202 and answer.json()["statuses"] == ["planned"] * 3, answer.text
        ids = answer.json()["ids"]

        def signed() -> bool:
            rows = intent_rows(tmp_path, ids)
            return len(rows) == 3 and all(r["status"] == "signed" for r in rows.values())

        wait_for(signed, 60, "the three intents signed and stored, unsent")
        stored = intent_rows(tmp_path, ids)
        assert len({r["tx_hash"] for r in stored.values()}) == 3  # three transactions, the twins included
        if expired:
            await _wait_expired([r["raw_tx"] for r in stored.values()], devnet)
        doomed.kill9()
        boot(survivor)

        async def all_paid() -> bool:
            paid = await _paid(client, recipients)
            return paid[twin] - before[twin] >= 2 * UNITS and all(paid[r] - before[r] >= UNITS for r in recipients)

        await wait_for_async(all_paid, 180, "every transfer delivered on l1")

        def delivered() -> bool:
            return all(r["status"] == "delivered" for r in intent_rows(tmp_path, ids).values())

        wait_for(delivered, 120, "the store to record each intent delivered")
        final = intent_rows(tmp_path, ids)
        paid = await _paid(client, recipients)
        assert paid[twin] - before[twin] == 2 * UNITS and paid[recipients[2]] - before[recipients[2]] == UNITS
        assert await _operator_solx(client) == operator_before - 3 * UNITS  # each sent once from Solana
        assert len({r["message_id"] for r in final.values()}) == 3 and all(r["message_id"] for r in final.values())
        statuses = await _signature_statuses(devnet, [r["tx_hash"] for r in stored.values()])
        dead = dead_transactions(config.parent / "d.log")
        for intent_id, row in final.items():
            if expired:  # the stored transaction could never land: found dead, a second one signed, and it landed
                assert row["tx_hash"] != stored[intent_id]["tx_hash"] and stored[intent_id]["tx_hash"] in dead
            else:  # the stored transaction is the one that landed
                assert row["tx_hash"] == stored[intent_id]["tx_hash"]
        assert all((s is None) == expired for s in statuses)  # an expired first signature never landed
        assert (dead == set()) != expired
    finally:
        survivor.stop()
        if doomed.proc is not None and doomed.proc.poll() is None:
            doomed.kill9()
        await client.close()


async def _wait_expired(raws: list[str], devnet: Devnet) -> None:
    """Until no block can take a transaction with these transactions' blockhashes."""
    rpc = devnet.manifest()["chains"]["solana"]["rpc_url"]
    hashes = {Transaction.from_bytes(bytes.fromhex(r)).message.recent_blockhash for r in raws}
    async with AsyncClient(rpc) as sol:
        async def expired() -> bool:
            answers = [await sol._provider.make_request(
                IsBlockhashValid(h, RpcContextConfig(CommitmentLevel.Processed)), IsBlockhashValidResp) for h in hashes]
            return not any(a.value for a in answers)

        await wait_for_async(expired, 60, "the stored transactions' blockhash to expire")


async def _signature_statuses(devnet: Devnet, signatures: list[str]) -> list[Any]:
    rpc = devnet.manifest()["chains"]["solana"]["rpc_url"]
    async with AsyncClient(rpc) as sol:
        answer = await sol.get_signature_statuses([Signature.from_string(s) for s in signatures],
                                                  search_transaction_history=True)
    return list(answer.value)
