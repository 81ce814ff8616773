"""``relayer bench relay --pairs``: token transfers on chosen routes (e.g. l1 <-> cosmos, l1 <-> solana) through
a daemon, checked on chain.

Routes run one after the other (a token coming home is unlocked from what went out before it); a wrapped token's
sender is first given what it sends, bridged in from the token's home chain. Destinations are scanned at their
finalized height. Figures per route: sent, delivered, lost, duplicated (from Process events on chain), throughput,
and latency from the send call to the first sight of the Process block.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.progress import Progress, TaskID

from adapters.base import AdapterError, ChainAdapter, Height, MessageSender
from adapters.capabilities import Bytes32Accounts
from adapters.message import Domain, MessageId, address_to_bytes32
from config.loader import load_settings
from config.settings import Settings
from devnets.devnet import Devnet
from relayer.bench.daemon import BlockClock, bench_devnet_and_daemon, percentile
from relayer.cli.progress import make_progress

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



@dataclass
class _TokenRun:
    """One token relay bench run: the transfers it sent, what the destinations processed, what failed to send."""

    adapters: dict[str, ChainAdapter]
    manifest: dict[str, Any]
    settings: Settings
    clocks: dict[str, BlockClock]
    progress: Progress
    token: str
    per_pair: int
    sent: dict[MessageId, tuple[str, str, float]] = field(default_factory=dict)  # id -> (origin, dest, send time)
    processed: dict[MessageId, list[tuple[str, int]]] = field(default_factory=dict)  # id -> its Process events
    send_errors: list[str] = field(default_factory=list)


async def _token_relay_bench(pairs: list[tuple[str, str]], per_pair: int, devnet: Devnet, token: str, amount_text: str,
                             timeout_s: float, show: bool) -> dict[str, Any]:
    from relayer.daemon.daemon import build_adapters

    manifest = devnet.manifest()
    settings = load_settings(devnet.config_path)
    names = sorted({n for p in pairs for n in p})
    adapters = build_adapters(settings, with_signers=False)
    run = _TokenRun(adapters, manifest, settings, {n: BlockClock(adapters[n]) for n in names}, make_progress(show),
                    token, per_pair)
    stop = asyncio.Event()
    clock_tasks = [asyncio.create_task(c.run(stop)) for c in run.clocks.values()]
    start_heights = {n: int(await adapters[n].latest_height()) for n in names}
    first_sent = time.time()
    total = per_pair * len(pairs)
    with run.progress:
        await _send_and_watch(run, pairs, amount_text, start_heights, total, timeout_s)
    stop.set()
    await asyncio.gather(*clock_tasks, return_exceptions=True)
    per_route: dict[str, dict[str, Any]] = {}
    latencies_all: list[float] = []
    for origin, dest in pairs:
        per_route[f"{origin}->{dest}"], lat = _route_figures(run, origin, dest, first_sent)
        latencies_all += lat
    for a in adapters.values():
        await a.close()
    delivered = sum(r["delivered"] for r in per_route.values())
    return {"token": token, "amount": amount_text, "per_pair": per_pair, "messages": total, "delivered": delivered,
            "lost": total - delivered, "duplicated": sum(r["duplicated"] for r in per_route.values()),
            "latency_p50_s": round(statistics.median(latencies_all), 2) if latencies_all else None,
            "routes": per_route, "send_errors": run.send_errors}


async def _send_and_watch(run: _TokenRun, pairs: list[tuple[str, str]], amount_text: str,
                          start_heights: dict[str, int], total: int, timeout_s: float) -> None:
    """Send every route's transfers, one route after the other, while watching the destinations until all are
    processed or the time is up."""
    send_task = run.progress.add_task("sending token transfers", total=total)
    deliver_task = run.progress.add_task("delivered (on chain)", total=total)
    deadline = time.monotonic() + timeout_s
    sending = asyncio.ensure_future(_send_in_order(run, pairs, amount_text, timeout_s, deadline, send_task))
    await _watch_finalized(run, {d for _o, d in pairs}, sending, dict(start_heights), total, deadline, deliver_task)
    if not sending.done():
        sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)


async def _send_in_order(run: _TokenRun, pairs: list[tuple[str, str]], amount_text: str, timeout_s: float,
                         deadline: float, send_task: TaskID) -> None:
    """Routes one after the other: a token coming home is unlocked from what went out before it."""
    for o, d in pairs:
        await _send_pair(run, o, d, amount_text, timeout_s, send_task)
        while not all(m in run.processed for m, (so, sd, _t) in run.sent.items() if (so, sd) == (o, d)):
            await asyncio.sleep(0.25)  # _watch_finalized fills ``processed``
            if time.monotonic() > deadline:
                return


async def _send_pair(run: _TokenRun, origin: str, dest: str, amount_text: str, timeout_s: float,
                     send_task: TaskID) -> None:
    """``per_pair`` transfers of ``amount_text`` tokens from ``origin`` to ``dest``'s first devnet account."""
    settings, token = run.settings, run.token
    sender: MessageSender = run.adapters[origin]  # type: ignore[assignment]
    key = run.manifest["chains"][origin]["accounts"][0]["private_key"]  # devnet test key
    decimals = settings.chains[origin].tokens[token].decimals
    units = int(Decimal(amount_text) * 10**decimals)
    # to the account that sends on the way back (it holds what arrived)
    recipient = _recipient32(run.adapters[dest], run.manifest["chains"][dest]["accounts"][0]["address"])
    # several in flight where the origin allows it: an EVM send approves then transfers from one account and a
    # Cosmos one follows the account's sequence, so those go one at a time
    lane = asyncio.Semaphore(SEND_CONCURRENCY if settings.chains[origin].family == "solana" else 1)
    try:  # a wrapped token's sender holds only what was bridged in (an earlier route, or this)
        await _bridge_in(run.adapters, run.manifest, settings, origin, token, units * run.per_pair, timeout_s / 2)
    except AdapterError as exc:
        run.send_errors.append(f"{origin}->{dest}: bridge-in: {type(exc).__name__}: {exc}"[:300])
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
                run.send_errors.append(f"{origin}->{dest}: {type(exc).__name__}: {exc}"[:300])
                return
            run.sent[mid] = (origin, dest, started)
            run.progress.update(send_task, advance=1)

    await asyncio.gather(*(one(i) for i in range(run.per_pair)))


async def _watch_finalized(run: _TokenRun, destinations: set[str], sending: asyncio.Future[Any],
                           cursors: dict[str, int], total: int, deadline: float, deliver_task: TaskID) -> None:
    """Read the destinations' Process events up to their finalized height until all ``total`` transfers are sent
    and processed, or the deadline passes."""
    while time.monotonic() < deadline:
        for n in destinations:
            # scan only what is final: a Solana node serves transaction history at `finalized` only
            try:
                final = int(await run.adapters[n].finalized_height())
            except AdapterError:
                continue
            if final < cursors[n]:
                continue
            for mid, h in await run.adapters[n].processed_messages(Height(cursors[n]), Height(final)):  # type: ignore[attr-defined]
                run.processed.setdefault(mid, []).append((n, int(h)))
            cursors[n] = final + 1
        ours = sum(1 for mid in run.sent if mid in run.processed)
        run.progress.update(deliver_task, completed=ours)
        if sending.done() and len(run.sent) == total and ours == total:
            break
        await asyncio.sleep(0.25)  # polling the chains


def _route_figures(run: _TokenRun, origin: str, dest: str, first_sent: float) -> tuple[dict[str, Any], list[float]]:
    """One route's row (sent, delivered, lost, duplicated, throughput, latency) and its latencies."""
    sent, processed, clocks = run.sent, run.processed, run.clocks
    ids = [m for m, (o, d, _t) in sent.items() if (o, d) == (origin, dest)]
    done = [m for m in ids if m in processed]
    lat = []
    for m in done:
        chain, h = processed[m][0]
        seen = clocks[chain].time_of(h)
        if seen is not None:
            lat.append(max(0.0, seen - sent[m][2]))
    start = min((sent[m][2] for m in ids), default=first_sent)
    last = max((clocks[processed[m][0][0]].time_of(processed[m][0][1]) or time.time() for m in done), default=start)
    row = {
        "sent": len(ids), "delivered": len(done), "lost": run.per_pair - len(done),
        "duplicated": sum(1 for m in done if len(processed[m]) > 1),
        "messages_per_s": round(len(done) / max(1e-9, last - start), 2),
        "latency_p50_s": round(statistics.median(lat), 2) if lat else None,
        "latency_p99_s": round(percentile(lat, 0.99), 2) if lat else None,
    }
    return row, lat


def run_token_relay_bench(*, pairs: list[tuple[str, str]], per_pair: int, devnet_dir: Path, families: tuple[str, ...],
                          json_output: bool, token: str = "TST", amount: str = "1", timeout_s: float = 300.0,
                          base_port: int = 8545, api_port: int = 8900, keep_devnet: bool = False) -> dict[str, Any]:
    """Token transfers on each ``(origin, destination)`` pair (e.g. l1 <-> cosmos, l1 <-> solana), through a daemon,
    checked on chain: delivered, lost, duplicated, throughput and latency per route."""
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, families=families)
    show = not json_output and sys.stderr.isatty()
    with bench_devnet_and_daemon(devnet, {}, instance="bench-token", keep_devnet=keep_devnet):
        result = asyncio.run(_token_relay_bench(pairs, per_pair, devnet, token, amount, timeout_s, show))
    if not json_output:
        for k, v in result.items():
            print(f"{k:>16}: {v}")
    return result
