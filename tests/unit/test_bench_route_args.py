"""``relayer bench route --daemons N``: several daemons share one database, so more than one needs a PostgreSQL
``--store-url``; a bad value is a usage error (exit 2) naming what to pass, before any devnet starts."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("args", "needle"), [
    (["--daemons", "2"], "pass --store-url postgresql://"),
    (["--daemons", "2", "--store-url", "sqlite:///x.db"], "pass --store-url postgresql://"),
    (["--daemons", "0"], "--daemons must be at least 1"),
])
def test_bench_route_refuses_daemons_without_a_shared_database(args: list[str], needle: str, tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "relayer.cli", "bench", "route", "--devnet", str(tmp_path / "d"),
                          *args], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and needle in out.stderr, (out.returncode, out.stderr[-500:])
    assert not (tmp_path / "d").exists()  # nothing started
