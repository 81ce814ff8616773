"""The validator's light clients read over several endpoints (light_clients/fallback.py): the EVM inclusion verifier
(headers and receipts from rpc_url, then fallback_rpc_urls), its sync-committee client (beacon_url, then
fallback_beacon_urls), and the fallback order itself. Every endpoint is a real HTTP server on loopback: a synthetic
EVM chain (headers that hash and link, receipts that rebuild each receiptsRoot, one Dispatch), the devnet's own
Beacon API over that chain, and in front of each a ``FaultyEndpoint`` that is dead, resets, hangs, answers 503 or not
JSON, or lies.

- A first endpoint that fails costs one request timeout at most, the claim is proven through the next, and the
  failed one is skipped until its cool-down ends; its probe then finds it answering and it serves again.
- A first endpoint that lies gets the claim refused at once, naming it by index, without asking the next in the same
  call; it is demoted, and the next call is proven through the next endpoint.
- Every endpoint failing is ``RpcUnavailable`` listing each by index; a ``verify_rpc_urls`` endpoint that is
  unreachable and one that disagrees are told apart, by index. No log holds a URL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from adapters.base import DispatchClaim, Domain, Height, InclusionRefused, RpcUnavailable, TxHash
from adapters.endpoints import Endpoints
from adapters.evm import abi
from adapters.message import Message
from light_clients.ethereum.consensus.beacon_client import BeaconLightClient
from light_clients.ethereum.consensus.config import DEVNET_SLOT_DURATION_MS, devnet_network
from light_clients.ethereum.consensus.errors import InvalidUpdate, RejectReason
from light_clients.ethereum.consensus.preset import LightClientFork
from light_clients.ethereum.execution import BlockHeader, Log, Receipt, receipts_root
from light_clients.ethereum.inclusion import EvmInclusionVerifier
from light_clients.fallback import EveryEndpointFailed, FallbackReads
from tests.unit.loopback_endpoints import Fault, FaultyEndpoint, LoopbackServers, dead_url
from tests.unit.test_beacon_light_client import CHAIN_ID, GENESIS
from tests.unit.test_beacon_light_client import Served as ServedBeacon

MAILBOX = bytes.fromhex("4d" * 20)
DOMAIN = 41201
LENGTH = 40            # blocks 0..39
DISPATCH_AT = 20
TRUSTED_SLOT = 9       # the beacon block the sync-committee client starts from
TIMEOUT_S = 2.0        # request_timeout_s of these tests' endpoints (0.5 s timed out a healthy endpoint under CI load)
FAILURES = [Fault.RESET, Fault.HANG, Fault.STATUS_503, Fault.GARBAGE]


def _message() -> bytes:
    return Message(0, 0, Domain(DOMAIN), b"\x11" * 32, Domain(2000), b"\x22" * 32, b"proven over any endpoint").encode()


def _dispatch_receipt(message: bytes) -> Receipt:
    data = abi.word(32) + abi.word(len(message)) + message + b"\0" * (-len(message) % 32)
    topics = [bytes.fromhex(abi.DISPATCH_TOPIC[2:]), b"\x11" * 32, abi.word(2000), b"\x22" * 32]
    return Receipt(2, 1, None, 60_000, b"\0" * 256, [Log(MAILBOX, topics, data)])


def _filler_receipt(number: int) -> Receipt:
    return Receipt(2, 1, None, 21_000, b"\0" * 256, [Log(b"\x33" * 20, [number.to_bytes(32, "big")], b"")])


def _header(number: int, parent: bytes, receipts_hash: bytes) -> BlockHeader:
    """A Prague-shaped header (what anvil serves) whose receiptsRoot is that of the block's receipts."""
    return BlockHeader(
        parent_hash=parent, ommers_hash=b"\x1d" * 32, beneficiary=b"\0" * 20, state_root=number.to_bytes(32, "big"),
        transactions_root=b"\x56" * 32, receipts_root=receipts_hash, logs_bloom=b"\0" * 256, difficulty=0,
        number=number, gas_limit=30_000_000, gas_used=21_000, timestamp=GENESIS + number, extra_data=b"",
        mix_hash=b"\0" * 32, nonce=b"\0" * 8, base_fee_per_gas=1_000_000_000, withdrawals_root=b"\x56" * 32,
        blob_gas_used=0, excess_blob_gas=0, parent_beacon_block_root=b"\0" * 32, requests_hash=b"\xe3" * 32,
    )


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _rpc_block(h: BlockHeader) -> dict[str, Any]:
    assert h.base_fee_per_gas is not None and h.withdrawals_root is not None and h.blob_gas_used is not None
    assert h.excess_blob_gas is not None and h.parent_beacon_block_root is not None and h.requests_hash is not None
    return {
        "parentHash": _hex(h.parent_hash), "sha3Uncles": _hex(h.ommers_hash), "miner": _hex(h.beneficiary),
        "stateRoot": _hex(h.state_root), "transactionsRoot": _hex(h.transactions_root),
        "receiptsRoot": _hex(h.receipts_root), "logsBloom": _hex(h.logs_bloom), "difficulty": hex(h.difficulty),
        "number": hex(h.number), "gasLimit": hex(h.gas_limit), "gasUsed": hex(h.gas_used),
        "timestamp": hex(h.timestamp), "extraData": _hex(h.extra_data), "mixHash": _hex(h.mix_hash),
        "nonce": _hex(h.nonce), "baseFeePerGas": hex(h.base_fee_per_gas), "withdrawalsRoot": _hex(h.withdrawals_root),
        "blobGasUsed": hex(h.blob_gas_used), "excessBlobGas": hex(h.excess_blob_gas),
        "parentBeaconBlockRoot": _hex(h.parent_beacon_block_root), "requestsHash": _hex(h.requests_hash),
        "hash": _hex(h.hash()),
    }


def _rpc_receipt(r: Receipt) -> dict[str, Any]:
    return {"type": hex(r.tx_type), "status": hex(r.status or 0), "cumulativeGasUsed": hex(r.cumulative_gas_used),
            "logsBloom": _hex(r.logs_bloom),
            "logs": [{"address": _hex(lg.address), "topics": [_hex(t) for t in lg.topics], "data": _hex(lg.data)}
                     for lg in r.logs]}


class EvmChain:
    """A synthetic EVM chain served over JSON-RPC (eth_getBlockByNumber, eth_getBlockReceipts, batches)."""

    def __init__(self, message: bytes) -> None:
        self.headers: list[BlockHeader] = []
        self.receipts: list[list[Receipt]] = []
        parent = b"\0" * 32
        for number in range(LENGTH):
            receipts = [_filler_receipt(number), *([_dispatch_receipt(message)] if number == DISPATCH_AT else [])]
            header = _header(number, parent, receipts_root(receipts))
            self.headers.append(header)
            self.receipts.append(receipts)
            parent = header.hash()

    def _result(self, method: str, params: list[Any]) -> Any:
        number = int(params[0], 16)
        if method == "eth_getBlockByNumber":
            return _rpc_block(self.headers[number]) if number < LENGTH else None
        if method == "eth_getBlockReceipts":
            return [_rpc_receipt(r) for r in self.receipts[number]] if number < LENGTH else None
        raise AssertionError(f"unexpected method {method}")

    async def _handle(self, request: web.Request) -> web.Response:
        doc = await request.json()
        calls = doc if isinstance(doc, list) else [doc]
        answers = [{"jsonrpc": "2.0", "id": c["id"], "result": self._result(c["method"], c["params"])} for c in calls]
        return web.json_response(answers if isinstance(doc, list) else answers[0])

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self._handle)
        return app


@dataclass
class Net:
    """Two RPC endpoints of one chain, each a faulty endpoint in front of the same honest node (the second stays
    honest), and the same for its Beacon API; the claim of the chain's one dispatch."""

    rpc: list[FaultyEndpoint]
    beacon: list[FaultyEndpoint]
    beacon_chain: ServedBeacon
    claim: DispatchClaim


@pytest.fixture
def net() -> Iterator[Net]:
    message = _message()
    chain = EvmChain(message)
    beacon = ServedBeacon()
    for header in chain.headers:
        beacon.chain.append(header)  # the beacon chain's slot N carries execution block N
    servers = LoopbackServers()
    try:
        node = servers.aiohttp(chain.app()).url
        beacon_api = servers.asgi(beacon.app)
        yield Net([servers.faulty(node), servers.faulty(node)],
                  [servers.faulty(beacon_api), servers.faulty(beacon_api)], beacon,
                  DispatchClaim(message, Height(DISPATCH_AT), TxHash("0x" + "ab" * 32)))
    finally:
        servers.close()


def _verifier(net: Net, rpc_urls: list[str], *, other_rpc_urls: Sequence[str] = (),
              beacon_urls: list[str] | None = None) -> EvmInclusionVerifier:
    beacon = None
    if beacon_urls is not None:
        beacon = BeaconLightClient("origin", beacon_urls, net.beacon_chain.chain.block_root(TRUSTED_SLOT),
                                   devnet_network(CHAIN_ID), LightClientFork.ELECTRA, DEVNET_SLOT_DURATION_MS,
                                   timeout_s=TIMEOUT_S)
    return EvmInclusionVerifier("origin", rpc_urls, _hex(MAILBOX), other_rpc_urls=other_rpc_urls, beacon=beacon,
                                timeout_s=TIMEOUT_S)


def _execution_hash(net: Net, number: int) -> bytes:
    return net.beacon_chain.chain.execution_hash(number)


def _events(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == event]


def _no_urls(logs: Sequence[MutableMapping[str, Any]], net: Net) -> None:
    text = repr(logs)
    for endpoint in [*net.rpc, *net.beacon]:
        assert endpoint.url.removeprefix("http://") not in text, "a log holds an endpoint's URL"


@pytest.mark.parametrize("fault", FAILURES, ids=lambda f: f.value)
async def test_a_failing_first_endpoint_costs_one_timeout_and_the_next_proves_the_claim(net: Net, fault: Fault) -> None:
    first, second = net.rpc
    first.set(fault)
    verifier = _verifier(net, [first.url, second.url])
    try:
        started = time.monotonic()
        with capture_logs() as logs:
            await verifier.verify_dispatches([net.claim], Height(LENGTH - 1))
        assert time.monotonic() - started < 2 * TIMEOUT_S  # one timeout at most, then the next endpoint
        assert verifier.verified_hash(DISPATCH_AT) == _execution_hash(net, DISPATCH_AT)
        failed = _events(logs, "light_client_endpoint_failed")
        assert [(e["endpoint"], e["next_endpoint"], e["endpoints"]) for e in failed] == [
            (0, 1, "rpc_url and fallback_rpc_urls")]
        assert [e["endpoint"] for e in _events(logs, "light_client_endpoint_serving")] == [1]
        _no_urls(logs, net)
        assert verifier.rpc.healthy() == [False, True]
        asked = first.requests
        await verifier.verify_dispatches([net.claim], Height(LENGTH - 1))  # demoted: not asked again yet
        assert first.requests == asked
    finally:
        await verifier.close()


async def test_a_dead_first_endpoint_with_nothing_listening(net: Net) -> None:
    verifier = _verifier(net, [dead_url(), net.rpc[1].url])
    try:
        with capture_logs() as logs:
            await verifier.verify_dispatches([net.claim], Height(LENGTH - 1))
        assert [e["error"] for e in _events(logs, "light_client_endpoint_failed")] == ["ConnectError"]
    finally:
        await verifier.close()


def _forged_header(_path: str, doc: Any) -> Any:
    for answer in doc:  # a field rewritten, the node's hash kept
        answer["result"]["stateRoot"] = "0x" + "ee" * 32
    return doc


def _forged_receipts(_path: str, doc: Any) -> Any:
    for answer in doc:
        if isinstance(answer["result"], list):  # receipts: the dispatch's message altered
            for receipt in answer["result"]:
                for lg in receipt["logs"]:
                    lg["data"] = lg["data"].replace("70726f76656e", "666f72676564")  # "proven" -> "forged"
    return doc


@pytest.mark.parametrize(("lie", "reason"), [(_forged_header, "header hash mismatch"),
                                             (_forged_receipts, "receipts root mismatch")],
                         ids=["header", "receipts"])
async def test_a_lying_first_endpoint_is_refused_at_once_then_skipped(net: Net, lie: Any, reason: str) -> None:
    first, second = net.rpc
    first.set(Fault.LIE, lie)
    verifier = _verifier(net, [first.url, second.url])
    try:
        with capture_logs() as logs, pytest.raises(InclusionRefused) as refused:
            await verifier.verify_dispatches([net.claim], Height(LENGTH - 1))
        assert refused.value.reason == reason
        assert "rpc_url and fallback_rpc_urls index 0" in str(refused.value)
        assert second.requests == 0  # not papered over by asking the next endpoint in the same call
        assert [(e["endpoint"], e["reason"]) for e in _events(logs, "light_client_endpoint_refused")] == [(0, reason)]
        _no_urls(logs, net)
        with capture_logs() as logs:
            await verifier.verify_dispatches([net.claim], Height(LENGTH - 1))  # the next poll: the next endpoint
        assert second.requests > 0 and [e["endpoint"] for e in _events(logs, "light_client_endpoint_serving")] == [1]
    finally:
        await verifier.close()


async def test_every_endpoint_failing_is_rpc_unavailable_naming_each_by_index(net: Net) -> None:
    for endpoint in net.rpc:
        endpoint.set(Fault.STATUS_503)
    verifier = _verifier(net, [e.url for e in net.rpc])
    try:
        with capture_logs() as logs, pytest.raises(RpcUnavailable) as unavailable:
            await verifier.verify_dispatches([net.claim], Height(LENGTH - 1))
        assert "every endpoint of rpc_url and fallback_rpc_urls failed (index 0: EndpointStatus, index 1: " \
               "EndpointStatus)" in str(unavailable.value)
        assert [e["next_endpoint"] for e in _events(logs, "light_client_endpoint_failed")] == [1, None]
        _no_urls(logs, net)
    finally:
        await verifier.close()


async def test_verify_endpoints_must_all_agree_and_a_refusal_says_which_was_unreachable_or_disagreed(
        net: Net) -> None:
    primary, verify = net.rpc
    unreachable = _verifier(net, [primary.url], other_rpc_urls=[verify.url, dead_url()])
    try:
        with pytest.raises(RpcUnavailable) as failed:
            await unreachable.verify_dispatches([net.claim], Height(LENGTH - 1))
        assert failed.value.reason == "verify endpoint unreachable"
        assert str(failed.value).startswith("[origin] verify_rpc_urls index 1 is unreachable (ConnectError)")
    finally:
        await unreachable.close()

    def other_chain(_path: str, doc: Any) -> Any:
        for answer in doc:
            answer["result"]["hash"] = "0x" + "77" * 32
        return doc

    verify.set(Fault.LIE, other_chain)
    disagreeing = _verifier(net, [primary.url], other_rpc_urls=[verify.url])
    try:
        with capture_logs() as logs, pytest.raises(InclusionRefused) as refused:
            await disagreeing.verify_dispatches([net.claim], Height(LENGTH - 1))
        assert refused.value.reason == "endpoints disagree"
        assert f"verify_rpc_urls index 0 serves 0x{'77' * 32}" in str(refused.value)
        (alert,) = _events(logs, "rpc_endpoints_disagree")
        assert (alert["other"], alert["other_endpoints"]) == (0, "verify_rpc_urls")
        _no_urls(logs, net)
    finally:
        await disagreeing.close()


async def test_with_a_beacon_source_both_first_endpoints_failing_still_proves_the_claim(net: Net) -> None:
    net.rpc[0].set(Fault.HANG)
    verifier = _verifier(net, [net.rpc[0].url, net.rpc[1].url],
                         beacon_urls=[dead_url(), net.beacon[1].url])
    try:
        with capture_logs() as logs:
            await verifier.verify_dispatches([net.claim], Height(LENGTH - 1))
        finalized = verifier.light_client_finalized
        assert finalized is not None and finalized.number == LENGTH - 3  # the head's finalized block (depth 2)
        failed = {(e["endpoints"], e["endpoint"]) for e in _events(logs, "light_client_endpoint_failed")}
        assert failed == {("rpc_url and fallback_rpc_urls", 0), ("beacon_url and fallback_beacon_urls", 0)}
        _no_urls(logs, net)
    finally:
        await verifier.close()


def _forged_signature(path: str, doc: Any) -> Any:
    if "/light_client/" in path and "/bootstrap/" not in path:
        for item in doc if isinstance(doc, list) else [doc]:
            aggregate = item["data"]["sync_aggregate"]
            signature = bytearray(bytes.fromhex(aggregate["sync_committee_signature"][2:]))
            signature[-1] ^= 1
            aggregate["sync_committee_signature"] = _hex(bytes(signature))
    return doc


async def test_a_beacon_endpoint_serving_forged_updates_is_refused_then_the_next_serves(net: Net) -> None:
    first, second = net.beacon
    first.set(Fault.LIE, _forged_signature)
    client = BeaconLightClient("origin", [first.url, second.url], net.beacon_chain.chain.block_root(TRUSTED_SLOT),
                               devnet_network(CHAIN_ID), LightClientFork.ELECTRA, DEVNET_SLOT_DURATION_MS,
                               timeout_s=TIMEOUT_S)
    try:
        with capture_logs() as logs, pytest.raises(InvalidUpdate) as refused:
            await client.sync()
        assert refused.value.reason is RejectReason.BAD_SIGNATURE
        assert second.requests == 0
        (alert,) = _events(logs, "beacon_update_refused")
        assert (alert["endpoint"], alert["endpoints"]) == (0, "beacon_url and fallback_beacon_urls")
        assert [e["endpoint"] for e in _events(logs, "light_client_endpoint_refused")] == [0]
        _no_urls(logs, net)
        finalized = await client.sync()  # the same updates, honest, from the next endpoint: not skipped as seen
        assert finalized.number == LENGTH - 3 and second.requests > 0
    finally:
        await client.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_demoted_endpoint_is_probed_after_its_cool_down_and_serves_again(net: Net) -> None:
    first, second = net.rpc
    clock = Clock()
    reads = FallbackReads("origin", "rpc_url and fallback_rpc_urls",
                          Endpoints([first.url, second.url], cool_down_s=5.0, clock=clock))

    async def ask(endpoint: Any) -> int:
        return (await _post(endpoint.url)).status_code

    first.set(Fault.RESET)
    assert (await reads.read("a read", ask)).endpoint.index == 1
    first.set(Fault.HONEST)
    asked = first.requests
    assert (await reads.read("a read", ask)).endpoint.index == 1 and first.requests == asked  # cooling down
    clock.now = 5.0
    with capture_logs() as logs:
        assert (await reads.read("a read", ask)).endpoint.index == 0  # the probe: answering again
    assert [(e["endpoint"], e["previous"]) for e in _events(logs, "light_client_endpoint_serving")] == [(0, 1)]
    assert reads.healthy() == [True, True]
    first.set(Fault.RESET)
    second.set(Fault.RESET)
    with pytest.raises(EveryEndpointFailed):
        await reads.read("a read", ask)


async def _post(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        response = await client.post(url, json={"jsonrpc": "2.0", "id": 0, "method": "eth_getBlockByNumber",
                                                "params": ["0x0", False]})
        response.raise_for_status()
        return response
