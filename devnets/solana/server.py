"""The devnet's HTTP server: JSON-RPC on ``POST /``, ``GET /health``, and the slot ticker.

Everything that touches the ledger runs on the one event loop (request handlers and the ticker are
coroutines without awaits inside ledger calls), which is what makes the single LiteSVM safe to share, and what
makes an ``xchain_revert`` atomic: no slot advances and no transaction lands halfway through it. The ticker holds
no chain state (only when the next slot is due), so after a revert it goes on from the reverted slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from devnets.solana.errors import ParseError
from devnets.solana.ledger import LedgerParams, SolanaLedger
from devnets.solana.rpc import SolanaRpc
from devnets.solana.store import LedgerStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DevnetConfig:
    """What ``python -m devnets.solana`` is started with."""

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 8899
    slot_ms: int = 400
    ledger: LedgerParams = field(default_factory=LedgerParams)
    allow_snapshots: bool = False
    """Serve ``xchain_snapshot`` / ``xchain_revert`` (``--allow-snapshots``: a test session's own devnet only)."""


def build_app(config: DevnetConfig) -> Starlette:
    """The ASGI app; opening the store and the slot ticker live in its lifespan."""
    state: dict[str, SolanaRpc] = {}

    async def tick(ledger: SolanaLedger) -> None:
        """One slot every ``slot_ms``. A slot whose time passed while the process was not running (a loaded
        machine descheduled it, or the loop was busy) is not made up afterwards: catching up made dozens of slots
        at once, so a transaction went from processed to finalized between two polls and a blockhash handed out
        just before expired at once (a test waiting for exactly "confirmed" then waited in vain)."""
        interval = config.slot_ms / 1000
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at = max(next_at + interval, loop.time() + interval / 2)
            try:
                ledger.advance_slot()
            except Exception:  # keep producing slots; the failure is in the log
                log.exception("solana_slot_advance_failed", slot=ledger.slot)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = LedgerStore(config.state_dir)
        ledger = SolanaLedger(store, config.ledger)
        state["rpc"] = SolanaRpc(ledger, allow_snapshots=config.allow_snapshots)
        ticker = asyncio.create_task(tick(ledger))
        log.info("solana_devnet_started", port=config.port, slot=ledger.slot, state_dir=str(config.state_dir),
                 snapshots="allowed" if config.allow_snapshots else "refused")
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            store.close()
            log.info("solana_devnet_stopped", slot=ledger.slot)

    async def json_rpc(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"jsonrpc": "2.0", "error": ParseError("Parse error").to_json(), "id": None})
        return JSONResponse(state["rpc"].handle(body))

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/", json_rpc, methods=["POST"]), Route("/health", health, methods=["GET"])],
        lifespan=lifespan,
    )


def serve(config: DevnetConfig) -> None:
    """Run the devnet until SIGINT/SIGTERM."""
    uvicorn.run(build_app(config), host=config.host, port=config.port, log_level="warning", access_log=False)
