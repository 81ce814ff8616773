"""The live status view of ``relayer run`` on a terminal: chains, pipeline states, throughput, reasons."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from relayer.store import MessageState

if TYPE_CHECKING:
    from relayer.app import RelayerDaemon


class StatusView:
    def __init__(self, daemon: RelayerDaemon, *, log_file: str | None, refresh_s: float = 1.0) -> None:
        self.daemon = daemon
        self.log_file = log_file
        self.refresh_s = refresh_s
        self._last: tuple[float, int] | None = None

    def render(self) -> Group:
        d = self.daemon
        names = {c.domain: n for n, c in d.settings.chains.items()}
        chains = Table("chain", "domain", "height", "finalized", "rpc ms", "healthy", "indexed msgs", "signed idx", title="chains")
        for name, st in d.chain_status.items():
            h = st.health
            idx = d.indexers.get(st.domain)
            att = d.attesters.get(st.domain)
            chains.add_row(name, str(st.domain), str(h.latest_height if h else "-"), str(h.finalized_height if h else "-"),
                           f"{h.latency_s * 1000:.0f}" if h else "-", "yes" if h and h.healthy else "NO",
                           str(idx.tree.count if idx else "-"), str(att.latest_index if att else "-"))
        counts = d.store.counts_by_state()
        states = [s.value for s in MessageState]
        pipeline = Table("destination", *states, title="messages by state")
        delivered_total = 0
        for dest in sorted({k[0] for k in counts}):
            row = [str(counts.get((dest, s), 0)) for s in states]
            delivered_total += counts.get((dest, MessageState.DELIVERED.value), 0)
            pipeline.add_row(names.get(dest, str(dest)), *row)
        now = time.monotonic()
        rate = 0.0
        if self._last is not None and now > self._last[0]:
            rate = (delivered_total - self._last[1]) / (now - self._last[0])
        self._last = (now, delivered_total)
        reasons = ", ".join(f"{r}={n}" for r, n in d.store.reasons().items()) or "none"
        footer = (f"role {d.role} · API {d.settings.api.url} · delivered {delivered_total} ({rate:.1f}/s) · "
                  f"waiting reasons: {reasons} · logs: {self.log_file or 'stderr'} · Ctrl-C stops")
        return Group(chains, pipeline, Panel(footer))

    async def run(self, stop: asyncio.Event) -> None:
        with Live(self.render(), refresh_per_second=2, screen=False) as live:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.refresh_s)
                live.update(self.render())
