"""What the daemon's own routes take and answer (the routing API's are in ``router.schemas``), and the one error
shape (``router.errors.ErrorBody``: every route, the routing API's, the explorer's and the HTTP front's alike)."""

from __future__ import annotations

import re
from typing import Any

from relayer.api.relayer_auth import HEADERS as RELAYER_HEADERS
from relayer.store import MessageRecord
from router.errors import BODY_ERRORS, ErrorBody, bad_input, error_responses  # noqa: F401 - the one error shape

HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "the relayer signature is missing, malformed, stale, over another "
                                             "request or body, or a replay: detail.reason says which "
                                             f"({', '.join(RELAYER_HEADERS)})"},
    429: {"model": ErrorBody, "description": "this client's budget is spent (a relayer's own, or the anonymous one of "
                                             "its address): retry after Retry-After seconds",
          "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
}
COSIGN_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "a CosignRequest (adapters.base): chain, messages, payload, context"}}}}}

# what the HTTP front (relayer.api.http_front, relayer.api.request_guard) may answer to any request, before any route
# runs
FRONT_ANSWERS = {
    408: "the request's headers (api.header_timeout_s) or body (api.body_timeout_s) did not arrive in time",
    429: "a per-client cap (connections, requests in flight, event streams): detail names the api.* key; "
         "see Retry-After",
    431: "request line and headers over api.max_header_bytes",
    503: "a server-wide cap (connections, requests in flight, event streams): detail names the api.* key; "
         "see Retry-After",
}


# an open message's last reason -> what it waits for (one word for the API, the explorer and the metrics' reasons)
_WAITING_FOR = {"no_quorum": "quorum", "no_cosign_quorum": "quorum", "insufficient_funds": "funds",
                "route_paused": "route_resumed", "rate_limited": "rate_limit_room", "origin_reorged": "origin_recovery",
                "underpaid": "payment"}


def message_status(state: str, last_reason: str | None) -> tuple[str, str | None]:
    """One status for callers, with its substate: ``waiting`` (for ``quorum``, ``funds``, ``payment``,
    ``route_resumed``, ``rate_limit_room``, a ``retry`` after a failed attempt, or ``delivery`` when nothing went
    wrong yet), ``submitted``, ``delivered``, or
    ``dropped`` (its reason: ``denied``, ``max_attempts``, ``operator_dropped``, ...)."""
    if state in ("DISPATCHED", "ATTESTED"):
        if last_reason in _WAITING_FOR:
            return "waiting", _WAITING_FOR[last_reason]
        quiet = last_reason is None or last_reason in ("operator_retry", "instance_died", "instance_stopped",
                                                       "lease_expired", "store_unavailable")
        return "waiting", "delivery" if quiet else "retry"
    if state == "DROPPED":
        return "dropped", last_reason
    return state.lower(), None


def message_view(rec: MessageRecord, names: dict[int, str]) -> dict[str, Any]:
    status, substate = message_status(rec.state, rec.last_reason)
    return {
        "id": rec.id,
        "status": status,
        "substate": substate,
        "state": rec.state,
        "origin": names.get(rec.origin, str(rec.origin)),
        "origin_domain": rec.origin,
        "destination": names.get(rec.destination, str(rec.destination)),
        "destination_domain": rec.destination,
        "nonce": rec.nonce,
        "sender": rec.sender,
        "recipient": rec.recipient,
        "origin_tx": rec.origin_tx,
        "origin_height": rec.origin_height,
        "dispatched_at": rec.dispatched_at,
        "attempts": rec.attempts,
        "last_reason": rec.last_reason,
        "last_error": rec.last_error,
        "next_attempt_at": rec.next_attempt_at or None,
        "checkpoint_index": rec.checkpoint_index,
        "delivery_tx": rec.delivery_tx,
        "delivered_height": rec.delivered_height,
        "delivered_at": rec.delivered_at,
        "lease_owner": rec.lease_owner,
        "handed_over_from": rec.handed_over_from,
    }
