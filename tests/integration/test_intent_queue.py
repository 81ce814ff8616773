"""Queue instead of refusing (router/queue.py): operator-signed intents that find their chain full wait for room
(``queued``) and are released in order as it appears; one whose deadline passes ends ``expired`` with nothing sent;
``max_wait_s: 0`` keeps the old answer (``unserved: capacity``, nothing stored). Balances read from the chain."""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import httpx
import pytest

from tests.integration.harness import DevnetClient, start_routing_daemon, wait_for

pytestmark = pytest.mark.integration

CHAIN = "l1"  # 1 s blocks: ~300 transfers/s of room at its fee-market target
TOKEN = "USDC"
AMOUNT = "0.000003"
UNITS = 3


@pytest.fixture(scope="module")
def daemon(devnet, tmp_path_factory):
    env = {"RELAYER__ROUTER__INTENTS_PER_S": "100000", "RELAYER__ROUTER__INTENTS_BURST": "100000",
           "RELAYER__API__MAX_INTENTS_PER_S": "100000"}
    d = start_routing_daemon(devnet, tmp_path_factory.mktemp("queue"), "queue", env=env)
    yield d
    d.stop()


def _submit(api: str, recipients: list[str], **extra: float) -> dict:
    answer = httpx.post(f"{api}/v1/intents", timeout=60, json={"intents": [
        {"amount": AMOUNT, "token": TOKEN, "recipient": r, "chains": [CHAIN], **extra} for r in recipients]})
    assert answer.status_code == 202, answer.text
    return answer.json()


def _balances(devnet, recipients: list[str]) -> list[int]:
    async def read() -> list[int]:
        client = DevnetClient(devnet)
        try:
            return list(await asyncio.gather(*(client.adapters[CHAIN].token_balance(TOKEN, r) for r in recipients)))
        finally:
            await client.close()

    return asyncio.run(read())


def _batch(api: str, batch: str) -> dict:
    return httpx.get(f"{api}/v1/batches/{batch}", timeout=30).json()


def test_a_full_chain_queues_the_rest_and_releases_it_in_order(daemon, devnet):
    first, second = (["0x" + os.urandom(20).hex() for _ in range(600)] for _ in range(2))
    docs = [_submit(daemon.api_url, first), _submit(daemon.api_url, second)]
    statuses = Counter(s for d in docs for s in d["statuses"])
    assert statuses["queued"] > 0 and statuses["planned"] > 0 and set(statuses) == {"planned", "queued"}
    assert all(i for d in docs for i in d["ids"])  # every intent is taken: none comes back unserved
    for d in docs:
        wait_for(lambda d=d: _batch(daemon.api_url, d["batch"])["settled"], 120, "every intent released and included",
                 interval=0.5)
    batches = [_batch(daemon.api_url, d["batch"])["intents"] for d in docs]
    assert [Counter(i["status"] for i in b) for b in batches] == [{"included": 600}] * 2
    assert _balances(devnet, first + second) == [UNITS] * 1200
    waited = [[i for i in b if i["deadline_at"] is not None] for b in batches]
    assert waited[1] and len(waited[0]) + len(waited[1]) == statuses["queued"]
    for operator in {i["operator"] for b in waited for i in b}:  # each account signs the older batch's first
        nonces = [[i["nonce"] for i in b if i["operator"] == operator] for b in waited]
        if nonces[0] and nonces[1]:
            assert max(nonces[0]) < min(nonces[1])


def test_queued_intents_past_their_deadline_expire_with_nothing_sent(daemon, devnet):
    recipients = ["0x" + os.urandom(20).hex() for _ in range(1000)]
    doc = _submit(daemon.api_url, recipients, max_wait_s=0.001)
    queued = [r for r, s in zip(recipients, doc["statuses"], strict=True) if s == "queued"]
    assert queued
    wait_for(lambda: _batch(daemon.api_url, doc["batch"])["settled"], 120, "the batch to settle", interval=0.5)
    intents = {i["recipient"]: i for i in _batch(daemon.api_url, doc["batch"])["intents"]}
    assert {intents[r]["status"] for r in queued} == {"expired"}
    assert all("nothing was sent" in intents[r]["reason"] and intents[r]["tx_hash"] is None for r in queued)
    assert _balances(devnet, queued) == [0] * len(queued)


def test_max_wait_0_answers_capacity_and_stores_nothing(daemon, devnet):
    recipients = ["0x" + os.urandom(20).hex() for _ in range(1000)]
    doc = _submit(daemon.api_url, recipients, max_wait_s=0)
    unserved = [r for r, s in zip(recipients, doc["statuses"], strict=True) if s == "unserved"]
    assert unserved and {doc["reasons"][i] for i, s in enumerate(doc["statuses"]) if s == "unserved"} == {"capacity"}
    assert all(i is None for i, s in zip(doc["ids"], doc["statuses"], strict=True) if s == "unserved")


def test_quote_says_how_long_a_new_intent_would_wait(daemon, devnet):
    def wait_s() -> float:
        answer = httpx.post(f"{daemon.api_url}/v1/quote", timeout=30,
                            json={"amount": AMOUNT, "token": TOKEN, "chains": [CHAIN]})
        assert answer.status_code == 200, answer.text
        return float(answer.json()["wait_s"])

    wait_for(lambda: wait_s() == 0.0, 60, "an idle chain: no wait")
    doc = _submit(daemon.api_url, ["0x" + os.urandom(20).hex() for _ in range(1000)])
    assert "queued" in doc["statuses"]
    queued = doc["statuses"].count("queued")
    assert wait_s() > 0.5 * queued / 400  # the queue ahead drains at l1's spare rate (~300 transfers/s)
    wait_for(lambda: _batch(daemon.api_url, doc["batch"])["settled"], 120, "the queue drained", interval=0.5)
    wait_for(lambda: wait_s() == 0.0, 30, "no wait once the queue drained")


def test_expired_intents_give_their_value_back_to_the_clients_daily_budget(devnet, tmp_path):
    """A client's queued intents that expire sent nothing: the value they reserved of its ``router.value_per_day``
    is free again, so a batch that fits only with it is taken (before, it was refused until the day's refill)."""
    budget_units = 1500  # router.value_per_day: 0.0015 USDC a day for this daemon's clients
    env = {"RELAYER__ROUTER__INTENTS_PER_S": "100000", "RELAYER__ROUTER__INTENTS_BURST": "100000",
           "RELAYER__API__MAX_INTENTS_PER_S": "100000", "RELAYER__ROUTER__VALUE_PER_DAY": "{ USDC = 0.0015 }"}
    d = start_routing_daemon(devnet, tmp_path, "budget", env=env)
    try:
        one = "0.000001"
        first = ["0x" + os.urandom(20).hex() for _ in range(1000)]
        doc = httpx.post(f"{d.api_url}/v1/intents", timeout=60, json={"intents": [
            {"amount": one, "token": TOKEN, "recipient": r, "chains": [CHAIN], "max_wait_s": 0.001}
            for r in first]}).json()
        spent = sum(s == "planned" for s in doc["statuses"])
        assert sum(s == "queued" for s in doc["statuses"]) > 0  # some had to wait, and will expire
        wait_for(lambda: _batch(d.api_url, doc["batch"])["settled"], 120, "the batch to settle", interval=0.5)
        left = budget_units - spent  # what the budget holds once the expired intents gave theirs back
        assert left > budget_units - 1000  # more than without the give-back
        second = ["0x" + os.urandom(20).hex() for _ in range(left)]
        for k in range(0, left, 1000):
            answer = httpx.post(f"{d.api_url}/v1/intents", timeout=60, json={"intents": [
                {"amount": one, "token": TOKEN, "recipient": r, "chains": [CHAIN]} for r in second[k:k + 1000]]})
            assert answer.status_code == 202, answer.text
        over = httpx.post(f"{d.api_url}/v1/intents", timeout=60, json={"intents": [  # 50 units: ~48 min of refill
            {"amount": one, "token": TOKEN, "recipient": "0x" + os.urandom(20).hex(), "chains": [CHAIN]}
            for _ in range(50)]})
        assert over.status_code == 429 and "value_per_day" in over.text  # and no more than that
    finally:
        d.stop()
