"""``relayer bench route``: aggregate throughput of same-chain transfers routed over several devnet chains.

The question it answers: does the router make several chains behave like one chain with the sum of their
throughputs? It runs, in one process and one devnet, the same N token transfers through the routing API
(``POST /v1/intents``) in several ways and compares what the chains took per second:

- ``single_chain_tps[name]``: every intent may use only that chain (``chains: [name]``);
- ``round_robin_tps``: intent i is pinned to chain ``i mod C`` (a capacity-blind client-side split);
- ``aggregate_tps``: the intents name no chain; the router splits them by live capacity.

The devnet is the ``route`` layout (``adapters.evm.devnet.route_bench_chains``): four anvil chains whose
block gas limits make them, not the client, the bottleneck (about 160, 160, 160 and 150 transfers per second at
the EIP-1559 target of half-full blocks). The token is USDC, issued natively on every chain, so any chain can
run any transfer. The router admits per chain what fits under its target in the next window (minus what is
sent and not yet mined); the client, like a dApp, re-submits what comes back ``unserved`` for capacity,
so every mode runs at what its chains take.

With ``daemons`` > 1 (``--daemons N --store-url postgresql://...``) N daemons share one PostgreSQL database: the
first serves the devnet's API port, the others free ports; the bench posts to all of them at once (one submitter
per daemon, over one queue of intents), and any of them answers for any batch. They split the operator lanes and
take room from one shared bucket per chain (router/lanes.py, router/room.py).

Figures per mode: ``tps`` = transfers included / (inclusion of the last one, first seen on its chain's
block, - first submission); ``served`` = included / N; ``lost`` = intents the API accepted that are not on
chain at the end. Every transfer goes to a fresh recipient, and each recipient's balance is read back from
the chain at the end: a transfer is counted only if the balance equals its amount (twice the amount would be
a duplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.base import ChainAdapter, MessageSender
from config.loader import load_settings
from devnets.devnet import Devnet
from relayer.bench.daemon import (
    BENCH_API_LIMITS,
    BlockClock,
    bench_devnet_and_daemon,
    start_bench_daemon,
    stop_bench_daemon,
)
from relayer.cli.progress import make_progress
from router.client import RoutingClient, RoutingError

ROUTE_DEVNET_DIR = Path(".devnet-route")
ROUTE_BASE_PORT = 8645
ROUTE_API_PORT = 8990
TOKEN = "USDC"
AMOUNT = "0.01"
AMOUNT_UNITS = 10_000  # 0.01 USDC, 6 decimals
SUBMIT_CHUNK = 250
RETRYABLE = {"capacity", "liquidity"}
QUEUE_WAIT_S = 900.0  # a full chain queues the rest (router/queue.py) for as long as a mode may take
# the benches measure the chains and the router, not admission: the daemon they start lifts the per-client limits
# (all their clients share one loopback address). A daemon already serving keeps its own config.
BENCH_LIMITS = {"RELAYER__ROUTER__INTENTS_PER_S": "100000", "RELAYER__ROUTER__INTENTS_BURST": "100000",
                "RELAYER__ROUTER__VALUE_PER_DAY": "{ TST = 1e12, USDC = 1e12 }"}


class RoutePhase:
    """One way of sending the N intents, measured."""

    def __init__(self, name: str, n: int, pin: list[str] | None) -> None:
        self.name = name
        self.n = n
        self.pin = pin  # chain per intent index (None: let the router choose)
        self.recipients = ["0x" + secrets.token_bytes(20).hex() for _ in range(n)]
        self.accepted: dict[int, str] = {}  # intent index -> intent id
        self.batches: set[str] = set()
        self.refused: Counter[str] = Counter()
        self.resubmitted = 0
        self.limited = 0  # answers 429 (the bench daemon's per-client limits are raised: should stay 0)

    def intent(self, i: int) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "transfer", "token": TOKEN, "amount": AMOUNT, "recipient": self.recipients[i],
                                "integrator": "bench", "max_wait_s": QUEUE_WAIT_S}
        if self.pin is not None:
            body["chains"] = [self.pin[i]]
        return body


async def _submit_all(phase: RoutePhase, clients: list[RoutingClient], deadline: float, progress: Any,
                      task: Any) -> None:
    """Offer the intents as fast as the APIs take them, one submitter per daemon over one queue; put back what is
    refused for capacity."""
    queue = deque(range(phase.n))
    await asyncio.gather(*(_submitter(phase, client, queue, deadline, progress, task) for client in clients))
    for i in queue:
        phase.refused["deadline"] += 1


async def _submitter(phase: RoutePhase, client: RoutingClient, queue: deque[int], deadline: float, progress: Any,
                     task: Any) -> None:
    chunk = SUBMIT_CHUNK
    while queue and time.monotonic() < deadline:
        take = [queue.popleft() for _ in range(min(chunk, len(queue)))]
        try:
            resp = await asyncio.to_thread(client.submit_batch, [phase.intent(i) for i in take])
        except RoutingError as exc:
            if exc.status >= 500 or exc.status == 429:
                queue.extendleft(reversed(take))
                phase.limited += exc.status == 429
                await asyncio.sleep(min(exc.retry_after_s or 0.2, 5.0))  # pacing: not ready, or over the client limit
                continue
            raise
        if resp["batch"] is not None:  # None: every intent came back unserved (nothing stored)
            phase.batches.add(resp["batch"])
        taken = 0
        for i, intent_id, status, reason in zip(take, resp["ids"], resp["statuses"], resp["reasons"], strict=True):
            if status == "unserved" and reason in RETRYABLE:
                queue.append(i)
                phase.resubmitted += 1
            elif status == "unserved":
                phase.refused[reason or "unknown"] += 1
            else:
                phase.accepted[i] = intent_id
                taken += 1
        progress.update(task, advance=taken)
        chunk = max(20, min(SUBMIT_CHUNK, 2 * taken))  # offer about twice what was just taken
        if taken < len(take) // 10:
            await asyncio.sleep(0.1)  # pacing: the chains are at their target; room frees up as blocks come


async def _settle(phase: RoutePhase, client: RoutingClient, deadline: float) -> dict[str, dict[str, Any]]:
    """Poll the phase's batches until every accepted intent is settled (or the deadline); intent views by id."""
    views: dict[str, dict[str, Any]] = {}
    pending = set(phase.batches)
    while pending and time.monotonic() < deadline:
        for b in list(pending):
            doc = await asyncio.to_thread(client.batch, b)
            for v in doc["intents"]:
                views[v["id"]] = v
            if doc["settled"]:
                pending.discard(b)
        if pending:
            await asyncio.sleep(0.25)
    return views


async def _run_phase(phase: RoutePhase, clients: list[RoutingClient], adapters: dict[str, ChainAdapter],
                     clocks: dict[str, BlockClock], timeout_s: float, progress: Any) -> dict[str, Any]:
    task = progress.add_task(f"{phase.name}: accepted", total=phase.n)
    started = time.time()
    deadline = time.monotonic() + timeout_s
    await _submit_all(phase, clients, deadline, progress, task)
    views = await _settle(phase, clients[-1], deadline + 30)  # any daemon answers for every batch
    progress.remove_task(task)

    by_id = {v["id"]: v for v in views.values()}
    # on chain: every accepted intent's recipient holds exactly the amount on the chain the router chose
    checks: list[tuple[int, str]] = []
    for i, intent_id in phase.accepted.items():
        chain = by_id.get(intent_id, {}).get("chain")
        if chain is not None:
            checks.append((i, chain))
    sem = asyncio.Semaphore(64)

    async def balance(i: int, chain: str) -> int:
        async with sem:
            sender: MessageSender = adapters[chain]  # type: ignore[assignment]
            return await sender.token_balance(TOKEN, phase.recipients[i])

    balances = await asyncio.gather(*(balance(i, c) for i, c in checks))
    on_chain = sum(1 for b in balances if b == AMOUNT_UNITS)
    duplicated = sum(1 for b in balances if b > AMOUNT_UNITS)
    per_chain: Counter[str] = Counter()
    last_seen = started
    for (i, chain), bal in zip(checks, balances, strict=True):
        if bal != AMOUNT_UNITS:
            continue
        per_chain[chain] += 1
        height = by_id[phase.accepted[i]].get("height")
        seen = clocks[chain].time_of(int(height)) if height is not None else None
        last_seen = max(last_seen, seen if seen is not None else time.time())
    elapsed = max(1e-9, last_seen - started)
    statuses = Counter(by_id[intent_id]["status"] for intent_id in phase.accepted.values() if intent_id in by_id)
    return {
        "intents": phase.n, "included": on_chain, "tps": round(on_chain / elapsed, 1), "elapsed_s": round(elapsed, 2),
        "served": round(on_chain / phase.n, 4), "lost": len(phase.accepted) - on_chain, "duplicated": duplicated,
        "refused": dict(phase.refused), "resubmitted_after_capacity": phase.resubmitted, "rate_limited": phase.limited,
        "statuses": dict(statuses), "per_chain": dict(sorted(per_chain.items())),
    }


async def _route_bench(n: int, devnet: Devnet, api_urls: list[str], modes: list[str], timeout_s: float,
                       show: bool) -> dict[str, Any]:
    from relayer.daemon.daemon import build_adapters

    settings = load_settings(devnet.config_path)
    adapters = build_adapters(settings, with_signers=False)
    names = list(settings.chains)
    clocks = {c: BlockClock(adapters[c]) for c in names}
    stop = asyncio.Event()
    clock_tasks = [asyncio.create_task(c.run(stop)) for c in clocks.values()]
    clients = [RoutingClient(url, timeout=60.0, max_retries=0) for url in api_urls]
    client = clients[0]
    progress = make_progress(show)
    phases: dict[str, dict[str, Any]] = {}
    try:
        with progress:
            chains = await _sampled_chains(client, names)
            capacity = {c["name"]: c["spare_transfers_per_s"] for c in chains}
            for label, pin in _phase_plan(modes, names, n):
                phases[label] = await _run_phase(RoutePhase(label, n, pin), clients, adapters, clocks, timeout_s,
                                                 progress)
    finally:
        stop.set()
        await asyncio.gather(*clock_tasks, return_exceptions=True)
        for c in clients:
            c.close()
        for a in adapters.values():
            await a.close()
    return {"daemons": len(api_urls), **_route_summary(n, names, capacity, phases)}


async def _sampled_chains(client: RoutingClient, names: list[str]) -> list[dict[str, Any]]:
    """The routing API's chains once the daemon has sampled every one (503 before that), or what it said last
    after 60 s."""
    deadline = time.monotonic() + 60
    chains: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            chains = await asyncio.to_thread(client.chains)
            if len(chains) == len(names) and all(c["healthy"] for c in chains):
                break
        except RoutingError:
            pass
        await asyncio.sleep(0.25)
    return chains


def _phase_plan(modes: list[str], names: list[str], n: int) -> list[tuple[str, list[str] | None]]:
    """The phases to run, each with the chain every intent is pinned to (None: the router chooses)."""
    plan: list[tuple[str, list[str] | None]] = []
    if "single" in modes:
        plan += [(f"single:{c}", [c] * n) for c in names]
    if "round_robin" in modes:
        plan.append(("round_robin", [names[i % len(names)] for i in range(n)]))
    if "aggregate" in modes:
        plan.append(("aggregate", None))
    return plan


def _route_summary(n: int, names: list[str], capacity: dict[str, Any],
                   phases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The phases' figures side by side: each chain alone, round-robin, the router's split, and their ratios."""
    single = {label.split(":", 1)[1]: p["tps"] for label, p in phases.items() if label.startswith("single:")}
    result: dict[str, Any] = {"intents": n, "token": TOKEN, "chains": names, "capacity_transfers_per_s": capacity}
    if single:
        result["single_chain_tps"] = single
        result["sum_single_tps"] = round(sum(single.values()), 1)
    if "round_robin" in phases:
        result["round_robin_tps"] = phases["round_robin"]["tps"]
    if "aggregate" in phases:
        agg = phases["aggregate"]
        result.update(aggregate_tps=agg["tps"], served=agg["served"], lost=agg["lost"], duplicated=agg["duplicated"])
        if single:
            result["aggregate_vs_best_single"] = round(agg["tps"] / max(single.values()), 2)
            result["aggregate_vs_sum_single"] = round(agg["tps"] / sum(single.values()), 3)
        if "round_robin" in phases:
            result["aggregate_vs_round_robin"] = round(agg["tps"] / max(1e-9, phases["round_robin"]["tps"]), 2)
    result["lost_all_phases"] = sum(p["lost"] for p in phases.values())
    result["duplicated_all_phases"] = sum(p["duplicated"] for p in phases.values())
    result["phases"] = phases
    return result


def run_route_bench(*, intents: int, devnet_dir: Path = ROUTE_DEVNET_DIR, json_output: bool = False,
                    modes: list[str] | None = None, timeout_s: float = 600.0,
                    keep_devnet: bool = False, base_port: int = ROUTE_BASE_PORT,
                    api_port: int = ROUTE_API_PORT, daemons: int = 1, store_url: str | None = None) -> dict[str, Any]:
    """Bring up the ``route`` devnet in ``devnet_dir`` (unless up), start ``daemons`` daemons on it (more than one:
    sharing the database at ``store_url``), run the phases."""
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, layout="route", families=("evm",))
    show = not json_output and sys.stderr.isatty()
    env = {"RELAYER__ROUTER__TRANSFER_GAS": os.environ.get("BENCH_TRANSFER_GAS", "52000"), **BENCH_API_LIMITS,
           **BENCH_LIMITS}
    if store_url is not None:
        env["RELAYER_STORE_URL"] = store_url
    with bench_devnet_and_daemon(devnet, env, instance="bench-route", keep_devnet=keep_devnet), \
            _more_daemons(devnet, env, daemons - 1) as others:
        api_urls = [devnet.manifest()["api_url"], *others]
        result = asyncio.run(_route_bench(intents, devnet, api_urls, modes or ["single", "round_robin", "aggregate"],
                                          timeout_s, show))
    if not json_output:
        for k, v in result.items():
            if k != "phases":
                print(f"{k:>26}: {v}")
    return result


@contextlib.contextmanager
def _more_daemons(devnet: Devnet, env: dict[str, str], n: int) -> Iterator[list[str]]:
    """``n`` more bench daemons on ``devnet`` (same config and ``env``, each its own instance name and API port);
    their API URLs. Stopped on the way out, an error or Ctrl-C included."""
    started: list[subprocess.Popen] = []
    urls: list[str] = []
    try:
        for k in range(n):
            url = f"http://127.0.0.1:{_free_port()}"
            daemon = start_bench_daemon(devnet, env, f"bench-route-{k + 2}", api_url=url)
            if daemon is not None:
                started.append(daemon)
            urls.append(url)
        yield urls
    finally:
        for daemon in started:
            stop_bench_daemon(daemon)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
