"""Relaying keeps its latency whatever the HTTP API is asked (issue 12): one devnet, one daemon, one sitting.

A quiet run measures a delivery (dispatch on l1 -> ``Process`` on rollup_a, read from the chain); then, one at a
time, an abusive load runs from a process of its own (``python -m tests.httpabuse``, clients from their own
loopback addresses) while the same delivery is measured again:

    streams       100 server-sent event streams on a 1,000-intent batch's events
    batches       20 clients posting 1,000-intent batches back to back (their transfers on rollup_b)
    flood         40 keep-alive clients alternating GET /healthz and co-sign requests for new chain names
    deep          10^5-deep JSON arrays and objects to every route of the app
    slow_headers  200 connections trickling their headers a byte a second
    idle          1,000 connections that send nothing

Bound: each loaded delivery takes at most ``2 x quiet + 2 s``. The quiet delivery is ~2.5-3.5 s on the devnet
(l1's finality, the ``finalized`` tag, is most of it), so the bound is ~7-9 s: wide enough for a shared 2-core
machine's noise (the loads themselves take CPU from the daemon), and far below what the issue measured
(2.7 s -> 23.6 s). ``/healthz`` (probed every 0.25 s from 127.0.0.1 on a new connection, 1 s timeout) must
answer 200 within 1 s throughout. Memory: the daemon's RSS after all loads (and a settling pause) is at most twice
the quiet baseline and at most 40 MB above what it was after the first load (bounded state; the allocator keeps
some of what the first load touched, nothing grows per load). The figures are printed as a table (``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import Height
from adapters.evm.devnet import address_of, devnet_key
from adapters.message import address_to_bytes32
from tests.api_routes import every_route
from tests.faults.conftest import metric_samples
from tests.integration.harness import (
    ROOT,
    DaemonProcess,
    DevnetClient,
    free_port_block,
    wait_for,
    write_daemon_config,
)

pytestmark = pytest.mark.integration

DELIVERIES_PER_PHASE = 2
DELIVERY_TIMEOUT_S = 60.0
MIN_PHASE_S = {"slow_headers": 13.0, "idle": 13.0}  # past the 10 s header timeout, so the server cuts some off
LOADED_BOUND = (2.0, 2.0)  # a loaded delivery <= 2 x quiet + 2 s
HEALTH_BOUND_S = 1.0
RSS_BOUND = (2.0,)   # RSS after all the loads <= 2 x the quiet baseline
RSS_GROWTH_MB = 40   # ... and at most 40 MB above what it was after the first load


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class HealthProbe:
    """GET /healthz every 0.25 s on a new connection (1 s timeout; http.client: no client-side set-up in the
    figure), from a thread; the worst answer per phase."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self.host, self.port = api_url.removeprefix("http://").split(":")
        self.phase = "start"
        self.worst: dict[str, float] = {}
        self.failures: dict[str, list[str]] = {}
        self.probes: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            phase, t0 = self.phase, time.monotonic()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=HEALTH_BOUND_S)  # a new connection
            try:
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                problem = None if status == 200 else f"status {status}"
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            finally:
                conn.close()
            took = time.monotonic() - t0
            self.probes[phase] = self.probes.get(phase, 0) + 1
            self.worst[phase] = max(self.worst.get(phase, 0.0), took)
            if problem is not None:
                self.failures.setdefault(phase, []).append(problem)
            self._stop.wait(max(0.0, 0.25 - took))

    def start(self) -> HealthProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)


class LoadProcess:
    """One abusive load in a process of its own (``python -m tests.httpabuse``)."""

    def __init__(self, name: str, api_url: str, **kwargs: Any) -> None:
        args = [sys.executable, "-m", "tests.httpabuse", name, "--url", api_url]
        for k, v in kwargs.items():
            args += ["--arg", f"{k}={json.dumps(v)}"]
        self.name = name
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)), start_new_session=True)

    async def ready(self, timeout_s: float = 90.0) -> None:
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout_s)  # type: ignore[union-attr]
        assert json.loads(line or "{}").get("ready"), (
            f"load {self.name} did not start: {line!r} {self.proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]

    def stop(self) -> dict[str, Any]:
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, f"load {self.name} exited {self.proc.returncode}: {err[-3000:]}"
        return dict(json.loads(out.strip().splitlines()[-1]))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


async def delivery_latency(client: DevnetClient, tag: str) -> float:
    """Seconds from dispatching one message on l1 until rollup_a's ``Process`` event for it is seen."""
    l1, dest = client.adapters["l1"], client.adapters["rollup_a"]
    start = int(await dest.latest_height())
    recipient = address_to_bytes32(client.manifest["chains"]["rollup_a"]["contracts"]["test_recipient"])
    t0 = time.monotonic()
    _tx, ids = await l1.dispatch_messages(client.key("l1"), client.domain("rollup_a"), recipient,  # type: ignore[attr-defined]
                                          [f"abuse probe {tag}".encode()])
    (mid,) = ids
    seen_to = start
    while time.monotonic() - t0 < DELIVERY_TIMEOUT_S:
        latest = int(await dest.latest_height())
        if latest >= seen_to:
            found = await dest.processed_messages(Height(seen_to), Height(latest))  # type: ignore[attr-defined]
            if any(m == mid for m, _h in found):
                return time.monotonic() - t0
            seen_to = max(start, latest - 2)  # re-read a little: a log may show up late
        await asyncio.sleep(0.1)  # polling pace for the chain, not synchronisation
    return math.inf  # reported as "> DELIVERY_TIMEOUT_S" and failed by the bound


def unsigned_batch(api_url: str, n: int = 1000) -> str:
    """A batch of ``n`` same-chain transfers planned for a signer who never signs: it never settles, so its event
    streams stay open (the worst case for a stream)."""
    signer = address_of(devnet_key(0))
    intents = [{"amount": "0.000001", "token": "TST", "recipient": "0x" + f"{i + 1:040x}", "chains": ["l1"]}
               for i in range(n)]
    resp = httpx.post(f"{api_url}/v1/intents", json={"intents": intents, "signer": signer}, timeout=300)
    assert resp.status_code == 202, resp.text[:500]
    body = resp.json()
    assert "unsigned" in body["statuses"], body["statuses"][:5]
    return str(body["batch"])


def series_count(api_url: str, name: str) -> int:
    return sum(1 for (n, _labels) in metric_samples(api_url) if n == name)


async def test_relaying_keeps_its_latency_under_each_abusive_load(devnet, tmp_path) -> None:
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    # ABUSE_OWN_THREAD=false: the same measurement with the API on the relay loop (api.own_thread = false)
    env = {"RELAYER__API__OWN_THREAD": os.environ["ABUSE_OWN_THREAD"]} if "ABUSE_OWN_THREAD" in os.environ else {}
    daemon = DaemonProcess(config, tmp_path / "daemon.log", instance="abuse", env=env).start()
    client = DevnetClient(devnet)
    probe = HealthProbe(daemon.api_url)
    loads: list[LoadProcess] = []
    try:
        wait_for(lambda: httpx.get(f"{daemon.api_url}/v1/chains").status_code == 200, 60, "capacity to be sampled")
        batch = unsigned_batch(daemon.api_url)
        routes = every_route()
        phases: list[tuple[str, dict[str, Any]]] = [
            ("streams", {"path": f"/v1/batches/{batch}/events?timeout_s=3600", "n": 100}),
            ("flood", {"clients": 40}),
            ("deep", {"routes": routes, "clients": 8}),
            ("slow_headers", {"n": 200}),  # these two run past api.header_timeout_s (10 s): MIN_PHASE_S
            ("idle", {"n": 1000}),
            # the batches' intents run on rollup_b, off the measured route: the figure is the daemon's, not the block
            # space of l1 (an admitted 1,000-transfer burst there raised its base fee past the probe's fee cap)
            ("batches", {"clients": 20, "intents": 1000, "chains": ["rollup_b"]}),
        ]
        only = os.environ.get("ABUSE_PHASES")  # a local run of some loads only: ABUSE_PHASES=streams,idle
        if only:
            phases = [p for p in phases if p[0] in only.split(",")]
        await delivery_latency(client, "warm-up")
        probe.start()  # its first probe (phase "start": httpx's first use in the thread) is not counted
        wait_for(lambda: probe.probes.get("start", 0) > 0, 30, "the first /healthz probe")
        probe.phase = "quiet"
        assert daemon.proc is not None
        rss_quiet = rss_bytes(daemon.proc.pid)
        quiet = [await delivery_latency(client, f"quiet-{i}") for i in range(DELIVERIES_PER_PHASE)]
        rows: list[dict[str, Any]] = [{"phase": "quiet", "deliveries_s": quiet, "load": {}}]
        print(f"\nquiet: deliveries {quiet}, /healthz worst {probe.worst.get('quiet')}")
        for name, kwargs in phases:
            probe.phase = f"{name} starting"
            load = LoadProcess(name, daemon.api_url, **kwargs)
            loads.append(load)
            await load.ready()
            probe.phase = name
            started = time.monotonic()
            got = [await delivery_latency(client, f"{name}-{i}") for i in range(DELIVERIES_PER_PHASE)]
            while time.monotonic() - started < MIN_PHASE_S.get(name, 0.0):
                await asyncio.sleep(0.5)  # the load keeps running until the server has cut some off (not sync)
            probe.phase = f"after {name}"
            summary = load.stop()
            wait_for(daemon.healthy, 60, f"the daemon to answer /healthz after {name}")  # raises if it died
            rows.append({"phase": name, "deliveries_s": got, "load": summary,
                         "rss_mb": rss_bytes(daemon.proc.pid) >> 20})
            print(f"\n{name}: deliveries {got}, /healthz worst {probe.worst.get(name)}, load {json.dumps(summary)}")
        probe.phase = "settle"
        series_after = series_count(daemon.api_url, "validator_cosign_refused_total")
        await asyncio.sleep(10)  # the loads' connections close and their buffers are freed (not synchronisation)
        rss_after = rss_bytes(daemon.proc.pid)
        probe.stop()
        _report(rows, probe, rss_quiet, rss_after)
        bound = LOADED_BOUND[0] * max(quiet) + LOADED_BOUND[1]
        for row in rows[1:]:
            assert max(row["deliveries_s"]) <= bound, (row["phase"], row["deliveries_s"], f"bound {bound:.1f} s")
        for phase, worst in probe.worst.items():
            if phase == "start":
                continue
            assert worst <= HEALTH_BOUND_S and not probe.failures.get(phase), (phase, worst, probe.failures.get(phase))
        # bounded, not necessarily given back: the allocator keeps what the first loads touched (~100 MB here), but
        # nothing grows with the loads that follow
        first = rows[1]["rss_mb"]
        assert rss_after <= RSS_BOUND[0] * rss_quiet, (rss_quiet >> 20, rss_after >> 20)
        assert (rss_after >> 20) <= first + RSS_GROWTH_MB, ([r.get("rss_mb") for r in rows], rss_after >> 20)
        assert series_after <= 4, f"validator_cosign_refused_total has {series_after} series"
        if not only:
            _assert_loads_were_refused_as_designed({r["phase"]: r["load"] for r in rows[1:]})
    finally:
        probe.stop()
        for load in loads:
            load.kill()
        daemon.stop()
        await client.close()


def _assert_loads_were_refused_as_designed(loads: dict[str, dict[str, Any]]) -> None:
    """What each load met: the caps and limits answered, nothing was a 5xx other than a 503 naming a cap."""
    batches = loads["batches"]
    assert {"429", "503"} & set(batches["statuses"]) and "api.max_intents_per_s" in json.dumps(batches["samples"])
    deep = loads["deep"]
    assert set(deep["statuses"]) <= {"400", "429", "503"} and deep["statuses"].get("400", 0) > 0, deep
    assert "max_json_depth" in deep["samples"]["400"]
    slow = loads["slow_headers"]
    assert slow["counts"].get("closed_by_server", 0) > 0, slow
    idle = loads["idle"]
    assert idle["counts"].get("closed_by_server", 0) > 0, idle
    for name, load in loads.items():
        for status in load["statuses"]:
            assert not status.startswith("5") or status == "503", (name, load["statuses"], load["samples"])


def _report(rows: list[dict[str, Any]], probe: HealthProbe, rss_quiet: int, rss_after: int) -> None:
    print("\nAPI abuse vs relaying (delivery l1 -> rollup_a, seconds; /healthz worst answer)")
    print(f"{'phase':<14}{'deliveries_s':<20}{'healthz_worst_s':<18}{'rss_mb':<8}load statuses / counts")
    for row in rows:
        lat = ", ".join(f"{x:.2f}" for x in row["deliveries_s"])
        worst = probe.worst.get(row["phase"], float("nan"))
        load = row["load"]
        print(f"{row['phase']:<14}{lat:<20}{worst:<18.3f}{row.get('rss_mb', '')!s:<8}{load.get('statuses', '')} "
              f"{load.get('counts', '')} {load.get('errors', '')}")
    print(f"RSS: quiet {rss_quiet >> 20} MB, after the loads {rss_after >> 20} MB")
    print(json.dumps({"rows": rows, "healthz_worst": probe.worst, "healthz_failures": probe.failures}, default=str))
