"""adapters.evm.quorum (rpc_mode = "quorum"): reads accepted only when a quorum of endpoints answered identically, a
lying one outvoted and counted, heights by the quorum-th highest, tagged blocks pinned, sends broadcast and accepted
when any accepts, failing endpoints demoted and no voters; and the config rules. Fake endpoints at the transport."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from pydantic import ValidationError

from adapters.base import RpcUnavailable
from adapters.endpoints import Endpoints
from adapters.evm.adapter import EvmAdapter
from adapters.evm.quorum import QuorumRpc, canonical
from config.errors import ConfigError
from config.loader import load_settings_dict
from config.settings import EvmChainConfig

ROOT = Path(__file__).resolve().parents[2]
URLS = ["http://a.example/key-a", "http://b.example/key-b", "http://c.example/key-c"]
MAILBOX = "0x" + "11" * 20
Answer = Callable[[str, list[Any]], Any]  # (method, params) -> result, or raises


class FakeEndpoints:
    """Endpoints answering at the transport: per URL a function of (method, params); ``asked`` records the calls."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = dict(zip(URLS, answers, strict=False))
        self.asked: list[tuple[int, str, list[Any]]] = []

    async def post_to(self, url: str, data: str) -> Any:
        body = json.loads(data)
        calls = body if isinstance(body, list) else [body]
        for call in calls:
            self.asked.append((URLS.index(url), call["method"], call["params"]))
        out = [self._one(url, call) for call in calls]
        return out if isinstance(body, list) else out[0]

    def _one(self, url: str, call: dict[str, Any]) -> Any:
        result = self.answers[url](call["method"], call["params"])
        if isinstance(result, dict) and "error" in result:
            return {"jsonrpc": "2.0", "id": call["id"], "error": result["error"]}
        return {"jsonrpc": "2.0", "id": call["id"], "result": result}

    def endpoints_asked(self, method: str) -> list[int]:
        return sorted(i for i, m, _ in self.asked if m == method)


def says(value: Any) -> Answer:
    return lambda method, params: value


def dead(method: str, params: list[Any]) -> Any:
    raise aiohttp.ClientConnectionError("connection refused")


def hung(method: str, params: list[Any]) -> Any:
    raise TimeoutError  # what aiohttp raises once request_timeout_s is spent


def rpc_with(fake: FakeEndpoints, quorum: int = 2, now: list[float] | None = None) -> QuorumRpc:
    clock = (lambda: now[0]) if now is not None else (lambda: 0.0)
    endpoints = Endpoints(URLS[:len(fake.answers)], cool_down_s=5, clock=clock)
    return QuorumRpc("l1", endpoints, quorum, fake.post_to, clock=clock)


def request(method: str, params: list[Any] | None = None, rid: int = 7) -> tuple[dict[str, Any], str]:
    body = {"jsonrpc": "2.0", "method": method, "params": params or [], "id": rid}
    return body, json.dumps(body)


async def test_a_lying_endpoint_is_outvoted_counted_and_logged_by_index_never_by_url() -> None:
    fake = FakeEndpoints(says("0x01"), says("0x01"), says("0x00"))
    rpc = rpc_with(fake)
    with structlog.testing.capture_logs() as logs:
        answer = await rpc.post(*request("eth_call", [{"to": MAILBOX, "data": "0x"}, "latest"]))
        await rpc.post(*request("eth_call", [{"to": MAILBOX, "data": "0x"}, "latest"]))
    assert answer["result"] == "0x01"
    assert rpc.take_disagreements() == {("eth_call", 2): 2}
    assert rpc.take_disagreements() == {}  # taken: the metric's increments
    (event,) = [e for e in logs if e["event"] == "rpc_quorum_outvoted"]  # once per 30 s per (method, endpoint)
    assert event["endpoint"] == 2 and event["method"] == "eth_call" and event["agreeing"] == 2
    assert not any(u in repr(logs) for u in URLS)


async def test_without_a_quorum_the_read_fails_retryably_saying_how_the_endpoints_split() -> None:
    fake = FakeEndpoints(says(["a"]), says(["b"]), says(["b", "c"]))
    rpc = rpc_with(fake)
    with pytest.raises(RpcUnavailable, match=r"eth_getLogs: no quorum: 1 agreed \(endpoints 0\); 1 agreed "
                                             r"\(endpoints 1\); 1 agreed \(endpoints 2\); 2 needed") as caught:
        await rpc.post(*request("eth_getLogs", [{}]))
    assert caught.value.reason == "no quorum"
    assert rpc.take_disagreements() == {}  # no winner, nobody outvoted


async def test_answers_compare_as_canonical_json_and_errors_are_answers_too() -> None:
    assert canonical({"id": 1, "result": {"b": 1, "a": 2}}) == canonical({"result": {"a": 2, "b": 1}, "id": 1})
    reverted = {"error": {"code": 3, "message": "execution reverted", "data": "0x08c379a0"}}
    fake = FakeEndpoints(says(reverted), says("0x"), says(reverted))
    answer = await rpc_with(fake).post(*request("eth_call", [{}, "latest"]))
    assert answer["error"]["message"] == "execution reverted"


async def test_a_batch_is_compared_as_a_whole_and_the_agreeing_answer_returned_in_call_order() -> None:
    fake = FakeEndpoints(says("0x1"), says("0x1"), says("0x0"))
    body = [request("eth_call", [{}, "latest"], rid)[0] for rid in (1, 2, 3)]
    answer = await rpc_with(fake).post(body, json.dumps(body))  # type: ignore[arg-type]
    assert [a["id"] for a in answer] == [1, 2, 3] and {a["result"] for a in answer} == {"0x1"}


async def test_the_height_is_the_highest_a_quorum_reached_and_a_minority_cannot_raise_it() -> None:
    fake = FakeEndpoints(says("0x10"), says("0x12"), says("0x11"))
    assert (await rpc_with(fake).post(*request("eth_blockNumber")))["result"] == "0x11"
    liar = FakeEndpoints(says("0x10"), says("0xffffff"), says("0x11"))
    rpc = rpc_with(liar)
    assert (await rpc.post(*request("eth_blockNumber")))["result"] == "0x11"
    assert (await rpc_with(liar, quorum=3).post(*request("eth_blockNumber")))["result"] == "0x10"
    assert rpc.take_disagreements() == {}  # heights differ honestly: nobody is outvoted for one


def block(number: int, tag: str = "") -> dict[str, Any]:
    return {"number": hex(number), "hash": "0x" + f"{number:02x}" * 32, "tag": tag}


def chain_of(tip: int, finalized: int) -> Answer:
    """An honest node at ``tip`` that calls ``finalized`` final (its blocks by number agree with every honest one)."""
    def answer(method: str, params: list[Any]) -> Any:
        at = {"latest": tip, "finalized": finalized}.get(params[0])
        if at is not None:
            return block(at)
        number = int(params[0], 16)
        return block(number) if number <= tip else None
    return answer


async def test_a_block_at_a_tag_is_pinned_to_the_quorum_th_highest_number_when_the_endpoints_differ() -> None:
    fake = FakeEndpoints(chain_of(20, 10), chain_of(21, 11), lambda m, p: block(99, "forged"))
    rpc = rpc_with(fake)
    answer = await rpc.post(*request("eth_getBlockByNumber", ["finalized", False]))
    assert answer["result"] == block(11)  # a quorum calls 11 final or built on it; 99 only the liar
    pinned = [p for _, m, p in fake.asked if m == "eth_getBlockByNumber" and p[0] == "0xb"]
    assert len(pinned) == 3 and rpc.take_disagreements() == {("eth_getBlockByNumber", 2): 1}


async def test_a_block_at_a_tag_a_quorum_agrees_on_is_taken_as_it_is() -> None:
    fake = FakeEndpoints(chain_of(20, 10), chain_of(20, 10), chain_of(21, 11))
    answer = await rpc_with(fake).post(*request("eth_getBlockByNumber", ["latest", False]))
    assert answer["result"] == block(20) and len(fake.asked) == 3  # no second round


async def test_a_send_goes_to_every_endpoint_and_succeeds_when_any_accepts() -> None:
    tx_hash = "0x" + "cd" * 32
    known = {"error": {"code": -32000, "message": "already known"}}
    fake = FakeEndpoints(says(known), says(tx_hash), dead)
    answer = await rpc_with(fake).post(*request("eth_sendRawTransaction", ["0x02f8"]))
    assert answer["result"] == tx_hash and fake.endpoints_asked("eth_sendRawTransaction") == [0, 1, 2]
    refused = FakeEndpoints(says({"error": {"code": -32000, "message": "nonce too low"}}), says(known))
    answer = await rpc_with(refused, quorum=2).post(*request("eth_sendRawTransaction", ["0x02f8"]))
    assert answer["error"]["message"] == "nonce too low"  # none accepted: the first endpoint's answer


async def test_a_batch_of_sends_is_accepted_per_transaction() -> None:
    low = {"error": {"code": -32000, "message": "nonce too low"}}
    fake = FakeEndpoints(lambda m, p: "0xaa" if p[0] == "0x01" else low, lambda m, p: low if p[0] == "0x01" else "0xbb")
    body = [request("eth_sendRawTransaction", [raw], rid)[0] for rid, raw in ((1, "0x01"), (2, "0x02"))]
    answer = await rpc_with(fake, quorum=2).post(body, json.dumps(body))  # type: ignore[arg-type]
    assert [a.get("result") for a in answer] == ["0xaa", "0xbb"]


async def test_a_dead_or_hung_endpoint_is_demoted_and_no_voter_until_its_probe_answers() -> None:
    now = [0.0]
    state: dict[str, Answer] = {"c": hung}
    fake = FakeEndpoints(says("0x1"), says("0x1"), lambda m, p: state["c"](m, p))
    rpc = rpc_with(fake, now=now)
    assert (await rpc.post(*request("eth_chainId")))["result"] == "0x1"  # the hung one cost this one timeout
    await rpc.post(*request("eth_chainId"))
    assert fake.endpoints_asked("eth_chainId") == [0, 0, 1, 1, 2]  # then it was not asked
    state["c"] = says("0x1")
    now[0] = 5.0  # its cool-down is over: the next read probes it, and its answer counts
    await rpc.post(*request("eth_chainId"))
    assert fake.endpoints_asked("eth_chainId").count(2) == 2 and rpc._endpoints.healthy() == [True, True, True]


async def test_with_fewer_healthy_endpoints_than_the_quorum_reads_fail_with_that_reason() -> None:
    fake = FakeEndpoints(says("0x1"), dead, hung)
    rpc = rpc_with(fake)
    with pytest.raises(RpcUnavailable, match=r"no quorum: 1 agreed \(endpoints 0\); 2 needed; endpoint 1 failed "
                                             r"\(ClientConnectionError\); endpoint 2 failed \(TimeoutError\)"):
        await rpc.post(*request("eth_chainId"))
    fake.asked.clear()
    with pytest.raises(RpcUnavailable, match=r"no quorum: 1 of 3 endpoints healthy \(endpoints 1, 2 demoted after "
                                             r"failing\), 2 needed"):
        await rpc.post(*request("eth_chainId"))
    assert fake.asked == []  # decided without asking anyone


async def test_a_request_every_endpoint_refuses_as_wrong_keeps_its_own_error() -> None:
    def bad_request(method: str, params: list[Any]) -> Any:
        raise aiohttp.ClientResponseError(None, (), status=400, message="Bad Request")  # type: ignore[arg-type]
    rpc = rpc_with(FakeEndpoints(bad_request, bad_request, bad_request))
    with pytest.raises(aiohttp.ClientResponseError):
        await rpc.post(*request("eth_chainId"))
    assert rpc._endpoints.healthy() == [True, True, True]  # a wrong request demotes nobody


def test_the_quorum_must_be_a_majority() -> None:
    fake = FakeEndpoints(says(1), says(1), says(1), says(1))
    for bad in (0, 1, 4):
        with pytest.raises(ValueError, match="more than half"):
            QuorumRpc("l1", Endpoints(URLS), bad, fake.post_to)


def config(**fields: Any) -> EvmChainConfig:
    return EvmChainConfig(family="evm", domain=1, chain_id=1, rpc_url=URLS[0], mailbox=MAILBOX, **fields)


def test_config_quorum_mode_defaults_to_a_majority_of_all_endpoints() -> None:
    assert config().rpc_mode == "fallback"
    assert config(rpc_mode="quorum", fallback_rpc_urls=URLS[1:]).quorum_size == 2
    assert config(rpc_mode="quorum", fallback_rpc_urls=URLS[1:2]).quorum_size == 2
    assert config(rpc_mode="quorum", fallback_rpc_urls=URLS[1:], rpc_quorum=3).quorum_size == 3


@pytest.mark.parametrize(("fields", "expected"), [
    ({"rpc_mode": "quorum"}, "needs at least 2 endpoints"),
    ({"rpc_mode": "quorum", "fallback_rpc_urls": URLS[1:], "rpc_quorum": 1}, r"more than half of the 3 endpoints"),
    ({"rpc_mode": "quorum", "fallback_rpc_urls": URLS[1:], "rpc_quorum": 4}, r"between 2 and 3\); got 4"),
    ({"rpc_mode": "quorum", "fallback_rpc_urls": URLS[1:2], "rpc_quorum": 1}, r"between 2 and 2"),
    ({"rpc_mode": "quorum", "fallback_rpc_urls": [URLS[1], URLS[0]]}, "endpoints 0 and 2 are the same URL"),
    ({"rpc_quorum": 2, "fallback_rpc_urls": URLS[1:]}, 'applies to rpc_mode = "quorum" only'),
    ({"rpc_mode": "majority"}, "'fallback' or 'quorum'"),
])
def test_config_refuses_a_quorum_that_cannot_work(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected) as caught:
        config(**fields)
    assert "key-a" not in str(caught.value).split("input_value")[0]  # the rule's message names no URL


async def test_the_evm_adapter_in_quorum_mode_reads_through_the_vote() -> None:
    fake = FakeEndpoints(says("0x10"), says("0x12"), says("0x11"))
    adapter = EvmAdapter("l1", config(rpc_mode="quorum", fallback_rpc_urls=URLS[1:]))
    adapter._quorum._post_to = fake.post_to  # type: ignore[union-attr]
    try:
        assert await adapter.latest_height() == 0x11
        fake.answers[URLS[1]] = fake.answers[URLS[2]] = dead
        with pytest.raises(RpcUnavailable, match="no quorum"):
            await adapter.latest_height()
        assert adapter.endpoint_health() == [True, False, False]
        with pytest.raises(RpcUnavailable, match="1 of 3 endpoints healthy"):
            await adapter.latest_height()
        assert adapter.take_quorum_disagreements() == {}
    finally:
        await adapter.close()


def test_a_bad_quorum_fails_at_start_up_naming_the_chain_and_no_url() -> None:
    raw = tomllib.loads((ROOT / "config" / "examples" / "devnet.toml").read_text())
    raw["chains"]["l1"].update(rpc_mode="quorum", fallback_rpc_urls=URLS[1:], rpc_quorum=1)
    with pytest.raises(ConfigError) as caught:
        load_settings_dict(raw)
    assert str(caught.value) == ("config: chains.l1: rpc_quorum must be more than half of the 3 endpoints and at "
                                 "most 3 (between 2 and 3); got 1")
