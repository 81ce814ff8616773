"""The admin API without its key: no header, an empty or wrong bearer token, another scheme, a routing-API-style header,
a key-shaped guess; on every admin route (read and reload the filters, list stuck messages, retry, drop or execute a
message, pause or resume a route, register an integrator or change its payout address, read the registrations).
Each answer is recorded; the test reads the daemon's state and the chains."""

from __future__ import annotations

import base64
from typing import Any

from tests.adversarial.attacker import AttackerContext

HEADERS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Token admin-" + "0" * 32},
    {"Authorization": "Bearer wrong-admin-key-000000"},
    {"Authorization": "bearer " + "0" * 38},
    {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()},
    {"X-API-Key": "admin-" + "0" * 32},
    {"Authorization": "Bearer admin-" + "f" * 32, "X-Forwarded-For": "127.0.0.1"},
]


def _integrator_targets(code: str, payout: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """Register ``code`` (or overwrite the operator's registration) with the attacker's payout address and the whole
    share; read one registration and the list."""
    return [("PUT", f"/admin/v1/integrators/{code}", {"payout_addresses": {"l1": payout, "rollup_a": payout},
                                                      "share": 1}),
            ("GET", f"/admin/v1/integrators/{code}", None), ("GET", "/admin/v1/integrators", None)]


def _targets(message: str, code: str, payout: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [("POST", "/admin/v1/filters/reload", None), ("GET", "/admin/v1/filters", None),
            ("GET", "/admin/v1/messages/stuck?min_wait_s=0", None),
            ("POST", f"/admin/v1/messages/{message}/retry", None),
            ("POST", f"/admin/v1/messages/{message}/drop", {"note": "attacker"}),
            ("POST", f"/admin/v1/messages/{message}/execute", {"gas_limit": 5_000_000}),
            ("POST", "/admin/v1/routes/l1/rollup_a/pause", {"note": "attacker"}),
            ("POST", "/admin/v1/routes/l1/rollup_a/resume", None), ("GET", "/admin/v1/routes/paused", None),
            *_integrator_targets(code, payout)]


async def without_the_admin_key(ctx: AttackerContext, message: str, code: str = "victim",
                                payout: str = "0x" + "ad" * 20) -> dict[str, Any]:
    return await _ask(ctx, _targets(message, code, payout))


async def change_the_payout(ctx: AttackerContext, code: str, payout: str) -> dict[str, Any]:
    """Only the integrator routes: overwrite a registered code's payout address with ``payout``."""
    return await _ask(ctx, _integrator_targets(code, payout))


async def _ask(ctx: AttackerContext, targets: list[tuple[str, str, dict[str, Any] | None]]) -> dict[str, Any]:
    answers: list[dict[str, Any]] = []
    for headers in HEADERS:
        for method, path, body in targets:
            resp = await ctx.http.request(method, f"{ctx.api_url}{path}", headers=headers, json=body)
            answers.append({"method": method, "path": path, "headers": sorted(headers), "status": resp.status_code,
                            "www_authenticate": resp.headers.get("www-authenticate"), "body": resp.text[:300]})
    return {"answers": answers}
