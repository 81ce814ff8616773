"""The admin API: ``/admin/v1/...``, for the daemon's operator only.

Who may call it: a request whose ``Authorization: Bearer KEY`` header carries one of ``admin.api_keys``, the admin
API's own keys (a routing API key is not one). Anyone else is refused before the route runs:
- no admin keys configured: 403 for every admin request (the admin API is off);
- no header, or a wrong key: 401 with ``WWW-Authenticate: Bearer``.

Keys are compared in constant time and never logged or echoed. Every refusal is counted in
``relayer_admin_requests_refused_total{reason}``.

    GET  /admin/v1/filters          relayer.allow / relayer.deny in force, when they were loaded, reloads so far
    POST /admin/v1/filters/reload   read them again from the config file, as SIGHUP does: 200 with the new lists and
                                    how many DROPPED(denied) messages they sent back to delivery; 400 naming the key
                                    when the file does not load or a rule does not compile (the old lists stay)
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Header, HTTPException

from config.errors import ConfigError
from relayer.api.daemon_view import DaemonView
from router.errors import ErrorBody

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "a valid admin key is required: Authorization: Bearer KEY "
                                             "(admin.api_keys)"},
    403: {"model": ErrorBody, "description": "the admin API is off: admin.api_keys is empty"},
}


class AdminKeys:
    """The ``Depends`` that admits a request with an admin key and refuses any other (401 / 403)."""

    def __init__(self, daemon: DaemonView) -> None:
        self._keys = [k.get_secret_value().encode() for k in daemon.settings.admin.api_keys]
        self._metrics = daemon.metrics

    async def __call__(self, authorization: str | None = Header(None)) -> None:
        if not self._keys:
            self._refuse("disabled")
            raise HTTPException(403, {"error": "the admin API is off: set admin.api_keys to use it"})
        scheme, _, token = (authorization or "").partition(" ")
        offered = token.strip().encode()
        # every key compared (no early exit), each in constant time: the answer's timing tells nothing of the keys
        matched = [hmac.compare_digest(offered, key) for key in self._keys]
        if scheme.lower() != "bearer" or not offered or not any(matched):
            self._refuse("missing_key" if not offered else "wrong_key")
            raise HTTPException(401, {"error": "a valid admin key is required: Authorization: Bearer KEY "
                                               "(admin.api_keys)"}, headers={"WWW-Authenticate": "Bearer"})

    def _refuse(self, reason: str) -> None:
        self._metrics.inc("relayer_admin_requests_refused_total", reason=reason)


def admin_routes(daemon: DaemonView) -> APIRouter:
    api = APIRouter(prefix="/admin/v1", dependencies=[Depends(AdminKeys(daemon))], tags=["admin"])

    @api.get("/filters", responses=_REFUSALS)
    async def filters() -> dict[str, Any]:
        """relayer.allow and relayer.deny in force."""
        return daemon.message_filters()

    @api.post("/filters/reload", responses={**_REFUSALS, 400: {"model": ErrorBody, "description": (
        "the config file does not load, or a rule of relayer.allow / relayer.deny does not compile: detail names "
        "the key; the lists in force stay")}})
    async def reload_filters() -> dict[str, Any]:
        """Read relayer.allow and relayer.deny again from the daemon's config file (as SIGHUP does) and apply them;
        DROPPED(denied) messages the new lists allow go back to delivery."""
        try:
            return await daemon.reload_filters("admin_api")
        except ConfigError as exc:
            raise HTTPException(400, {"field": exc.path or "config", "error": exc.problem}) from None

    return api
