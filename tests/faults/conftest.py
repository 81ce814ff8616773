"""Fault suite: real anvil devnets, real daemon processes, a real PostgreSQL server of the suite's own.

Every fault test ends on the same three checks: nothing lost (every dispatched id processed on its
destination, read from the chain), nothing delivered twice (from the chain's Process events), and the reason
visible to an operator (``relayer messages show`` and ``/metrics``). Fixtures and helpers for that are here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import ROOT, free_port_block
from tests.pg import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pg_server():
    """The fault suite's own PostgreSQL server (tests that restart it make their own with ``PostgresServer``)."""
    server = PostgresServer(free_port_block(1)).init()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database for one test."""
    return pg_server.new_database()


def messages_show(config: Path, key: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """What an operator sees: ``relayer messages show KEY --json`` run as a subprocess (one JSON object per line)."""
    out = subprocess.run([sys.executable, "-m", "relayer.cli", "messages", "show", key, "-c", str(config), "--json"],
                         check=False, capture_output=True, text=True, cwd=ROOT, env=env, timeout=180)
    assert out.returncode == 0, f"messages show {key} failed ({out.returncode}): {out.stderr[-2000:]}"
    decoder = json.JSONDecoder()
    text, found, pos = out.stdout.strip(), [], 0
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        found.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return found


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text page keyed by (name, labels)."""
    samples = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or line.startswith("#"):
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def metric_samples(api_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the daemon's ``/metrics``."""
    return parse_metrics(httpx.get(f"{api_url}/metrics", timeout=5).text)


def metric(api_url: str, name: str, **labels: str) -> float:
    """One sample of the daemon's ``/metrics`` (0 when absent)."""
    return metric_samples(api_url).get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def endpoints_show(api_url: str, chain: str, down: tuple[int, ...], up: tuple[int, ...]) -> bool:
    """Whether ``relayer_rpc_endpoint_up`` shows ``chain``'s endpoints ``down`` (by index) at 0 and ``up`` at 1."""
    def gauge(endpoint: int) -> float:
        return metric(api_url, "relayer_rpc_endpoint_up", chain=chain, endpoint=str(endpoint))

    return all(gauge(i) == 0 for i in down) and all(gauge(i) == 1 for i in up)
