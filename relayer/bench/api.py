"""``relayer bench api``: the routing API under many concurrent clients on loopback.

Starts (or reuses) the devnet and a ``relayer run`` daemon (its own process), then runs ``--clients`` concurrent
clients (asyncio tasks in this process, each with its own keep-alive HTTP/1.1 connection: ``KeepAliveConnection``,
a minimal client, because httpx cost ~10 ms of CPU per request, more than the server, and on a small machine
the load generator took the CPU the server needed) for ``--seconds``. Each client loops over a realistic mix:

    GET  /v1/chains                       35%
    POST /v1/quote                        35%
    GET  /v1/messages?limit=20            15%
    POST /v1/intents (1-3 transfers)      15%, then GET /v1/intents/{id} of its own open intents until settled

Figures: requests/s per endpoint and overall, p50/p99 latency (ms) per endpoint and overall, errors (any
non-2xx answer or transport error: must be 0), and for intents "nothing lost": after the load, every accepted
intent id is asked for until it reaches a final status (included, delivered, failed); ``lost`` counts the ids
that are not found or not final within the drain deadline. An intent answered ``unserved`` has no id (the router
stores nothing of it) and is counted apart (``unserved``, by reason). The daemon the bench starts has its
per-client limits lifted (``bench_route.BENCH_LIMITS``): every client shares one loopback address.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np

from devnets.devnet import Devnet
from relayer.bench.daemon import BENCH_API_LIMITS, bench_devnet_and_daemon
from relayer.bench.route import BENCH_LIMITS
from relayer.cli.progress import make_progress

FINAL = {"included", "delivered", "failed", "unserved"}
MIX = (("chains", 35), ("quote", 35), ("messages", 15), ("intents", 15))
TOKEN = "TST"
AMOUNT = "0.000001"


class KeepAliveConnection:
    """One keep-alive HTTP/1.1 connection to the API: requests one at a time, ``Content-Length`` or chunked
    answers. A reused connection the server closed before answering (its keep-alive timeout) is reopened and
    the request sent once more; any other failure is the caller's error."""

    def __init__(self, api_url: str, timeout_s: float = 60.0) -> None:
        url = urlsplit(api_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.timeout_s = timeout_s
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode() + (body or b"")
        for _ in range(2):
            reused = self.writer is not None
            if self.writer is None:
                self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                                  self.timeout_s)
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(data)
                try:
                    status_line = await asyncio.wait_for(self.reader.readline(), self.timeout_s)
                except ConnectionResetError:
                    if not reused:
                        raise
                    status_line = b""
                if not status_line and reused:
                    self.close()
                    continue  # closed while idle, before our request: once more on a new connection
                return await asyncio.wait_for(self._answer(status_line), self.timeout_s)
            except BaseException:
                self.close()
                raise
        raise ConnectionResetError("the server closed a fresh connection without answering")

    async def _answer(self, status_line: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP status line: {status_line[:80]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            await self.reader.readline()  # the empty trailer
            payload = b"".join(chunks)
        else:
            payload = await self.reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _settled(view: dict[str, Any]) -> bool:
    status = view.get("status")
    return status in ("delivered", "failed", "unserved") or (status == "included" and view.get("kind") != "xchain")


class Load:
    """What the clients measured."""

    def __init__(self, chains: list[str], seed: int) -> None:
        self.chains = chains
        self.rng = random.Random(seed)
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.error_samples: list[str] = []
        self.accepted: dict[str, str] = {}  # intent id -> last status seen (intents the router took: they have ids)
        self.intent_statuses: Counter[str] = Counter()
        self.unserved: Counter[str] = Counter()  # answered unserved (no id, nothing stored), by reason
        self.requests = 0

    def error(self, endpoint: str, what: str) -> None:
        self.errors[endpoint] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{endpoint}: {what[:300]}")

    async def call(self, conn: KeepAliveConnection, endpoint: str, method: str, path: str,
                   body: Any = None) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        try:
            status, raw = await conn.request(method, path, None if body is None else json.dumps(body).encode())
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            self.error(endpoint, f"{type(exc).__name__}: {exc}")
            return None
        self.latency[endpoint].append(time.perf_counter() - t0)
        self.requests += 1
        if not 200 <= status < 300:
            self.error(endpoint, f"{status} {raw.decode(errors='replace')}")
            return None
        data: dict[str, Any] = json.loads(raw)
        return data

    def quote_body(self) -> dict[str, Any]:
        chains = self.rng.sample(self.chains, self.rng.randint(1, len(self.chains)))
        return {"amount": str(self.rng.randint(1, 1000)), "chains": chains}

    def intents_body(self) -> dict[str, Any]:
        return {"intents": [{"kind": "transfer", "token": TOKEN, "amount": AMOUNT, "integrator": "bench-api",
                             "recipient": "0x" + self.rng.randbytes(20).hex()} for _ in range(self.rng.randint(1, 3))]}


async def _client(load: Load, api_url: str, deadline: float) -> None:
    http = KeepAliveConnection(api_url)
    try:
        await _client_loop(load, http, deadline)
    finally:
        http.close()


async def _client_loop(load: Load, http: KeepAliveConnection, deadline: float) -> None:
    endpoints = [e for e, _ in MIX]
    weights = [w for _, w in MIX]
    open_ids: list[str] = []
    while time.monotonic() < deadline:
        if open_ids and load.rng.random() < 0.3:
            intent_id = open_ids[0]
            view = await load.call(http, "GET /v1/intents/{id}", "GET", f"/v1/intents/{intent_id}")
            if view is not None:
                load.accepted[intent_id] = view["status"]
                if _settled(view):
                    open_ids.pop(0)
            continue
        what = load.rng.choices(endpoints, weights)[0]
        if what == "chains":
            await load.call(http, "GET /v1/chains", "GET", "/v1/chains")
        elif what == "quote":
            await load.call(http, "POST /v1/quote", "POST", "/v1/quote", load.quote_body())
        elif what == "messages":
            await load.call(http, "GET /v1/messages", "GET", "/v1/messages?limit=20")
        else:
            got = await load.call(http, "POST /v1/intents", "POST", "/v1/intents", load.intents_body())
            if got is not None:
                for intent_id, status, reason in zip(got["ids"], got["statuses"], got["reasons"], strict=True):
                    if intent_id is None:  # unserved (or not built): a final answer, stored nowhere
                        load.unserved[reason or status] += 1
                        continue
                    load.accepted[intent_id] = status
                    if status not in FINAL:
                        open_ids.append(intent_id)


async def _drain(load: Load, http: httpx.AsyncClient, timeout_s: float) -> tuple[int, int]:
    """Ask for every accepted intent until each is final; (found, final) counts."""
    found: set[str] = set()
    final: set[str] = set()
    deadline = time.monotonic() + timeout_s
    pending = list(load.accepted)
    limit = asyncio.Semaphore(32)

    async def one(intent_id: str) -> None:
        async with limit:
            try:
                resp = await http.get(f"/v1/intents/{intent_id}")
            except httpx.HTTPError:
                return
        if resp.status_code == 200:
            found.add(intent_id)
            view = resp.json()
            load.accepted[intent_id] = view["status"]
            if _settled(view):
                final.add(intent_id)

    while pending and time.monotonic() < deadline:
        await asyncio.gather(*(one(i) for i in pending))
        pending = [i for i in pending if i not in final]
        if pending:
            await asyncio.sleep(0.5)
    load.intent_statuses = Counter(load.accepted.values())
    return len(found | final), len(final)


def _ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values), q)) * 1000, 2) if values else 0.0


def _cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used so far, from /proc (None elsewhere or when unknown)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def _bench(api_url: str, clients: int, seconds: float, show: bool, drain_s: float, seed: int,
                 daemon_pid: int | None = None) -> dict[str, Any]:
    # httpx only for the chain list and the drain after the load. A pooled connection is reused only within 2 s
    # of its last answer: uvicorn closes idle keep-alive connections after 5 s, and a client reusing one at that
    # moment would see a ReadError that is not the server's fault
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=api_url, limits=limits, timeout=60.0) as http:
        chains = [c["name"] for c in (await http.get("/v1/chains")).json()["chains"]]
        load = Load(chains, seed)
        progress = make_progress(show)
        started = time.monotonic()
        deadline = started + seconds
        daemon_cpu0, client_cpu0 = _cpu_s(daemon_pid), time.process_time()
        with progress:
            task = progress.add_task(f"api bench: {clients} clients", total=seconds)
            workers = [asyncio.create_task(_client(load, api_url, deadline)) for _ in range(clients)]
            while not all(w.done() for w in workers):
                await asyncio.wait(workers, timeout=0.5)
                elapsed = min(seconds, time.monotonic() - started)
                progress.update(task, completed=elapsed,
                                description=f"api bench: {clients} clients, {load.requests} requests, "
                                            f"{sum(load.errors.values())} errors")
            for w in workers:
                w.result()
        elapsed = time.monotonic() - started
        daemon_cpu1, client_cpu = _cpu_s(daemon_pid), time.process_time() - client_cpu0
        found, final = await _drain(load, http, drain_s)
    all_latency = [x for v in load.latency.values() for x in v]
    endpoints = {name: {"requests": len(v), "rps": round(len(v) / elapsed, 1), "p50_ms": _ms(v, 50),
                        "p99_ms": _ms(v, 99), "errors": load.errors.get(name, 0)}
                 for name, v in sorted(load.latency.items())}
    for name, n in load.errors.items():
        endpoints.setdefault(name, {"requests": 0, "rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "errors": n})
    accepted = len(load.accepted)
    return {
        "clients": clients, "seconds": round(elapsed, 2), "requests": load.requests,
        "rps": round(load.requests / elapsed, 1), "p50_ms": _ms(all_latency, 50), "p99_ms": _ms(all_latency, 99),
        "errors": sum(load.errors.values()), "error_samples": load.error_samples, "endpoints": endpoints,
        # CPU the daemon and the clients used during the load: figures that do not depend on how busy the machine is
        "daemon_cpu_s": None if daemon_cpu0 is None or daemon_cpu1 is None else round(daemon_cpu1 - daemon_cpu0, 2),
        "client_cpu_s": round(client_cpu, 2),
        "intents": {"accepted": accepted, "found": found, "final": final, "lost": accepted - final,
                    "statuses": dict(load.intent_statuses), "unserved": sum(load.unserved.values()),
                    "unserved_reasons": dict(load.unserved)},
    }


def run_api_bench(*, clients: int, seconds: float, devnet_dir: Path, json_output: bool, drain_s: float = 120.0,
                  seed: int = 0, base_port: int = 8545, api_port: int = 8900,
                  keep_devnet: bool = False) -> dict[str, Any]:
    """Bring up (or reuse) the devnet in ``devnet_dir`` and a daemon on it, load its API, return the figures."""
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, families=("evm",))
    show = not json_output and sys.stderr.isatty()
    with bench_devnet_and_daemon(devnet, {**BENCH_API_LIMITS, **BENCH_LIMITS}, instance="bench-api",
                                 keep_devnet=keep_devnet) as daemon:
        api_url = devnet.manifest()["api_url"]
        _wait_for_capacity(api_url)
        result = asyncio.run(_bench(api_url, clients, seconds, show, drain_s, seed,
                                    daemon_pid=None if daemon is None else daemon.pid))
    result["daemon"] = "reused" if daemon is None else "started"
    if not json_output:
        print(f"{'endpoint':<24} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for name, e in result["endpoints"].items():
            print(f"{name:<24} {e['requests']:>9} {e['rps']:>8} {e['p50_ms']:>8} {e['p99_ms']:>8} {e['errors']:>7}")
        print(f"{'all':<24} {result['requests']:>9} {result['rps']:>8} {result['p50_ms']:>8} {result['p99_ms']:>8} "
              f"{result['errors']:>7}")
        i = result["intents"]
        print(f"CPU during the load: daemon {result['daemon_cpu_s']} s, clients {result['client_cpu_s']} s")
        print(f"intents: {i['accepted']} accepted, {i['final']} final, {i['lost']} lost; {i['statuses']}; "
              f"{i['unserved']} answered unserved {i['unserved_reasons']}")
        for sample in result["error_samples"]:
            print(f"error: {sample}")
    return result


def _wait_for_capacity(api_url: str, timeout_s: float = 60.0) -> None:
    """The routing API answers 503 until the daemon sampled every chain once."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url}/v1/chains", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{api_url}/v1/chains did not answer 200 within {timeout_s:.0f}s")
