"""A lying l1 RPC node run by the attacker: a real anvil forked from the public l1 endpoint, on which the attacker
bridges all its TST to rollup_a. The dispatch never happened on l1, yet on this node it is consistent in every
method (headers and their hashes, receipts and their root, eth_getLogs, the mailbox's count and root): a
validator that trusts its one RPC node would sign it and the relayer would mint the TST on rollup_a.

With ``beacon_port`` (0: any free port, named in the ready file) the attacker also serves a beacon endpoint for its
fork: its own ``devnets.beacon`` process following the fork (a sync committee of its own: it does not hold the devnet
committee's secret), behind a proxy that passes ``genesis`` and ``bootstrap`` through from the honest endpoint (so the
trusted block root still bootstraps) and answers every update from its own chain.

And it probes the honest beacon endpoint with malformed requests (every route is public and read-only; none may
make it sign anything of the caller's choosing).

The attack writes ``ready_file`` (JSON: the forged message, the fork's URL) once the fork serves the forged
dispatch, then serves until ``stop_file`` exists (or ``max_seconds``), and returns what it did.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from adapters.base import Domain
from adapters.evm import devnet as evm_devnet
from adapters.evm.adapter import EvmAdapter
from adapters.message import address_to_bytes32
from tests.adversarial.attacker import AttackerContext

ROOT = Path(__file__).resolve().parents[3]
PASSED_THROUGH = ("/eth/v1/beacon/genesis", "/eth/v1/beacon/light_client/bootstrap/")


def _start_fork(upstream: str, port: int, directory: Path) -> subprocess.Popen[bytes]:
    args = [evm_devnet.anvil_binary(ROOT), "--host", "127.0.0.1", "--port", str(port), "--fork-url", upstream,
            "--block-time", "1", "--slots-in-an-epoch", "1", "--order", "fifo"]
    return subprocess.Popen(args, stdout=open(directory / "fork.log", "ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


class _SplitBeacon:
    """The attacker's beacon endpoint: genesis and bootstrap from the honest one, updates from its own."""

    def __init__(self, port: int, honest: str, own: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream = honest if self.path.startswith(PASSED_THROUGH) else own
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=30) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


async def _probe_honest_beacon(http: httpx.AsyncClient, url: str) -> dict[str, int]:
    """Malformed and out-of-range requests to the honest beacon endpoint: the status of each."""
    lc = f"{url}/eth/v1/beacon/light_client"
    probes = {
        "short_root": f"{lc}/bootstrap/0x1234",
        "unknown_root": f"{lc}/bootstrap/0x" + "ab" * 32,
        "negative_period": f"{lc}/updates?start_period=-1&count=1",
        "huge_count": f"{lc}/updates?start_period=0&count=" + "9" * 30,
        "no_count": f"{lc}/updates?start_period=0",
        "bad_block_id": f"{url}/eth/v1/beacon/headers/..%2f..%2fetc",
        "future_slot": f"{url}/eth/v1/beacon/headers/99999999999",
    }
    found = {name: (await http.get(target)).status_code for name, target in probes.items()}
    found["post_finality_update"] = (await http.post(f"{lc}/finality_update", json={"data": {}})).status_code
    found["valid_after"] = (await http.get(f"{lc}/finality_update")).status_code
    return found


async def forked_l1(ctx: AttackerContext, *, port: int, ready_file: str, stop_file: str, destination: str = "rollup_a",
                    beacon_port: int | None = None, max_seconds: float = 600.0) -> dict[str, Any]:
    l1 = ctx.settings.chains["l1"]
    assert l1.family == "evm" and l1.beacon_url is not None
    directory = Path(tempfile.mkdtemp(prefix="attacker-fork-"))
    fork_url = f"http://127.0.0.1:{port}"
    fork = _start_fork(l1.rpc_url, port, directory)
    beacon_proc: subprocess.Popen[bytes] | None = None
    split: _SplitBeacon | None = None
    sender = EvmAdapter("l1", l1.model_copy(update={"rpc_url": fork_url}))
    try:
        evm_devnet.wait_until_answers(evm_devnet.EvmDevnetChain("fork", 0, l1.chain_id, port, 1.0, 0, 0), fork, 60)
        fork_block = int(evm_devnet.rpc_call(fork_url, "eth_blockNumber"), 16)
        amount = await sender.token_balance("TST", ctx.addresses["l1"])  # all of it: it stays on l1 for real
        tx, message_id = await sender.send_token(ctx.keys["evm"], "TST", amount,
                                                 Domain(ctx.settings.chains[destination].domain),
                                                 address_to_bytes32(ctx.addresses[destination]))
        height = int(await sender.tx_height(tx))
        (forged,) = [d for d in await sender.fetch_dispatched(height, height) if d.id == message_id]
        beacon_url = None
        if beacon_port is not None:
            from devnets.beacon import (
                ChainSpec,
                start_beacon_devnet,
                wait_until_ready,
                write_committee_secret,
            )

            write_committee_secret(directory / "secret")  # its own: it cannot know the devnet committee's
            spec = ChainSpec("l1", l1.chain_id, fork_url, "finalized", 2)
            beacon_proc = start_beacon_devnet([spec], directory / "ports.json", directory / "secret",
                                              log_path=directory / "beacon.log")
            own = wait_until_ready(directory / "ports.json", ["l1"], process=beacon_proc)["l1"]
            split = _SplitBeacon(beacon_port, l1.beacon_url, own)
            beacon_url = f"http://127.0.0.1:{split.port}"
        probes = await _probe_honest_beacon(ctx.http, l1.beacon_url)
        result = {"fork_url": fork_url, "beacon_url": beacon_url, "fork_block": fork_block, "forged_height": height,
                  "forged_id": "0x" + bytes(message_id).hex(), "forged_nonce": forged.message.nonce,
                  "amount": amount, "probes": probes}
        Path(ready_file).write_text(json.dumps(result))
        deadline = time.monotonic() + max_seconds
        while not Path(stop_file).exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        result["served_s"] = round(max_seconds - (deadline - time.monotonic()), 1)
        return result
    finally:
        await sender.close()
        if split is not None:
            split.close()
        if beacon_proc is not None:
            evm_devnet.stop_process(beacon_proc.pid)
        evm_devnet.stop_process(fork.pid)
