"""Quorum mode beyond EVM (rpc_mode = "quorum", the vote of adapters.endpoints.QuorumVote): Solana
(adapters.solana.transport.QuorumTransport under solana-py) and Cosmos (adapters.cosmos.client.CosmosHttp, RPC and
REST voting separately). A lying endpoint is outvoted and counted by index, heights are the quorum-th highest, what
honest nodes legitimately differ on is not compared, latest reads are pinned, sends go to all, and no majority is a
retryable RpcUnavailable; the config rules match EVM's. No network: mock transports."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import httpx2
import pytest
from pydantic import ValidationError
from solders.pubkey import Pubkey
from structlog.testing import capture_logs

from adapters.base import RpcUnavailable
from adapters.cosmos.client import CosmosHttp
from adapters.endpoints import Endpoints, QuorumVote
from adapters.solana.errors import map_exception as solana_map_exception
from adapters.solana.transport import QuorumTransport, quorum_client
from config.settings import CosmosChainConfig, SolanaChainConfig

HOSTS = ["a", "b", "c"]
Result = Callable[[str, Any], Any]  # (method, params) -> JSON-RPC result, or raises


# --- Solana -------------------------------------------------------------------------------------------------------

def _solana(*results: Result, quorum: int = 2) -> tuple[QuorumVote, httpx2.MockTransport]:
    """A vote over endpoints http://a, http://b, ... answering ``results`` by host."""
    by_host = dict(zip(HOSTS, results, strict=False))

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        result = by_host[request.url.host](body["method"], body.get("params"))
        if isinstance(result, httpx2.Response):
            return result
        key = "error" if isinstance(result, dict) and "code" in result else "result"
        return httpx2.Response(200, json={"jsonrpc": "2.0", "id": body["id"], key: result})

    endpoints = Endpoints([f"http://{h}" for h in HOSTS[:len(results)]])
    return QuorumVote("solana", endpoints, quorum), httpx2.MockTransport(handler)


def at_slot(slot: int, value: Any) -> Result:
    """An answer with a context: the slot differs between honest nodes, the value must not."""
    return lambda method, params: {"context": {"slot": slot, "apiVersion": "2.1"}, "value": value}


def says(value: Any) -> Result:
    return lambda method, params: value


def refused(method: str, params: Any) -> Any:
    raise httpx2.ConnectError("connection refused")


PAYER = Pubkey.from_string("11111111111111111111111111111112")


async def test_solana_a_lying_endpoint_is_outvoted_counted_and_logged_by_index_never_by_url() -> None:
    vote, inner = _solana(at_slot(100, 5_000), at_slot(101, 5_000), at_slot(101, 9_999_999))
    client = quorum_client(vote, timeout_s=2, inner=inner)
    try:
        with capture_logs() as logs:
            assert (await client.get_balance(PAYER)).value == 5_000
        assert vote.take_disagreements() == {("getBalance", 2): 1}
        outvoted = [e for e in logs if e["event"] == "rpc_quorum_outvoted"]
        assert outvoted == [{"event": "rpc_quorum_outvoted", "log_level": "warning", "chain": "solana",
                             "method": "getBalance", "endpoint": 2, "agreeing": 2, "quorum": 2}]
        assert vote.take_disagreements() == {}
    finally:
        await client.close()


async def test_solana_without_a_majority_the_read_is_a_retryable_rpc_unavailable() -> None:
    vote, inner = _solana(at_slot(1, 1), at_slot(1, 2), at_slot(1, 3))
    client = quorum_client(vote, timeout_s=2, inner=inner)
    try:
        with pytest.raises(Exception) as raised:
            await client.get_balance(PAYER)
        mapped = solana_map_exception(raised.value, chain="solana", context="getBalance")
        assert isinstance(mapped, RpcUnavailable) and mapped.reason == "no quorum"
        assert "1 agreed (endpoints 0)" in str(mapped) and "http://" not in str(mapped)
        assert vote.take_disagreements() == {}
    finally:
        await client.close()


async def test_solana_signature_statuses_agree_whatever_their_depth() -> None:
    def status(confirmations: int | None, level: str) -> Result:
        return at_slot(50 + (confirmations or 0), [{"slot": 40, "confirmations": confirmations, "err": None,
                                                    "status": {"Ok": None}, "confirmationStatus": level}])

    vote, inner = _solana(status(3, "confirmed"), status(5, "confirmed"), status(None, "finalized"))
    body = {"jsonrpc": "2.0", "id": 1, "method": "getSignatureStatuses", "params": [["sig"]]}
    async with httpx2.AsyncClient(transport=QuorumTransport(vote, inner)) as http:
        answer = (await http.post("http://a", json=body)).json()
    assert answer["result"]["value"][0]["confirmations"] == 3  # endpoint 0's, as it gave it
    assert vote.take_disagreements() == {("getSignatureStatuses", 2): 1}  # "finalized" is another answer


async def test_solana_the_slot_is_the_highest_a_quorum_reached_and_a_minority_cannot_raise_it() -> None:
    vote, inner = _solana(says(120), says(118), says(10**9))
    client = quorum_client(vote, timeout_s=2, inner=inner)
    try:
        assert (await client.get_slot()).value == 120
        assert (await client.get_block_height()).value == 120
        assert vote.take_disagreements() == {}  # heights differ honestly: nobody outvoted
    finally:
        await client.close()


def blockhash(last_valid: int, digit: str) -> Result:
    return at_slot(last_valid - 150, {"blockhash": digit * 44, "lastValidBlockHeight": last_valid})


async def test_solana_the_latest_blockhash_is_agreed_or_the_one_with_the_quorum_th_highest_lifetime() -> None:
    vote, inner = _solana(blockhash(300, "A"), blockhash(302, "B"), blockhash(10**9, "C"))
    client = quorum_client(vote, timeout_s=2, inner=inner)
    try:
        answer = (await client.get_latest_blockhash()).value
        assert answer.last_valid_block_height == 302  # the liar's far-off lifetime is not taken
        assert str(answer.blockhash) == "B" * 44
    finally:
        await client.close()


async def test_solana_a_send_goes_to_every_endpoint_and_succeeds_when_any_accepts() -> None:
    asked: list[str] = []

    def send(answer: Any) -> Result:
        def result(method: str, params: Any) -> Any:
            asked.append(method)
            return answer
        return result

    vote, inner = _solana(send({"code": -32002, "message": "already processed"}), refused, send("5igNaTuRe"))
    body = {"jsonrpc": "2.0", "id": 9, "method": "sendTransaction", "params": ["AQID", {"encoding": "base64"}]}
    async with httpx2.AsyncClient(transport=QuorumTransport(vote, inner)) as http:
        answer = (await http.post("http://a", json=body)).json()
    assert answer == {"jsonrpc": "2.0", "id": 9, "result": "5igNaTuRe"}
    assert asked == ["sendTransaction", "sendTransaction"] and vote.endpoints.healthy() == [True, False, True]


async def test_solana_a_dead_endpoint_is_demoted_and_fewer_healthy_than_the_quorum_is_no_quorum() -> None:
    vote, inner = _solana(at_slot(1, 7), refused, refused)
    client = quorum_client(vote, timeout_s=2, inner=inner)
    try:
        for expected in (r"1 agreed \(endpoints 0\); 2 needed; endpoint 1 failed", "1 of 3 endpoints healthy"):
            with pytest.raises(RpcUnavailable, match=expected):
                await client.get_balance(PAYER)
        assert vote.endpoints.healthy() == [True, False, False]
    finally:
        await client.close()


# --- Cosmos -------------------------------------------------------------------------------------------------------

Handler = Callable[[httpx.Request], Any]  # -> a JSON document (HTTP 200) or an httpx.Response


def _cosmos(*handlers: Handler) -> CosmosHttp:
    """RPC endpoints rpc-a, rpc-b, rpc-c and REST endpoints rest-a, ... answering by their letter's handler."""
    def handler(request: httpx.Request) -> httpx.Response:
        answer = handlers[HOSTS.index(request.url.host.split("-")[1])](request)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    n = len(handlers)
    return CosmosHttp("cosmos", [f"http://rpc-{h}" for h in HOSTS[:n]], [f"http://rest-{h}" for h in HOSTS[:n]],
                      timeout_s=2, http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                      quorums=(n // 2 + 1, n // 2 + 1))


def rpc_result(result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": -1, "result": result}


def balance(amount: int) -> Handler:
    return lambda request: {"balance": {"denom": "uxtst", "amount": str(amount)}}


async def test_cosmos_a_lying_rest_endpoint_is_outvoted_and_counted_after_the_rpc_endpoints() -> None:
    http = _cosmos(balance(40), balance(40), balance(4_000_000))
    try:
        with capture_logs() as logs:
            status, body = await http.rest("/cosmos/bank/v1beta1/balances/cosmos1xyz/by_denom", denom="uxtst")
        assert (status, body["balance"]["amount"]) == (200, "40")
        # RPC endpoints are 0-2, REST 3-5; the label is the path without its address
        assert http.take_quorum_disagreements() == {("/cosmos/bank/v1beta1/balances", 5): 1}
        assert [(e["endpoint"], e["method"]) for e in logs if e["event"] == "rpc_quorum_outvoted"] == [
            (5, "/cosmos/bank/v1beta1/balances")]
    finally:
        await http.close()


def txs(*hashes: str) -> Handler:
    return lambda request: rpc_result({"txs": [{"hash": h} for h in hashes], "total_count": str(len(hashes))})


async def test_cosmos_a_lie_about_transactions_is_outvoted_and_no_majority_is_no_quorum() -> None:
    http = _cosmos(txs("AA", "BB"), txs(), txs("AA", "BB"))  # endpoint 1 hides the dispatches
    try:
        assert [t["hash"] for t in await http.tx_search("message.action='send'")] == ["AA", "BB"]
        assert http.take_quorum_disagreements() == {("tx_search", 1): 1}
        http = _cosmos(txs("AA"), txs(), txs("BB"))
        with pytest.raises(RpcUnavailable, match=r"tx_search: no quorum: 1 agreed \(endpoints 0\)") as raised:
            await http.tx_search("message.action='send'")
        assert raised.value.reason == "no quorum"
    finally:
        await http.close()


def status_at(height: int) -> Handler:
    return lambda request: rpc_result({"node_info": {"moniker": "n"},
                                       "sync_info": {"latest_block_height": str(height)}})


async def test_cosmos_the_latest_height_is_the_highest_a_quorum_reached() -> None:
    http = _cosmos(status_at(70), status_at(71), status_at(10**9))
    try:
        assert (await http.rpc("status"))["sync_info"]["latest_block_height"] == "71"
        assert http.take_quorum_disagreements() == {}
    finally:
        await http.close()


def commits(tip: int, asked: list[tuple[str, str]]) -> Handler:
    """A node at ``tip``: the latest commit, or the one at the height asked."""
    def commit(request: httpx.Request) -> dict[str, Any]:
        height = request.url.params.get("height")
        asked.append((request.url.host, height or "latest"))
        return rpc_result({"signed_header": {"header": {"height": str(height or tip)}}})
    return commit


async def test_cosmos_a_latest_commit_the_endpoints_differ_on_is_pinned_and_read_again_by_agreement() -> None:
    asked: list[tuple[str, str]] = []
    http = _cosmos(commits(80, asked), commits(81, asked), commits(10**9, asked))
    try:
        assert (await http.rpc("commit"))["signed_header"]["header"]["height"] == "81"
        assert sorted(asked) == [("rpc-a", "81"), ("rpc-a", "latest"), ("rpc-b", "81"), ("rpc-b", "latest"),
                                 ("rpc-c", "81"), ("rpc-c", "latest")]
    finally:
        await http.close()


async def test_cosmos_a_broadcast_goes_to_every_rest_endpoint_and_succeeds_when_any_accepts() -> None:
    hosts: list[str] = []

    def accepting(code: int) -> Handler:
        def answer(request: httpx.Request) -> Any:
            hosts.append(request.url.host)
            return {"tx_response": {"code": code, "codespace": "sdk", "txhash": "AB12", "raw_log": ""}}
        return answer

    def hung(request: httpx.Request) -> Any:
        hosts.append(request.url.host)
        raise httpx.ReadTimeout("hung", request=request)

    http = _cosmos(hung, accepting(32), accepting(0))
    try:
        assert await http.broadcast(b"signed") == "AB12"
        assert sorted(hosts) == ["rest-a", "rest-b", "rest-c"]
        assert http.endpoint_health() == [True, True, True, False, True, True]
    finally:
        await http.close()


# --- configuration: EVM's rules -----------------------------------------------------------------------------------

URLS = ["http://a.example/key-a", "http://b.example/key-b", "http://c.example/key-c"]


def solana(**fields: Any) -> SolanaChainConfig:
    return SolanaChainConfig(family="solana", domain=5, rpc_url=URLS[0], multisig="M", multisig_threshold=1,
                             bridge="B", **fields)


def cosmos(**fields: Any) -> CosmosChainConfig:
    return CosmosChainConfig(family="cosmos", domain=6, chain_id="c-1", rpc_url=URLS[0], rest_url=URLS[0],
                             fee_denom="u", vault="cosmos1v", multisig_threshold=1, multisig_pubkeys=["02"],
                             **fields)


def test_config_quorum_mode_for_solana_and_cosmos_defaults_to_a_majority() -> None:
    assert solana().rpc_mode == "fallback" and cosmos().rpc_mode == "fallback"
    assert solana(rpc_mode="quorum", fallback_rpc_urls=URLS[1:]).quorum_size == 2
    assert solana(rpc_mode="quorum", fallback_rpc_urls=URLS[1:], rpc_quorum=3).quorum_size == 3
    both = cosmos(rpc_mode="quorum", fallback_rpc_urls=URLS[1:], fallback_rest_urls=URLS[1:2])
    assert (both.quorum_size(len(both.rpc_urls)), both.quorum_size(len(both.rest_urls))) == (2, 2)


@pytest.mark.parametrize(("make", "fields", "expected"), [
    (solana, {"rpc_mode": "quorum"}, r"needs at least 2 endpoints \(rpc_url and fallback_rpc_urls\); got 1"),
    (solana, {"rpc_mode": "quorum", "fallback_rpc_urls": URLS[1:], "rpc_quorum": 1}, r"between 2 and 3\); got 1"),
    (solana, {"rpc_mode": "quorum", "fallback_rpc_urls": [URLS[1], URLS[0]]}, "endpoints 0 and 2 of rpc_url"),
    (solana, {"rpc_quorum": 2, "fallback_rpc_urls": URLS[1:]}, 'applies to rpc_mode = "quorum" only'),
    (cosmos, {"rpc_mode": "quorum", "fallback_rpc_urls": URLS[1:]},
     r"needs at least 2 endpoints \(rest_url and fallback_rest_urls\); got 1"),
    (cosmos, {"rpc_mode": "quorum", "fallback_rpc_urls": URLS[1:], "fallback_rest_urls": URLS[1:2], "rpc_quorum": 3},
     r"at most 2 \(between 2 and 2\); got 3"),
])
def test_config_refuses_a_quorum_that_cannot_work_naming_the_key(make: Callable[..., Any], fields: dict[str, Any],
                                                                 expected: str) -> None:
    with pytest.raises(ValidationError, match=expected) as caught:
        make(**fields)
    assert "key-a" not in str(caught.value).split("input_value")[0]
