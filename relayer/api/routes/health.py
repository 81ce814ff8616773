"""Health, readiness, metrics and status.

    GET /healthz       process is up
    GET /readyz        200 only when every configured chain and the store answer
    GET /metrics       Prometheus text
    GET /v1/status     chains, queue depths by state, failure reasons, validators
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from relayer.api.daemon_view import DaemonView
from relayer.api.request_guard import FrontLimits


def health_routes(daemon: DaemonView, limits: FrontLimits | None) -> APIRouter:
    """``limits``: the HTTP front's, whose load ``/metrics`` shows."""
    api = APIRouter()

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/readyz",
             responses={503: {"description": "a chain does not answer: {ready: false, chains: {name: detail}}"}})
    async def readyz() -> JSONResponse:
        r = daemon.readiness()
        return JSONResponse({"ready": r.ready, "chains": r.chains, "store": r.store},
                            status_code=200 if r.ready else 503)

    @api.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        if limits is not None:
            limits.publish()
        # read live: a library imported late that raised it again would show here (relayer.cli pins it)
        daemon.metrics.set("relayer_python_recursion_limit", sys.getrecursionlimit())
        return daemon.metrics.render()

    @api.get("/v1/status")
    async def status() -> dict[str, Any]:
        return await daemon.status()

    return api
