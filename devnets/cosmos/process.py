"""Starting the devnet as a subprocess and waiting for it: what tests and ``devnets.devnet`` use."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from devnets.snapshots import ALLOW_FLAG


class DevnetNotReady(Exception):
    """The devnet did not serve a block on both ports before the deadline (or its process exited)."""


def start_cosmos_devnet(
    *,
    rpc_port: int,
    rest_port: int,
    state_dir: Path,
    block_ms: int = 500,
    validators: int = 4,
    signers: int | None = None,
    chain_id: str | None = None,
    log_path: Path | None = None,
    escrow: tuple[str, int] | None = None,
    allow_snapshots: bool = False,
) -> subprocess.Popen[bytes]:
    """``python -m devnets.cosmos ...`` in the background; its output goes to ``log_path`` (or is dropped).
    ``escrow``: (bech32 address, amount): the only account holding the token denom at genesis.
    ``allow_snapshots``: it serves ``xchain_snapshot`` / ``xchain_revert`` (``devnets.snapshots``; refused
    without)."""
    command = [
        sys.executable, "-m", "devnets.cosmos",
        "--rpc-port", str(rpc_port), "--rest-port", str(rest_port), "--state-dir", str(state_dir),
        "--block-ms", str(block_ms), "--validators", str(validators),
    ]  # fmt: skip
    if signers is not None:
        command += ["--signers", str(signers)]
    if chain_id is not None:
        command += ["--chain-id", chain_id]
    if escrow is not None:
        command += ["--escrow-address", escrow[0], "--escrow-balance", str(escrow[1])]
    if allow_snapshots:
        command.append(ALLOW_FLAG)
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)


def wait_until_ready(
    rpc_url: str,
    rest_url: str,
    *,
    min_height: int = 1,
    timeout: float = 20.0,
    process: subprocess.Popen[bytes] | None = None,
) -> int:
    """Poll ``/status`` and the REST node info until the chain is at ``min_height``; the height reached."""
    deadline = time.monotonic() + timeout
    last_error = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise DevnetNotReady(f"devnet exited with code {process.returncode}")
            try:
                status = client.get(f"{rpc_url}/status").json()["result"]
                height = int(status["sync_info"]["latest_block_height"])
                client.get(f"{rest_url}/cosmos/base/tendermint/v1beta1/node_info").raise_for_status()
                if height >= min_height:
                    return height
                last_error = f"height {height}"
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last_error = str(exc)
            time.sleep(0.05)
    raise DevnetNotReady(f"devnet not ready within {timeout}s: {last_error}")
