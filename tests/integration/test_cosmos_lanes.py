"""Operator-signed cross-chain transfers that start on Cosmos, in durable lanes (``adapters/cosmos/writeahead.py``,
``router/lanes.py``), on the Cosmos devnet: TST from the operators' Cosmos accounts home to l1 through the routing
API. The operators first bridge TST in from l1, as anyone must (no account but the vault holds ``uxtst`` otherwise).

- ``kill -9`` with the transactions signed and stored but not sent: the restarted daemon sends the same signed bytes
  (the stored hash is the one committed), and each recipient holds its amount once on l1, read from the chain; two
  alike intents are two transfers.
- ``kill -9`` likewise, and the operator's key used elsewhere meanwhile at the stored transactions' sequence: they can
  never be committed, so the lane signs each intent again, and it lands once (the first hash is never committed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.evm.devnet import USER_A, USER_B, devnet_key
from adapters.message import Domain
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

AMOUNT = "1"  # TST: 6 decimals on Cosmos (uxtst), 18 at home on l1
COSMOS_UNITS = 10**6
HOME_UNITS = 10**18
OPERATORS = (USER_A, USER_B)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet-cosmos-lanes"), base_port=free_port_block(21),
                 api_port=free_port_block(1), families=("evm", "cosmos"))
    net.up()
    yield net
    net.down()


def _xchain(recipient: str) -> dict[str, Any]:
    return {"kind": "xchain", "from_chain": "cosmos", "chains": ["l1"], "token": "TST", "amount": AMOUNT,
            "recipient": recipient}


async def _operators_uxtst(client: DevnetClient) -> int:
    cosmos = client.adapters["cosmos"]
    return sum([int(await cosmos.token_balance("TST", cosmos.account_of(devnet_key(i))))  # type: ignore[attr-defined]
                for i in OPERATORS])


async def _fund_operators(client: DevnetClient, whole_tst: int) -> None:
    """Each operator bridges ``whole_tst`` TST from its l1 account to its Cosmos account (the daemon relays it)."""
    l1, cosmos = client.adapters["l1"], client.adapters["cosmos"]
    before = await _operators_uxtst(client)
    for i in OPERATORS:
        to = cosmos.account_bytes32(cosmos.account_of(devnet_key(i)))  # type: ignore[attr-defined]
        await l1.send_token(devnet_key(i), "TST", whole_tst * HOME_UNITS, Domain(client.domain("cosmos")), to)  # type: ignore[attr-defined]

    async def arrived() -> bool:
        return await _operators_uxtst(client) == before + len(OPERATORS) * whole_tst * COSMOS_UNITS

    await wait_for_async(arrived, 120, "the operators' TST paid out on Cosmos")


async def _home_paid(client: DevnetClient, recipients: list[str]) -> dict[str, int]:
    return {r: int(await client.adapters["l1"].token_balance("TST", r)) for r in set(recipients)}  # type: ignore[attr-defined]


@pytest.mark.parametrize("taken", [False, True], ids=["resent", "sequence_taken_then_signed_again"])
async def test_kill_9_with_cosmos_lane_transactions_signed_and_unsent_lands_each_once(
        devnet: Devnet, tmp_path: Path, taken: bool) -> None:
    client = DevnetClient(devnet)
    failpoints = tmp_path / "failpoints"
    config = lane_config(devnet, tmp_path)
    doomed = lane_daemon(config, failpoints=failpoints)
    survivor = lane_daemon(config)  # the same config and store: the daemon restarted
    try:
        boot(doomed)
        refused = post_intents(doomed, [{"amount": "1", "token": "TST", "recipient": "0x" + "ab" * 20,
                                         "chains": ["cosmos"]}])
        assert refused.status_code == 400 and refused.json()["detail"]["field"] == "intents[0].chains"
        await _fund_operators(client, 5)
        operators_before = await _operators_uxtst(client)
        twin = "0x" + os.urandom(20).hex()
        recipients = [twin, twin, "0x" + os.urandom(20).hex()]  # two intents alike in everything, and another
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
        doomed.kill9()
        if taken:  # each operator's key sends something else at the sequences its lane had stored
            await _use_stored_sequences(client, stored)
        boot(survivor)

        async def all_paid() -> bool:
            paid = await _home_paid(client, recipients)
            return paid[twin] >= 2 * HOME_UNITS and all(paid[r] >= HOME_UNITS for r in recipients)

        await wait_for_async(all_paid, 180, "every transfer home on l1")

        def delivered() -> bool:
            return all(r["status"] == "delivered" for r in intent_rows(tmp_path, ids).values())

        wait_for(delivered, 120, "the store to record each intent delivered")
        final = intent_rows(tmp_path, ids)
        paid = await _home_paid(client, recipients)
        assert paid == {twin: 2 * HOME_UNITS, recipients[2]: HOME_UNITS}  # fresh addresses: each amount once
        assert await _operators_uxtst(client) == operators_before - 3 * COSMOS_UNITS
        assert len({r["message_id"] for r in final.values()}) == 3 and all(r["message_id"] for r in final.values())
        dead = dead_transactions(config.parent / "d.log")
        cosmos = client.adapters["cosmos"]
        for intent_id, row in final.items():
            first = stored[intent_id]["tx_hash"]
            if taken:  # the stored transaction could never be committed: found dead, signed again, that one landed
                assert row["tx_hash"] != first and first in dead
                assert await cosmos._find_tx(first) is None  # type: ignore[attr-defined]
            else:  # the stored transaction is the one committed
                assert row["tx_hash"] == first
        assert (dead == set()) != taken
    finally:
        survivor.stop()
        if doomed.proc is not None and doomed.proc.poll() is None:
            doomed.kill9()
        await client.close()


async def _use_stored_sequences(client: DevnetClient, stored: dict[str, dict[str, Any]]) -> None:
    """For each operator account with stored transactions: fee-denom sends of its own, one per stored sequence,
    committed (the key used elsewhere, as an operator might by mistake)."""
    cosmos = client.adapters["cosmos"]
    keys = {cosmos.account_of(devnet_key(i)): devnet_key(i) for i in OPERATORS}  # type: ignore[attr-defined]
    fee_denom = client.manifest["chains"]["cosmos"]["fee_denom"]
    for account in {r["operator"] for r in stored.values()}:
        for _ in [r for r in stored.values() if r["operator"] == account]:
            tx = await cosmos.transfer_token(keys[account], fee_denom, account, 1)  # type: ignore[attr-defined]
            await wait_for_async(lambda tx=tx: _committed(cosmos, tx), 30, "the other transaction committed")


async def _committed(cosmos: Any, tx: str) -> bool:
    return await cosmos._find_tx(tx) is not None
