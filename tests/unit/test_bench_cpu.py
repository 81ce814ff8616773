"""relayer.bench.cpu: CPU seconds per part of a bench, each process counted for the part it belongs to."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relayer.bench.cpu import CpuAccount

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\ntime.sleep(30)\n"


def _burner(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", BURN.format(s=seconds)])


def _until_burned(proc: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + 30
    tick = os.sysconf("SC_CLK_TCK")
    while time.monotonic() < deadline:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / tick >= seconds:
            return
        time.sleep(0.05)
    raise AssertionError("the burner never used its CPU")


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc (Linux)")
def test_each_part_counts_its_own_processes_not_those_it_started() -> None:
    busy, idle = _burner(0.6), _burner(0.0)
    try:
        account = CpuAccount({"busy": [busy.pid], "idle": [idle.pid], "bench": [os.getpid()], "none": []})
        account.start()
        _until_burned(busy, 0.5)
        used = account.stop()
    finally:
        for p in (busy, idle):
            p.kill()
            p.wait()
    assert set(used["cpu_s"]) == {"busy", "idle", "bench"}  # a part without processes is left out
    assert used["cpu_s"]["busy"] >= 0.3
    assert used["cpu_s"]["idle"] < 0.2
    assert used["cpu_s"]["bench"] < 0.3  # this process started the burner: its CPU is the burner part's, not ours
    assert 0.0 < used["machine_busy"] <= 1.0
