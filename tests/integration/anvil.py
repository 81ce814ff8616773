"""One anvil process on a free loopback port, for tests that need a bare chain (no devnet deployment)."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.evm import devnet as evm_devnet

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Anvil:
    chain: evm_devnet.EvmDevnetChain
    proc: subprocess.Popen  # type: ignore[type-arg]

    @property
    def url(self) -> str:
        return self.chain.rpc_url

    @property
    def port(self) -> int:
        return self.chain.port

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    def stop(self) -> None:
        evm_devnet.stop_process(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_anvil(chain_id: int, log_dir: Path | None = None, *, gas_limit: int = 60_000_000,
                block_time_s: float | None = None, attempts: int = 5) -> Anvil:
    """Start anvil (automine unless ``block_time_s``) and wait until it answers with ``chain_id``."""
    try:
        evm_devnet.anvil_binary(ROOT)
    except evm_devnet.DevnetError as exc:
        pytest.fail(f"{exc}")
    last: Exception | None = None
    for _ in range(attempts):  # a free port can be taken between probing and binding: try another
        chain = evm_devnet.EvmDevnetChain(f"test{chain_id}", chain_id, chain_id, _free_port(), block_time_s,
                                          gas_limit, 1)
        log = (log_dir / f"anvil-{chain_id}-{chain.port}.log") if log_dir else Path("/dev/null")
        try:
            proc = evm_devnet.start_anvil(chain, ROOT, log)
            node = Anvil(chain, proc)
            evm_devnet.wait_until_answers(chain, proc)
            return node
        except evm_devnet.DevnetError as exc:
            last = exc
            if "proc" in locals():
                evm_devnet.stop_process(proc.pid)
    raise RuntimeError(f"anvil (chain id {chain_id}) did not come up: {last}")
