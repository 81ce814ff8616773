"""Abusive HTTP clients on raw sockets, for the API fault test (``tests/faults/test_api_abuse.py``) and the
attacker's HTTP attacks (``tests/adversarial/attacks/http.py``).

Each load runs until told to stop and returns what it saw (statuses, counts, bytes). Clients connect from their
own loopback source addresses (``127.B.x.y``: any address of 127.0.0.0/8 is the loopback interface on Linux), so
the daemon sees them as distinct clients, as it would see an attacker's many hosts, and the tests' own probes
from 127.0.0.1 are a client of their own.

Run one load in a process of its own::

    python -m tests.httpabuse LOAD --url http://127.0.0.1:8900 [--arg NAME=JSON ...]

It prints ``{"ready": true}`` once the load is established, then, on SIGTERM / SIGINT (or after ``seconds``),
one JSON line with its summary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEEP = 100_000  # nesting of the deep bodies: the crash was ~70,000 (any JSON route) to 100,000 levels


def deep_body(kind: str, depth: int = DEEP) -> bytes:
    """A JSON ``array`` (``[[[...]]]``, 2 bytes a level) or ``object`` (``{"a":{"a":...1}}``, 6 bytes a level)."""
    if kind == "array":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    raise ValueError(kind)


def source(block: int, i: int) -> str:
    """The ``i``-th loopback source address of ``block`` (127.block.x.y, never 127.0.0.1)."""
    return f"127.{block}.{i // 250}.{i % 250 + 1}"


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


async def connect(url: str, src: str | None = None, timeout_s: float = 10.0
                  ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = host_port(url)
    return await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(src, 0) if src else None,
                                                          limit=1 << 20), timeout_s)


def request_bytes(url: str, method: str, path: str, body: bytes | None = None, *,
                  content_type: str | None = "application/json", headers: dict[str, str] | None = None,
                  close: bool = False) -> bytes:
    host, port = host_port(url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if body is not None:
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("closed before a status line")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    status, headers = await read_head(reader)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", ""):
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            parts.append(await reader.readexactly(size))
            await reader.readline()
        body = b"".join(parts)
    else:
        body = await reader.read()
    return Answer(status, headers, body)


async def request(url: str, method: str, path: str, body: bytes | None = None, *, src: str | None = None,
                  timeout_s: float = 30.0, **kw: Any) -> Answer:
    """One request on a connection of its own (closed after the answer)."""
    reader, writer = await connect(url, src, timeout_s)
    try:
        writer.write(request_bytes(url, method, path, body, close=True, **kw))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return await asyncio.wait_for(read_answer(reader), timeout_s)
    finally:
        writer.close()


async def closed_after(reader: asyncio.StreamReader, timeout_s: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within ``timeout_s``, and what it sent before closing."""
    got = b""
    deadline = time.monotonic() + timeout_s
    try:
        while (left := deadline - time.monotonic()) > 0:
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                return True, got
            got += chunk
    except TimeoutError:
        return False, got
    except ConnectionError:
        return True, got
    return False, got


@dataclass
class Tally:
    """What a load saw; ``summary`` is the JSON the runner prints."""

    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)

    def status(self, status: int, answer: Answer | None = None) -> None:
        self.statuses[str(status)] += 1
        if answer is not None and str(status) not in self.samples:
            self.samples[str(status)] = answer.body[:300].decode(errors="replace") + (
                f" [Retry-After: {answer.headers['retry-after']}]" if "retry-after" in answer.headers else "")

    def error(self, exc: BaseException) -> None:
        self.errors[type(exc).__name__] += 1

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {"statuses": dict(self.statuses), "errors": dict(self.errors), "counts": dict(self.counts),
                "samples": self.samples,
                "latency_p50_s": round(lat[len(lat) // 2], 3) if lat else None,
                "latency_max_s": round(lat[-1], 3) if lat else None}


Load = Callable[..., Awaitable[None]]


# ---------------------------------------------------------------- the loads
async def streams(url: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event, *, path: str, n: int = 100,
                  block: int = 11) -> None:
    """``n`` server-sent event streams on ``path``, each from its own address, read as fast as they come; a stream
    the server ends or refuses is opened again after 1 s."""
    answered = 0

    async def one(i: int) -> None:
        nonlocal answered
        first = True
        while not stop.is_set():
            try:
                reader, writer = await connect(url, source(block, i))
            except (OSError, TimeoutError) as exc:
                tally.error(exc)
                await _pause(stop, 1.0)
                continue
            try:
                writer.write(request_bytes(url, "GET", path))
                status, headers = await asyncio.wait_for(read_head(reader), 60)
                tally.statuses[str(status)] += 1
                if first:
                    first = False
                    answered += 1
                    if answered == n:
                        ready.set()
                if status == 200:
                    tally.counts["open"] += 1
                    while not stop.is_set() and (chunk := await reader.read(65536)):
                        tally.counts["bytes"] += len(chunk)
                        tally.counts["events"] += chunk.count(b"\nevent: ") + chunk.startswith(b"event: ")
                    tally.counts["open"] -= 1
                    tally.counts["ended"] += 1
                else:
                    body = await asyncio.wait_for(reader.read(2000), 10)
                    tally.samples.setdefault(str(status), body[-300:].decode(errors="replace") +
                                             f" [Retry-After: {headers.get('retry-after')}]")
            except (OSError, TimeoutError, ValueError, IndexError) as exc:
                tally.error(exc)
            finally:
                writer.close()
            await _pause(stop, 1.0)

    await _run_until(stop, [one(i) for i in range(n)])


async def batches(url: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event, *, clients: int = 20,
                  intents: int = 1000, chains: list[str] | None = None, token: str = "TST", amount: str = "0.000001",
                  block: int = 12) -> None:
    """``clients`` clients, each from its own address, posting ``intents``-intent batches back to back."""
    rng = random.Random(7)

    def body() -> bytes:
        items = [{"kind": "transfer", "token": token, "amount": amount, "recipient": "0x" + rng.randbytes(20).hex(),
                  "integrator": "abuse", **({"chains": chains} if chains else {})} for _ in range(intents)]
        return json.dumps({"intents": items}).encode()

    async def one(i: int) -> None:
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                answer = await request(url, "POST", "/v1/intents", body(), src=source(block, i), timeout_s=120)
                tally.status(answer.status, answer)
                tally.latencies.append(time.monotonic() - t0)
                if answer.status == 202:
                    tally.counts["intents_accepted"] += intents
            except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                tally.error(exc)
                await _pause(stop, 0.5)

    ready.set()
    await _run_until(stop, [one(i) for i in range(clients)])


async def flood(url: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event, *, clients: int = 40,
                cosign_path: str = "/validators/0x" + "00" * 20 + "/cosign", block: int = 13) -> None:
    """``clients`` keep-alive clients, each from its own address, alternating ``GET /healthz`` and a co-sign
    request for a chain name never seen before, as fast as the answers come back."""
    counter = 0

    async def one(i: int) -> None:
        nonlocal counter
        while not stop.is_set():
            try:
                reader, writer = await connect(url, source(block, i))
            except (OSError, TimeoutError) as exc:
                tally.error(exc)
                await _pause(stop, 0.2)
                continue
            try:
                while not stop.is_set():
                    counter += 1
                    if counter % 2:
                        writer.write(request_bytes(url, "GET", "/healthz"))
                    else:
                        doc = {"chain": f"chain-{counter}-" + "x" * 2000, "payload": "00", "messages": ["00"]}
                        writer.write(request_bytes(url, "POST", cosign_path, json.dumps(doc).encode()))
                    t0 = time.monotonic()
                    answer = await asyncio.wait_for(read_answer(reader), 30)
                    tally.latencies.append(time.monotonic() - t0)
                    tally.status(answer.status, answer)
                    if answer.headers.get("connection") == "close":
                        break
            except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                tally.error(exc)
            finally:
                writer.close()

    ready.set()
    await _run_until(stop, [one(i) for i in range(clients)])


async def deep(url: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event, *, routes: list[list[str]],
               clients: int = 8, block: int = 14) -> None:
    """10^5-deep arrays and objects posted (with ``Content-Type: application/json``) to every ``[method, path]``
    of ``routes``, GET routes included, by ``clients`` clients in turn, again and again."""
    bodies = [deep_body("array"), deep_body("object")]

    async def one(i: int) -> None:
        k = i
        while not stop.is_set():
            method, path = routes[k % len(routes)]
            body = bodies[(k // len(routes)) % 2]
            k += clients
            try:
                answer = await request(url, method, path, body, src=source(block, i), timeout_s=30)
                tally.status(answer.status, answer)
            except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                tally.error(exc)
                await _pause(stop, 0.2)

    ready.set()
    await _run_until(stop, [one(i) for i in range(clients)])


async def slow_headers(url: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event, *, n: int = 200,
                       interval_s: float = 1.0, block: int = 15) -> None:
    """``n`` connections (each from its own address) that send a request's headers one byte per ``interval_s``
    and never finish them; each one the server closes is opened again. ``held_s`` is how long the server
    let them trickle."""
    opened = 0

    async def one(i: int) -> None:
        nonlocal opened
        head = request_bytes(url, "GET", "/healthz", headers={"X-Slow": "a" * 4000})[:-2]  # never the final CRLF
        first = True
        while not stop.is_set():
            try:
                reader, writer = await connect(url, source(block, i))
            except (OSError, TimeoutError) as exc:
                tally.error(exc)
                await _pause(stop, 1.0)
                continue
            if first:
                first, opened = False, opened + 1
                if opened == n:
                    ready.set()
            t0 = time.monotonic()
            closed = asyncio.create_task(closed_after(reader, 3600))
            try:
                for byte in head:
                    if stop.is_set() or closed.done():
                        break
                    writer.write(bytes([byte]))
                    await asyncio.wait([closed], timeout=interval_s)
                if closed.done():
                    tally.counts["closed_by_server"] += 1
                    tally.latencies.append(time.monotonic() - t0)
                    _closed, sent = closed.result()
                    if sent:
                        tally.statuses[sent.split(b" ", 2)[1].decode(errors="replace")] += 1
            except OSError as exc:
                tally.error(exc)
            finally:
                closed.cancel()
                writer.close()

    await _run_until(stop, [one(i) for i in range(n)])


async def idle(url: str, tally: Tally, ready: asyncio.Event, stop: asyncio.Event, *, n: int = 1000,
               per_source: int = 10, block: int = 16) -> None:
    """``n`` connections that send nothing (``per_source`` from each address); each the server closes is opened
    again. ``held_s`` is how long the server kept them; answers to them (a 429/503 at connect) are counted."""
    opened = 0

    async def one(i: int) -> None:
        nonlocal opened
        first = True
        while not stop.is_set():
            try:
                reader, writer = await connect(url, source(block, i // per_source))
            except (OSError, TimeoutError) as exc:
                tally.error(exc)
                await _pause(stop, 1.0)
                continue
            if first:
                first, opened = False, opened + 1
                if opened == n:
                    ready.set()
            t0 = time.monotonic()
            try:
                gone, sent = await _until_stop(stop, closed_after(reader, 3600))
                if gone:
                    tally.counts["closed_by_server"] += 1
                    tally.latencies.append(time.monotonic() - t0)
                    if sent:
                        tally.statuses[sent.split(b" ", 2)[1].decode(errors="replace")] += 1
                    await _pause(stop, 0.5)
            finally:
                writer.close()

    await _run_until(stop, [one(i) for i in range(n)])


LOADS: dict[str, Load] = {"streams": streams, "batches": batches, "flood": flood, "deep": deep,
                          "slow_headers": slow_headers, "idle": idle}


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _until_stop(stop: asyncio.Event, coro: Awaitable[tuple[bool, bytes]]) -> tuple[bool, bytes]:
    task = asyncio.ensure_future(coro)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return False, b""


async def _run_until(stop: asyncio.Event, jobs: list[Awaitable[None]]) -> None:
    tasks = [asyncio.ensure_future(j) for j in jobs]
    await stop.wait()
    await asyncio.sleep(0.5)  # let the clients notice
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def run_load(name: str, url: str, seconds: float | None, on_ready: Callable[[], None],
                   stop: asyncio.Event | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run load ``name`` until ``stop`` is set (or ``seconds`` pass); its summary, with ``ready_s``."""
    tally = Tally()
    ready = asyncio.Event()
    stop = stop or asyncio.Event()
    t0 = time.monotonic()
    ready_s: float | None = None

    async def announce() -> None:
        nonlocal ready_s
        await ready.wait()
        ready_s = time.monotonic() - t0
        on_ready()

    if seconds is not None:
        asyncio.get_running_loop().call_later(seconds, stop.set)
    announcer = asyncio.ensure_future(announce())
    await LOADS[name](url, tally, ready, stop, **kwargs)
    announcer.cancel()
    return {"load": name, "ready_s": None if ready_s is None else round(ready_s, 2),
            "ran_s": round(time.monotonic() - t0, 2), **tally.summary()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.httpabuse", description=__doc__.split("\n\n")[0])
    parser.add_argument("load", choices=sorted(LOADS))
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--arg", action="append", default=[], help="NAME=JSON keyword argument of the load")
    args = parser.parse_args(argv)
    kwargs = {}
    for pair in args.arg:
        name, _, value = pair.partition("=")
        kwargs[name] = json.loads(value)

    async def go() -> dict[str, Any]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_load(args.load, args.url, args.seconds, lambda: print(json.dumps({"ready": True}), flush=True),
                              stop, **kwargs)

    print(json.dumps(asyncio.run(go())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
