"""What a failed test's report gets: each message's record as ``relayer messages show ID`` prints it (read from
the relayer's store, like the command) and its timeline (the daemon's ``GET /v1/explorer/messages/{id}``)."""

from __future__ import annotations

import time
from typing import Any

import httpx


def show_lines(store_url: str, names: dict[int, str], message_id: str) -> list[str]:
    """``relayer messages show MESSAGE_ID``'s output: every field of ``message_view`` as ``{key:>18}: {value}``."""
    from relayer.api.schemas import message_view
    from relayer.store import Store

    store = Store(store_url)
    try:
        found = store.find(message_id)
    finally:
        store.close()
    if not found:
        return ["  (not in the relayer's store: not indexed yet, its origin block not final, or sent before a reset)"]
    return [f"{k:>18}: {v}" for rec in found for k, v in message_view(rec, names).items()]


def timeline_lines(api_url: str, message_id: str) -> list[str]:
    """The message's steps (dispatched, attested, submitted, delivered or dropped) as the explorer has them."""
    from router.client import RoutingClient, RoutingError

    try:
        with RoutingClient(api_url, timeout=5.0, max_retries=0) as client:
            detail = client.message_detail(message_id)
    except (RoutingError, httpx.HTTPError) as exc:
        return [f"  (no timeline from the daemon's API: {exc})"]
    return [_step(step) for step in detail.timeline]


def _step(step: dict[str, Any]) -> str:
    at = step.get("at")
    when = (time.strftime("%H:%M:%S", time.localtime(at)) + f".{int(at % 1 * 1000):03d}"
            if isinstance(at, int | float) else "-")
    rest = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("step", "at") and v is not None)
    return f"  {when}  {step.get('step', '?'):<10} {rest}"


def message_report(store_url: str, api_url: str, names: dict[int, str], sent: list[tuple[str, str]]) -> str:
    """For each ``(message id, what it was)``: its ``messages show`` record, then its timeline."""
    parts = []
    for message_id, what in sent:
        parts += [f"message {message_id} ({what})", *show_lines(store_url, names, message_id), "  timeline:",
                  *timeline_lines(api_url, message_id), ""]
    return "\n".join(parts)
