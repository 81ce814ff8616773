"""Issue 12 in the routing API, as logic: who may spend the operator accounts (start-up check, call allow-list,
per-client limits answered 429 + Retry-After), nothing stored for refused or unserved input, the integrator report
counted from receipts, and a dApp's reported transaction checked against what the router built.

The API runs in-process (FastAPI TestClient) over a real SQLite file and a recording fake chain: "nothing stored,
nothing sent" is read from the table and the fake's call log."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func
from sqlmodel import Session, select

from adapters.base import Height, TxHash, TxNotFound, TxReceipt
from adapters.message import Domain
from config.errors import ConfigError
from config.loader import load_settings, load_settings_dict
from config.settings import is_loopback_url
from relayer.api.ratelimit import KeyedRateLimiter, retry_after_header
from router.api import IntentLimits, IntentsBackend, call_allowed, create_routing_api
from router.budgets import ValueBudgets
from router.capacity import CapacityModel, ChainProfile
from router.intents import (
    IntentExecutor,
    IntentRecord,
    IntentStore,
    Operator,
    claim_problem,
    integrator_report,
)
from router.schemas import IntentRequest
from router.validation import check_signable

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "devnet.toml"
OPERATOR = Operator("0x" + "01" * 32, "0x" + "0a" * 20)
TOKEN_ADDRESS = "0x" + "70" * 20
CONTRACT = "0x" + "c0" * 20
SELECTOR = "0x83a6deb5"
DAPP = "0x" + "da" * 20


# ---- start-up: operator keys behind an open API only on loopback

@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8900", True), ("http://127.9.9.9:1", True), ("http://localhost:8900", True),
    ("http://[::1]:8900", True), ("http://0.0.0.0:8900", False), ("http://[::]:8900", False),
    ("http://10.0.0.5:8900", False), ("http://relayer.example.com", False), ("http://127.0.0.1.nip.io", False),
])
def test_loopback_only_urls(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_operator_keys_without_api_keys_are_refused_off_loopback() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(EXAMPLE, env={}, overrides={"api.url": "http://0.0.0.0:8900"})
    assert err.value.path == "router.api_keys" and "loopback" in err.value.problem
    # each way out: an API key, no operator keys, or a loopback-only API
    assert load_settings(EXAMPLE, env={}, overrides={"api.url": "http://0.0.0.0:8900", "router.api_keys": ["k"]})
    assert load_settings(EXAMPLE, env={}, overrides={"api.url": "http://0.0.0.0:8900", "router.operator_keys": []})
    settings = load_settings(EXAMPLE, env={})
    assert settings.operator_api_open and is_loopback_url(settings.api.url)


@pytest.mark.parametrize(("router", "path", "needle"), [
    ({"call_allowlist": {"mars": [{"contract": CONTRACT, "selectors": [SELECTOR]}]}}, "", "'mars'"),
    ({"call_allowlist": {"l1": [{"contract": CONTRACT, "selectors": ["0x1234"]}]}},
     "router.call_allowlist.l1.0.selectors.0", "should match pattern"),
    ({"call_allowlist": {"l1": [{"contract": CONTRACT, "selectors": []}]}}, "router.call_allowlist.l1.0.selectors",
     "at least 1"),
    ({"call_allowlist": {"l1": [{"contract": "0x12", "selectors": [SELECTOR]}]}}, "router.call_allowlist.l1.0.contract",
     "20-byte"),
    ({"value_per_day": {"TST": 0}}, "router.value_per_day", "positive"),
    ({"intents_burst": 0}, "router.intents_burst", "greater than or equal to 1"),
])
def test_router_limit_keys_are_checked_at_start(router: dict[str, Any], path: str, needle: str) -> None:
    raw = load_settings(EXAMPLE, env={}).model_dump(mode="json", by_alias=True)
    raw["router"] = {k: v for k, v in raw["router"].items() if k != "operator_keys"} | router
    with pytest.raises(ConfigError) as err:
        load_settings_dict(raw)
    assert err.value.path == path and needle in str(err.value)


def test_call_allowlist_matches_contract_and_selector_only() -> None:
    allow = {"l1": {CONTRACT: frozenset({SELECTOR})}}
    data = bytes.fromhex(SELECTOR[2:]) + b"\x00" * 32
    assert call_allowed(allow, "l1", CONTRACT.upper().replace("0X", "0x"), data)
    assert not call_allowed(allow, "rollup_a", CONTRACT, data)  # another chain: another contract at that address
    assert not call_allowed(allow, "l1", "0x" + "c1" * 20, data)
    assert not call_allowed(allow, "l1", CONTRACT, bytes.fromhex("a9059cbb") + data[4:])  # transfer(...)
    assert not call_allowed(allow, "l1", CONTRACT, data[:3])  # no whole selector
    assert not call_allowed({}, "l1", CONTRACT, data)


def test_give_back_returns_what_was_taken_never_above_the_burst() -> None:
    now = [0.0]
    limiter = KeyedRateLimiter(1.0, 10.0, clock=lambda: now[0])
    assert limiter.take("a", 8) == 0.0
    assert limiter.take("a", 5) == pytest.approx(3.0)
    limiter.give_back("a", 4)
    assert limiter.take("a", 5) == 0.0  # 2 + 4 - 5 = 1 left
    limiter.give_back("a", 100)
    assert limiter.take("a", 10) == 0.0 and limiter.take("a", 1) == pytest.approx(1.0)
    limiter.give_back("nobody", 5)  # a key it never saw: nothing to return to
    assert len(limiter) == 1


# ---- the API, in-process

class FakeSender:
    """A chain's MessageSender that records every call; receipts are whatever the test puts in ``receipts``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.receipts: dict[str, TxReceipt] = {}

    async def token_balance(self, symbol: str, holder: str) -> int:
        self.calls.append(("token_balance", holder))
        return 10**30

    async def unsigned_transaction(self, sender: str, kind: str, *, to: str, amount: int = 0, symbol: str = "",
                                   data: bytes = b"") -> dict[str, Any]:
        self.calls.append(("unsigned_transaction", to))
        payload = "0xa9059cbb" + to[2:].rjust(64, "0") + hex(amount)[2:].rjust(64, "0")
        return {"from": sender, "to": TOKEN_ADDRESS, "data": payload, "value": "0x0"}

    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        self.calls.append(("tx_receipt", tx_hash))
        if tx_hash not in self.receipts:
            raise TxNotFound(f"{tx_hash} not mined", chain="l1")
        return self.receipts[tx_hash]

    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        receipt = await self.tx_receipt(tx_hash)
        return receipt.height, receipt.success

    @property
    def chain_calls(self) -> list[str]:
        return [name for name, _ in self.calls]


class IdleLanes:
    """Lanes on ``chains`` that sign nothing: what the API plans and stores is read from the table."""

    def __init__(self, chains: frozenset[str]) -> None:
        self.chains = chains
        self.woken = 0

    def chains_for(self, kind: str) -> frozenset[str]:
        return self.chains

    def wake(self) -> None:
        self.woken += 1

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()


class Api:
    def __init__(self, tmp: Path, *, allow: dict[str, dict[str, frozenset[str]]] | None = None,
                 rate: float = 10.0, burst: int = 50, value: dict[str, float] | None = None) -> None:
        self.now = [1000.0]
        clock = lambda: self.now[0]
        self.store = IntentStore(create_engine(f"sqlite:///{tmp / 'intents.db'}"))
        self.chain = FakeSender()
        self.lanes = IdleLanes(frozenset({"l1"}))
        self.executor = IntentExecutor(self.store, {"l1": self.chain}, {"l1": 1000}, [OPERATOR],  # type: ignore[dict-item]
                                       _not_stored, native_usd=2000.0, lanes=lambda _executor: self.lanes)
        value = {"TST": 100.0, "USDC": 1000.0} if value is None else value
        self.refusals: list[str] = []
        limits = IntentLimits(intents=KeyedRateLimiter(rate, float(burst), clock=clock), intents_per_s=rate,
                              intents_burst=burst,
                              value=ValueBudgets(self.store.engine, value, clock=clock),
                              value_per_day=value, retry_after=retry_after_header, max_open_unsigned=5)
        backend = IntentsBackend(self.store, self.executor, {"TST": 18, "USDC": 6}, {"TST": {"l1"}, "USDC": {"l1"}},
                                 limits=limits, call_allowlist=allow or {}, on_refusal=self.refusals.append)
        profile = ChainProfile(name="l1", domain=Domain(1000), family="evm", block_time_s=1.0, gas_limit=30e6,
                               transfer_gas=50_000, finality_s=2.0, base_fee=1e-9, native_usd=2000.0)
        model = CapacityModel([profile], now_s=0.0)
        app = FastAPI()
        app.include_router(create_routing_api(lambda: model, clock=lambda: 0.0, intents=backend))
        self.client = TestClient(app)

    def rows(self) -> int:
        with Session(self.store.engine) as s:
            return int(s.exec(select(func.count()).select_from(IntentRecord)).one())

    def post(self, intents: list[dict[str, Any]], **extra: Any) -> Any:
        return self.client.post("/v1/intents", json={"intents": intents, **extra})


def _transfer(**over: Any) -> dict[str, Any]:
    return {"amount": "1", "token": "TST", "recipient": "0x" + "ab" * 20, "chains": ["l1"]} | over


def _call(calldata: str, contract: str = CONTRACT) -> dict[str, Any]:
    return {"kind": "call", "amount": "0", "recipient": contract, "calldata": calldata, "chains": ["l1"]}


def test_over_the_intent_rate_is_429_with_retry_after_and_nothing_stored_or_asked(tmp_path: Path) -> None:
    api = Api(tmp_path, rate=2.0, burst=5)
    slow = _transfer(max_latency_s=1e-6)  # unserved by the planner: no row, no send
    assert api.post([slow] * 5).status_code == 202
    calls = len(api.chain.calls)
    resp = api.post([slow] * 3)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "2"  # 3 intents at 2/s from an empty bucket: 1.5 s, rounded up
    assert resp.json()["detail"]["limit"] == "router.intents_per_s" and resp.json()["detail"]["retry_after_s"] == 1.5
    assert len(api.chain.calls) == calls and api.rows() == 0 and api.refusals == ["rate_limit"]
    assert api.post([slow] * 6).json()["detail"]["limit"] == "router.intents_burst"  # never fits: 413
    api.now[0] += 1.5
    assert api.post([slow] * 3).status_code == 202
    forwarded = api.client.post("/v1/intents", json={"intents": [slow]}, headers={"X-Forwarded-For": "9.9.9.9"})
    assert forwarded.status_code == 429  # forwarded headers are not trusted: still the same client
    with TestClient(api.client.app, client=("10.1.2.3", 5555)) as other:  # another address: a bucket of its own
        assert other.post("/v1/intents", json={"intents": [slow] * 5}).status_code == 202


def test_operators_sign_only_on_chains_with_lanes(tmp_path: Path) -> None:
    """A chain without durable lanes (a Solana or Cosmos chain today): an operator-signed intent that can only run
    there is refused with the chains the operators do sign on, and nothing is stored or asked of the chain; one that
    may run anywhere finds no chain. Signer mode still plans there."""
    api = Api(tmp_path)
    api.lanes.chains = frozenset()
    resp = api.post([_transfer()])
    assert resp.status_code == 400
    assert resp.json()["detail"]["field"] == "intents[0].chains"
    assert "sign transfer intents on none of ['l1']; they do on: none" in resp.json()["detail"]["error"]
    assert api.rows() == 0 and api.chain.chain_calls == [] and api.lanes.woken == 0
    resp = api.post([_transfer(chains=None)])
    assert resp.status_code == 202 and resp.json()["statuses"] == ["unserved"]
    assert resp.json()["reasons"] == ["no_chain"] and api.rows() == 0
    signed = api.post([_transfer()], signer="0x" + "0b" * 20)
    assert signed.status_code == 202 and signed.json()["statuses"] == ["unsigned"]
    api.lanes.chains = frozenset({"l1"})
    assert api.post([_transfer()]).json()["statuses"] == ["planned"] and api.lanes.woken == 1


def test_an_operator_account_whose_lane_is_blocked_gets_no_new_intents(tmp_path: Path) -> None:
    """Its lane waits on a transaction the node refuses: the API plans nothing more for that account there (here the
    only one: the intent finds no chain) until the lane is unblocked."""
    api = Api(tmp_path)
    api.executor.lane_blocked("l1", OPERATOR.address.upper(), True)
    resp = api.post([_transfer()])
    assert resp.status_code == 202 and resp.json()["statuses"] == ["unserved"] and api.rows() == 0
    api.executor.lane_blocked("l1", OPERATOR.address, False)
    assert api.post([_transfer()]).json()["statuses"] == ["planned"] and api.rows() == 1


def test_value_per_day_budget_per_token(tmp_path: Path) -> None:
    api = Api(tmp_path, value={"TST": 100.0})
    assert api.post([_transfer(amount="60")]).status_code == 202
    resp = api.post([_transfer(amount="50")])
    assert resp.status_code == 429 and resp.json()["detail"]["limit"] == "router.value_per_day.TST"
    assert int(resp.headers["Retry-After"]) == math.ceil(10 * 864)  # 10 TST missing at 100 a day
    resp = api.post([_transfer(amount="101")])
    assert resp.status_code == 403 and "whole day" in resp.json()["detail"]["error"]
    resp = api.post([_transfer(amount="1", token="USDC")])
    assert resp.status_code == 403 and resp.json()["detail"]["field"] == "intents[0].token"
    assert resp.json()["detail"]["limit"] == "router.value_per_day.USDC"
    assert api.rows() == 1  # only the first, accepted, intent is stored: a lane signs nothing else
    # what the planner leaves unserved goes back to the budget
    assert api.post([_transfer(amount="40", max_latency_s=1e-6)]).json()["statuses"] == ["unserved"]
    assert api.post([_transfer(amount="40")]).status_code == 202


def test_a_refused_batch_of_several_tokens_takes_nothing_from_any_budget(tmp_path: Path) -> None:
    api = Api(tmp_path, value={"TST": 100.0, "USDC": 10.0})
    resp = api.post([_transfer(amount="90"), _transfer(amount="5", token="USDC"), _transfer(amount="6", token="USDC")])
    assert resp.status_code == 403 and resp.json()["detail"]["limit"] == "router.value_per_day.USDC"
    assert api.post([_transfer(amount="100")]).status_code == 202  # TST's budget is whole: its 90 were given back


@pytest.mark.parametrize(("intent", "field", "needle"), [
    (_call(SELECTOR + "00" * 32, contract="0x" + "c1" * 20), "intents[1].recipient", "not in router.call_allowlist"),
    (_call("0xa9059cbb" + "00" * 64), "intents[1].calldata", "selector 0xa9059cbb is not allowed"),
    (_call("0x83a6de"), "intents[1].calldata", "less than 4 bytes"),
])
def test_operator_calls_outside_the_allowlist_are_refused_before_planning(tmp_path: Path, intent: dict[str, Any],
                                                                          field: str, needle: str) -> None:
    api = Api(tmp_path, allow={"l1": {CONTRACT: frozenset({SELECTOR})}})
    resp = api.post([_transfer(), intent])
    assert resp.status_code == 403, resp.text
    assert resp.json()["detail"]["field"] == field and needle in resp.json()["detail"]["error"]
    assert api.chain.calls == [] and api.rows() == 0 and api.refusals == ["call_not_allowed"]


def test_allowed_calls_go_through_and_an_empty_allowlist_refuses_every_call(tmp_path: Path) -> None:
    api = Api(tmp_path, allow={"l1": {CONTRACT: frozenset({SELECTOR})}})
    resp = api.post([_call(SELECTOR)])
    assert resp.status_code == 202 and resp.json()["statuses"] == ["planned"]
    (tmp_path / "closed").mkdir()
    closed = Api(tmp_path / "closed")
    resp = closed.post([_call(SELECTOR)])
    assert resp.status_code == 403 and resp.json()["detail"]["field"] == "intents[0].kind"
    # a dApp's own (signer-mode) call spends nothing of the operators': not limited to the allow-list
    resp = closed.post([_call("0xa9059cbb" + "00" * 64, contract="0x" + "c1" * 20)], signer=DAPP)
    assert resp.status_code == 202 and resp.json()["statuses"] == ["unsigned"]


def test_unserved_intents_and_refused_batches_leave_no_row(tmp_path: Path) -> None:
    api = Api(tmp_path)
    body = api.post([_transfer(max_latency_s=1e-6), _transfer(max_fee_usd=1e-12)]).json()
    assert body == {"batch": None, "ids": [None, None], "statuses": ["unserved", "unserved"],
                    "reasons": ["latency", "fee"]}
    mixed = api.post([_transfer(), _transfer(max_latency_s=1e-6)]).json()
    assert mixed["ids"][0] is not None and mixed["ids"][1] is None and mixed["batch"] is not None
    assert api.post([_transfer(), _transfer(recipient="0x12")]).status_code == 400
    assert api.rows() == 1
    batch = api.client.get(f"/v1/batches/{mixed['batch']}").json()
    assert [i["id"] for i in batch["intents"]] == [mixed["ids"][0]]
    assert api.client.get("/v1/intents/int_" + "0" * 32).status_code == 404


def test_signer_mode_rows_are_capped_and_the_signer_is_no_operator(tmp_path: Path) -> None:
    api = Api(tmp_path)
    resp = api.post([_transfer()], signer=OPERATOR.address)
    assert resp.status_code == 400 and resp.json()["detail"]["field"] == "signer"
    assert api.post([_transfer()] * 5, signer=DAPP).json()["statuses"] == ["unsigned"] * 5
    full = api.post([_transfer()], signer=DAPP)
    assert full.status_code == 503 and full.json()["detail"]["limit"] == "router.max_open_unsigned"
    assert "Retry-After" in full.headers and api.rows() == 5


# ---- reported transactions (signer mode)

def _unsigned(api: Api, **over: Any) -> tuple[str, dict[str, Any]]:
    body = api.post([_transfer(**over)], signer=DAPP).json()
    return body["ids"][0], body["transactions"][0]


def _receipt(tx: dict[str, Any], **over: Any) -> TxReceipt:
    fields: dict[str, Any] = {"height": Height(10), "success": True, "fee_paid": 21_000 * 10**9, "sender": DAPP,
                              "to": tx["to"].lower(), "input": bytes.fromhex(tx["data"][2:]), "value": 0}
    return TxReceipt(**(fields | over))


def test_a_reported_transaction_counts_only_if_it_is_the_one_built(tmp_path: Path) -> None:
    api = Api(tmp_path)
    good_id, tx = _unsigned(api)
    good = "0x" + "11" * 32
    api.chain.receipts[good] = _receipt(tx)
    view = api.client.post(f"/v1/intents/{good_id}/broadcast", json={"tx_hash": good}).json()
    assert view["status"] == "included" and view["fee_paid"] == str(21_000 * 10**9)
    assert view["fee_paid_usd"] == pytest.approx(21_000e-9 * 2000.0)
    # the same hash for a second intent: refused, whatever the transaction
    second, _ = _unsigned(api)
    resp = api.client.post(f"/v1/intents/{second}/broadcast", json={"tx_hash": good})
    assert resp.status_code == 409 and resp.json()["detail"]["field"] == "tx_hash"
    assert api.client.get(f"/v1/intents/{second}").json()["status"] == "unsigned"
    # someone else's transaction (another sender), or other call data: the intent fails, with the reason
    for name, change in (("sender", {"sender": "0x" + "ee" * 20}), ("input", {"input": b"\x01\x02"}),
                         ("to", {"to": "0x" + "99" * 20}), ("value", {"value": 5})):
        intent_id, tx = _unsigned(api)
        other = "0x" + (name.encode().hex() * 32)[:64]
        api.chain.receipts[other] = _receipt(tx, **change)
        resp = api.client.post(f"/v1/intents/{intent_id}/broadcast", json={"tx_hash": other})
        assert resp.status_code == 400 and resp.json()["detail"]["field"] == "tx_hash", name
        assert api.client.get(f"/v1/intents/{intent_id}").json()["status"] == "failed"


def test_a_hash_not_seen_yet_is_followed_and_only_its_client_may_report_it(tmp_path: Path) -> None:
    api = Api(tmp_path)
    intent_id, _tx = _unsigned(api)
    pending = api.client.post(f"/v1/intents/{intent_id}/broadcast", json={"tx_hash": "0x" + "22" * 32})
    assert pending.json()["status"] == "submitted"  # not mined yet: followed (and fails if never mined in time)
    with TestClient(api.client.app, client=("10.1.2.3", 5555)) as other:
        intent2, _ = _unsigned(api)
        resp = other.post(f"/v1/intents/{intent2}/broadcast", json={"tx_hash": "0x" + "23" * 32})
        assert resp.status_code == 403 and api.client.get(f"/v1/intents/{intent2}").json()["status"] == "unsigned"


def test_claim_problem_checks_sender_target_data_value_and_age() -> None:
    rec = IntentRecord(id="i", batch="b", created_at=0, updated_at=0, kind="transfer", token="TST", amount="1",
                       units="1", recipient="0x" + "ab" * 20, signer=DAPP, expected_to=TOKEN_ADDRESS,
                       expected_input="0xa9059cbb00", built_height=10)
    ok = TxReceipt(Height(11), True, 1, DAPP.upper().replace("0X", "0x"), TOKEN_ADDRESS, bytes.fromhex("a9059cbb00"))
    assert claim_problem(rec, ok) is None
    assert "not by the intent's signer" in (claim_problem(rec, TxReceipt(Height(11), True, 1, "0x" + "ee" * 20,
                                                                         TOKEN_ADDRESS, ok.input)) or "")
    for height in (9, 10):  # the latest block when it was built, or earlier: signed before the router built it
        assert "before the router built" in (claim_problem(rec, TxReceipt(Height(height), True, 1, DAPP, TOKEN_ADDRESS,
                                                                          ok.input)) or "")
    # a chain without a called address or call data (Solana, Cosmos): those checks are skipped, not passed
    bare = IntentRecord(id="j", batch="b", created_at=0, updated_at=0, kind="transfer", token="TST", amount="1",
                        units="1", recipient="r", signer=DAPP)
    assert claim_problem(bare, TxReceipt(Height(1), True, 1, DAPP)) is None


# ---- integrator report arithmetic

def _rec(i: int, status: str, *, kind: str = "transfer", amount: str = "1", fee_usd: float | None = 0.5,
         chain: str = "l1", day: float = 0.0, estimate: float = 9.0) -> IntentRecord:
    return IntentRecord(id=f"int_{i}", batch="b", created_at=day, updated_at=day, kind=kind, token="TST", amount=amount,
                        units="1", recipient="r", integrator="dapp", chain=chain, status=status, fee_usd=estimate,
                        fee_paid_usd=fee_usd)


def test_report_counts_included_and_delivered_intents_with_the_fees_their_receipts_paid() -> None:
    day2 = 86_400.0 * 3
    records = [
        _rec(1, "included", amount="2.5", fee_usd=0.25),
        _rec(2, "included", amount="1", fee_usd=0.75, chain="rollup_a", day=day2),
        _rec(3, "delivered", kind="xchain", amount="10", fee_usd=1.0, chain="rollup_b"),
        _rec(4, "included", kind="xchain", amount="100", fee_usd=1.0),  # on its way: not yet
        _rec(5, "failed", amount="1000", fee_usd=2.0),
        _rec(6, "submitted", amount="1000", fee_usd=None),
        _rec(7, "unsigned", amount="1000", fee_usd=None),
        _rec(8, "unserved", amount="1000", fee_usd=None),  # an old row: unserved intents are no longer stored
    ]
    report = integrator_report("dapp", records, 0.1)
    assert report["intents"] == 3 and report["volume"] == "13.5" and report["pending"] == 3
    assert report["fees_usd"] == pytest.approx(2.0) and report["fee_share_usd"] == pytest.approx(0.2)
    assert {k: v["intents"] for k, v in report["by_chain"].items()} == {"l1": 1, "rollup_a": 1, "rollup_b": 1}
    assert report["by_chain"]["rollup_b"]["volume"] == "10"
    assert {k: v["intents"] for k, v in report["by_day"].items()} == {"1970-01-01": 2, "1970-01-04": 1}
    assert integrator_report("nobody", [], 0.1)["intents"] == 0


async def test_receipts_fill_in_the_fee_actually_paid(tmp_path: Path) -> None:
    api = Api(tmp_path)
    store, executor = api.store, api.executor
    rec = _rec(1, "submitted", estimate=5.0, fee_usd=None)
    rec.tx_hash = "0x" + "31" * 32
    store.add_all([rec])
    api.chain.receipts[rec.tx_hash] = TxReceipt(Height(7), True, 3 * 10**15, OPERATOR.address)
    done = await executor.refresh(rec)
    assert (done.status, done.height, done.fee_paid) == ("included", 7, str(3 * 10**15))
    assert done.fee_paid_usd == pytest.approx(3e-3 * 2000.0) and done.fee_usd == 5.0
    reverted = _rec(2, "submitted", fee_usd=None)
    reverted.tx_hash = "0x" + "32" * 32
    store.add_all([reverted])
    api.chain.receipts[reverted.tx_hash] = TxReceipt(Height(8), False, 10**15, OPERATOR.address)
    done = await executor.refresh(reverted)
    assert done.status == "failed" and done.reason == "transaction reverted" and done.fee_paid == str(10**15)


def test_rows_of_intents_that_never_landed_expire(tmp_path: Path) -> None:
    now = [10_000.0]
    store = IntentStore(create_engine(f"sqlite:///{tmp_path / 'prune.db'}"), clock=lambda: now[0])

    def rec(i: int, status: str, signer: str | None = DAPP) -> IntentRecord:
        r = _rec(i, status)
        r.signer, r.updated_at, r.tx_hash = signer, now[0], "0x" + f"{i:064x}"
        return r

    unsent = rec(7, "failed", signer=None)
    unsent.tx_hash = None  # an operator intent the chain refused before anything was sent
    store.add_all([rec(1, "unsigned"), rec(2, "submitted"), rec(3, "failed"), rec(4, "included"),
                   rec(5, "failed", signer=None), rec(6, "unsigned"), unsent])
    store.update("int_6", status="unsigned")  # touched later than the others
    assert store.prune(600) == (0, [], 0)
    now[0] += 601
    store.update("int_6", status="unsigned")
    expired, stale, removed = store.prune(600)
    assert (expired, stale, removed) == (1, ["int_2"], 2)
    assert store.get("int_1") is None and store.get("int_3") is None and store.get("int_7") is None
    assert store.get("int_2").status == "failed" and "not seen mined" in (store.get("int_2").reason or "")  # type: ignore[union-attr]
    assert store.get("int_4") is not None and store.get("int_5") is not None and store.get("int_6") is not None
    now[0] += 601
    assert store.prune(600) == (1, [], 1)  # int_6 expired, int_2 (failed) deleted


def test_a_hash_is_claimed_by_one_signer_intent_only(tmp_path: Path) -> None:
    store = IntentStore(create_engine(f"sqlite:///{tmp_path / 'claims.db'}"))
    a, b = _rec(1, "unsigned"), _rec(2, "unsigned")
    a.signer = b.signer = DAPP
    store.add_all([a, b])
    h = "0x" + "44" * 32
    assert store.claim("int_1", h) is True
    assert store.claim("int_1", h) is False  # no longer unsigned
    assert store.claim("int_2", h) is False  # the unique index refuses the second claim
    assert store.get("int_2").status == "unsigned" and store.tx_known(h)  # type: ignore[union-attr]


async def _not_stored(_message_id: str) -> str | None:
    """No message is in a relayer store here."""
    return None


def test_daemons_sharing_a_database_share_each_clients_value_budget(tmp_path: Path) -> None:
    """Two daemons on one database (two APIs on one store file): a client that sends to both gets one budget, not
    one each; what one daemon gives back (an unserved intent) the other can spend."""
    first, second = Api(tmp_path, value={"TST": 100.0}), Api(tmp_path, value={"TST": 100.0})
    assert first.post([_transfer(amount="60")]).status_code == 202
    resp = second.post([_transfer(amount="50")])
    assert resp.status_code == 429 and resp.json()["detail"]["limit"] == "router.value_per_day.TST"
    assert first.post([_transfer(amount="40", max_latency_s=1e-6)]).json()["statuses"] == ["unserved"]
    assert second.post([_transfer(amount="40")]).status_code == 202
    assert first.post([_transfer(amount="1")]).status_code == 429
    with Session(first.store.engine) as s:  # both daemons' intents: one table
        stored = [int(r.units) for r in s.exec(select(IntentRecord)).all()]
    assert sorted(stored) == [40 * 10**18, 60 * 10**18]  # the operators are asked for the day's 100 TST, no more


@pytest.mark.parametrize(("req", "field", "says"), [
    ({"kind": "xchain", "from_chain": "cosmos"}, "intents[0].from_chain",
     "do not sign cross-chain transfers from 'cosmos'; they do from: l1, solana"),
    ({"kind": "transfer", "chains": ["solana", "cosmos"]}, "intents[0].chains",
     "sign transfer intents on none of ['cosmos', 'solana']; they do on: l1"),
    ({"kind": "call", "chains": ["solana"]}, "intents[0].chains", "sign call intents on none of ['solana']"),
])
def test_an_intent_the_operators_cannot_sign_names_the_field_and_where_they_can(
        req: dict[str, Any], field: str, says: str) -> None:
    signable = {"transfer": frozenset({"l1"}), "call": frozenset({"l1"}), "xchain": frozenset({"l1", "solana"})}
    with pytest.raises(HTTPException) as refused:
        check_signable(0, IntentRequest.model_validate({"amount": "1", "recipient": "0x" + "ab" * 20} | req),
                       signable)
    assert refused.value.status_code == 400
    assert refused.value.detail["field"] == field and says in refused.value.detail["error"]  # type: ignore[index]
    check_signable(0, IntentRequest.model_validate({"amount": "1", "recipient": "0x" + "ab" * 20, "kind": "xchain",
                                                    "from_chain": "solana"}), signable)  # signable: no error
