"""One message's pipeline record: ``GET /v1/messages/{id or tx hash}`` (the list is the explorer's)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from relayer.api.daemon_view import DaemonView
from relayer.api.schemas import HEX32, bad_input, error_responses, message_view


def message_routes(daemon: DaemonView) -> APIRouter:
    api = APIRouter()
    names = {c.domain: n for n, c in daemon.settings.chains.items()}

    @api.get("/v1/messages/{key}", responses=error_responses(400, 404))
    async def show_message(key: str) -> dict[str, Any]:
        if not HEX32.match(key):
            raise bad_input("key", f"{key!r} is not a 0x-prefixed 32-byte hex message id or transaction hash")
        found = await daemon.store.aio.find(key)
        if not found:
            raise HTTPException(404, f"no message with id or transaction hash {key}")
        return {"messages": [message_view(r, names) for r in found]}

    return api
