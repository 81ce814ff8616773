"""What the attacker can see without any key: the chains' heights, the daemon's API, its own balances."""

from __future__ import annotations

from typing import Any

from tests.adversarial.attacker import AttackerContext


async def world(ctx: AttackerContext) -> dict[str, Any]:
    heights = {name: int(await adapter.latest_height()) for name, adapter in ctx.adapters().items()}
    health = await ctx.http.get(f"{ctx.api_url}/healthz")
    l1 = ctx.adapters()["l1"]
    return {"heights": heights, "healthz": health.status_code,
            "l1_tst": await l1.token_balance("TST", ctx.addresses["l1"]),
            "settings_keys": sorted(ctx.world["settings"]), "validator_keys": ctx.world["settings"]["validator"]}
