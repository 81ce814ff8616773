"""The typed client (router.client) in step with the daemon's OpenAPI document, read from the app itself
(``relayer.api.server.create_api`` over fake chains and a SQLite store; no devnet): every public route has a client
method (or a reason in ``NOT_COVERED``), and the client's parameters, request bodies, answers and error classes agree
with what the document says. The answers the document leaves as ``object`` are checked against real answers of the
app in tests/unit/test_routing_client.py."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from config.loader import load_settings
from relayer.api.server import create_api
from relayer.daemon.daemon import RelayerDaemon
from relayer.store import Store
from router.client import (
    CONVENIENCE,
    ERRORS,
    FINAL,
    NOT_COVERED,
    ROUTES,
    AsyncRoutingClient,
    RoutingClient,
    RoutingError,
    not_covered_reason,
    uncovered_routes,
)
from router.client_models import ApiModel
from router.intents import FINAL_STATUSES
from router.schemas import IntentRequest
from tests.fakes.chain import FakeChain

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "devnet.toml"
FRONT_ONLY = {408, 431}  # what only the HTTP front answers (relayer.api.schemas.FRONT_ANSWERS): RoutingError itself


@pytest.fixture(scope="module")
def make_app() -> Iterator[Any]:
    """A factory of the daemon's app (each call a new one), over one daemon of fake chains."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(EXAMPLE, env={}, overrides={"store.url": f"sqlite:///{tmp}/openapi.db",
                                                              "validator.verify_inclusion": False})
        adapters = {n: FakeChain(n, c.domain) for n, c in settings.chains.items()}
        store = Store(settings.store.url, owner="openapi")
        daemon = RelayerDaemon(settings, "all", adapters, store, [], httpx.AsyncClient())  # type: ignore[arg-type]
        try:
            yield lambda: create_api(daemon)
        finally:
            store.close()


@pytest.fixture(scope="module")
def doc(make_app: Any) -> dict[str, Any]:
    return dict(make_app().openapi())


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, ops in doc["paths"].items() for method, op in ops.items()}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
    return schema


def _shape(schema: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(field names, required field names) of an object schema."""
    return set(schema.get("properties", {})), set(schema.get("required", []))


def _model_shape(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    return _shape(model.model_json_schema())


# ---- coverage

def test_every_public_route_has_a_client_method(doc: dict[str, Any]) -> None:
    missing = uncovered_routes(doc)
    assert missing == [], (
        f"routes in /openapi.json without a method in router.client: {', '.join(missing)}: add each to "
        "router.client.ROUTES and to RoutingClient and AsyncRoutingClient, or to NOT_COVERED with the reason")


def test_a_route_added_without_the_client_fails_naming_it(make_app: Any) -> None:
    app: FastAPI = make_app()

    @app.get("/v1/intents/{intent_id}/receipt")
    async def receipt(intent_id: str) -> dict[str, Any]:
        return {}

    @app.put("/v1/batches/{batch}")
    async def rename(batch: str) -> dict[str, Any]:
        return {}

    @app.post("/admin/v1/something")  # the operator's: left out on purpose
    async def something() -> dict[str, Any]:
        return {}

    assert sorted(uncovered_routes(app.openapi())) == ["GET /v1/intents/{intent_id}/receipt", "PUT /v1/batches/{batch}"]


def test_every_client_route_is_in_the_api_as_the_client_calls_it(doc: dict[str, Any]) -> None:
    ops = _operations(doc)
    for name, route in ROUTES.items():
        op = ops.get((route.method, route.path))
        assert op is not None, f"{name}: {route.method} {route.path} is not in the API any more"
        assert str(route.status) in op["responses"], f"{name}: answers {sorted(op['responses'])}, not {route.status}"
        content = op["responses"][str(route.status)].get("content", {})
        assert ("text/event-stream" in content) == route.stream, f"{name}: stream is {route.stream}, API: {content}"
        if not route.stream:
            assert "application/json" in content, f"{name}: not a JSON answer"
        for status in route.also_answers:
            assert str(status) in op["responses"], f"{name}: {status} is not an answer of {route.path}"
        assert not_covered_reason(route.method, route.path) is None, f"{name} is also in NOT_COVERED"


def test_every_exclusion_still_names_a_route_and_says_why(doc: dict[str, Any]) -> None:
    ops = _operations(doc)
    for key, why in NOT_COVERED.items():
        assert len(why) > 20, key
        if key.endswith("/"):
            assert any(path.startswith(key) for _method, path in ops), f"NOT_COVERED {key!r} matches no route"
        else:
            method, path = key.split(" ", 1)
            assert (method, path) in ops, f"NOT_COVERED {key!r} is no route of the API"


# ---- parameters, bodies, answers, errors

@pytest.mark.parametrize("name", sorted(ROUTES))
def test_parameters_agree(doc: dict[str, Any], name: str) -> None:
    route = ROUTES[name]
    op = _operations(doc)[(route.method, route.path)]
    params = op.get("parameters", [])
    assert {p["name"] for p in params if p["in"] == "path"} == set(route.path_params), name
    assert {p["name"]: bool(p.get("required")) for p in params if p["in"] == "query"} == dict(route.query), name
    assert {p["name"].lower() for p in params if p["in"] == "header"} == set(route.headers), name


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_request_bodies_agree(doc: dict[str, Any], name: str) -> None:
    """The body the client's model describes has the API's fields, and the same required ones; for ``POST
    /v1/intents`` (whose body the route documents inline) the intents' fields too."""
    route = ROUTES[name]
    op = _operations(doc)[(route.method, route.path)]
    body = op.get("requestBody")
    assert (body is not None) == (route.body is not None), name
    if body is None or route.body is None:
        return
    schema = _resolve(doc, body["content"]["application/json"]["schema"])
    assert _shape(schema) == _model_shape(route.body), name
    if name == "submit_batch":
        assert _shape(_resolve(doc, schema["properties"]["intents"]["items"])) == _model_shape(IntentRequest)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_answer_models_agree_where_the_api_documents_them(doc: dict[str, Any], name: str) -> None:
    """Where the document has the answer's fields (``IntentBatchAnswer``), the client's model has the same, required
    alike; where it says only ``object``, the model is an ``ApiModel`` (checked against real answers elsewhere)."""
    route = ROUTES[name]
    if route.stream:
        assert route.answer is None
        return
    assert route.answer is not None and issubclass(route.answer, ApiModel), name
    op = _operations(doc)[(route.method, route.path)]
    schema = _resolve(doc, op["responses"][str(route.status)]["content"]["application/json"]["schema"])
    if schema.get("properties"):
        assert _shape(schema) == _model_shape(route.answer), name
    else:
        assert schema.get("type") == "object" or schema == {}, (name, schema)


def test_every_documented_error_status_has_its_error_class(doc: dict[str, Any]) -> None:
    ops = _operations(doc)
    for name, route in ROUTES.items():
        for status in (int(s) for s in ops[(route.method, route.path)]["responses"] if int(s) >= 400):
            if status in route.also_answers:
                continue
            assert status in ERRORS or status in FRONT_ONLY, (
                f"{name} may answer {status}: add its class to router.client.ERRORS")
    assert all(issubclass(cls, RoutingError) and cls is not RoutingError for cls in ERRORS.values())


def test_final_statuses_are_the_routers() -> None:
    assert FINAL == {str(s) for s in FINAL_STATUSES}


# ---- both clients, alike

def _public(cls: type) -> dict[str, Any]:
    return {n: f for n, f in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}


def test_both_clients_have_a_method_per_route_with_the_same_arguments() -> None:
    sync, aio = _public(RoutingClient), _public(AsyncRoutingClient)
    for name in [*ROUTES, *CONVENIENCE]:
        assert name in sync and name in aio, name
        assert inspect.signature(sync[name]).parameters.keys() == inspect.signature(aio[name]).parameters.keys()
        for p, q in zip(inspect.signature(sync[name]).parameters.values(),
                        inspect.signature(aio[name]).parameters.values(), strict=True):
            assert (p.kind, p.default) == (q.kind, q.default), (name, p, q)
        assert not inspect.iscoroutinefunction(sync[name]), name
        stream = ROUTES[CONVENIENCE.get(name, name)].stream
        assert inspect.iscoroutinefunction(aio[name]) != stream, name  # streams: async iterators
    assert set(sync) - {"close"} == set(aio) - {"aclose"}
    assert set(sync) - {"close"} == set(ROUTES) | set(CONVENIENCE)
