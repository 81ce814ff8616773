"""The admin API without its key: no header, an empty or wrong bearer token, another scheme, a routing-API-style
header, a key-shaped guess. Each answer is recorded; the test reads the lists in force and the chains."""

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


async def without_the_admin_key(ctx: AttackerContext) -> dict[str, Any]:
    answers: list[dict[str, Any]] = []
    for headers in HEADERS:
        for method, path in (("POST", "/admin/v1/filters/reload"), ("GET", "/admin/v1/filters")):
            resp = await ctx.http.request(method, f"{ctx.api_url}{path}", headers=headers)
            answers.append({"method": method, "path": path, "headers": sorted(headers), "status": resp.status_code,
                            "www_authenticate": resp.headers.get("www-authenticate"), "body": resp.text[:300]})
    return {"answers": answers}
