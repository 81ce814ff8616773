"""``kill -9`` of the daemon executing operator-signed intents, same-chain and cross-chain, in each intent state;
another daemon on the same PostgreSQL database adopts its operator accounts (router/lanes.py). Every accepted intent
ends on chain exactly once: each recipient's balance, read from the chain, is its amount once, and a transaction that
was stored signed is the one that lands (never a second one signed for the same intent).

The kill lands deterministically: the doomed daemon runs with a failpoint file (``relayer/daemon/failpoints.py``),
armed just before the intents are submitted; its lane then stops at the chosen point, the test sees the intents in
that state in the store, and kills the process there.
"""

from __future__ import annotations

import os

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.faults.handover import boot, relayer_instance
from tests.integration.harness import DevnetClient, wait_for, wait_for_async

pytestmark = pytest.mark.integration

N = 4
CHAIN = "rollup_a"
TOKEN = "USDC"
AMOUNT = "0.001"  # 1000 units (6 decimals)
UNITS = 1000
LANE_ENV = {"RELAYER__ROUTER__LANE_LEASE_S": "3", "RELAYER__ROUTER__INTENTS_PER_S": "1000"}
# state name -> (failpoint, the status the kill lands in, whether the transfers are mined by then)
STATES = {
    "accepted": ("intent_before_sign", "planned", False),
    "signed_not_sent": ("intent_after_sign", "signed", False),
    "sent_not_recorded": ("intent_after_broadcast", "signed", None),
    "mined_not_recorded": ("intent_before_settle", "submitted", True),
}


def _intents(pg_url: str, ids: list[str]) -> dict[str, dict]:
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, status, tx_hash, nonce, executor, operator, recipient, origin, "
                                     "message_id FROM intents "
                                     "WHERE id = ANY(:ids)"), {"ids": ids}).mappings().all()
        return {r["id"]: dict(r) for r in rows}
    finally:
        engine.dispose()


def _doomed_and_survivor(devnet, tmp_path, pg_url: str):
    """Two daemons on one database (not started): ``doomed`` reads failpoints from ``tmp_path/failpoints``."""
    doomed = relayer_instance(devnet, tmp_path, "doomed", pg_url=pg_url, account=1,
                              env={"RELAYER_FAILPOINTS": f"@{tmp_path / 'failpoints'}", **LANE_ENV})
    survivor = relayer_instance(devnet, tmp_path, "survivor", pg_url=pg_url, account=2, env=LANE_ENV)
    return doomed, survivor


def _submit_armed(doomed, tmp_path, point: str, intents: list[dict]) -> list[str]:
    """Boot ``doomed``, arm its failpoint ``point`` (hang), submit ``intents``; their ids (every one accepted)."""
    boot(doomed)
    wait_for(lambda: httpx.get(f"{doomed.api_url}/v1/chains").status_code == 200, 30, "capacity to be sampled")
    (tmp_path / "failpoints").write_text(f"{point}=hang")
    answer = httpx.post(f"{doomed.api_url}/v1/intents", timeout=30, json={"intents": intents})
    assert answer.status_code == 202, answer.text
    ids = answer.json()["ids"]
    assert all(ids), answer.json()
    return ids


@pytest.mark.parametrize("state", list(STATES))
async def test_kill_9_in_intent_state_lands_each_once(state, devnet, pg_url, tmp_path):
    point, status, mined = STATES[state]
    client = DevnetClient(devnet)
    adapter = client.adapters[CHAIN]
    doomed, survivor = _doomed_and_survivor(devnet, tmp_path, pg_url)
    try:
        recipients = ["0x" + os.urandom(20).hex() for _ in range(N)]
        ids = _submit_armed(doomed, tmp_path, point, [
            {"amount": AMOUNT, "token": TOKEN, "recipient": r, "chains": [CHAIN]} for r in recipients])

        def in_state() -> bool:
            rows = _intents(pg_url, ids)
            return len(rows) == N and all(r["status"] == status for r in rows.values())

        try:
            wait_for(in_state, 60, f"{N} intents {status} under doomed (failpoint {point})", interval=0.05)
        except AssertionError:
            print("ROWS", list(_intents(pg_url, ids).values()))
            raise
        stored = _intents(pg_url, ids)
        if mined:
            await wait_for_async(lambda: _all_paid(adapter, recipients), 30, "the transfers to be mined")
        elif mined is False:
            assert [await adapter.token_balance(TOKEN, r) for r in recipients] == [0] * N
        doomed.kill9()
        survivor.start(wait=False)
        await wait_for_async(lambda: _all_paid(adapter, recipients), 90, "every transfer on chain")

        def settled() -> bool:
            return all(r["status"] == "included" for r in _intents(pg_url, ids).values())

        wait_for(settled, 60, "the store to record every intent included")
        final = _intents(pg_url, ids)
        for intent_id, row in final.items():
            assert await adapter.token_balance(TOKEN, row["recipient"]) == UNITS  # once, not twice
            if stored[intent_id]["tx_hash"] is not None:  # signed before the kill: that transaction landed
                assert row["tx_hash"] == stored[intent_id]["tx_hash"] and row["nonce"] == stored[intent_id]["nonce"]
        if status == "planned":
            assert {r["executor"] for r in final.values()} == {"survivor"}
        assert len({(r["operator"], r["nonce"]) for r in final.values()}) == N
    finally:
        survivor.stop()
        if doomed.proc is not None and doomed.proc.poll() is None:
            doomed.kill9()


async def _all_paid(adapter, recipients: list[str], token: str = TOKEN, units: int = UNITS) -> bool:
    return all([await adapter.token_balance(token, r) >= units for r in recipients])


XCHAIN = {"origin": "l1", "destination": "rollup_a", "token": "TST", "amount": "0.5", "units": 5 * 10**17}
XCHAIN_STATES = {  # the two states where a second signature would pay twice: stored and maybe sent, or mined
    "signed_not_sent": ("intent_after_sign", "signed"),
    "mined_not_recorded": ("intent_before_settle", "submitted"),
}


@pytest.mark.parametrize("state", list(XCHAIN_STATES))
async def test_kill_9_with_cross_chain_intents_lands_each_once(state, devnet, pg_url, tmp_path):
    """Cross-chain transfers run in their origin's lane too: killed after their transactions were stored (or mined),
    the adopting daemon sends the same bytes (or settles them), the relayer delivers each message once, and every
    recipient on the destination holds its amount once."""
    point, status = XCHAIN_STATES[state]
    client = DevnetClient(devnet)
    origin, destination = client.adapters[XCHAIN["origin"]], client.adapters[XCHAIN["destination"]]
    doomed, survivor = _doomed_and_survivor(devnet, tmp_path, pg_url)
    try:
        recipients = ["0x" + os.urandom(20).hex() for _ in range(N)]
        ids = _submit_armed(doomed, tmp_path, point, [
            {"kind": "xchain", "from_chain": XCHAIN["origin"], "chains": [XCHAIN["destination"]],
             "amount": XCHAIN["amount"], "token": XCHAIN["token"], "recipient": r} for r in recipients])
        wait_for(lambda: all(r["status"] == status for r in _intents(pg_url, ids).values())
                 and len(_intents(pg_url, ids)) == N, 90, f"{N} intents {status} under doomed", interval=0.05)
        stored = _intents(pg_url, ids)
        if state == "mined_not_recorded":  # each operator account's nonces (accounts differ in how far they are)
            tops: dict[str, int] = {}
            for r in stored.values():
                tops[r["operator"]] = max(tops.get(r["operator"], -1), r["nonce"])
            await wait_for_async(lambda: _mined_past(origin, tops), 30, "the transfers to be mined")
        doomed.kill9()
        survivor.start(wait=False)
        try:
            await wait_for_async(lambda: _all_paid(destination, recipients, XCHAIN["token"], XCHAIN["units"]), 180,
                                 "every transfer delivered on the destination")
        except AssertionError:
            print("STORED", list(stored.values()), "NOW", list(_intents(pg_url, ids).values()))
            raise

        def delivered() -> bool:
            return all(r["status"] == "delivered" for r in _intents(pg_url, ids).values())

        wait_for(delivered, 90, "the store to record every intent delivered")
        final = _intents(pg_url, ids)
        for intent_id, row in final.items():
            assert await destination.token_balance(XCHAIN["token"], row["recipient"]) == XCHAIN["units"]  # once
            assert row["tx_hash"] == stored[intent_id]["tx_hash"] and row["nonce"] == stored[intent_id]["nonce"]
            assert row["origin"] == XCHAIN["origin"] and row["message_id"]
        assert len({r["message_id"] for r in final.values()}) == N
    finally:
        survivor.stop()
        if doomed.proc is not None and doomed.proc.poll() is None:
            doomed.kill9()


async def _mined_past(adapter, tops: dict[str, int]) -> bool:
    """Every account has had its transactions up to its nonce in ``tops`` mined."""
    mined = await adapter.mined_nonces(list(tops))
    return all(m > top for m, top in zip(mined, tops.values(), strict=True))
