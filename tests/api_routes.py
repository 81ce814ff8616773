"""Every route the daemon's HTTP API serves, read from the app itself (``create_api(...).routes``): the OpenAPI
operations and the routes left out of the schema (the explorer page, the docs), so a test that must reach
"every route" follows the app when routes are added."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import httpx
from starlette.routing import Route

from config.loader import load_settings
from relayer.api.server import create_api
from relayer.daemon.daemon import RelayerDaemon
from relayer.store import Store
from tests.fakes.chain import FakeChain

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "examples" / "devnet.toml"
_PARAM = re.compile(r"\{[^}]+\}")


def every_route() -> list[list[str]]:
    """``[method, path]`` of every route (HEAD left out: it has no body), path parameters filled with ``x``."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(EXAMPLE, env={}, overrides={"store.url": f"sqlite:///{tmp}/routes.db",
                                                              "validator.verify_inclusion": False})
        adapters = {n: FakeChain(n, c.domain) for n, c in settings.chains.items()}
        store = Store(settings.store.url, owner="routes")
        daemon = RelayerDaemon(settings, "all", adapters, store, [], httpx.AsyncClient())  # type: ignore[arg-type]
        try:
            app = create_api(daemon)
        finally:
            store.close()
    return [[method, _PARAM.sub("x", path)] for method, path in _walk(app.routes, "") if method != "HEAD"]


def _walk(routes: list[Any], prefix: str) -> list[tuple[str, str]]:
    """(method, path) of plain routes and of the routers included in the app (FastAPI keeps those as included-router
    entries with their prefix)."""
    out = []
    for route in routes:
        if isinstance(route, Route):
            out += [(method, prefix + route.path) for method in sorted(route.methods or ())]
        elif hasattr(route, "original_router"):
            out += _walk(route.original_router.routes, prefix + route.include_context.prefix)
    return out
