"""Where a bench's CPU time goes: seconds of CPU each part of the run used (the daemon, the chains, the bench client)
and how busy the machine was, read from ``/proc`` (Linux; elsewhere the figures are left out).

A bench's devnet, daemon and client share one machine. When the machine is busy, throughput is bounded by the sum of
their CPU per transfer, not by any one of them; these figures say which part to make cheaper. A part is a set of
root processes with every descendant (the anvil binary runs under its npm wrapper).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _ticks_per_s() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 (state) is index 0


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _tree(roots: Iterable[int], children: Mapping[int, list[int]], other_roots: set[int]) -> set[int]:
    """``roots`` and their descendants, but not a subtree another part is rooted at (the bench starts the daemon and
    the chains: they count for their own parts)."""
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(c for c in children.get(pid, []) if c not in other_roots)
    return seen


def _cpu_ticks(pids: Iterable[int]) -> int:
    """utime + stime of each live process in ``pids``."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])
    return total


def _machine_ticks() -> tuple[int, int]:
    """(busy, all) jiffies of every core since boot (``/proc/stat``'s first line; idle and iowait are not busy)."""
    values = [int(v) for v in (PROC / "stat").read_text().splitlines()[0].split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


class CpuAccount:
    """CPU seconds per part between ``start()`` and ``stop()``. ``parts``: name -> root pids (a part without any is
    left out). A process that exits in between takes its seconds with it (each part here runs for the whole
    measurement)."""

    def __init__(self, parts: Mapping[str, Iterable[int]]) -> None:
        self.available = (PROC / "stat").exists()
        self._roots = {name: list(pids) for name, pids in parts.items() if pids}  # (a daemon it did not start)
        self._pids: dict[str, set[int]] = {}
        self._start: dict[str, int] = {}
        self._machine: tuple[int, int] = (0, 0)
        self._t0 = 0.0

    def start(self) -> None:
        if not self.available:
            return
        children = _children_of()
        roots = {pid for pids in self._roots.values() for pid in pids}
        self._pids = {name: _tree(pids, children, roots) for name, pids in self._roots.items()}
        self._start = {name: _cpu_ticks(pids) for name, pids in self._pids.items()}
        self._machine, self._t0 = _machine_ticks(), time.monotonic()

    def stop(self) -> dict[str, Any]:
        """``{"cpu_s": {part: seconds}, "machine_busy": fraction of every core, "wall_s": seconds, "cores": n}``;
        empty without ``/proc``."""
        if not self.available:
            return {}
        tick = _ticks_per_s()
        busy0, all0 = self._machine
        busy1, all1 = _machine_ticks()
        return {"cpu_s": {name: round((_cpu_ticks(pids) - self._start[name]) / tick, 2)
                          for name, pids in self._pids.items()},
                "machine_busy": round((busy1 - busy0) / max(1, all1 - all0), 3),
                "wall_s": round(time.monotonic() - self._t0, 2), "cores": os.cpu_count()}
