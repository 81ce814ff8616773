"""``relayer bench rollup-finality``: what each rollup finality rule costs in latency on one route (issue 16).

"Measured: latency from dispatch to delivery for confirmations, for the optimistic window and for the zk-style rule
on the same route." On one devnet of its own (EVM chains only; ``.devnet-rollup-finality`` on ports 8845.. and API
port 8997 by default, brought up unless it is up, and brought down afterwards unless it was up or ``keep_devnet``), the
bench runs the same route (``rollup_a -> l1`` by default) three times, one rule after the other:

- ``confirmations``: the rollup's own finality (its ``finality`` confirmations, the devnet's default);
- ``optimistic``: ``chains.<rollup>.settlement`` rule ``optimistic``: final once the output root covering the dispatch
  (the devnet proposer posts one every ``output_interval_blocks`` rollup blocks) has sat ``challenge_window_s`` in a
  finalized L1 block;
- ``posted``: the zk-style rule: final once that output root is in a finalized L1 block.

For each rule it writes a daemon config for that rule (``relayer_toml`` of the devnet's manifest with that
``rollup_finality``; a store of its own, ``DIR/bench-rollup-finality/RULE/relayer.db``, fresh each run; a free API
port), starts ``relayer run`` on it (log: ``DIR/bench-rollup-finality-RULE-daemon.log``), dispatches ``messages``
messages from the origin to the destination's TestRecipient, one transaction each, ``spacing_s`` apart (so they land in
different blocks), waits until every one is processed on the destination (or the rule's deadline passes), and stops the
daemon before the next rule starts.

Latency per message (``latency_*``): the first sight (wall clock, each chain's height polled every 50 ms by this
process) of the destination block holding its Process event minus the first sight of the origin block holding its
Dispatch event. The same difference from the blocks' own timestamps (``chain_latency_*``) is reported beside it: anvil
stamps blocks in whole seconds, so those figures are only good to a second. ``delivered`` and ``duplicated`` are read
from the chain after the daemon stopped: the Process events per message id on the destination mailbox (``duplicated``:
ids with more than one); ``lost`` = sent - delivered. ``median_ratio_to_confirmations``: the rule's median latency over
the confirmations rule's.

A daemon already serving the devnet's API would relay the bench's messages under its own rule: the bench refuses to
run then.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from rich.progress import Progress

from adapters.base import ChainAdapter, Height, MessageSender
from adapters.evm import abi
from adapters.message import MessageId, address_to_bytes32
from config.errors import RelayerError
from config.loader import load_settings
from devnets.devnet import ROLLUP_FINALITY_RULES, Devnet, relayer_toml
from relayer.bench.daemon import BlockClock, _daemon_serving, percentile, start_bench_daemon, stop_bench_daemon
from relayer.cli.progress import make_progress

log = structlog.get_logger("relayer.bench.rollup_finality")

RULES = ROLLUP_FINALITY_RULES  # confirmations, optimistic, posted: the order the bench runs them in
ROLLUP_FINALITY_DEVNET_DIR = Path(".devnet-rollup-finality")
ROLLUP_FINALITY_BASE_PORT = 8845
ROLLUP_FINALITY_API_PORT = 8997
DEFAULT_ROUTE = ("rollup_a", "l1")
LATENCY_FROM = ("first sight (wall clock, chain heights polled every 50 ms) of the destination block with the Process "
                "event minus first sight of the origin block with the Dispatch event; chain_latency_*: the same from "
                "the blocks' timestamps (whole seconds)")


@dataclass
class _RuleRun:
    """One rule's run: what was dispatched (id -> origin height) and the Process events seen on the destination."""

    rule: str
    origin: str
    destination: str
    dispatched: dict[MessageId, int] = field(default_factory=dict)
    processed: dict[MessageId, list[int]] = field(default_factory=dict)
    send_errors: list[str] = field(default_factory=list)
    dest_start: int = 0
    clocks: dict[str, BlockClock] = field(default_factory=dict)


@contextlib.contextmanager
def _bench_devnet(devnet: Devnet, keep_devnet: bool) -> Iterator[None]:
    """Bring ``devnet`` up unless it is; on the way out (the end, an error, Ctrl-C, or SIGTERM through
    ``sigterm_as_interrupt``) bring it down if this bench brought it up, unless ``keep_devnet``."""
    was_up = True  # until known: a devnet this bench did not see down is never brought down by it
    try:
        with devnet.locked():  # a devnet another bench is still bringing down is waited for, not taken for running
            was_up = devnet.status()["up"]
            devnet.up()  # (stops what it started itself if it fails half-way)
        yield
    finally:
        if not was_up and not keep_devnet:
            devnet.down()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rule_config(devnet: Devnet, manifest: dict[str, Any], rule: str, api_url: str) -> Path:
    """A daemon config for ``rule`` on ``devnet``: its own fresh store, API (and validators) at ``api_url``."""
    directory = devnet.dir / "bench-rollup-finality" / rule
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("relayer.db*"):  # a fresh store: an earlier run's messages are not this run's
        stale.unlink()
    validators = [{"address": v["address"], "url": f"{api_url}/validators/{v['address']}"}
                  for v in manifest["validators"]]
    path = directory / "relayer.toml"
    path.write_text(relayer_toml({**manifest, "rollup_finality": rule, "api_url": api_url, "validators": validators},
                                 store_url=f"sqlite:///{directory / 'relayer.db'}"))
    return path


def _start_rule_daemon(devnet: Devnet, config: Path, rule: str, api_url: str) -> Any:
    instance = f"bench-rollup-finality-{rule}"
    log_path = devnet.dir / f"{instance}-daemon.log"
    log_path.unlink(missing_ok=True)  # this run's log only
    command = [sys.executable, "-m", "relayer.cli", "run", "-c", str(config), "--no-status", "--instance", instance]
    daemon = start_bench_daemon(devnet, {}, instance, command=command, api_url=api_url)
    if daemon is None:  # a free port just picked: nothing should serve there
        raise RelayerError(f"something already serves {api_url}: not the bench's daemon for rule {rule}")
    log.info("rollup_finality_daemon_started", rule=rule, api_url=api_url, config=str(config), log=str(log_path),
             pid=daemon.pid)
    return daemon


async def _send(run: _RuleRun, adapters: dict[str, ChainAdapter], manifest: dict[str, Any], domain: int,
                messages: int, spacing_s: float, progress: Progress, task: Any) -> None:
    """``messages`` dispatches from the origin's first devnet account to the destination's TestRecipient, one
    transaction each, started ``spacing_s`` apart (or as soon as the one before is mined, when that takes longer)."""
    sender: MessageSender = adapters[run.origin]  # type: ignore[assignment]
    key = manifest["chains"][run.origin]["accounts"][0]["private_key"]  # public devnet test key
    recipient = address_to_bytes32(manifest["chains"][run.destination]["contracts"]["test_recipient"])
    start = time.monotonic()
    for i in range(messages):
        await asyncio.sleep(max(0.0, start + i * spacing_s - time.monotonic()))
        body = f"rollup-finality {run.rule} {run.origin}->{run.destination} #{i} {time.time():.3f}".encode()
        try:
            tx, ids = await sender.dispatch_messages(key, domain, recipient, [body])  # type: ignore[arg-type]
            height, ok = await adapters[run.origin].tx_result(tx)  # type: ignore[attr-defined]
        except RelayerError as exc:
            run.send_errors.append(f"#{i}: {type(exc).__name__}: {exc}"[:300])
            log.warning("rollup_finality_send_failed", rule=run.rule, index=i, error=str(exc))
            continue
        if not ok:
            run.send_errors.append(f"#{i}: dispatch transaction {tx} reverted")
            continue
        for mid in ids:
            run.dispatched[mid] = int(height)
        progress.update(task, advance=len(ids))


async def _watch(run: _RuleRun, adapter: ChainAdapter, sending: asyncio.Future[Any], messages: int,
                 deadline: float, progress: Progress, task: Any) -> None:
    """Read the destination's Process events of every block seen until all ``messages`` are sent and processed (or
    the sending failed and every sent one is processed), or the deadline passes."""
    cursor = run.dest_start
    clock = run.clocks[run.destination]
    while time.monotonic() < deadline:
        latest = clock.latest
        if latest >= cursor:
            for mid, h in await adapter.processed_messages(Height(cursor), Height(latest)):  # type: ignore[attr-defined]
                run.processed.setdefault(mid, []).append(int(h))
            cursor = latest + 1
        ours = sum(1 for m in run.dispatched if m in run.processed)
        progress.update(task, completed=ours)
        if sending.done() and ours == len(run.dispatched) and (len(run.dispatched) == messages or run.send_errors):
            return
        await asyncio.sleep(0.25)  # polling the destination


async def _measure(run: _RuleRun, manifest: dict[str, Any], config: Path, messages: int, spacing_s: float,
                   timeout_s: float, progress: Progress) -> None:
    """Send the rule's messages while watching the destination (the rule's daemon runs meanwhile)."""
    from relayer.daemon.daemon import build_adapters

    settings = load_settings(config, env={})
    adapters = build_adapters(settings, with_signers=False)
    try:
        run.clocks = {n: BlockClock(adapters[n]) for n in (run.origin, run.destination)}
        run.dest_start = int(await adapters[run.destination].latest_height())
        stop = asyncio.Event()
        clock_tasks = [asyncio.create_task(c.run(stop)) for c in run.clocks.values()]
        send_task = progress.add_task(f"{run.rule}: sent", total=messages)
        deliver_task = progress.add_task(f"{run.rule}: delivered (on chain)", total=messages)
        await asyncio.sleep(0.2)  # the clocks have seen the chains' heights before the first dispatch
        sending = asyncio.ensure_future(_send(run, adapters, manifest, settings.chains[run.destination].domain,
                                              messages, spacing_s, progress, send_task))
        try:
            await _watch(run, adapters[run.destination], sending, messages, time.monotonic() + timeout_s, progress,
                         deliver_task)
        finally:
            if not sending.done():
                sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            stop.set()
            await asyncio.gather(*clock_tasks, return_exceptions=True)
    finally:
        for a in adapters.values():
            await a.close()


async def _rpc(http: httpx.AsyncClient, url: str, method: str, params: list[Any]) -> Any:
    doc = (await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).json()
    if "error" in doc:
        raise RelayerError(f"{method} on {url}: {doc['error']}")
    return doc["result"]


async def _from_chain(run: _RuleRun,
                      manifest: dict[str, Any]) -> tuple[dict[MessageId, list[int]], dict[str, dict[int, int]]]:
    """After the daemon stopped: every Process event on the destination mailbox since the rule started, per id of
    this run, and the timestamps of the blocks involved (origin: dispatch blocks; destination: Process blocks)."""
    origin_rpc = manifest["chains"][run.origin]["rpc_url"]
    dest = manifest["chains"][run.destination]
    mailbox = dest["contracts"]["mailbox"]
    events: dict[MessageId, list[int]] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        latest = int(await _rpc(http, dest["rpc_url"], "eth_blockNumber", []), 16)
        logs = await _rpc(http, dest["rpc_url"], "eth_getLogs", [{"address": mailbox, "fromBlock": hex(run.dest_start),
                                                                  "toBlock": hex(latest),
                                                                  "topics": [abi.PROCESS_TOPIC]}])
        for entry in logs:
            mid = MessageId(bytes.fromhex(entry["topics"][1][2:]))
            if mid in run.dispatched:
                events.setdefault(mid, []).append(int(entry["blockNumber"], 16))
        stamps: dict[str, dict[int, int]] = {run.origin: {}, run.destination: {}}
        wanted = [(run.origin, origin_rpc, h) for h in set(run.dispatched.values())]
        wanted += [(run.destination, dest["rpc_url"], h) for h in {hs[0] for hs in events.values()}]
        for chain, url, h in wanted:
            block = await _rpc(http, url, "eth_getBlockByNumber", [hex(h), False])
            stamps[chain][h] = int(block["timestamp"], 16)
    return events, stamps


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _figures(run: _RuleRun, events: dict[MessageId, list[int]], stamps: dict[str, dict[int, int]],
             daemon_log: Path) -> dict[str, Any]:
    """One rule's row: sent, delivered, lost, duplicated, latency median/p90/max (first sight and chain timestamps)."""
    seen: list[float] = []
    stamped: list[float] = []
    origin_clock, dest_clock = run.clocks[run.origin], run.clocks[run.destination]
    for mid, dh in run.dispatched.items():
        if mid not in events:
            continue
        ph = min(events[mid])
        t0, t1 = origin_clock.time_of(dh), dest_clock.time_of(ph)
        if t0 is not None and t1 is not None:
            seen.append(max(0.0, t1 - t0))
        stamped.append(float(stamps[run.destination][ph] - stamps[run.origin][dh]))

    def stats(values: list[float], prefix: str) -> dict[str, float | None]:
        return {f"{prefix}_median_s": _round(statistics.median(values)) if values else None,
                f"{prefix}_p90_s": _round(percentile(values, 0.9)) if values else None,
                f"{prefix}_max_s": _round(max(values)) if values else None}

    delivered = sum(1 for m in run.dispatched if m in events)
    return {"sent": len(run.dispatched), "delivered": delivered, "lost": len(run.dispatched) - delivered,
            "duplicated": sum(1 for m in run.dispatched if len(events.get(m, [])) > 1),
            **stats(seen, "latency"), **stats(stamped, "chain_latency"),
            "send_errors": run.send_errors, "daemon_log": str(daemon_log)}


def _parse_route(manifest: dict[str, Any], route: tuple[str, str]) -> tuple[str, str, dict[str, Any]]:
    origin, destination = route
    chains = manifest["chains"]
    for name in route:
        if name not in chains or chains[name]["family"] != "evm":
            raise RelayerError(f"--route {origin}:{destination}: {name!r} is not an EVM chain of the devnet "
                               f"({', '.join(n for n, c in chains.items() if c['family'] == 'evm')})")
    if origin == destination:
        raise RelayerError(f"--route {origin}:{destination}: origin and destination are the same chain")
    settlement = chains[origin].get("settlement")
    if settlement is None:
        rollups = [n for n, c in chains.items() if "settlement" in c]
        raise RelayerError(f"--route {origin}:{destination}: {origin} settles on no L1 (its finality cannot follow "
                           f"one); rollups of this devnet: {', '.join(rollups) or 'none'}")
    return origin, destination, settlement


def run_rollup_finality_bench(*, messages: int = 10, route: tuple[str, str] = DEFAULT_ROUTE,
                              devnet_dir: Path = ROLLUP_FINALITY_DEVNET_DIR, json_output: bool = False,
                              spacing_s: float = 0.5, timeout_s: float | None = None, keep_devnet: bool = False,
                              base_port: int = ROLLUP_FINALITY_BASE_PORT,
                              api_port: int = ROLLUP_FINALITY_API_PORT) -> dict[str, Any]:
    """The same route under each rollup finality rule, one after the other, on one devnet (see the module doc).
    ``timeout_s``: how long each rule may take to deliver its messages (default 120 s plus the sending time)."""
    if messages <= 0 or spacing_s < 0:
        raise RelayerError("messages must be positive and spacing_s not negative")
    timeout_s = timeout_s if timeout_s is not None else 120.0 + messages * spacing_s
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, families=("evm",))
    show = not json_output and sys.stderr.isatty()
    rows: dict[str, dict[str, Any]] = {}
    with _bench_devnet(devnet, keep_devnet):
        manifest = devnet.manifest()
        origin, destination, settlement = _parse_route(manifest, route)
        if asyncio.run(_daemon_serving(manifest["api_url"])):
            raise RelayerError(f"a daemon serves this devnet's API ({manifest['api_url']}): it would relay the bench's "
                               "messages under its own rule; stop it first")
        log.info("rollup_finality_bench_start", dir=str(devnet.dir), route=f"{origin}:{destination}",
                 messages=messages, challenge_window_s=settlement["challenge_window_s"],
                 output_interval_blocks=settlement["interval_blocks"])
        with make_progress(show) as progress:
            for rule in RULES:
                rows[rule] = _run_rule(devnet, manifest, rule, origin, destination, messages, spacing_s, timeout_s,
                                       progress)
    base = rows["confirmations"]["latency_median_s"]
    for row in rows.values():
        median = row["latency_median_s"]
        row["median_ratio_to_confirmations"] = round(median / base, 2) if median is not None and base else None
    result: dict[str, Any] = {
        "route": f"{origin}:{destination}", "messages": messages, "spacing_s": spacing_s,
        "challenge_window_s": settlement["challenge_window_s"],
        "output_interval_blocks": settlement["interval_blocks"], "latency": LATENCY_FROM,
        **rows,
        "lost": sum(r["lost"] for r in rows.values()), "duplicated": sum(r["duplicated"] for r in rows.values()),
        "send_errors": sum(len(r["send_errors"]) for r in rows.values()),
    }
    if not json_output:
        _print_table(result)
    return result


def _run_rule(devnet: Devnet, manifest: dict[str, Any], rule: str, origin: str, destination: str, messages: int,
              spacing_s: float, timeout_s: float, progress: Progress) -> dict[str, Any]:
    """One rule: its daemon started, the messages sent and watched, the daemon stopped, the figures read from the
    chains."""
    api_url = f"http://127.0.0.1:{_free_port()}"
    config = _rule_config(devnet, manifest, rule, api_url)
    run = _RuleRun(rule, origin, destination)
    daemon = _start_rule_daemon(devnet, config, rule, api_url)
    try:
        asyncio.run(_measure(run, manifest, config, messages, spacing_s, timeout_s, progress))
    finally:
        stop_bench_daemon(daemon)
    events, stamps = asyncio.run(_from_chain(run, manifest))
    row = _figures(run, events, stamps, devnet.dir / f"bench-rollup-finality-{rule}-daemon.log")
    event = log.info if row["lost"] == 0 and row["duplicated"] == 0 and not row["send_errors"] else log.warning
    event("rollup_finality_rule_done", rule=rule, **{k: v for k, v in row.items() if k != "send_errors"},
          send_errors=len(row["send_errors"]))
    return row


def _print_table(result: dict[str, Any]) -> None:
    print(f"route {result['route']}: {result['messages']} messages per rule, {result['spacing_s']} s apart; "
          f"output root every {result['output_interval_blocks']} rollup blocks, challenge window "
          f"{result['challenge_window_s']} s")
    print(f"latency: {result['latency']}")
    head = ("rule", "sent", "delivered", "lost", "dup", "median_s", "p90_s", "max_s", "x conf", "chain median_s")
    print("{:>14} {:>5} {:>9} {:>5} {:>4} {:>9} {:>8} {:>8} {:>7} {:>15}".format(*head))
    for rule in RULES:
        r = result[rule]
        print("{:>14} {:>5} {:>9} {:>5} {:>4} {:>9} {:>8} {:>8} {:>7} {:>15}".format(
            rule, r["sent"], r["delivered"], r["lost"], r["duplicated"], str(r["latency_median_s"]),
            str(r["latency_p90_s"]), str(r["latency_max_s"]), str(r["median_ratio_to_confirmations"]),
            str(r["chain_latency_median_s"])))
        for err in r["send_errors"]:
            print(f"{'':>14} send error: {err}")
