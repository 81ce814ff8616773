"""One test session's devnet: the chains of the families asked for, the relayer daemon on them, the snapshots a
reset goes back to, and the timings the plugin reports."""

from __future__ import annotations

import itertools
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import RelayerError
from devnets.anvil_mining import AnvilSnapshots
from devnets.devnet import Devnet
from relayer.testing.chains import FAMILIES, ChainInfo, XChainError, chains_of
from relayer.testing.clients import ChainClients
from relayer.testing.daemon import Daemon
from relayer.testing.ports import free_port_block
from relayer.testing.snapshots import SolanaCosmosSnapshots, SqliteSnapshot

FIRST_START_TIMEOUT_S = 120.0  # a cold daemon on a loaded machine: interpreter, imports, light clients
START_TIMEOUT_S = 60.0


@dataclass
class Timings:
    """Seconds: the devnet's ``up``, the first (cold) daemon start until ``/readyz``, the baseline (stop, snapshot,
    start again), their sum, and every reset."""

    devnet_up_s: float = 0.0
    first_daemon_s: float = 0.0
    baseline_s: float = 0.0
    session_start_s: float = 0.0
    resets_s: list[float] = field(default_factory=list)

    def summary(self, families: tuple[str, ...]) -> str:
        text = (f"xchain: families {', '.join(families)}; session start {self.session_start_s:.1f} s (devnet up "
                f"{self.devnet_up_s:.1f} s, first daemon start {self.first_daemon_s:.1f} s, snapshot and restart "
                f"{self.baseline_s:.1f} s)")
        if not self.resets_s:
            return text + "; no resets"
        return (text + f"; {len(self.resets_s)} resets: median {statistics.median(self.resets_s):.2f} s "
                f"(min {min(self.resets_s):.2f} s, max {max(self.resets_s):.2f} s)")

    def as_json(self) -> dict[str, Any]:
        return {"devnet_up_s": self.devnet_up_s, "first_daemon_s": self.first_daemon_s,
                "baseline_s": self.baseline_s, "session_start_s": self.session_start_s, "resets_s": self.resets_s}


class XChainSession:
    """``start`` brings the devnet up on free ports, starts the daemon, and takes the baseline: the daemon stopped,
    every chain and the store snapshotted together, the daemon started again. ``reset`` goes back to it."""

    def __init__(self, directory: Path, families: tuple[str, ...]) -> None:
        unknown = set(families) - set(FAMILIES)
        if unknown:
            raise XChainError(f"unknown chain families {sorted(unknown)}; known: {', '.join(FAMILIES)}")
        self.directory = directory
        self.families = tuple(f for f in FAMILIES if f in families or f == "evm")
        self.timings = Timings()
        self.dirty = False  # a test used the chains since the last baseline or reset
        ports = 21 if len(self.families) > 1 else 3  # anvils at base+0..2, Cosmos at +10 and +11, Solana at +20
        # allow_snapshots: this session's own devnet serves in-place snapshots (xchain_snapshot) to its resets
        self.devnet = Devnet(directory / "devnet", base_port=free_port_block(ports), api_port=free_port_block(1),
                             families=self.families, allow_snapshots=True)
        self.daemon = Daemon(self.devnet.config_path, self.devnet.api_url, directory)
        self._clients: ChainClients | None = None
        self._snapshots: tuple[AnvilSnapshots, SolanaCosmosSnapshots, SqliteSnapshot] | None = None

    @property
    def api_url(self) -> str:
        return self.devnet.api_url

    @property
    def clients(self) -> ChainClients:
        if self._clients is None:
            raise XChainError("the xchain session is not started")
        return self._clients

    @property
    def manifest(self) -> dict[str, Any]:
        return self.devnet.manifest()

    def chains(self) -> dict[str, ChainInfo]:
        return chains_of(self.manifest)

    def start(self) -> None:
        marks = [time.monotonic()]
        try:
            self.daemon.prepare()  # the daemon's fork server imports while the devnet comes up
            self.devnet.up()
            marks.append(time.monotonic())
            self.daemon.start(FIRST_START_TIMEOUT_S, record_modules=True)
            self.daemon.wait_healthy(START_TIMEOUT_S, "/readyz")
            marks.append(time.monotonic())
            self._snapshots = self._snapshot_parts()
            self.baseline()
            marks.append(time.monotonic())
            self._clients = ChainClients(self.devnet.config_path)
        except BaseException:
            self.close()
            raise
        t = self.timings
        t.devnet_up_s, t.first_daemon_s, t.baseline_s = (b - a for a, b in itertools.pairwise(marks))
        t.session_start_s = time.monotonic() - marks[0]

    def _snapshot_parts(self) -> tuple[AnvilSnapshots, SolanaCosmosSnapshots, SqliteSnapshot]:
        chains = self.manifest["chains"]
        others = {n: (c["family"], c["rpc_url"]) for n, c in chains.items() if c["family"] in ("solana", "cosmos")}
        return (self.devnet.anvil_snapshots(), SolanaCosmosSnapshots(others),
                SqliteSnapshot(self.devnet.dir / "relayer.db", self.directory / "snapshot" / "relayer.db"))

    def _each_snapshot(self, step: str) -> None:
        """``take`` or ``restore`` on every part; an anvil that refuses is the plugin's ``XChainError``."""
        assert self._snapshots is not None
        for part in self._snapshots:
            try:
                getattr(part, step)()
            except RelayerError as exc:  # a devnet refused (DevnetError)
                raise XChainError(f"snapshot {step} refused: {exc}") from exc

    def baseline(self) -> None:
        """Make the chains' and the store's state now the one every reset goes back to: the daemon is stopped
        cleanly, everything snapshotted while nothing moves, then the daemon started again. (A session fixture of
        the suite calls it after deploying its own contracts once.)"""
        if self._snapshots is None:
            raise XChainError("the xchain session is not started")
        self.daemon.stop()
        self._each_snapshot("take")
        self.daemon.start(START_TIMEOUT_S)
        self.dirty = False

    def reset(self) -> float:
        """Back to the baseline: the daemon killed, every anvil reverted (and snapshotted again), the Solana and
        Cosmos devnets reverted in place (``xchain_revert``), the relayer's store put back, the daemon started (from
        a warm standby); the seconds it took."""
        if self._snapshots is None:
            raise XChainError("the xchain session is not started")
        started = time.monotonic()
        self.daemon.kill()
        self._each_snapshot("restore")
        self.daemon.start(START_TIMEOUT_S)
        self.clients.rebuild()
        took = time.monotonic() - started
        self.timings.resets_s.append(took)
        self.dirty = False
        return took

    def close(self) -> None:
        """Everything down: the fixture's adapters, the daemon and its standbys, the devnet's processes."""
        if self._clients is not None:
            self._clients.close()
            self._clients = None
        self.daemon.close()
        self.devnet.down()
