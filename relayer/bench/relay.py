"""``relayer bench relay``: end-to-end relay throughput and latency on the devnet, checked on chain.

What it does, in one run:
1. brings the devnet up if needed and starts a daemon (``relayer run``, role all) in a child process,
   unless one already serves the devnet's API;
2. dispatches N messages spread evenly over the three chains (each origin to the two others, in
   ``dispatchBatch`` transactions of ``--dispatch-batch`` messages, several in flight per origin);
3. watches every chain's blocks (the wall-clock time each block is first seen, polled every 50 ms) and
   the destination mailboxes' ``Process`` events until all N ids are processed or the deadline passes.

Figures: ``delivered`` and ``duplicated`` come from Process events on chain (not the store); ``lost`` =
N - delivered at the deadline; ``messages_per_s`` = delivered / (last delivery seen - first dispatch
sent); latency per message = first sight of its Process block - first sight of its Dispatch block.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.progress import Progress, TaskID

from adapters.base import ChainAdapter, Height, MessageSender, TxHash, TxLookup
from adapters.message import MessageId, address_to_bytes32
from config.loader import load_settings
from devnets.devnet import Devnet
from relayer.bench.daemon import BlockClock, bench_devnet_and_daemon, percentile
from relayer.cli.progress import make_progress

DispatchJob = tuple[str, bytes, list[bytes]]  # (destination, recipient, message bodies): one dispatchBatch


def plan_routes(messages: int, names: list[str], chains: dict[str, dict[str, Any]],
                spread: str) -> dict[tuple[str, str], int]:
    """Messages per (origin, destination) pair, origin != destination.

    ``even``: every ordered pair the same share. ``capacity``: a pair's share is proportional to the product
    of its chains' gas throughput (gas limit / block time), so a slow L1 carries less than fast rollups.
    """
    pairs = [(o, d) for o in names for d in names if o != d]
    if spread == "even":
        weights = {p: 1.0 for p in pairs}
    else:
        cap = {n: chains[n]["gas_limit"] / chains[n]["block_time_s"] for n in names}
        weights = {(o, d): cap[o] * cap[d] for o, d in pairs}
    total = sum(weights.values())
    routes = {p: int(messages * w / total) for p, w in weights.items()}
    for p in sorted(pairs, key=lambda p: -weights[p])[: messages - sum(routes.values())]:
        routes[p] += 1
    return routes


@dataclass
class _RelayRun:
    """One relay bench run: the chains it watches, what it dispatched and what the destinations processed."""

    adapters: dict[str, ChainAdapter]
    manifest: dict[str, Any]
    names: list[str]
    domains: dict[str, int]
    clocks: dict[str, BlockClock]
    progress: Progress
    dispatched: dict[MessageId, tuple[str, str, int]] = field(default_factory=dict)  # id -> (origin, dest, height)
    processed: dict[MessageId, list[tuple[str, int]]] = field(default_factory=dict)  # id -> its Process events

    def delivered(self) -> dict[MessageId, list[tuple[str, int]]]:
        """The Process events of the messages this run dispatched."""
        return {m: self.processed[m] for m in self.dispatched if m in self.processed}


async def _relay_bench(messages: int, devnet: Devnet, dispatch_batch: int, timeout_s: float, show: bool,
                       spread: str) -> dict[str, Any]:
    from relayer.daemon.daemon import build_adapters

    manifest = devnet.manifest()
    settings = load_settings(devnet.config_path)
    adapters = build_adapters(settings, with_signers=False)
    names = [n for n, c in settings.chains.items() if c.family == "evm"]  # messages go between mailboxes
    run = _RelayRun(adapters, manifest, names, {n: settings.chains[n].domain for n in names},
                    {n: BlockClock(adapters[n]) for n in names}, make_progress(show))
    stop = asyncio.Event()
    clock_tasks = [asyncio.create_task(c.run(stop)) for c in run.clocks.values()]
    start_heights = {n: int(await adapters[n].latest_height()) for n in names}
    routes = plan_routes(messages, names, {n: manifest["chains"][n] for n in names}, spread)
    first_sent = time.time()
    with run.progress:
        dispatch_done = await _dispatch_and_watch(run, routes, dispatch_batch, start_heights, messages, timeout_s,
                                                  first_sent)
    stop.set()
    await asyncio.gather(*clock_tasks, return_exceptions=True)
    delivered = run.delivered()
    events = Counter({m: len(v) for m, v in delivered.items()})
    latencies = _latencies(run)
    per_destination = _per_destination(run, first_sent)
    elapsed = _elapsed(run, first_sent)
    for a in adapters.values():
        await a.close()
    loop_lag = await _daemon_loop_lag(manifest["api_url"])
    return {
        "messages": messages,
        "dispatched": len(run.dispatched),
        "delivered": len(delivered),
        "lost": messages - len(delivered),
        "duplicated": sum(1 for n in events.values() if n > 1),
        "messages_per_s": round(len(delivered) / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "dispatch_s": round(dispatch_done - first_sent, 2),
        "spread": spread,
        "per_destination": per_destination,
        "dispatch_batch": dispatch_batch,
        "event_loop_lag": loop_lag,
    }


async def _dispatch_and_watch(run: _RelayRun, routes: dict[tuple[str, str], int], dispatch_batch: int,
                              start_heights: dict[str, int], messages: int, timeout_s: float,
                              first_sent: float) -> float:
    """Dispatch from every origin while watching the destinations until all are processed or the time is up;
    returns when the last dispatch's block was first seen."""
    dispatch_task = run.progress.add_task("dispatching", total=messages)
    deliver_task = run.progress.add_task("delivered (on chain)", total=messages)
    sending = asyncio.gather(*(_send_from(run, i, n, _dispatch_jobs(run, n, routes, dispatch_batch), dispatch_task)
                               for i, n in enumerate(run.names)))
    await _watch_processed(run, sending, dict(start_heights), messages, timeout_s, deliver_task)
    if not sending.done():
        sending.cancel()
    dispatch_done = max((run.clocks[o].time_of(h) or first_sent)
                        for o, _d, h in run.dispatched.values()) if run.dispatched else first_sent
    await asyncio.gather(sending, return_exceptions=True)
    return dispatch_done


def _dispatch_jobs(run: _RelayRun, origin: str, routes: dict[tuple[str, str], int],
                   dispatch_batch: int) -> list[DispatchJob]:
    """``origin``'s share of the routes in batches of at most ``dispatch_batch`` messages, to each TestRecipient."""
    jobs = []
    for dest in run.names:
        remaining = routes.get((origin, dest), 0)
        b = 0
        recipient = address_to_bytes32(run.manifest["chains"][dest]["contracts"]["test_recipient"])
        while remaining > 0:
            size = min(dispatch_batch, remaining)
            jobs.append((dest, recipient, [f"bench {origin}->{dest} {b}:{k}".encode() for k in range(size)]))
            remaining -= size
            b += 1
    return jobs


async def _send_from(run: _RelayRun, i: int, origin: str, jobs: list[DispatchJob], dispatch_task: TaskID) -> None:
    """Dispatch ``jobs`` from ``origin`` (four batches in flight), noting each id's dispatch height."""
    sender: MessageSender = run.adapters[origin]  # type: ignore[assignment]
    key = run.manifest["chains"][origin]["accounts"][i % 2]["private_key"]  # devnet test key
    sem = asyncio.Semaphore(4)

    async def one(dest: str, recipient: bytes, bodies: list[bytes]) -> None:
        async with sem:
            tx, ids = await sender.dispatch_messages(key, run.domains[dest], recipient, bodies)  # type: ignore[arg-type]
        height = await _tx_height(run.adapters[origin], tx)
        for mid in ids:
            run.dispatched[mid] = (origin, dest, height)
        run.progress.update(dispatch_task, advance=len(ids))

    await asyncio.gather(*(one(*j) for j in jobs))


async def _watch_processed(run: _RelayRun, sending: asyncio.Future[Any], cursors: dict[str, int], messages: int,
                           timeout_s: float, deliver_task: TaskID) -> None:
    """Read the Process events of every block seen until all ``messages`` are dispatched and processed, or the
    deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for n in run.names:
            latest = run.clocks[n].latest
            if latest < cursors[n]:
                continue
            for mid, h in await run.adapters[n].processed_messages(Height(cursors[n]), Height(latest)):  # type: ignore[attr-defined]
                run.processed.setdefault(mid, []).append((n, int(h)))
            cursors[n] = latest + 1
        ours = sum(1 for mid in run.dispatched if mid in run.processed)
        if ours:
            run.progress.update(deliver_task, completed=ours)
        if sending.done() and len(run.dispatched) == messages and ours == messages:
            break
        await asyncio.sleep(0.25)


def _latencies(run: _RelayRun) -> list[float]:
    """Per delivered message: first sight of its Process block - first sight of its Dispatch block."""
    delivered = run.delivered()
    latencies = []
    for mid, (origin, _dest, dh) in run.dispatched.items():
        if mid in delivered:
            chain, ph = delivered[mid][0]
            t0, t1 = run.clocks[origin].time_of(dh), run.clocks[chain].time_of(ph)
            if t0 is not None and t1 is not None:
                latencies.append(max(0.0, t1 - t0))
    return latencies


def _per_destination(run: _RelayRun, first_sent: float) -> dict[str, dict[str, float]]:
    """Per destination: messages sent to it, delivered, and when its last delivery was seen (s after the start)."""
    delivered = run.delivered()
    per_destination: dict[str, dict[str, float]] = {}
    for mid, (_origin, dest, _dh) in run.dispatched.items():
        row = per_destination.setdefault(dest, {"messages": 0, "delivered": 0, "last_delivery_s": 0.0})
        row["messages"] += 1
        if mid in delivered:
            chain, ph = delivered[mid][0]
            row["delivered"] += 1
            seen_at = run.clocks[chain].time_of(ph) or first_sent
            row["last_delivery_s"] = round(max(row["last_delivery_s"], seen_at - first_sent), 2)
    return per_destination


def _elapsed(run: _RelayRun, first_sent: float) -> float:
    """From the first dispatch sent to the last delivery seen."""
    last_delivery = max((run.clocks[v[0][0]].time_of(v[0][1]) or time.time() for v in run.delivered().values()),
                        default=first_sent)
    return max(1e-9, last_delivery - first_sent)


async def _daemon_loop_lag(api_url: str) -> dict[str, dict[str, float]]:
    """The daemon's event loop stalls since it started, per loop: the longest and the 99th percentile's bucket
    bound (from ``relayer_event_loop_lag_seconds``; the bound of the bucket holding the 99th percentile)."""
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{api_url}/metrics", timeout=5.0)).text
    except httpx.HTTPError:
        return {}
    return loop_lag_from_metrics(text)


def loop_lag_from_metrics(text: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    buckets: dict[str, list[tuple[float, float]]] = {}
    for line in text.splitlines():
        found = re.match(r'relayer_event_loop_lag_max_seconds\{loop="(\w+)"\} (\S+)', line)
        if found:
            out.setdefault(found[1], {})["max_s"] = round(float(found[2]), 4)
        found = re.match(r'relayer_event_loop_lag_seconds_bucket\{loop="(\w+)",le="([^"]+)"\} (\S+)', line)
        if found:
            buckets.setdefault(found[1], []).append((float(found[2]), float(found[3])))
    for loop, rows in buckets.items():
        total = rows[-1][1] if rows else 0.0
        bound = next((b for b, c in rows if total and c >= 0.99 * total), float("inf"))
        out.setdefault(loop, {})["p99_le_s"] = bound
        out[loop]["samples"] = total
    return out


async def _tx_height(adapter: ChainAdapter, tx: str) -> int:
    if not isinstance(adapter, TxLookup):
        raise TypeError(f"{adapter.name}: its adapter cannot look transactions up")
    return int((await adapter.tx_result(TxHash(tx)))[0])


def run_relay_bench(*, messages: int, devnet_dir: Path, json_output: bool, batch_size: int = 200,
                    dispatch_batch: int = 250, timeout_s: float | None = None, spread: str = "capacity",
                    base_port: int = 8545, api_port: int = 8900, keep_devnet: bool = False) -> dict[str, Any]:
    # messages between mailboxes; an already-up devnet is reused (and left up)
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, families=("evm",))
    show = not json_output and sys.stderr.isatty()
    with bench_devnet_and_daemon(devnet, {"RELAYER__RELAYER__BATCH_SIZE": str(batch_size)}, keep_devnet=keep_devnet):
        result = asyncio.run(_relay_bench(messages, devnet, dispatch_batch, timeout_s or max(120.0, messages / 50),
                                          show, spread))
    if not json_output:
        for k, v in result.items():
            print(f"{k:>16}: {v}")
    return result
