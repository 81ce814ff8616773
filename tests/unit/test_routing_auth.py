"""Routing API: X-API-Key on the POSTs when ``[router] api_keys`` is set; 409 without operator accounts."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from router.api import IntentsBackend, create_routing_api
from router.intents import IntentExecutor, IntentStore


def _client(keys: list[str]) -> TestClient:
    app = FastAPI()
    app.include_router(create_routing_api(lambda: None, api_keys=keys))
    return TestClient(app)


def test_posts_need_a_valid_key_when_keys_are_configured() -> None:
    c = _client(["s3cret", "other"])
    body = {"intents": [{"amount": "1", "recipient": "0x" + "11" * 20}]}
    for path, payload in (("/v1/quote", {"amount": "1"}), ("/v1/intents", body)):
        for headers in ({}, {"X-API-Key": "wrong"}):
            resp = c.post(path, json=payload, headers=headers)
            assert resp.status_code == 401 and "X-API-Key" in resp.json()["detail"]["error"]
    # past the key check: no capacity sampled yet (503), no operator accounts (409)
    assert c.post("/v1/quote", json={"amount": "1"}, headers={"X-API-Key": "s3cret"}).status_code == 503
    resp = c.post("/v1/intents", json=body, headers={"X-API-Key": "other"})
    assert resp.status_code == 409 and "not enabled" in resp.json()["detail"]["error"]
    assert c.get("/v1/chains").status_code == 503  # reads stay open


def test_without_operator_accounts_only_unsigned_intents_are_possible() -> None:
    store = IntentStore(create_engine("sqlite://"))
    executor = IntentExecutor(store, {}, {}, [], _not_stored)
    app = FastAPI()
    app.include_router(create_routing_api(lambda: None, intents=IntentsBackend(store, executor, {}, {})))
    c = TestClient(app)
    resp = c.post("/v1/intents", json={"intents": [{"amount": "1", "recipient": "0x" + "11" * 20}]})
    assert resp.status_code == 409 and "no operator accounts" in resp.json()["detail"]["error"]
    assert "signer" in resp.json()["detail"]["error"]
    # with a signer it gets past that check (and stops at the unsampled capacity: 503)
    resp = c.post("/v1/intents", json={"intents": [{"amount": "1", "recipient": "0x" + "11" * 20}],
                                       "signer": "0x" + "22" * 20})
    assert resp.status_code == 503
    resp = c.post("/v1/intents", json={"intents": [{"amount": "1", "recipient": "0x" + "11" * 20}], "signer": "0x12"})
    assert resp.status_code == 400 and resp.json()["detail"]["field"] == "signer"


def test_open_without_keys() -> None:
    c = _client([])
    assert c.post("/v1/quote", json={"amount": "1"}).status_code == 503
    assert c.post("/v1/intents", json={"intents": [{"amount": "1", "recipient": "0x" + "11" * 20}]}).status_code == 409
    assert c.get("/v1/intents/int_x").status_code == 404


async def _not_stored(_message_id: str) -> str | None:
    """No message is in a relayer store here."""
    return None
