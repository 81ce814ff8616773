"""Starting, waiting for and stopping a devnet server process (``python -m devnets.solana``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from devnets.snapshots import ALLOW_FLAG

_SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The directory holding the ``devnets`` package, so the child imports this very code from any cwd."""


class DevnetNotReady(RuntimeError):
    """The devnet did not answer ``getHealth`` before the deadline (or its process exited)."""


def start_solana_devnet(
    port: int,
    state_dir: Path | str,
    *,
    slot_ms: int = 400,
    faucet_lamports: int | None = None,
    extra_args: list[str] | None = None,
    log_path: Path | str | None = None,
    allow_snapshots: bool = False,
) -> subprocess.Popen[bytes]:
    """Start the devnet on ``127.0.0.1:port`` over ``state_dir``; wait with ``wait_until_ready``.
    ``allow_snapshots``: it serves ``xchain_snapshot`` / ``xchain_revert`` (``devnets.snapshots``; refused
    without)."""
    args = [
        sys.executable,
        "-m",
        "devnets.solana",
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        "--slot-ms",
        str(slot_ms),
    ]
    if faucet_lamports is not None:
        args += ["--faucet-lamports", str(faucet_lamports)]
    if allow_snapshots:
        args.append(ALLOW_FLAG)
    args += extra_args or []
    out = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE_ROOT), env.get("PYTHONPATH", "")) if p)
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def devnet_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def wait_until_ready(url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``getHealth`` until it answers ``"ok"``; raises ``DevnetNotReady`` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DevnetNotReady(f"devnet process exited with {process.returncode}")
        try:
            answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}, timeout=2.0)
            if answer.json().get("result") == "ok":
                return
            last_error = answer.text
        except (httpx.HTTPError, ValueError) as exc:
            last_error = repr(exc)
        time.sleep(0.05)
    raise DevnetNotReady(f"solana devnet at {url} not ready after {timeout}s: {last_error}")


def stop_solana_devnet(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


stop = stop_solana_devnet
