"""``relayer bench intents``: how fast one daemon takes operator-signed intents and lands them (issue 14).

Starts (or reuses) the plain EVM devnet (three chains, none throttled) and a daemon on it, then offers ``--intents``
same-chain USDC transfers, each to a fresh address, in batches of ``--batch`` (1,000) from ``--submitters``
concurrent clients. The router splits them over the chains by live capacity; a batch's intents answered
``unserved: capacity`` are offered again after a short pause (the chains were full), any other unserved reason ends
the bench with an error. Then every accepted intent is followed (``GET /v1/batches/{id}``) until it is final.

Figures (the last line with ``--json``):
- ``intents_accepted_per_s``: intents accepted / seconds the API spent answering the batches (the sum over
  submitters of their request times divided by their number: the API's rate while busy);
- ``transfers_per_s``: intents included / (last inclusion - first acceptance), inclusion as the daemon saw it;
- ``latency_p50_s``, ``latency_p99_s``: acceptance (``created_at``) to inclusion (``included_at``) per intent;
- ``lost``: accepted intents whose recipient holds nothing on chain at the end; ``duplicated``: recipients holding
  more than one transfer's amount. Both read from the chains with ``balanceOf``, not from the daemon.
- ``cpu`` (Linux): CPU seconds of the daemon (when the bench started it), the chains, the devnet's beacon and the
  bench client from the first batch to the last final intent, and how busy the machine was (``relayer.bench.cpu``);
  ``cpu_ms_per_transfer``: each of them per included transfer. When the machine is busy, transfers/s is bounded by
  their sum, whichever part spends it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from adapters.evm.adapter import EvmAdapter
from config.loader import load_settings
from config.settings import EvmChainConfig
from devnets.devnet import Devnet
from relayer.bench.cpu import CpuAccount
from relayer.bench.daemon import BENCH_API_LIMITS, bench_devnet_and_daemon, percentile
from relayer.bench.route import BENCH_LIMITS
from relayer.cli.progress import make_progress

TOKEN = "USDC"
AMOUNT = "0.000001"  # one unit (6 decimals): the operators' balances last for millions of intents
UNITS = 1
INTENTS_DEVNET_DIR = Path(".devnet-intents")
FINAL = {"included", "failed", "expired"}


async def _submit(http: httpx.AsyncClient, api: str, recipients: list[str], batch: int, submitters: int,
                  on_accepted: Any) -> tuple[list[str], float, Counter[str]]:
    """Offer every recipient a transfer; (batch ids, busy seconds per submitter, unserved reasons seen)."""
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for i in range(0, len(recipients), batch):
        queue.put_nowait(recipients[i:i + batch])
    batches: list[str] = []
    busy = [0.0] * submitters
    unserved: Counter[str] = Counter()
    remaining = [len(recipients)]

    async def submitter(k: int) -> None:
        while remaining[0] > 0:
            try:
                chunk = queue.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.02)
                continue
            body = {"intents": [{"amount": AMOUNT, "token": TOKEN, "recipient": r} for r in chunk]}
            t0 = time.perf_counter()
            resp = await http.post(f"{api}/v1/intents", json=body)
            busy[k] += time.perf_counter() - t0
            if resp.status_code != 202:
                raise RuntimeError(f"POST /v1/intents answered {resp.status_code}: {resp.text[:300]}")
            doc = resp.json()
            again: list[str] = []
            for r, intent_id, why in zip(chunk, doc["ids"], doc["reasons"], strict=True):
                if intent_id is None:
                    unserved[why] += 1
                    if why != "capacity":
                        raise RuntimeError(f"an intent was unserved for {why!r} (not capacity)")
                    again.append(r)
            if doc["batch"]:
                batches.append(doc["batch"])
            accepted = len(chunk) - len(again)
            remaining[0] -= accepted
            on_accepted(accepted)
            if again:
                await asyncio.sleep(0.1)  # the chains are full for now
                queue.put_nowait(again)

    await asyncio.gather(*(submitter(k) for k in range(submitters)))
    return batches, sum(busy) / submitters, unserved


async def _follow(http: httpx.AsyncClient, api: str, batches: list[str], deadline_s: float,
                  on_final: Any) -> list[dict[str, Any]]:
    """Every intent of ``batches`` once final (or as it is at the deadline). One batch at a time, oldest first (they
    settle about in order): one read every 0.5 s, so following does not load the daemon it measures."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + deadline_s
    for b in batches:
        while True:
            intents = (await http.get(f"{api}/v1/batches/{b}")).json()["intents"]
            if all(i["status"] in FINAL for i in intents) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        on_final(len(intents))
        out.extend(intents)
    return out


async def _chain_balances(devnet: Devnet, intents: list[dict[str, Any]]) -> dict[str, int]:
    """Each recipient's USDC balance, read from the chain its intent ran on."""
    settings = load_settings(devnet.config_path, env={})
    out: dict[str, int] = {}
    for chain in {i["chain"] for i in intents}:
        cfg = settings.chains[chain]
        assert isinstance(cfg, EvmChainConfig)
        adapter = EvmAdapter(chain, cfg)
        try:
            holders = [i["recipient"] for i in intents if i["chain"] == chain]
            for k in range(0, len(holders), 500):
                part = holders[k:k + 500]
                values = await asyncio.gather(*(adapter.token_balance(TOKEN, h) for h in part))
                out.update(zip(part, values, strict=True))
        finally:
            await adapter.close()
    return out


def _cpu_parts(devnet: Devnet, daemon: subprocess.Popen | None) -> CpuAccount:
    """The run's CPU by part: the daemon (when this bench started it), the chains, the devnet's beacon, this client."""
    status = devnet.status()
    parts = {"daemon": [daemon.pid] if daemon is not None else [],
             "chains": [c["pid"] for c in status["chains"].values()],
             "beacon": [status["beacon"]["pid"]] if "beacon" in status else [], "bench": [os.getpid()]}
    return CpuAccount(parts)


def _cpu_figures(cpu: dict[str, Any], included: int) -> dict[str, Any]:
    """``cpu`` (``CpuAccount.stop``) with each part's CPU per included transfer, in milliseconds."""
    if not cpu or not included:
        return {}
    per = {part: round(s * 1000 / included, 3) for part, s in cpu["cpu_s"].items()}
    return {"cpu": cpu, "cpu_ms_per_transfer": per}


async def _bench(devnet: Devnet, n: int, batch: int, submitters: int, show: bool, drain_s: float,
                 cpu: CpuAccount) -> dict[str, Any]:
    api = devnet.manifest()["api_url"]
    recipients = ["0x" + os.urandom(20).hex() for _ in range(n)]
    cpu.start()
    with make_progress(show) as progress:
        accept_bar = progress.add_task("accepted", total=n)
        final_bar = progress.add_task("final", total=n)
        async with httpx.AsyncClient(timeout=120) as http:
            started = time.time()
            batches, busy_s, unserved = await _submit(http, api, recipients, batch, submitters,
                                                      lambda k: progress.advance(accept_bar, k))
            submitted_s = time.time() - started
            intents = await _follow(http, api, batches, drain_s, lambda k: progress.advance(final_bar, k))
    used = cpu.stop()
    balances = await _chain_balances(devnet, intents)
    included = [i for i in intents if i["status"] == "included"]
    latencies = [i["included_at"] - i["created_at"] for i in included if i.get("included_at")]
    first = min(i["created_at"] for i in intents)
    last = max((i["included_at"] or 0.0 for i in included), default=first)
    return {
        "intents": n, "batch": batch, "submitters": submitters, "accepted": len(intents),
        "intents_accepted_per_s": round(len(intents) / busy_s, 1) if busy_s else None,
        "submit_wall_s": round(submitted_s, 2), "unserved_capacity_retries": unserved.get("capacity", 0),
        "included": len(included), "failed": sum(i["status"] == "failed" for i in intents),
        "transfers_per_s": round(len(included) / (last - first), 1) if last > first else None,
        "latency_p50_s": round(percentile(latencies, 0.5), 3), "latency_p99_s": round(percentile(latencies, 0.99), 3),
        "by_chain": dict(Counter(i["chain"] for i in included)),
        "lost": sum(balances.get(i["recipient"], 0) < UNITS for i in intents),
        "duplicated": sum(balances.get(i["recipient"], 0) > UNITS for i in intents),
        **_cpu_figures(used, len(included)),
    }


def run_intents_bench(*, intents: int, batch: int = 1000, submitters: int = 4,
                      devnet_dir: Path = INTENTS_DEVNET_DIR, json_output: bool = False, drain_s: float = 300.0,
                      base_port: int = 8745, api_port: int = 8995, keep_devnet: bool = False) -> dict[str, Any]:
    devnet = Devnet(devnet_dir, base_port=base_port, api_port=api_port, families=("evm",))
    show = not json_output and sys.stderr.isatty()
    with bench_devnet_and_daemon(devnet, {**BENCH_API_LIMITS, **BENCH_LIMITS}, instance="bench-intents",
                                 keep_devnet=keep_devnet) as daemon:
        _wait_for_capacity(devnet.manifest()["api_url"])
        cpu = _cpu_parts(devnet, daemon)
        result = asyncio.run(_bench(devnet, intents, batch, submitters, show, drain_s, cpu))
    result["daemon"] = "reused" if daemon is None else "started"
    if not json_output:
        print(f"{result['accepted']} intents accepted at {result['intents_accepted_per_s']}/s "
              f"(batches of {batch}, {submitters} clients); {result['included']} included at "
              f"{result['transfers_per_s']} transfers/s; latency p50 {result['latency_p50_s']} s, "
              f"p99 {result['latency_p99_s']} s; lost {result['lost']}, duplicated {result['duplicated']}; "
              f"by chain {result['by_chain']}")
        if "cpu" in result:
            cpu = result["cpu"]
            print(f"CPU per transfer (ms): {result['cpu_ms_per_transfer']}; machine {cpu['machine_busy']:.0%} busy on "
                  f"{cpu['cores']} cores")
    return result


def _wait_for_capacity(api_url: str) -> None:
    from relayer.bench.api import _wait_for_capacity as wait

    wait(api_url)
