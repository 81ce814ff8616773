"""Denial of service through the daemon's HTTP API (issue 12), from the attacker's own process: what each attack
got back. Clients come from the attacker's own loopback addresses (``127.B.x.y``: many hosts, as a botnet would).

* ``deep_bodies``: a 10^5-deep JSON array and object to every route (GET routes included) - one such request used
  to kill the daemon (recursion limit raised to 100,000 by an import, the JSON parser overran the C stack);
* ``streams``: a flood of server-sent event streams on a batch and on the explorer, from many addresses;
* ``oversized_headers``: an 8 MB header streamed in, and a 64 KiB head in one piece;
* ``slow_headers``: headers trickled a byte at a time (slowloris);
* ``connections``: more connections from one address than its cap;
* ``cosign_labels``: co-sign requests (well-formed) naming a new chain each time, to grow ``/metrics`` and the logs.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests import httpabuse
from tests.adversarial.attacker import AttackerContext


async def deep_bodies(ctx: AttackerContext, routes: list[list[str]]) -> dict[str, Any]:
    statuses: dict[str, list[int]] = {}
    for kind in ("array", "object"):
        body = httpabuse.deep_body(kind)
        for i, (method, path) in enumerate(routes):
            try:
                answer = await httpabuse.request(ctx.api_url, method, path, body, src=httpabuse.source(40, i))
                statuses.setdefault(f"{method} {path}", []).append(answer.status)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                statuses.setdefault(f"{method} {path}", []).append(-1)  # no answer
    health = await httpabuse.request(ctx.api_url, "GET", "/healthz", src="127.40.250.1")
    return {"statuses": statuses, "healthz_after": health.status}


async def streams(ctx: AttackerContext, paths: list[str], n: int = 300, seconds: float = 8.0) -> dict[str, Any]:
    """``n`` streams spread over ``paths``, each from its own address, held ``seconds``; then 12 from one address."""
    out: dict[str, Any] = {}
    stop = asyncio.Event()
    per_path = max(1, n // len(paths))
    runs = [httpabuse.run_load("streams", ctx.api_url, seconds, lambda: None, stop, path=p, n=per_path, block=41 + k)
            for k, p in enumerate(paths)]
    out["spread"] = await asyncio.gather(*runs)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the server notices the closed streams (what /metrics shows)
        page = (await httpabuse.request(ctx.api_url, "GET", "/metrics", src="127.49.0.9")).body.decode()
        if "\nrelayer_api_streams 0\n" in page:
            break
        await asyncio.sleep(0.2)
    held = []
    statuses = []
    for _ in range(12):
        reader, writer = await httpabuse.connect(ctx.api_url, "127.49.0.1")
        writer.write(httpabuse.request_bytes(ctx.api_url, "GET", paths[0]))
        status, headers = await asyncio.wait_for(httpabuse.read_head(reader), 30)
        statuses.append(status)
        if status != 200:
            out.setdefault("one_address_refusal",
                           (await asyncio.wait_for(reader.read(2000), 10)).decode(errors="replace")
                           + f" [Retry-After: {headers.get('retry-after')}]")
        held.append(writer)
    out["one_address"] = statuses
    for w in held:
        w.close()
    return out


async def oversized_headers(ctx: AttackerContext) -> dict[str, Any]:
    reader, writer = await httpabuse.connect(ctx.api_url, "127.50.0.1")
    answered = asyncio.create_task(httpabuse.read_answer(reader))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    try:
        while sent < (8 << 20) and not answered.done():
            writer.write(b"a" * (64 << 10))
            await writer.drain()
            sent += 64 << 10
            # ~6 MB/s: lets the answer be read as soon as it comes (pacing, not synchronisation)
            await asyncio.sleep(0.01)
    except ConnectionError:
        pass
    big = await asyncio.wait_for(answered, 30)
    writer.close()
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 2000) for i in range(32))
    reader, writer = await httpabuse.connect(ctx.api_url, "127.50.0.2")
    writer.write(head + b"\r\n")
    one_piece = await asyncio.wait_for(httpabuse.read_answer(reader), 30)
    writer.close()
    return {"streamed": {"status": big.status, "sent_before_answer": sent, "body": big.body.decode()},
            "one_piece": {"status": one_piece.status, "body": one_piece.body.decode()}}


async def slow_headers(ctx: AttackerContext, n: int = 50, seconds: float = 14.0) -> dict[str, Any]:
    return await httpabuse.run_load("slow_headers", ctx.api_url, seconds, lambda: None, n=n, interval_s=0.5, block=51)


async def connections(ctx: AttackerContext, n: int = 100) -> dict[str, Any]:
    """``n`` connections from one address; what the ones past its cap were told."""
    held, refused = [], []
    for _ in range(n):
        reader, writer = await httpabuse.connect(ctx.api_url, "127.52.0.1")
        held.append((reader, writer))
    await asyncio.sleep(0.5)  # the server answers refused connections at once (measuring what it sent)
    for reader, _w in held:
        try:
            got = await asyncio.wait_for(reader.read(2000), 0.05)
        except TimeoutError:
            continue
        if got:
            refused.append(got.decode(errors="replace"))
    for _r, w in held:
        w.close()
    other = await httpabuse.request(ctx.api_url, "GET", "/healthz", src="127.52.0.2")
    return {"opened": n, "refused": len(refused), "refusal": refused[0] if refused else None,
            "other_address": other.status}


async def cosign_labels(ctx: AttackerContext, n: int = 2000, per_s: float = 80.0,
                        signed: bool = False) -> dict[str, Any]:
    """Well-formed co-sign requests, each naming a chain never seen, to every validator address; 2 KB names; sent
    at ``per_s`` (under the relay loop's share, api.max_relay_requests_per_s, so that they reach the handler).
    ``signed``: as the attacker's own relayer identity (accepted where a validator allow-listed it), so the requests
    get past authentication to the co-sign checks."""
    from relayer.api.relayer_auth import RelayerRequestSigner

    signer = RelayerRequestSigner(ctx.keys["evm"]) if signed else None
    validators = [v["address"] for v in ctx.world["validators"]]
    statuses: dict[str, int] = {}
    t0 = time.monotonic()

    async def one(i: int) -> None:
        doc = {"chain": f"attacker-{i}-" + "x" * 2000, "payload": "00", "messages": ["00" * 80]}
        path = f"/validators/{validators[i % len(validators)]}/cosign"
        body = json.dumps(doc).encode()
        headers = signer.headers("POST", path.encode(), body) if signer is not None else None
        conn = await httpabuse.request(ctx.api_url, "POST", path, body, src=httpabuse.source(53, i % 200),
                                       headers=headers)
        statuses[str(conn.status)] = statuses.get(str(conn.status), 0) + 1

    for start in range(0, n, 20):
        t_batch = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + 20))))
        await asyncio.sleep(max(0.0, 20 / per_s - (time.monotonic() - t_batch)))  # pacing
    return {"statuses": statuses, "seconds": round(time.monotonic() - t0, 1)}
