"""Every SDK / transport / RPC failure maps onto the AdapterError family (adapters.evm.errors)."""

from __future__ import annotations

import json

import aiohttp
import httpx
import pytest
from eth_abi import encode
from web3 import exceptions as w3x

from adapters.base import (
    AdapterError,
    InsufficientFunds,
    NonceTooLow,
    OutboundRateLimited,
    ReplacementUnderpriced,
    RpcError,
    RpcUnavailable,
    TxNotFound,
    TxReverted,
)
from adapters.evm.abi import ErrorTable, selector
from adapters.evm.errors import (
    LogQueryTooLarge,
    NonceTooHigh,
    SigningError,
    TxAlreadyKnown,
    map_exception,
    map_rpc_error,
)
from relayer.pipeline.outcome import FailureReason, reason_of

INVALID_PROOF = selector("InvalidProof(bytes32)") + b"\xab" * 32


def _conn_key() -> object:
    class Key:  # the attributes aiohttp's ClientConnectorError reads
        host, port, ssl = "127.0.0.1", 8545, None

    return Key()


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        aiohttp.ClientConnectorError(_conn_key(), ConnectionRefusedError(111, "refused")),  # type: ignore[arg-type]
        aiohttp.ServerDisconnectedError(),
        aiohttp.ServerTimeoutError("read timeout"),
        TimeoutError(),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        w3x.ProviderConnectionError("down"),
        w3x.RequestTimedOut("slow"),
        w3x.TooManyRequests("429"),
        OSError(101, "Network is unreachable"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transport_failures_are_rpc_unavailable(exc: BaseException) -> None:
    mapped = map_exception(exc, chain="l1")
    assert type(mapped) is RpcUnavailable
    assert (reason_of(mapped) is FailureReason.RPC_UNAVAILABLE and mapped.chain == "l1"
            and str(mapped).startswith("[l1]"))


def test_http_status() -> None:
    info = aiohttp.RequestInfo(url=aiohttp.client.URL("http://x"), method="POST", headers={}, real_url=aiohttp.client.URL("http://x"))  # type: ignore[call-arg]
    assert type(map_exception(aiohttp.ClientResponseError(info, (), status=503, message="busy"),
                              chain="c")) is RpcUnavailable
    assert type(map_exception(aiohttp.ClientResponseError(info, (), status=429, message="slow down"),
                              chain="c")) is RpcUnavailable
    assert type(map_exception(aiohttp.ClientResponseError(info, (), status=404, message="nope"), chain="c")) is RpcError
    resp = httpx.Response(502, request=httpx.Request("POST", "http://x"))
    assert type(map_exception(httpx.HTTPStatusError("bad", request=resp.request, response=resp),
                              chain="c")) is RpcUnavailable


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("nonce too low", NonceTooLow),
        ("nonce too low: next nonce 5, tx nonce 3", NonceTooLow),
        ("Nonce too high", NonceTooHigh),
        ("replacement transaction underpriced", ReplacementUnderpriced),
        ("already known", TxAlreadyKnown),
        ("insufficient funds for gas * price + value: have 0 want 1", InsufficientFunds),
        ("Insufficient funds for gas * price + value", InsufficientFunds),
        ("query returned more than 10000 results", LogQueryTooLarge),
        ("block range is too large", LogQueryTooLarge),
        ("daily request count exceeded, request rate limited", RpcUnavailable),
        ("method not found", RpcError),
    ],
)
def test_rpc_error_messages(message: str, expected: type[AdapterError]) -> None:
    for error in ({"code": -32000, "message": message}, {"code": -32003, "message": message.upper()}):
        mapped = map_rpc_error(error, chain="rollup_a")
        assert type(mapped) is expected, (error, mapped)


def test_custom_error_revert_is_decoded() -> None:
    error = {"code": 3, "message": "execution reverted: custom error 0x..", "data": "0x" + INVALID_PROOF.hex()}
    mapped = map_rpc_error(error, chain="l1", context="eth_estimateGas")
    assert isinstance(mapped, TxReverted) and reason_of(mapped) is FailureReason.ESTIMATE_REVERTED
    assert mapped.reason == "InvalidProof(0x" + "ab" * 32 + ")"
    assert "InvalidProof" in str(mapped)


def test_nested_revert_data_and_errors_without_args() -> None:
    data = "0x" + (selector("ThresholdNotMet(uint256,uint256)") + encode(["uint256", "uint256"], [1, 2])).hex()
    mapped = map_rpc_error({"code": -32015, "message": "VM execution error", "data": {"data": data}}, chain="c")
    assert isinstance(mapped, TxReverted) and mapped.reason == "ThresholdNotMet(1,2)"


def test_the_bridges_rate_limit_is_typed_with_its_wait_and_its_capacity_refusal_is_not() -> None:
    table = ErrorTable(["RateLimited(uint32,address,uint256,uint256,uint256)",
                        "AmountAboveCapacity(uint32,address,uint256,uint256)"])
    token = "0x" + "11" * 20
    limited = selector("RateLimited(uint32,address,uint256,uint256,uint256)") + encode(
        ["uint32", "address", "uint256", "uint256", "uint256"], [2000, token, 80, 20, 42])
    mapped = map_rpc_error({"code": 3, "message": "execution reverted", "data": "0x" + limited.hex()}, chain="l1",
                           errors=table)
    assert isinstance(mapped, OutboundRateLimited) and mapped.wait_s == 42.0
    assert mapped.reason.startswith("RateLimited(2000,")
    above = selector("AmountAboveCapacity(uint32,address,uint256,uint256)") + encode(
        ["uint32", "address", "uint256", "uint256"], [2000, token, 150, 100])
    never = map_rpc_error({"code": 3, "message": "execution reverted", "data": "0x" + above.hex()}, chain="l1",
                          errors=table)
    assert isinstance(never, TxReverted) and not isinstance(never, OutboundRateLimited)


def test_error_string_and_panic() -> None:
    text = "0x08c379a0" + encode(["string"], ["not owner"]).hex()
    assert map_rpc_error({"code": 3, "message": "execution reverted", "data": text}, chain="c").reason == "not owner"
    panic = "0x4e487b71" + encode(["uint256"], [0x11]).hex()
    assert map_rpc_error({"code": 3, "message": "execution reverted", "data": panic}, chain="c").reason == "Panic(0x11)"


def test_unknown_selector_and_revert_without_data() -> None:
    mapped = map_rpc_error({"code": 3, "message": "execution reverted", "data": "0xdeadbeef"}, chain="c")
    assert mapped.reason == "unknown error 0xdeadbeef"
    bare = map_rpc_error({"code": -32000, "message": "execution reverted: Ownable: caller"}, chain="c")
    assert isinstance(bare, TxReverted) and bare.reason == "Ownable: caller"


def test_error_table_from_artifact_abi() -> None:
    table = ErrorTable.from_abi([[{"type": "error", "name": "Paused", "inputs": [{"type": "uint32", "name": "until"}]},
                                  {"type": "function", "name": "x", "inputs": []}]])
    assert table.decode(selector("Paused(uint32)") + encode(["uint32"], [7])) == "Paused(7)"
    assert table.decode(INVALID_PROOF).startswith("InvalidProof(")  # built-ins stay


def test_web3_exceptions() -> None:
    rpc = w3x.Web3RPCError("boom", rpc_response={"jsonrpc": "2.0", "id": 1,
                                                 "error": {"code": -32000, "message": "nonce too low"}})
    assert type(map_exception(rpc, chain="c")) is NonceTooLow
    logic = w3x.ContractCustomError("custom", data="0x" + INVALID_PROOF.hex())
    assert map_exception(logic, chain="c").reason.startswith("InvalidProof(")
    assert type(map_exception(w3x.TransactionNotFound("no tx"), chain="c")) is TxNotFound
    assert type(map_exception(w3x.BadResponseFormat("junk"), chain="c")) is RpcError
    assert type(map_exception(w3x.Web3RPCError("replacement transaction underpriced"),
                              chain="c")) is ReplacementUnderpriced


def test_value_error_carrying_an_rpc_error_dict() -> None:
    assert type(map_exception(ValueError({"code": -32000, "message": "already known"}), chain="c")) is TxAlreadyKnown
    assert type(map_exception(ValueError("insufficient funds for transfer"), chain="c")) is InsufficientFunds
    assert type(map_exception(json.JSONDecodeError("bad", "x", 0), chain="c")) is RpcError


def test_signing_errors_carry_no_key_material() -> None:
    from eth_account import Account

    secret = "0x" + "zz" * 32
    try:
        Account.from_key(secret)
    except Exception as exc:  # noqa: BLE001
        mapped = map_exception(exc, chain="c")
    assert isinstance(mapped, SigningError)
    assert "zz" not in str(mapped)


def test_adapter_errors_pass_through_and_anything_else_is_rpc_error() -> None:
    original = TxReverted("x", chain="c")
    assert map_exception(original, chain="other") is original
    assert type(map_exception(RuntimeError("weird"), chain="c")) is RpcError
