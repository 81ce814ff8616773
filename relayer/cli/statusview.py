"""The live status view of ``relayer run`` on a terminal: first what to try (the explorer's URL and one ``relayer send``
that works on this devnet as configured), then chains, pipeline states, throughput, reasons."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from relayer.cli.send import config_flags, send_command
from relayer.store import MessageState

if TYPE_CHECKING:
    from config.settings import Settings
    from relayer.daemon.daemon import RelayerDaemon
    from relayer.pipeline.indexer import OriginIndexer

PREFERRED_SEND = ("l1", "rollup_a")  # the default devnet's message route, when the config has both


def send_hint(settings: Settings, *, devnet: str, config: str | None, role: str,
              program: str | None = None) -> str | None:
    """One ``relayer send`` that works on this devnet as configured: a message from l1 to rollup_a when both are
    EVM chains of the config and the manifest, else between the first two such chains (an origin with a funded devnet
    account, a destination with a TestRecipient), with ``--devnet`` / ``-c`` as ``relayer run`` was given them and
    ``--wait`` when this daemon delivers too (``--role all``). None without a devnet manifest: ``relayer send`` sends
    from its accounts."""
    try:
        chains = json.loads((Path(devnet) / "devnet.json").read_text())["chains"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    evm = [name for name, chain in settings.chains.items()
           if chain.family == "evm" and isinstance(chains.get(name), dict)]
    origins = [name for name in evm if chains[name].get("accounts")]
    targets = [name for name in evm if chains[name].get("contracts", {}).get("test_recipient")]
    pairs = [(o, d) for o in origins for d in targets if o != d]
    if not pairs:
        return None
    origin, destination = PREFERRED_SEND if PREFERRED_SEND in pairs else pairs[0]
    what = ["--body", "hello", *(["--wait"] if role == "all" else [])]
    return send_command(origin, destination, what, config_flags(devnet, config), program)


def catch_up_table(indexers: Mapping[int, OriginIndexer], names: Mapping[int, str]) -> Table | None:
    """A bar per origin catching up a backlog (indexed height / finalized height), or None when none is."""
    rows = [(d, i.backlog) for d, i in indexers.items() if i.backlog is not None]
    if not rows:
        return None
    table = Table("origin", "progress", "indexed / finalized", "blocks/s", "eta", title="backlog catch-up")
    for domain, bp in rows:
        eta = bp.eta_s
        table.add_row(names.get(domain, str(domain)), ProgressBar(total=1.0, completed=bp.fraction, width=40),
                      f"{bp.indexed} / {bp.target} ({100 * bp.fraction:.0f}%)", f"{bp.blocks_per_s:.0f}",
                      "-" if eta is None else f"{eta:.0f}s")
    return table


def halted_origins(indexers: Mapping[int, OriginIndexer], names: Mapping[int, str]) -> list[str]:
    return [names.get(d, str(d)) for d, i in indexers.items() if i.reorg is not None]


class StatusView:
    def __init__(self, daemon: RelayerDaemon, *, log_file: str | None, refresh_s: float = 1.0,
                 send_hint: str | None = None) -> None:
        self.daemon = daemon
        self.log_file = log_file
        self.refresh_s = refresh_s
        self.send_hint = send_hint  # ``send_hint()``: shown under the explorer's URL, above the tables
        self._last: tuple[float, int] | None = None

    def header(self) -> Text:
        """The first lines: where the explorer is, and one ``relayer send`` to try (when there is a devnet)."""
        text = Text("explorer: ")
        text.append(f"{self.daemon.settings.api.url.rstrip('/')}/explorer", style="bold")
        if self.send_hint:
            text.append("\ntry:      ")
            text.append(self.send_hint, style="bold")
        return text

    async def render(self) -> Group:
        d = self.daemon
        names = {c.domain: n for n, c in d.settings.chains.items()}
        chains = Table("chain", "domain", "height", "finalized", "rpc ms", "healthy", "indexed msgs", "signed idx",
                       title="chains")
        for name, st in d.chain_status.items():
            h = st.health
            idx = d.indexers.get(st.domain)
            att = d.attesters.get(st.domain)
            chains.add_row(name, str(st.domain), str(h.latest_height if h else "-"),
                           str(h.finalized_height if h else "-"),
                           f"{h.latency_s * 1000:.0f}" if h else "-", "yes" if h and h.healthy else "NO",
                           str(idx.tree.count if idx else "-"), str(att.latest_index if att else "-"))
        counts = await d.store.aio.counts_by_state()
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
        reasons = ", ".join(f"{r}={n}" for r, n in (await d.store.aio.reasons()).items()) or "none"
        footer = (f"role {d.role} · API {d.settings.api.url} · delivered {delivered_total} ({rate:.1f}/s) · "
                  f"waiting reasons: {reasons} · logs: {self.log_file or 'stderr'} · Ctrl-C stops")
        parts: list[RenderableType] = [self.header(), chains]
        catch_up = catch_up_table(d.indexers, names)
        if catch_up is not None:
            parts.append(catch_up)
        parts.append(pipeline)
        halted = halted_origins(d.indexers, names)
        if halted:
            parts.append(Panel(f"ORIGIN HALTED (reorg deeper than finality, see the origin_reorged log event): "
                               f"{', '.join(halted)}", style="bold red"))
        parts.append(Panel(footer))
        return Group(*parts)

    async def run(self, stop: asyncio.Event) -> None:
        with Live(await self.render(), refresh_per_second=2, screen=False) as live:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.refresh_s)
                live.update(await self.render())
