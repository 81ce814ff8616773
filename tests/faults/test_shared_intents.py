"""Two daemons on one PostgreSQL share the routing layer (router/lanes.py, router/room.py): each executes the
intents of the operator accounts it leased, whichever daemon accepted them; either answers any intent's status,
batch and event stream; every intent lands once, read from the chains."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.faults.handover import boot, relayer_instance
from tests.integration.harness import DevnetClient, wait_for

pytestmark = pytest.mark.integration

N = 30  # per daemon
TOKEN = "USDC"
AMOUNT = "0.000002"
UNITS = 2
ENV = {"RELAYER__ROUTER__LANE_LEASE_S": "3", "RELAYER__ROUTER__INTENTS_PER_S": "1000"}


def _rows(pg_url: str, sql: str) -> list[dict]:
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql)).mappings().all()]
    finally:
        engine.dispose()


def _submit(api_url: str, recipients: list[str]) -> dict:
    answer = httpx.post(f"{api_url}/v1/intents", timeout=30, json={"intents": [
        {"amount": AMOUNT, "token": TOKEN, "recipient": r} for r in recipients]})
    assert answer.status_code == 202, answer.text
    doc = answer.json()
    assert all(doc["ids"]), doc
    return doc


def _events_until_done(api_url: str, batch: str) -> list[dict]:
    """The batch's event stream, read from the other daemon, until ``done``."""
    events, kind = [], None
    with httpx.stream("GET", f"{api_url}/v1/batches/{batch}/events", params={"timeout_s": 90}, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append({"event": kind, **json.loads(line.removeprefix("data: "))})
                if kind == "done":
                    break
    return events


async def test_two_daemons_share_execution_and_answer_each_others_intents(devnet, pg_url, tmp_path):
    client = DevnetClient(devnet)
    a = relayer_instance(devnet, tmp_path, "a", pg_url=pg_url, account=1, env=ENV)
    b = relayer_instance(devnet, tmp_path, "b", pg_url=pg_url, account=2, env=ENV)
    try:
        boot(a, b)
        for d in (a, b):
            wait_for(lambda d=d: httpx.get(f"{d.api_url}/v1/chains").status_code == 200, 30, "capacity sampled")

        def split() -> bool:  # 3 chains x 2 operator accounts: three lanes each
            owners = [r["owner"] or "" for r in _rows(pg_url, "SELECT owner FROM operator_lanes")]
            return sorted(owners) == ["a"] * 3 + ["b"] * 3

        wait_for(split, 30, "the six lanes split three and three")
        recipients = {d.instance: ["0x" + os.urandom(20).hex() for _ in range(N)] for d in (a, b)}
        docs = {d.instance: _submit(d.api_url, recipients[d.instance]) for d in (a, b)}

        events = _events_until_done(b.api_url, docs["a"]["batch"])  # a's batch, streamed by b
        assert events[-1]["event"] == "done" and events[-1]["settled"] == N  # intents settled
        assert {e["id"] for e in events if e["event"] == "intent"} == set(docs["a"]["ids"])
        for other, mine in ((b, "a"), (a, "b")):  # each daemon answers the other's intents and batches
            wait_for(lambda o=other, m=mine: httpx.get(f"{o.api_url}/v1/batches/{docs[m]['batch']}").json()["settled"],
                     90, f"{mine}'s batch settled, asked of {other.instance}")
            batch = httpx.get(f"{other.api_url}/v1/batches/{docs[mine]['batch']}").json()
            assert batch["counts"] == {"included": N}
            one = httpx.get(f"{other.api_url}/v1/intents/{docs[mine]['ids'][0]}").json()
            assert one["status"] == "included" and one["executor"] in ("a", "b")

        adapters = client.adapters
        rows = _rows(pg_url, "SELECT recipient, chain, executor, operator, nonce FROM intents")
        assert len(rows) == 2 * N
        for r in rows:  # each recipient holds its amount once, on the chain its intent ran on
            assert await adapters[r["chain"]].token_balance(TOKEN, r["recipient"]) == UNITS
        assert len({(r["chain"], r["operator"], r["nonce"]) for r in rows}) == 2 * N
        lanes = {(r["chain"], r["account"]): r["owner"] for r in _rows(pg_url, "SELECT * FROM operator_lanes")}
        assert all(r["executor"] == lanes[(r["chain"], r["operator"])] for r in rows)  # signed by the lane's holder
    finally:
        a.stop()
        b.stop()
