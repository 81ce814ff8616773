"""The devnet node: the chain, a block every ``block_ms``, the RPC and REST servers in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
import uvicorn

from devnets.cosmos.chain import CosmosChain
from devnets.cosmos.genesis import GenesisSettings
from devnets.cosmos.server import rest_app, rpc_app

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class NodeSettings:
    """Where the node listens, where it keeps its state and how often it makes blocks."""

    rpc_port: int
    rest_port: int
    state_dir: Path
    block_ms: int = 500
    host: str = "127.0.0.1"
    signer_count: int | None = None
    allow_snapshots: bool = False
    """Serve ``xchain_snapshot`` / ``xchain_revert`` on the RPC port (``--allow-snapshots``: a test session's own
    devnet only; ``devnets.snapshots``)."""


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT / SIGTERM to the node, which stops both servers together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def produce_blocks(chain: CosmosChain, block_ms: int) -> None:
    """One block every ``block_ms`` milliseconds, on a fixed schedule. It holds no chain state (each block is built
    on what ``chain`` holds then), so after an ``xchain_revert`` (handled on this loop, between two blocks) the next
    block is the reverted height + 1."""
    interval = block_ms / 1000
    next_at = time.monotonic()
    while True:
        chain.produce_block()
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def run_node(node: NodeSettings, genesis: GenesisSettings) -> None:
    chain = CosmosChain(genesis, node.state_dir, signer_count=node.signer_count)
    servers = [
        _QuietServer(
            uvicorn.Config(
                rpc_app(chain, allow_snapshots=node.allow_snapshots),
                host=node.host,
                port=node.rpc_port,
                log_level="warning",
            )
        ),
        _QuietServer(
            uvicorn.Config(rest_app(chain), host=node.host, port=node.rest_port, log_level="warning")
        ),
    ]
    producer = asyncio.create_task(produce_blocks(chain, node.block_ms))

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    log.info(
        "cosmos_devnet_started",
        rpc_port=node.rpc_port,
        rest_port=node.rest_port,
        height=chain.height,
        snapshots="allowed" if node.allow_snapshots else "refused",
    )
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        producer.cancel()
        chain.store.close()
        log.info("cosmos_devnet_stopped", height=chain.height)
        sys.stdout.flush()
