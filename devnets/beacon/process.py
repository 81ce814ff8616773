"""Starting, waiting for and stopping the devnet beacon process (``python -m devnets.beacon``)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import httpx

from devnets.beacon.committee import SECRET_SIZE
from devnets.beacon.follower import ChainSpec

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class BeaconNotReady(RuntimeError):
    """The beacon process did not serve every chain before the deadline (or it exited)."""


def write_committee_secret(path: Path) -> None:
    """A fresh committee secret (32 random bytes), readable by its owner only."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(secrets.token_bytes(SECRET_SIZE))


def start_beacon_devnet(chains: Sequence[ChainSpec], ports_file: Path, secret_file: Path, *,
                        log_path: Path | None = None, poll_interval_s: float = 0.1) -> subprocess.Popen[bytes]:
    """Start one process following every chain in ``chains`` (committees from ``secret_file``, made with
    ``write_committee_secret``); wait for it with ``wait_until_ready``."""
    ports_file.unlink(missing_ok=True)
    args = [sys.executable, "-m", "devnets.beacon", "--chains", json.dumps([asdict(c) for c in chains]),
            "--ports-file", str(ports_file), "--secret-file", str(secret_file),
            "--poll-interval-s", str(poll_interval_s)]
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)


def wait_until_ready(ports_file: Path, names: Sequence[str], *, timeout: float = 60.0,
                     process: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1") -> dict[str, str]:
    """Each chain's beacon URL, once its ``/eth/v1/node/health`` answers 200 (caught up with its node)."""
    deadline = time.monotonic() + timeout
    last = "no ports file yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise BeaconNotReady(f"beacon devnet exited with code {process.returncode} (see its log)")
            try:
                ports = json.loads(ports_file.read_text())
                urls = {name: f"http://{host}:{ports[name]}" for name in names}
                waiting = [n for n, url in urls.items() if client.get(f"{url}/eth/v1/node/health").status_code != 200]
                if not waiting:
                    return urls
                last = f"not caught up: {', '.join(waiting)}"
            except (OSError, ValueError, KeyError, httpx.HTTPError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
    raise BeaconNotReady(f"beacon devnet not ready within {timeout:.0f}s: {last}")


def finalized_block_root(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(slot, root) of the chain's finalized block: what a validator may pin as its ``trusted_block_root``."""
    doc = httpx.get(f"{url}/eth/v1/beacon/headers/finalized", timeout=timeout).raise_for_status().json()
    return int(doc["data"]["header"]["message"]["slot"]), str(doc["data"]["root"])
