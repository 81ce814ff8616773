"""Oversized and malformed request bodies are rejected before any chain call, by the daemon's real API served by
uvicorn on a free loopback port. The daemon's chains are counting fault-injection adapters (the adapter
Protocols, every call recorded), so "before any chain call" is an assertion: zero calls for every rejected
request, and a valid request as the control that does reach the chains.

Also the regressions of the schemathesis run (tests/integration/test_api_schemathesis.py): every error status an
operation answers is documented in /openapi.json."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from adapters.base import ChainStats, Height, TxHash, TxNotFound, TxReceipt
from adapters.evm.devnet import USER_A, devnet_key
from adapters.message import Domain, MessageId
from config.loader import load_settings
from relayer.api import create_api
from relayer.app import RelayerDaemon
from relayer.request_guard import RequestGuard
from relayer.store import Store
from router.api import MAX_BATCH
from tests.fakes.chain import FakeChain
from tests.integration.harness import free_port_block, wait_for_async

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "devnet.toml"
LIMIT = 65536  # api.max_body_bytes of the daemon under test
RECIPIENT = "0x" + "ab" * 20


class CountingChain(FakeChain):
    """A chain adapter (ChainAdapter + MessageSender + CapacitySource) that records every call made to it."""

    COUNTED = ("latest_height", "finalized_height", "fetch_dispatched", "mailbox_state", "delivered",
               "estimate_delivery", "submit_delivery", "confirm", "health")

    def __init__(self, name: str, domain: int, calls: list[tuple[str, str]]) -> None:
        super().__init__(name, domain)
        self.calls = calls
        for method in self.COUNTED:
            setattr(self, method, self._counted(method, getattr(self, method)))

    def _counted(self, method: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((self.name, method))
            return await fn(*args, **kwargs)
        return call

    def _record(self, method: str) -> None:
        self.calls.append((self.name, method))

    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        self._record("chain_stats")
        return ChainStats(Height(100), blocks, 1.0, 30_000_000, 0.1, 1_000_000_000, 1.0)

    async def token_balance(self, symbol: str, holder: str) -> int:
        self._record("token_balance")
        return 10**30

    async def token_supply(self, symbol: str) -> int:
        self._record("token_supply")
        return 10**30

    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        self._record("transfer_token")
        return TxHash("0x" + "77" * 32)

    async def send_token(self, sender_key: str, symbol: str, amount: int, destination: Domain,
                         recipient: bytes) -> tuple[TxHash, MessageId]:
        self._record("send_token")
        return TxHash("0x" + "78" * 32), MessageId(b"\x01" * 32)

    async def dispatch_messages(self, sender_key: str, destination: Domain, recipient: bytes,
                                bodies: Any) -> tuple[TxHash, list[MessageId]]:
        self._record("dispatch_messages")
        return TxHash("0x" + "79" * 32), []

    async def unsigned_transaction(self, sender: str, kind: str, *, to: str, amount: int = 0, symbol: str = "",
                                   data: bytes = b"") -> dict[str, Any]:
        self._record("unsigned_transaction")
        return {"to": to}

    async def call_contract(self, sender_key: str, to: str, data: bytes) -> TxHash:
        self._record("call_contract")
        return TxHash("0x" + "7a" * 32)

    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        self._record("tx_result")
        raise TxNotFound(tx_hash, chain=self.name)

    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        self._record("tx_receipt")
        raise TxNotFound(tx_hash, chain=self.name)

    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        self._record("processed_messages")
        return []


class ServedDaemon:
    def __init__(self, url: str, daemon: RelayerDaemon, calls: list[tuple[str, str]]) -> None:
        self.url = url
        self.daemon = daemon
        self.calls = calls
        self.port = int(url.rsplit(":", 1)[1])


@pytest.fixture
async def served(tmp_path) -> AsyncIterator[ServedDaemon]:
    port = free_port_block(1)
    settings = load_settings(EXAMPLE, env={}, overrides={
        "api.url": f"http://127.0.0.1:{port}", "api.max_body_bytes": LIMIT,
        "store.url": f"sqlite:///{tmp_path / 'relayer.db'}", "validator.verify_inclusion": False})
    calls: list[tuple[str, str]] = []
    adapters = {n: CountingChain(n, c.domain, calls) for n, c in settings.chains.items()}
    http = httpx.AsyncClient()
    daemon = RelayerDaemon(settings, "relayer", adapters, Store(settings.store.url, owner="limits"),  # type: ignore[arg-type]
                           [], http, operator_keys=[devnet_key(USER_A)])
    await daemon.refresh_health()  # samples the chains once: the capacity model the routing API plans with
    assert daemon.capacity is not None
    app = RequestGuard(create_api(daemon), max_body_bytes=settings.api.max_body_bytes)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started or task.done()

    await wait_for_async(started, 30, "uvicorn to listen")
    calls.clear()
    try:
        yield ServedDaemon(f"http://127.0.0.1:{port}", daemon, calls)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        await daemon.close()


async def raw_request(port: int, head: str, body_chunks: list[bytes] = ()) -> tuple[int, dict[str, Any]]:  # type: ignore[assignment]
    """Send a hand-written request (so the test controls Content-Length and chunking) and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        for chunk in body_chunks:
            writer.write(chunk)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        response = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    _headers, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body) if body else {}


def _intent(**over: Any) -> dict[str, Any]:
    return {"amount": "1", "recipient": RECIPIENT, "chains": ["l1"]} | over


async def test_content_length_over_the_limit_is_413_without_reading_the_body(served):
    # the body is never sent: an answer proves the decision came from the header alone
    status, body = await raw_request(served.port, f"POST /v1/intents HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                                  f"Content-Length: {10 << 20}\nConnection: close\n\n")
    assert status == 413
    assert body["detail"]["limit"] == LIMIT and f"the limit is {LIMIT} bytes (api.max_body_bytes)" in body["detail"]["error"]
    assert served.calls == []


async def test_chunked_body_over_the_limit_is_413_when_the_count_passes_it(served):
    chunk = b"x" * 20_000
    framed = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for _ in range(4)] + [b"0\r\n\r\n"]
    status, body = await raw_request(served.port, "POST /v1/quote HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                                  "Transfer-Encoding: chunked\nConnection: close\n", framed)
    assert status == 413 and f"more than {LIMIT} bytes streamed" in body["detail"]["error"]
    assert served.calls == []


async def test_chunked_body_under_the_limit_goes_through(served):
    payload = json.dumps({"amount": "2", "chains": ["rollup_a"]}).encode()
    framed = [f"{len(payload[:10]):x}\r\n".encode() + payload[:10] + b"\r\n",
              f"{len(payload[10:]):x}\r\n".encode() + payload[10:] + b"\r\n", b"0\r\n\r\n"]
    status, body = await raw_request(served.port, "POST /v1/quote HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                                  "Transfer-Encoding: chunked\nConnection: close\n", framed)
    assert status == 200 and body["route"]["chain"] == "rollup_a"


@pytest.mark.parametrize(("content_type", "payload"), [
    ("text/plain", b'{"intents": []}'),
    ("application/x-www-form-urlencoded", b"intents=1"),
    ("multipart/form-data; boundary=x", b"--x--"),
    (None, b'{"intents": []}'),
])
async def test_wrong_content_type_is_415(served, content_type, payload):
    headers = {"content-type": content_type} if content_type else {}
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/intents", content=payload, headers=headers)
    assert resp.status_code == 415
    assert resp.json()["detail"]["expected"] == "application/json"
    assert served.calls == []


@pytest.mark.parametrize(("payload", "offset", "expected"), [
    (b'{"intents": [', 13, "Expecting value"),
    (b'{"intents": [{"amount": "1",}]}', 28, "Expecting property name"),
    (b'{"intents" [1]}', 11, "Expecting ':' delimiter"),
])
async def test_malformed_json_is_422_naming_where_it_broke(served, payload, offset, expected):
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/intents", content=payload, headers={"content-type": "application/json"})
    assert resp.status_code == 422
    err = resp.json()["detail"][0]
    assert err["type"] == "json_invalid" and err["loc"] == ["body", offset] and expected in err["ctx"]["error"]
    assert served.calls == []


async def test_body_that_is_not_utf8_is_400_naming_the_byte(served):
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/quote", content=b'{"amount": "\xff1"}',
                               headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["detail"] == {"error": "the JSON body is not UTF-8 (byte 12)", "field": "body"}
    assert served.calls == []


async def test_too_many_intents_is_413_naming_the_limit(served):
    batch = {"intents": [{"amount": "1"}] * (MAX_BATCH + 1)}
    assert len(json.dumps(batch)) < LIMIT  # under the body limit: the batch limit answers
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/intents", json=batch)
    assert resp.status_code == 413
    assert resp.json()["detail"] == {"field": "intents", "error": f"at most {MAX_BATCH} intents per batch, got {MAX_BATCH + 1}"}
    assert served.calls == []


@pytest.mark.parametrize(("method", "path", "payload", "status", "needle"), [
    ("POST", "/v1/intents", {"intents": [_intent()] * 3, "colour": 1}, 400, "unknown field"),
    ("POST", "/v1/intents", {"intents": [_intent(amount="1e99")]}, 400, "at most 40 digits"),
    ("POST", "/v1/intents", {"intents": [_intent(recipient="0x12")]}, 400, "20-byte address"),
    ("POST", "/v1/quote", {"amount": "9" * 41}, 400, "at most 40 digits"),
    ("POST", "/v1/quote", {"amount": ""}, 400, "not a number"),
    ("POST", "/v1/intents/int_nope/broadcast", {"tx_hash": "0x" + "11" * 32}, 404, "no intent"),
    ("POST", "/v1/intents", {"intents": [_intent(kind="call", amount="0", recipient="0x" + "cd" * 20,
                                                 calldata="0xa9059cbb" + "00" * 64)]}, 403, "router.call_allowlist"),
    ("POST", "/v1/intents", {"intents": [_intent(token="USDC")]}, 400, "unknown token"),
    ("POST", "/v1/intents", {"intents": [_intent(amount="10001")]}, 403, "router.value_per_day.TST"),
    ("POST", "/v1/intents", {"intents": [_intent()], "signer": "0x90f79bf6eb2c4f870365e785982e1f101e93b906"}, 400,
     "operator accounts"),
    ("GET", "/v1/intents/0", None, 404, "no intent"),
    ("GET", "/v1/batches/0", None, 404, "no batch"),
    ("GET", "/v1/batches/0/events", None, 404, "no batch"),
    ("GET", "/v1/integrators/NOPE/report", None, 400, "integrator code"),
    ("GET", "/v1/messages?state=", None, 400, "is not one of"),
    ("GET", "/v1/messages/0", None, 400, "32-byte hex"),
    ("GET", "/v1/messages/0x" + "00" * 32, None, 404, "no message"),
    ("GET", "/validators/0/checkpoints/1000/latest", None, 400, "20-byte address"),
    ("GET", "/validators/0/checkpoints/1000/3", None, 400, "20-byte address"),
    ("POST", "/validators/0x" + "00" * 20 + "/cosign", {"chain": "l1"}, 404, "co-signs no deliveries"),
])
async def test_rejections_are_documented_and_reach_no_chain(served, method, path, payload, status, needle):
    """Each was an undocumented status in the schemathesis run (ST103); the first four bodies also exercise the
    intent checks that run before the chains are asked for balances."""
    async with httpx.AsyncClient() as http:
        resp = await http.request(method, served.url + path, json=payload)
        spec = (await http.get(f"{served.url}/openapi.json")).json()
    assert resp.status_code == status, resp.text
    assert needle in json.dumps(resp.json()["detail"])
    template = next(p for p in spec["paths"] if _matches(p, path.split("?")[0]))
    assert str(status) in spec["paths"][template][method.lower()]["responses"], (template, status)
    assert served.calls == []


def _matches(template: str, path: str) -> bool:
    t, p = template.strip("/").split("/"), path.strip("/").split("/")
    return len(t) == len(p) and all(a == b or a.startswith("{") for a, b in zip(t, p, strict=True))


async def test_over_the_clients_intent_rate_is_429_documented_and_reaches_no_chain(served):
    """router.intents_per_s of config/examples/devnet.toml (10/s, burst 1000): a batch refused for another reason
    (more TST than a day's limit) still spends the bucket; the next batch over what is left is 429 + Retry-After."""
    big = {"intents": [{"amount": "10001", "recipient": RECIPIENT}] * 600}  # under the body limit of this daemon
    async with httpx.AsyncClient() as http:
        first = await http.post(f"{served.url}/v1/intents", json=big)
        resp = await http.post(f"{served.url}/v1/intents", json=big)
        spec = (await http.get(f"{served.url}/openapi.json")).json()
    assert first.status_code == 403 and first.json()["detail"]["limit"] == "router.value_per_day.TST"
    assert resp.status_code == 429 and resp.json()["detail"]["limit"] == "router.intents_per_s"
    assert int(resp.headers["Retry-After"]) >= 1
    assert "429" in spec["paths"]["/v1/intents"]["post"]["responses"]
    assert "429" in spec["paths"]["/v1/intents/{intent_id}/broadcast"]["post"]["responses"]
    assert served.calls == []


async def test_body_errors_are_documented_on_every_operation_with_a_body(served):
    async with httpx.AsyncClient() as http:
        spec = (await http.get(f"{served.url}/openapi.json")).json()
    with_body = [(p, m, op) for p, ops in spec["paths"].items() for m, op in ops.items() if "requestBody" in op]
    assert len(with_body) == 4
    for path, method, op in with_body:
        assert {"400", "413", "415", "422"} <= set(op["responses"]), (method, path)


async def test_a_valid_intent_does_reach_the_chains(served):
    """The control: the counter sees the balance reads and the transfer of an accepted intent."""
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/intents", json={"intents": [_intent()]})
    assert resp.status_code == 202, resp.text

    async def sent() -> bool:
        return ("l1", "transfer_token") in served.calls

    await wait_for_async(sent, 30, "the intent's transfer on l1")
    assert ("l1", "token_balance") in served.calls
