"""Routing API, first slice: live chain capacity and quotes (issue 3). Mounted by the daemon under ``/v1``.

    GET  /v1/chains   live capacity, utilisation, fees and health per chain (from the CapacityModel)
    POST /v1/quote    the route options for one intent, cheapest first, and the planner's choice

Bad input (unknown chain, non-positive or non-numeric amount, a cross-chain intent without its origin)
is a 4xx with a JSON body naming the field and what was wrong; nothing is planned from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from router.capacity import CapacityModel, ChainProfile
from router.planner import RELAY_OVERHEAD_S, Intents, Kind, Reason, plan

QUOTE_TTL_S = 30.0


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["transfer", "call", "xchain"] = "transfer"
    amount: str = Field(description="token amount as a decimal string, > 0")
    token: str = Field("TST", min_length=1, max_length=32)
    chains: list[str] | None = Field(None, description="chains the intent accepts (destination for xchain); default all")
    from_chain: str | None = Field(None, description="origin chain of an xchain transfer")
    work: float = Field(1.0, ge=1.0, le=1000.0, description="gas of the call in token transfers (call only)")
    max_fee_usd: float = Field(1e9, gt=0)
    max_latency_s: float = Field(1e9, gt=0)


def profile_from_stats(name: str, domain: int, *, block_time_s: float, gas_limit: int, base_fee_wei: int,
                       finality_blocks: float, transfer_gas: float, native_usd: float) -> ChainProfile:
    """A chain's profile from what its node reports (EVM units: wei per gas -> native token per gas)."""
    return ChainProfile(name=name, domain=domain, family="evm", block_time_s=max(block_time_s, 0.05),  # type: ignore[arg-type]
                        gas_limit=float(gas_limit), transfer_gas=transfer_gas,
                        finality_s=finality_blocks * max(block_time_s, 0.05), base_fee=base_fee_wei / 1e18,
                        native_usd=native_usd)


def _bad(field: str, problem: str, status: int = 400) -> HTTPException:
    return HTTPException(status, {"field": field, "error": problem})


def create_routing_api(model: Callable[[], CapacityModel | None], *, clock: Callable[[], float] = time.monotonic) -> APIRouter:
    api = APIRouter(prefix="/v1", tags=["routing"])

    def current() -> CapacityModel:
        m = model()
        if m is None:
            raise HTTPException(503, {"error": "chain capacity not sampled yet; retry in a few seconds"})
        return m

    @api.get("/chains")
    async def chains() -> dict[str, Any]:
        m = current()
        now = clock()
        healthy = m.healthy(now)
        spare = m.spare_gas_per_s(now)
        fee = m.fee_per_gas_usd() * m.transfer_gas + m.tx_fee_usd()
        return {"chains": [
            {"name": c.name, "domain": int(c.domain), "healthy": bool(healthy[i]),
             "block_time_s": round(float(m.block_time_s[i]), 3), "gas_limit": int(m.gas_limit[i]),
             "utilisation": round(float(m.used_fraction_ema[i]), 4),
             "target_utilisation": float(m.target_utilisation[i]),
             "spare_gas_per_s": round(float(spare[i])), "spare_transfers_per_s": round(float(spare[i] / m.transfer_gas[i]), 1),
             "base_fee_per_gas": float(m.base_fee[i]), "base_fee_trend": round(float(m.base_fee_trend[i]), 4),
             "transfer_fee_usd": float(fee[i]), "error_rate": round(float(m.error_rate[i]), 3)}
            for i, c in enumerate(m.chains)]}

    @api.post("/quote")
    async def quote(req: QuoteRequest) -> dict[str, Any]:
        m = current()
        try:
            amount = Decimal(req.amount)
        except InvalidOperation:
            raise _bad("amount", f"{req.amount!r} is not a number") from None
        if not amount.is_finite() or amount <= 0:
            raise _bad("amount", f"must be a positive number, got {req.amount}")
        names = list(m.index)
        allowed = np.zeros(len(names), dtype=bool)
        for i, name in enumerate(req.chains if req.chains is not None else names):
            if name not in m.index:
                raise _bad(f"chains[{i}]", f"unknown chain {name!r}; known: {', '.join(names)}")
            allowed[m.index[name]] = True
        origin = -1
        if req.kind == "xchain":
            if req.from_chain is None:
                raise _bad("from_chain", "an xchain intent needs its origin chain")
            if req.from_chain not in m.index:
                raise _bad("from_chain", f"unknown chain {req.from_chain!r}; known: {', '.join(names)}")
            origin = m.index[req.from_chain]
            allowed[origin] = False
        elif req.from_chain is not None:
            raise _bad("from_chain", "only an xchain intent has an origin chain")
        if not allowed.any():
            raise _bad("chains", "no chain left to route to")
        kind = {"transfer": Kind.TRANSFER, "call": Kind.CALL, "xchain": Kind.XCHAIN}[req.kind]
        work = req.work if req.kind == "call" else 1.0
        intents = Intents(
            kind=np.array([kind], dtype=np.int8), work=np.array([work], dtype=np.float32),
            amount=np.array([float(amount)]), allowed=allowed[None, :], liquidity=np.ones((1, len(names)), dtype=bool),
            max_fee_usd=np.array([req.max_fee_usd], dtype=np.float32),
            max_latency_s=np.array([req.max_latency_s], dtype=np.float32), origin=np.array([origin], dtype=np.int16))
        now = clock()
        assignment = plan(intents, m, window_s=1.0, now_s=now)
        fee = (m.fee_per_gas_usd() * m.transfer_gas * work + m.tx_fee_usd())
        latency = m.inclusion_latency_s()
        if origin >= 0:
            latency = latency + latency[origin] + m.finality_s[origin] + RELAY_OVERHEAD_S
            fee = fee + fee[origin]
        healthy = m.healthy(now)
        candidates = sorted(np.flatnonzero(allowed & healthy), key=lambda i: float(fee[i]))
        options = [{"chain": names[i], "origin": names[origin] if origin >= 0 else names[i],
                    "fee_usd": float(fee[i]), "latency_s": round(float(latency[i]), 3)} for i in candidates]
        chosen = int(assignment.chain[0])
        return {
            "kind": req.kind, "amount": str(amount), "token": req.token,
            "route": None if chosen < 0 else {"chain": names[chosen], "origin": names[int(assignment.origin[0])],
                                              "fee_usd": float(assignment.fee_usd[0]),
                                              "latency_s": round(float(assignment.latency_s[0]), 3)},
            "unserved_reason": None if chosen >= 0 else Reason(int(assignment.reason[0])).name.lower(),
            "options": options,
            "expires_at": time.time() + QUOTE_TTL_S,
        }

    return api
