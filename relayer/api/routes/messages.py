"""One message's pipeline record: ``GET /v1/messages/{id or tx hash}`` (the list is the explorer's)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, HTTPException

from relayer.api.daemon_view import DaemonView
from relayer.api.schemas import HEX32, bad_input, error_responses, message_view

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


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

    @api.get("/v1/messages/{message_id}/gas", responses=error_responses(400, 404))
    async def message_gas(message_id: str, refund_to: str | None = None) -> dict[str, Any]:
        """What the message still owes its origin's paymaster under relayer.gas_payment, and (with ``refund_to``, the
        payer's address) the call that pays it: ``to``, ``data``, ``value`` for the payer's wallet to sign. Reads
        only; anyone may pay for any message. From an origin paid through the relayer's fee account (Solana, Cosmos):
        ``fee_account``, ``how_to_pay`` and, while something is owed, ``pay``: the top-up a wallet signs (``to``,
        ``value``, ``memo``, and what else its transaction must hold)."""
        if not HEX32.match(message_id):
            raise bad_input("message_id", f"{message_id!r} is not a 0x-prefixed 32-byte hex message id")
        if refund_to is not None and not ADDRESS.match(refund_to):
            raise bad_input("refund_to", f"{refund_to!r} is not a 0x-prefixed 20-byte hex address")
        owed = await daemon.gas_owed(message_id, refund_to)
        if owed is None:
            raise HTTPException(404, f"no message with id {message_id}")
        return owed

    @api.get("/v1/routes/profit")
    async def route_profit() -> dict[str, Any]:
        """Per route: what senders paid this relayer's paymasters against what its deliveries spent, in USD."""
        return {"routes": await daemon.route_profits()}

    return api

