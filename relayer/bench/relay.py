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
import os
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from adapters.base import AdapterError, ChainAdapter, Height, MessageSender, TxHash, TxLookup
from adapters.capabilities import Bytes32Accounts
from adapters.message import Domain, MessageId, address_to_bytes32
from config.loader import load_settings
from devnets.devnet import Devnet
from relayer.cli.progress import make_progress


def plan_routes(messages: int, names: list[str], chains: dict[str, dict[str, Any]], spread: str) -> dict[tuple[str, str], int]:
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


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


class BlockClock:
    """Records when each block of one chain was first seen (wall clock)."""

    def __init__(self, adapter: ChainAdapter) -> None:
        self.adapter = adapter
        self.seen: dict[int, float] = {}
        self.latest = -1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                h = int(await self.adapter.latest_height())
            except Exception:  # noqa: BLE001 - a missed poll only coarsens timing
                h = self.latest
            now = time.time()
            for b in range(self.latest + 1, h + 1):
                self.seen[b] = now
            self.latest = max(self.latest, h)
            await asyncio.sleep(0.05)

    def time_of(self, height: int) -> float | None:
        return self.seen.get(height)


async def _daemon_serving(api_url: str) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"{api_url}/healthz", timeout=1.0)).status_code == 200
    except httpx.HTTPError:
        return False


async def _relay_bench(messages: int, devnet: Devnet, dispatch_batch: int, timeout_s: float, show: bool,
                       spread: str) -> dict[str, Any]:
    from relayer.daemon.daemon import build_adapters

    manifest = devnet.manifest()
    settings = load_settings(devnet.config_path)
    adapters = build_adapters(settings, with_signers=False)
    names = [n for n, c in settings.chains.items() if c.family == "evm"]  # messages go between mailboxes
    domains = {n: settings.chains[n].domain for n in names}
    clocks = {n: BlockClock(adapters[n]) for n in names}
    stop = asyncio.Event()
    clock_tasks = [asyncio.create_task(c.run(stop)) for c in clocks.values()]
    start_heights = {n: int(await adapters[n].latest_height()) for n in names}

    routes = plan_routes(messages, names, {n: manifest["chains"][n] for n in names}, spread)
    dispatched: dict[MessageId, tuple[str, str, int]] = {}  # id -> (origin, destination, dispatch height)
    progress = make_progress(show)
    first_sent = time.time()

    async def send_from(i: int, origin: str) -> None:
        sender: MessageSender = adapters[origin]  # type: ignore[assignment]
        key = manifest["chains"][origin]["accounts"][i % 2]["private_key"]  # devnet test key
        jobs = []
        for dest in names:
            remaining = routes.get((origin, dest), 0)
            b = 0
            recipient = address_to_bytes32(manifest["chains"][dest]["contracts"]["test_recipient"])
            while remaining > 0:
                size = min(dispatch_batch, remaining)
                jobs.append((dest, recipient, [f"bench {origin}->{dest} {b}:{k}".encode() for k in range(size)]))
                remaining -= size
                b += 1
        sem = asyncio.Semaphore(4)

        async def one(dest: str, recipient: bytes, bodies: list[bytes]) -> None:
            async with sem:
                tx, ids = await sender.dispatch_messages(key, domains[dest], recipient, bodies)  # type: ignore[arg-type]
            height = await _tx_height(adapters[origin], tx)
            for mid in ids:
                dispatched[mid] = (origin, dest, height)
            progress.update(dispatch_task, advance=len(ids))

        await asyncio.gather(*(one(*j) for j in jobs))

    processed: dict[MessageId, list[tuple[str, int]]] = {}
    with progress:
        dispatch_task = progress.add_task("dispatching", total=messages)
        deliver_task = progress.add_task("delivered (on chain)", total=messages)
        sending = asyncio.gather(*(send_from(i, n) for i, n in enumerate(names)))
        cursors = dict(start_heights)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for n in names:
                latest = clocks[n].latest
                if latest < cursors[n]:
                    continue
                for mid, h in await adapters[n].processed_messages(Height(cursors[n]), Height(latest)):  # type: ignore[attr-defined]
                    processed.setdefault(mid, []).append((n, int(h)))
                cursors[n] = latest + 1
            ours = sum(1 for mid in dispatched if mid in processed)
            if ours:
                progress.update(deliver_task, completed=ours)
            if sending.done() and len(dispatched) == messages and ours == messages:
                break
            await asyncio.sleep(0.25)
        if not sending.done():
            sending.cancel()
        dispatch_done = max((clocks[o].time_of(h) or first_sent) for o, _d, h in dispatched.values()) if dispatched else first_sent
        await asyncio.gather(sending, return_exceptions=True)
    stop.set()
    await asyncio.gather(*clock_tasks, return_exceptions=True)

    ours_processed = {m: processed[m] for m in dispatched if m in processed}
    events = Counter({m: len(v) for m, v in ours_processed.items()})
    latencies = []
    for mid, (origin, _dest, dh) in dispatched.items():
        if mid in ours_processed:
            chain, ph = ours_processed[mid][0]
            t0, t1 = clocks[origin].time_of(dh), clocks[chain].time_of(ph)
            if t0 is not None and t1 is not None:
                latencies.append(max(0.0, t1 - t0))
    delivered = len(ours_processed)
    last_delivery = max((clocks[v[0][0]].time_of(v[0][1]) or time.time() for v in ours_processed.values()), default=first_sent)
    per_destination: dict[str, dict[str, float]] = {}
    for mid, (_origin, dest, _dh) in dispatched.items():
        row = per_destination.setdefault(dest, {"messages": 0, "delivered": 0, "last_delivery_s": 0.0})
        row["messages"] += 1
        if mid in ours_processed:
            chain, ph = ours_processed[mid][0]
            row["delivered"] += 1
            seen_at = clocks[chain].time_of(ph) or first_sent
            row["last_delivery_s"] = round(max(row["last_delivery_s"], seen_at - first_sent), 2)
    elapsed = max(1e-9, last_delivery - first_sent)
    for a in adapters.values():
        await a.close()
    loop_lag = await _daemon_loop_lag(manifest["api_url"])
    return {
        "messages": messages,
        "dispatched": len(dispatched),
        "delivered": delivered,
        "lost": messages - delivered,
        "duplicated": sum(1 for n in events.values() if n > 1),
        "messages_per_s": round(delivered / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p99_s": round(_percentile(latencies, 0.99), 3) if latencies else None,
        "dispatch_s": round(dispatch_done - first_sent, 2),
        "spread": spread,
        "per_destination": per_destination,
        "dispatch_batch": dispatch_batch,
        "event_loop_lag": loop_lag,
    }


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


# a bench measures throughput from one loopback address: the daemon it starts lifts the per-client and intent-rate
# caps of [api] (they are what a public API needs against abuse; tests/faults/test_api_abuse.py measures them)
BENCH_API_LIMITS = {"RELAYER__API__MAX_INTENTS_PER_S": "1000000",
                    "RELAYER__API__MAX_CONNECTIONS_PER_CLIENT": "1024",
                    "RELAYER__API__MAX_REQUESTS_IN_FLIGHT_PER_CLIENT": "256",
                    "RELAYER__API__MAX_RELAY_REQUESTS_PER_S": "1000000",
                    "RELAYER__API__MAX_RELAY_REQUESTS_PER_S_PER_CLIENT": "1000000"}


def start_bench_daemon(devnet: Devnet, env_overrides: dict[str, str], instance: str = "bench") -> subprocess.Popen | None:  # type: ignore[type-arg]
    """Start ``relayer run`` on ``devnet`` in a child process unless a daemon already serves its API; wait for it."""
    api_url = devnet.manifest()["api_url"]
    if asyncio.run(_daemon_serving(api_url)):
        return None
    log_path = devnet.dir / f"{instance}-daemon.log"
    daemon = subprocess.Popen([sys.executable, "-m", "relayer.cli", "run", "-c", str(devnet.config_path), "--no-status",
                               "--instance", instance], stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                              env=dict(os.environ, **env_overrides))
    deadline = time.monotonic() + 60
    while not asyncio.run(_daemon_serving(api_url)):
        if daemon.poll() is not None or time.monotonic() > deadline:
            stop_bench_daemon(daemon)
            raise RuntimeError(f"the bench daemon did not start; see {log_path}")
        time.sleep(0.1)
    return daemon


def stop_bench_daemon(daemon: subprocess.Popen | None) -> None:  # type: ignore[type-arg]
    if daemon is None:
        return
    daemon.terminate()
    try:
        daemon.wait(15)
    except subprocess.TimeoutExpired:
        daemon.kill()


def run_relay_bench(*, messages: int, devnet_dir: Path, json_output: bool, batch_size: int = 200,
                    dispatch_batch: int = 250, timeout_s: float | None = None, spread: str = "capacity") -> dict[str, Any]:
    devnet = Devnet(devnet_dir, families=("evm",))  # messages between mailboxes; an already-up devnet is reused
    show = not json_output and sys.stderr.isatty()
    devnet.up()
    daemon = start_bench_daemon(devnet, {"RELAYER__RELAYER__BATCH_SIZE": str(batch_size)})
    try:
        result = asyncio.run(_relay_bench(messages, devnet, dispatch_batch, timeout_s or max(120.0, messages / 50), show,
                                          spread))
    finally:
        stop_bench_daemon(daemon)
    if not json_output:
        for k, v in result.items():
            print(f"{k:>16}: {v}")
    return result


def run_light_client_bench(*, seconds: float = 3.0, json_output: bool = False) -> dict[str, Any]:
    """Verifications per second of each light client on one core (medians of repeated rounds)."""
    from light_clients.ethereum.consensus.bench import bench_sync_committee_updates
    from light_clients.ethereum.execution.bench import bench_receipt_proofs
    from light_clients.tendermint.bench import bench_skipping

    progress = make_progress(not json_output and sys.stderr.isatty())
    out: dict[str, Any] = {}
    with progress:
        task = progress.add_task("light clients", total=3)
        tm = bench_skipping(validators=100, seconds=seconds)
        progress.update(task, advance=1)
        rc = bench_receipt_proofs(seconds=seconds)
        progress.update(task, advance=1)
        sc = bench_sync_committee_updates(seconds=seconds)
        progress.update(task, advance=1)
    out["tendermint_skipping_verifications_per_s"] = round(tm["tendermint_skipping_verifications_per_s"], 1)
    out["tendermint_validators"] = tm["validators"]
    out["receipt_proofs_verified_per_s"] = round(rc["receipt_proofs_verified_per_s"], 1)
    out["receipts_in_block"] = rc["receipts_in_block"]
    out["sync_committee_updates_per_s"] = round(sc["sync_committee_updates_per_s"], 1)
    out["sync_committee_size"] = sc["committee_size"]
    out["details"] = {"tendermint": tm, "receipts": rc, "sync_committee": sc}
    if not json_output:
        for k, v in out.items():
            if k != "details":
                print(f"{k:>40}: {v}")
    return out


SEND_CONCURRENCY = 4  # Solana token sends in flight per route (each waits ~13 s for finality)


def _recipient32(adapter: ChainAdapter, address: str) -> bytes:
    """An account on ``adapter``'s chain as the bytes32 a token body carries (EVM 0x.., bech32, base58)."""
    if isinstance(adapter, Bytes32Accounts):
        return bytes(adapter.account_bytes32(address))
    return address_to_bytes32(address)


async def _bridge_in(adapters: dict[str, ChainAdapter], manifest: dict[str, Any], settings: Any, chain: str,
                     token: str, needed: int, timeout_s: float) -> None:
    """A sender of a token wrapped on ``chain`` must hold what it sends, and nobody does at genesis (on Cosmos the
    vault's escrow alone holds it): bridge the shortfall in from the token's home chain and wait until it arrived."""
    home = manifest["chains"][chain]["tokens"].get(token, {}).get("home")
    if not home or home == chain:
        return
    account = manifest["chains"][chain]["accounts"][0]["address"]
    here: MessageSender = adapters[chain]  # type: ignore[assignment]
    have = await here.token_balance(token, account)
    if have >= needed:
        return
    scale = 10 ** (settings.chains[home].tokens[token].decimals - settings.chains[chain].tokens[token].decimals)
    sender: MessageSender = adapters[home]  # type: ignore[assignment]
    await sender.send_token(manifest["chains"][home]["accounts"][0]["private_key"], token, (needed - have) * scale,
                            Domain(settings.chains[chain].domain), _recipient32(adapters[chain], account))
    deadline = time.monotonic() + timeout_s
    while await here.token_balance(token, account) < needed:
        if time.monotonic() > deadline:
            raise AdapterError(f"{token} bridged in from {home} did not arrive on {chain} within {timeout_s:.0f}s",
                               chain=chain, reason="bridge-in timeout")
        await asyncio.sleep(0.25)  # polling the destination's balance


async def _token_relay_bench(pairs: list[tuple[str, str]], per_pair: int, devnet: Devnet, token: str, amount_text: str,
                             timeout_s: float, show: bool) -> dict[str, Any]:
    from decimal import Decimal

    from relayer.daemon.daemon import build_adapters

    manifest = devnet.manifest()
    settings = load_settings(devnet.config_path)
    names = sorted({n for p in pairs for n in p})
    adapters = build_adapters(settings, with_signers=False)
    clocks = {n: BlockClock(adapters[n]) for n in names}
    stop = asyncio.Event()
    clock_tasks = [asyncio.create_task(c.run(stop)) for c in clocks.values()]
    start_heights = {n: int(await adapters[n].latest_height()) for n in names}
    sent: dict[MessageId, tuple[str, str, float]] = {}  # id -> (origin, destination, wall time of the origin tx)
    progress = make_progress(show)
    first_sent = time.time()

    async def send_pair(origin: str, dest: str) -> None:
        sender: MessageSender = adapters[origin]  # type: ignore[assignment]
        key = manifest["chains"][origin]["accounts"][0]["private_key"]  # devnet test key
        decimals = settings.chains[origin].tokens[token].decimals  # type: ignore[union-attr]
        units = int(Decimal(amount_text) * 10**decimals)
        # to the account that sends on the way back (it holds what arrived)
        recipient = _recipient32(adapters[dest], manifest["chains"][dest]["accounts"][0]["address"])
        # several in flight where the origin allows it: an EVM send approves then transfers from one account and a
        # Cosmos one follows the account's sequence, so those go one at a time
        lane = asyncio.Semaphore(SEND_CONCURRENCY if settings.chains[origin].family == "solana" else 1)
        try:  # a wrapped token's sender holds only what was bridged in (an earlier route, or this)
            await _bridge_in(adapters, manifest, settings, origin, token, units * per_pair, timeout_s / 2)
        except AdapterError as exc:
            send_errors.append(f"{origin}->{dest}: bridge-in: {type(exc).__name__}: {exc}"[:300])
            return

        vary = settings.chains[origin].family == "solana"

        async def one(i: int) -> None:
            async with lane:
                started = time.time()  # latency counts from here: origin inclusion and finality included
                # identical Solana transfers under one blockhash are one transaction (AlreadyProcessed): vary them
                amount = units - i if vary else units
                try:
                    _tx, mid = await sender.send_token(key, token, amount, Domain(settings.chains[dest].domain), recipient)
                except AdapterError as exc:
                    send_errors.append(f"{origin}->{dest}: {type(exc).__name__}: {exc}"[:300])
                    return
                sent[mid] = (origin, dest, started)
                progress.update(send_task, advance=1)

        await asyncio.gather(*(one(i) for i in range(per_pair)))

    processed: dict[MessageId, list[tuple[str, int]]] = {}
    send_errors: list[str] = []
    total = per_pair * len(pairs)
    with progress:
        send_task = progress.add_task("sending token transfers", total=total)
        deliver_task = progress.add_task("delivered (on chain)", total=total)
        async def in_order() -> None:
            # routes one after the other: a token coming home is unlocked from what went out before it
            for o, d in pairs:
                await send_pair(o, d)
                while not all(m in processed for m, (so, sd, _t) in sent.items() if (so, sd) == (o, d)):
                    await asyncio.sleep(0.25)  # the watcher below fills ``processed``
                    if time.monotonic() > deadline:
                        return

        sending = asyncio.ensure_future(in_order())
        cursors = dict(start_heights)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for n in {d for _o, d in pairs}:
                # scan only what is final: a Solana node serves transaction history at `finalized` only
                try:
                    final = int(await adapters[n].finalized_height())
                except AdapterError:
                    continue
                if final < cursors[n]:
                    continue
                for mid, h in await adapters[n].processed_messages(Height(cursors[n]), Height(final)):  # type: ignore[attr-defined]
                    processed.setdefault(mid, []).append((n, int(h)))
                cursors[n] = final + 1
            ours = sum(1 for mid in sent if mid in processed)
            progress.update(deliver_task, completed=ours)
            if sending.done() and len(sent) == total and ours == total:
                break
            await asyncio.sleep(0.25)  # polling the chains
        if not sending.done():
            sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
    stop.set()
    await asyncio.gather(*clock_tasks, return_exceptions=True)
    per_route: dict[str, dict[str, Any]] = {}
    latencies_all: list[float] = []
    for origin, dest in pairs:
        ids = [m for m, (o, d, _t) in sent.items() if (o, d) == (origin, dest)]
        done = [m for m in ids if m in processed]
        lat = []
        for m in done:
            chain, h = processed[m][0]
            seen = clocks[chain].time_of(h)
            if seen is not None:
                lat.append(max(0.0, seen - sent[m][2]))
        latencies_all += lat
        start = min((sent[m][2] for m in ids), default=first_sent)
        last = max((clocks[processed[m][0][0]].time_of(processed[m][0][1]) or time.time() for m in done), default=start)
        per_route[f"{origin}->{dest}"] = {
            "sent": len(ids), "delivered": len(done), "lost": per_pair - len(done),
            "duplicated": sum(1 for m in done if len(processed[m]) > 1),
            "messages_per_s": round(len(done) / max(1e-9, last - start), 2),
            "latency_p50_s": round(statistics.median(lat), 2) if lat else None,
            "latency_p99_s": round(_percentile(lat, 0.99), 2) if lat else None,
        }
    for a in adapters.values():
        await a.close()
    delivered = sum(r["delivered"] for r in per_route.values())
    return {"token": token, "amount": amount_text, "per_pair": per_pair, "messages": total, "delivered": delivered,
            "lost": total - delivered, "duplicated": sum(r["duplicated"] for r in per_route.values()),
            "latency_p50_s": round(statistics.median(latencies_all), 2) if latencies_all else None,
            "routes": per_route, "send_errors": send_errors}


def run_token_relay_bench(*, pairs: list[tuple[str, str]], per_pair: int, devnet_dir: Path, families: tuple[str, ...],
                          json_output: bool, token: str = "TST", amount: str = "1", timeout_s: float = 300.0,
                          base_port: int = 8545, api_port: int = 8900) -> dict[str, Any]:
    """Token transfers on each ``(origin, destination)`` pair (e.g. l1 <-> cosmos, l1 <-> solana), through a daemon,
    checked on chain: delivered, lost, duplicated, throughput and latency per route."""
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, families=families)
    show = not json_output and sys.stderr.isatty()
    devnet.up()
    daemon = start_bench_daemon(devnet, {}, instance="bench-token")
    try:
        result = asyncio.run(_token_relay_bench(pairs, per_pair, devnet, token, amount, timeout_s, show))
    finally:
        stop_bench_daemon(daemon)
    if not json_output:
        for k, v in result.items():
            print(f"{k:>16}: {v}")
    return result
