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
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from adapters.base import ChainStats, Height, TxHash, TxNotFound, TxReceipt
from adapters.capabilities import Broadcast, PreparedTx, PresignedTx, TxSpec
from adapters.evm.devnet import USER_A, devnet_key
from adapters.message import Domain, MessageId
from config.loader import load_settings
from relayer.api.relayer_auth import RelayerRequestSigner
from relayer.api.server import serve_app
from relayer.daemon.daemon import RelayerDaemon
from relayer.store import Store
from router.api import MAX_BATCH
from tests import httpabuse
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

    # a WriteAheadSender, so that the daemon builds its operator lanes here (their runner is never started: the
    # fixture serves the API only); every call is recorded, and the rejections below must reach none of them
    async def prerequisites(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx]:
        self._record("prerequisites")
        return []

    async def prepare(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx | Exception]:
        self._record("prepare")
        return [ValueError("not signed here")] * len(specs)

    def sign(self, key: str, prepared: PreparedTx, nonce: int) -> PresignedTx:
        raise AssertionError("the API never signs")

    async def broadcast(self, raws: Sequence[bytes]) -> list[tuple[Broadcast, str]]:
        self._record("broadcast")
        return [(Broadcast.REFUSED, "not here")] * len(raws)

    async def replacements(self, key: str, raws: Sequence[bytes]) -> list[PresignedTx | None]:
        self._record("replacements")
        return [None] * len(raws)

    def lane_kinds(self) -> frozenset[str]:
        return frozenset({"transfer", "call", "xchain"})

    async def decided(self, account: str, txs: Sequence[PresignedTx]) -> list[bool]:
        self._record("decided")
        return [False] * len(txs)

    async def pending_nonce(self, account: str) -> int:
        self._record("pending_nonce")
        return 0

    async def receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        self._record("receipts")
        return [None] * len(tx_hashes)

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


FRONT = {"api.header_timeout_s": 1.5, "api.body_timeout_s": 1.5, "api.keep_alive_s": 3,
         "api.max_connections_per_client": 16, "api.max_requests_in_flight_per_client": 6,
         "api.max_streams_per_client": 4}  # small caps and timeouts, so the tests reach them quickly


@pytest.fixture
def front_overrides() -> dict[str, Any]:
    """api.* settings of the served daemon (a test module or test may override this fixture)."""
    return dict(FRONT)


@pytest.fixture
async def served(tmp_path, front_overrides) -> AsyncIterator[ServedDaemon]:
    """The daemon's API as ``relayer run`` serves it (``relayer.api.server.serve_app``: the guarded protocol, the
    request guard, the api.* limits) on a free loopback port, over counting fake chains."""
    port = free_port_block(1)
    settings = load_settings(EXAMPLE, env={}, overrides={
        "api.url": f"http://127.0.0.1:{port}", "api.max_body_bytes": LIMIT,
        "store.url": f"sqlite:///{tmp_path / 'relayer.db'}", "validator.verify_inclusion": False, **front_overrides})
    calls: list[tuple[str, str]] = []
    adapters = {n: CountingChain(n, c.domain, calls) for n, c in settings.chains.items()}
    http = httpx.AsyncClient()
    daemon = RelayerDaemon(settings, "relayer", adapters, Store(settings.store.url, owner="limits"),  # type: ignore[arg-type]
                           [], http, operator_keys=[devnet_key(USER_A)])
    await daemon.refresh_health()  # samples the chains once: the capacity model the routing API plans with
    assert daemon.capacity is not None
    # as relayer.api.server.serve_api runs it: the API on a thread and loop of its own, the relay-loop routes on this
    # loop
    _app, config = serve_app(daemon, relay_loop=asyncio.get_running_loop())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="api", daemon=True)
    thread.start()

    async def started() -> bool:
        return server.started or not thread.is_alive()

    await wait_for_async(started, 30, "uvicorn to listen")
    assert thread.is_alive()
    calls.clear()
    try:
        yield ServedDaemon(f"http://127.0.0.1:{port}", daemon, calls)
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 10)
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
        response = await asyncio.wait_for(_read_all(reader), 30)
    finally:
        writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    _headers, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(body) if body else {}


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed. A server that answers before it read the whole body (a 413) and
    closes may reset the connection while the client is still sending: what arrived before the reset is the answer."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(65_536):
            received += chunk
    return received


def _intent(**over: Any) -> dict[str, Any]:
    return {"amount": "1", "recipient": RECIPIENT, "chains": ["l1"]} | over


async def test_content_length_over_the_limit_is_413_without_reading_the_body(served):
    # the body is never sent: an answer proves the decision came from the header alone
    status, body = await raw_request(served.port,
                                     f"POST /v1/intents HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                     f"Content-Length: {10 << 20}\nConnection: close\n\n")
    assert status == 413
    assert (body["detail"]["limit"] == LIMIT
            and f"the limit is {LIMIT} bytes (api.max_body_bytes)" in body["detail"]["error"])
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
async def test_malformed_json_is_400_naming_where_it_broke(served, payload, offset, expected):
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/intents", content=payload,
                               headers={"content-type": "application/json"})
    assert resp.status_code == 400
    detail = resp.json()["detail"]
    assert detail["field"] == "body" and f"at character {offset}: {expected}" in detail["error"]
    assert served.calls == []


async def test_body_that_is_not_utf8_is_400_naming_the_byte(served):
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/quote", content=b'{"amount": "\xff1"}',
                               headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["detail"] == {"error": "the JSON body is not UTF-8 (byte 12)",
                                                                 "field": "body"}
    assert served.calls == []


async def test_too_many_intents_is_413_naming_the_limit(served):
    batch = {"intents": [{"amount": "1"}] * (MAX_BATCH + 1)}
    assert len(json.dumps(batch)) < LIMIT  # under the body limit: the batch limit answers
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/intents", json=batch)
    assert resp.status_code == 413
    assert resp.json()["detail"] == {"field": "intents",
                                     "error": f"at most {MAX_BATCH} intents per batch, got {MAX_BATCH + 1}"}
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


@pytest.mark.parametrize("front_overrides", [{"api.max_intents_per_s": 100_000.0}])  # the router's quota binds first
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
    assert len(with_body) == 8  # quote, intents, broadcast, cosign; the admin API's drop, pause, execute, integrators
    for path, method, op in with_body:
        assert {"400", "413", "415"} <= set(op["responses"]), (method, path)
    every = [op for ops in spec["paths"].values() for op in ops.values()]
    assert not any("422" in op["responses"] for op in every)  # bad input is the one 400 shape
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_a_valid_intent_does_reach_the_chains(served):
    """The control: the counter sees the balance reads of an accepted intent, which is stored for its lane to sign
    (the lanes do not run in this fixture: it serves the API only)."""
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{served.url}/v1/intents", json={"intents": [_intent()]})
        assert resp.status_code == 202, resp.text
        assert resp.json()["statuses"] == ["planned"]
        stored = await http.get(f"{served.url}/v1/intents/{resp.json()['ids'][0]}")
    assert stored.json()["status"] == "planned" and stored.json()["chain"] == "l1"
    assert ("l1", "token_balance") in served.calls


# ---------------------------------------------------------------- the HTTP front (issue 12), with raw sockets
async def test_deep_json_is_400_naming_the_limit_before_any_parser(served):
    """30,000 levels (60-180 KB, so under this daemon's 64 KiB body limit for the array; 10^5 levels against a real
    daemon process: tests/integration/test_api_depth.py), both shapes, to routes that read a body and to one that
    does not."""
    for kind, depth in (("array", 30_000), ("object", 10_000)):
        for method, path in (("POST", "/v1/quote"), ("POST", "/v1/intents"), ("GET", "/healthz")):
            answer = await httpabuse.request(served.url, method, path, httpabuse.deep_body(kind, depth))
            assert answer.status == 400, (kind, path, answer.body[:200])
            detail = answer.json()["detail"]
            assert detail["limit"] == 64 and detail["field"] == "body" and "api.max_json_depth" in detail["error"]
            assert f"nests {depth} levels" in detail["error"]
    # at the limit it is an ordinary body: 64 levels parse (and are refused by the route for what they say)
    at_limit = b'{"amount": ' + b"[" * 63 + b"]" * 63 + b"}"
    answer = await httpabuse.request(served.url, "POST", "/v1/quote", at_limit)
    assert answer.status == 400 and answer.json()["detail"]["field"] == "amount", answer.body[:300]
    over = b'{"amount": ' + b"[" * 64 + b"]" * 64 + b"}"
    assert (await httpabuse.request(served.url, "POST", "/v1/quote", over)).status == 400
    assert served.calls == []


async def test_header_over_the_limit_is_431_while_it_streams_in(served):
    """An 8 MB header: answered 431 as soon as the first 16 KiB are in, long before the 8 MB are sent."""
    reader, writer = await httpabuse.connect(served.url)
    answered = asyncio.create_task(httpabuse.read_answer(reader))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < (8 << 20) and not answered.done():
            writer.write(b"a" * (64 << 10))
            await writer.drain()  # does not yield while the server keeps reading (it lingers, dropping bytes)
            sent += 64 << 10
            await asyncio.sleep(0.01)  # a client at ~6 MB/s: lets the answer be read as soon as it is there
    answer = await asyncio.wait_for(answered, 10)
    writer.close()
    assert answer.status == 431 and answer.json()["detail"]["limit"] == 16 << 10
    assert "api.max_header_bytes" in answer.json()["detail"]["error"]
    assert sent < (8 << 20), f"{sent} bytes of the header were sent before an answer"


async def test_a_large_head_in_one_piece_is_431(served):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))
    reader, writer = await httpabuse.connect(served.url)
    writer.write(head + b"\r\n")
    answer = await asyncio.wait_for(httpabuse.read_answer(reader), 10)
    writer.close()
    assert answer.status == 431


async def test_headers_trickled_a_byte_at_a_time_are_cut_off_at_the_header_timeout(served):
    """Slowloris: a byte every 0.2 s (uvicorn's keep-alive timer restarted at each byte, for ever); closed with
    408 after api.header_timeout_s (1.5 s here), on a new connection and on a kept-alive one."""
    for kept_alive in (False, True):
        reader, writer = await httpabuse.connect(served.url)
        if kept_alive:
            writer.write(httpabuse.request_bytes(served.url, "GET", "/healthz"))
            assert (await httpabuse.read_answer(reader)).status == 200
        t0 = time.monotonic()
        closed = asyncio.create_task(httpabuse.closed_after(reader, 30))
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            if closed.done():
                break
            with contextlib.suppress(ConnectionError):
                writer.write(bytes([byte]))
            await asyncio.wait([closed], timeout=0.2)
        gone, sent = await closed
        took = time.monotonic() - t0
        writer.close()
        assert gone and 1.4 <= took <= 4.0, (kept_alive, took)
        assert sent.startswith(b"HTTP/1.1 408") and b"api.header_timeout_s" in sent, sent[:200]


async def test_connections_over_the_per_client_cap_are_429_and_the_total_cap_503(served):
    held = [await httpabuse.connect(served.url, "127.20.0.1") for _ in range(16)]
    try:
        reader, writer = await httpabuse.connect(served.url, "127.20.0.1")
        gone, sent = await httpabuse.closed_after(reader, 5)
        writer.close()
        assert gone and sent.startswith(b"HTTP/1.1 429"), sent[:200]
        head, _, body = sent.partition(b"\r\n\r\n")
        assert b"retry-after: 1" in head.lower()
        assert json.loads(body)["detail"]["cap"] == "api.max_connections_per_client"
        # another client is not affected
        answer = await httpabuse.request(served.url, "GET", "/healthz", src="127.20.0.2")
        assert answer.status == 200
    finally:
        for _r, w in held:
            w.close()


@pytest.mark.parametrize("front_overrides", [dict(FRONT, **{"api.max_connections": 20})])
async def test_connections_over_the_total_cap_are_503(served):
    held = [await httpabuse.connect(served.url, httpabuse.source(21, i)) for i in range(20)]
    try:
        answer = await httpabuse.request(served.url, "GET", "/healthz", src="127.21.9.9")
        assert answer.status == 503 and answer.headers["retry-after"] == "1"
        assert answer.json()["detail"]["cap"] == "api.max_connections"
    finally:
        for _r, w in held:
            w.close()

    async def admitted() -> bool:  # closed connections give their places back
        return (await httpabuse.request(served.url, "GET", "/healthz", src="127.21.9.9")).status == 200

    await wait_for_async(admitted, 10, "a place after the held connections closed")


async def _open_stream(url: str, src: str) -> tuple[int, dict[str, str], asyncio.StreamWriter, bytes]:
    reader, writer = await httpabuse.connect(url, src)
    writer.write(httpabuse.request_bytes(url, "GET", "/v1/explorer/events?max_s=60"))
    status, headers = await asyncio.wait_for(httpabuse.read_head(reader), 10)
    body = b"" if status == 200 else await asyncio.wait_for(reader.read(4000), 10)
    return status, headers, writer, body


async def test_streams_over_the_per_client_cap_are_429_naming_it(served):
    opened = [await _open_stream(served.url, "127.22.0.1") for _ in range(4)]
    try:
        assert [s for s, *_ in opened] == [200] * 4
        status, headers, writer, body = await _open_stream(served.url, "127.22.0.1")
        writer.close()
        assert status == 429 and headers["retry-after"] == "1"
        assert b"api.max_streams_per_client" in body
        status, _h, writer, _b = await _open_stream(served.url, "127.22.0.2")  # another client still may
        writer.close()
        assert status == 200
    finally:
        for *_x, w, _b in opened:
            w.close()


@pytest.mark.parametrize("front_overrides", [dict(FRONT, **{"api.max_streams_per_client": 8})])
async def test_requests_in_flight_over_the_per_client_cap_are_429(served):
    opened = [await _open_stream(served.url, "127.23.0.1") for _ in range(6)]  # streams are requests in flight
    try:
        answer = await httpabuse.request(served.url, "GET", "/healthz", src="127.23.0.1")
        assert answer.status == 429 and answer.json()["detail"]["cap"] == "api.max_requests_in_flight_per_client"
        assert (await httpabuse.request(served.url, "GET", "/healthz", src="127.23.0.2")).status == 200
    finally:
        for *_x, w, _b in opened:
            w.close()

    async def admitted() -> bool:  # a closed stream gives its place back
        return (await httpabuse.request(served.url, "GET", "/healthz", src="127.23.0.1")).status == 200

    await wait_for_async(admitted, 10, "the client's places after its streams closed")


async def test_a_body_that_does_not_arrive_is_408_after_the_body_timeout(served):
    reader, writer = await httpabuse.connect(served.url)
    writer.write(b"POST /v1/quote HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{")
    t0 = time.monotonic()
    answer = await asyncio.wait_for(httpabuse.read_answer(reader), 10)
    writer.close()
    assert answer.status == 408 and "api.body_timeout_s" in answer.json()["detail"]["error"]
    assert 1.4 <= time.monotonic() - t0 <= 4.0


async def test_a_thousand_idle_connections_are_closed_and_the_api_answers_meanwhile(served):
    """1,000 connections that send nothing (10 per address): admitted up to the caps, closed at the header
    timeout; a client of its own is answered all along."""
    conns = []
    for i in range(1000):
        conns.append(await httpabuse.connect(served.url, httpabuse.source(24, i // 10)))
    try:
        t0 = time.monotonic()
        answer = await httpabuse.request(served.url, "GET", "/healthz", src="127.24.99.1")
        assert answer.status == 200 and time.monotonic() - t0 < 1.0
        results = await asyncio.gather(*(httpabuse.closed_after(r, 10) for r, _w in conns))
        assert all(gone for gone, _sent in results)  # every one closed by the server (1.5 s header timeout)
    finally:
        for _r, w in conns:
            w.close()


async def test_every_operation_documents_the_front_answers(served):
    async with httpx.AsyncClient() as http:
        spec = (await http.get(f"{served.url}/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            assert {"408", "429", "431", "503"} <= set(op["responses"]), (method, path)


async def test_the_relay_loops_share_is_capped_per_client_but_checkpoint_reads_are_not(served):
    """Routes that run on the relay loop (api.own_thread): at most api.max_relay_requests_per_s_per_client (20) a
    second from one client, then 429 naming it; checkpoint reads (every relayer's lifeline) are never refused so."""
    statuses = [(await httpabuse.request(served.url, "GET", "/v1/chains", src="127.25.0.1")).status for _ in range(40)]
    assert statuses.count(200) >= 20 and 429 in statuses, statuses
    refused = await httpabuse.request(served.url, "GET", "/v1/chains", src="127.25.0.1")
    if refused.status == 429:
        assert refused.json()["detail"]["cap"] == "api.max_relay_requests_per_s_per_client"
        assert refused.headers["retry-after"] == "1"
    assert (await httpabuse.request(served.url, "GET", "/v1/chains", src="127.25.0.2")).status == 200
    # an allow-listed relayer's signed reads: never refused by the relay loop's share (nor by the anonymous budget)
    relayer = RelayerRequestSigner(load_settings(EXAMPLE, env={}).relayer.identity_key.private_key.get_secret_value())  # type: ignore[union-attr]
    path = "/validators/0/checkpoints/1000/latest"
    checkpoints = [(await httpabuse.request(served.url, "GET", path, src="127.25.0.1",
                                            headers=relayer.headers("GET", path.encode(), b""))).status
                   for _ in range(60)]
    assert set(checkpoints) == {400}, checkpoints  # the route's own answer (a bad address), never a cap
