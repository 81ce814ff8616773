"""Input from requests leaves bounded traces (issue 12): metric label values only from closed sets (others become
``unknown``), a cap on series per family, log fields cut to a length; and the process runs with CPython's default
recursion limit whatever the daemon imports."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import structlog

from relayer.daemon.logconfig import MAX_FIELD_CHARS, configure_logging
from relayer.daemon.metrics import Metrics
from tests.integration.harness import ROOT


def test_a_closed_label_records_any_other_value_as_unknown():
    metrics = Metrics()
    metrics.close_label("chain", ["l1", "solana"])
    for i in range(2000):
        metrics.inc("validator_cosign_refused_total", chain=f"made-up-{i}" + "x" * 2000, reason="no key")
    metrics.inc("validator_cosign_refused_total", chain="solana", reason="no key")
    metrics.set("relayer_chain_up", 1.0, chain="l1")
    assert metrics.value("validator_cosign_refused_total", chain="unknown", reason="no key") == 2000
    assert metrics.value("validator_cosign_refused_total", chain="solana", reason="no key") == 1
    page = metrics.render()
    assert page.count("validator_cosign_refused_total{") == 2 and len(page) < 2000
    assert 'relayer_chain_up{chain="l1"} 1' in page


def test_a_family_holds_at_most_its_series_cap_and_counts_what_it_dropped():
    metrics = Metrics(max_series_per_family=100)
    for i in range(1000):
        metrics.inc("relayer_failures_total", destination="l1", reason=f"r{i}")
        metrics.set("relayer_queue_depth", i, destination="l1", state=f"s{i}")
    metrics.inc("relayer_failures_total", destination="l1", reason="r5")  # an existing series still counts
    assert metrics.value("relayer_failures_total", destination="l1", reason="r5") == 2
    assert metrics.value("relayer_failures_total", destination="l1", reason="r500") == 0
    assert metrics.value("relayer_metric_series_dropped_total", family="relayer_failures_total") == 900
    assert metrics.value("relayer_metric_series_dropped_total", family="relayer_queue_depth") == 900
    assert metrics.render().count("relayer_failures_total{") == 100


def test_log_fields_are_cut_whatever_their_length():
    out = io.StringIO()
    configure_logging("info", json_output=True, stream=out)
    log = structlog.get_logger("t")
    log.warning("cosign_refused", chain="c" * 100_000, detail={"k": ["v" * 5000] * 500}, count=7)
    try:
        raise ValueError("boom " + "z" * 100_000)
    except ValueError:
        log.exception("failed", path="/" + "p" * 3000)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert len(first["chain"]) < MAX_FIELD_CHARS + 40 and first["chain"].endswith("[99800 more chars]")
    assert len(json.dumps(first["detail"])) < 60 * (MAX_FIELD_CHARS + 40) and first["count"] == 7
    assert len(out.getvalue()) < 30_000
    assert len(second["path"]) < MAX_FIELD_CHARS + 40
    assert "ValueError: boom" in second["exception"] and len(second["exception"]) < 8100
    structlog.reset_defaults()


def test_the_daemon_runs_with_the_default_recursion_limit():
    """Everything ``relayer run`` imports (py_ecc raises the limit to 100,000 on import), then the CLI's pin: 1000.
    The live daemon's value is read from /metrics in tests/integration/test_api_depth.py."""
    code = (
        "import sys\n"
        "import relayer.cli.commands as cli\n"
        "import relayer.daemon.daemon, relayer.api.server, relayer.api.http_front, relayer.cli.statusview, "
        "devnets.devnet\n"
        "import adapters.evm.adapter, adapters.cosmos.adapter, adapters.solana.adapter, adapters.keys\n"
        "import light_clients.ethereum.inclusion, light_clients.tendermint.inclusion\n"
        "import light_clients.ethereum.consensus\n"
        "import devnets.solana, devnets.cosmos\n"
        "raised = sys.getrecursionlimit()\n"
        "cli.pin_recursion_limit()\n"
        "import py_ecc.bls, eth_account, eth_keyfile\n"  # imported again later: no effect any more
        "print(raised, sys.getrecursionlimit())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    raised, pinned = map(int, done.stdout.split())
    assert raised == 100_000  # what the imports do: the reason for the pin
    assert pinned == 1000
