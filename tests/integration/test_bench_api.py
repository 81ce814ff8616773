"""``relayer bench api`` runs end to end on the session devnet with tiny numbers and prints its JSON figures
(no speed assertions: only that it measured, saw no errors and lost no intent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.integration.harness import ROOT, wait_for

pytestmark = pytest.mark.integration


def test_bench_api_end_to_end(devnet):
    api_url = devnet.manifest()["api_url"]
    proc = subprocess.run([sys.executable, "-m", "relayer.cli", "bench", "api", "--clients", "6", "--seconds", "4",
                           "--json", "--devnet", str(devnet.dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["clients"] == 6 and figures["seconds"] >= 4
    assert figures["errors"] == 0 and figures["error_samples"] == []
    assert figures["requests"] > 0 and figures["rps"] > 0 and 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert set(figures["endpoints"]) >= {"GET /v1/chains", "POST /v1/quote", "GET /v1/messages", "POST /v1/intents"}
    for e in figures["endpoints"].values():
        assert set(e) == {"requests", "rps", "p50_ms", "p99_ms", "errors"} and e["errors"] == 0
    intents = figures["intents"]
    assert intents["accepted"] > 0 and intents["final"] == intents["found"] == intents["accepted"]
    assert intents["lost"] == 0 and sum(intents["statuses"].values()) == intents["accepted"]
    assert figures["daemon"] == "started" and figures["daemon_cpu_s"] > 0 and figures["client_cpu_s"] > 0

    def daemon_gone() -> bool:  # the bench stops the daemon it started
        try:
            httpx.get(f"{api_url}/healthz", timeout=1)
        except httpx.HTTPError:
            return True
        return False

    wait_for(daemon_gone, 30, "the bench daemon to stop")
