"""The one error shape of the daemon's HTTP API (every route: the routing API, the relayer's own routes, the explorer,
the HTTP front), and how bad input is answered.

    {"detail": "a sentence"}                                  not found, not ready, refused, ...
    {"detail": {"field": "intents[3].amount", "error": "..."}}  bad input: 400 naming the field (``bad_input``)
    {"detail": {"error": "...", "limit": "router.intents_per_s", "reason": "...", "retry_after_s": 1.5}}
                                                              a refusal naming the limit or reason, where one applies

Bad input is always 400 with ``field`` and ``error``: the checks of the routes (``bad_input``) and FastAPI's own
request validation (``RequestValidationError``, which it would answer 422 with a list) alike, so a client reads one
shape. ``install_error_handlers`` maps the latter on an app; ``document_error_shape`` makes its OpenAPI document say
so (400 with ``ErrorBody``, no 422).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel


class ErrorBody(BaseModel):
    """Every 4xx/5xx the daemon answers itself: ``detail`` is a sentence, or ``{"error": ..., "field": ...}``."""

    detail: str | dict[str, Any]


_ERROR_TEXT = {
    400: "bad input: detail names the field and what is wrong with it",
    401: "a valid X-API-Key header is required ([router] api_keys)",
    403: "refused",
    404: "not found",
    409: "not possible in this state or with this daemon's configuration",
    413: "too large: the request body (api.max_body_bytes) or the batch (intents per batch); detail names the limit",
    415: "the request body is not JSON (Content-Type: application/json)",
    429: "over a limit of this client (router.intents_per_s, router.value_per_day, per API key or address): detail "
         "names it; retry after the Retry-After header's seconds",
    503: "not ready yet (chain capacity not sampled), not enabled on this daemon, full (router.max_open_unsigned) or "
         "over the daemon-wide intent rate (api.max_intents_per_s)",
}
BODY_ERRORS = (400, 413, 415)  # what relayer.api.request_guard answers for any request with a body
ERROR_BODY_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}

# a server-sent events stream, documented per event (what OpenAPI tools such as schemathesis check)
SSE_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"description": "server-sent events",
                                                       "content": {"text/event-stream": {
    "schema": {"type": "object", "properties": {"event": {"type": "string"}, "data": {"type": "string"},
                                                 "id": {"type": "string"}, "retry": {"type": "integer"}}}}}}}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {code: {"model": ErrorBody, "description": _ERROR_TEXT[code]} for code in sorted(set(codes))}


def bad_input(field: str, problem: str, status: int = 400) -> HTTPException:
    """Bad input: ``{"detail": {"field": field, "error": problem}}`` (400 unless ``status`` says otherwise)."""
    return HTTPException(status, {"field": field, "error": problem})


def field_name(loc: Sequence[int | str]) -> str:
    """A pydantic error location as the field a client sent: ``("body", "chains", 1)`` -> ``chains[1]``, ``("query",
    "limit")`` -> ``limit``; the whole body (or an unnamed place) -> ``body``."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header", "cookie") else list(loc)
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def first_problem(errors: Sequence[Any], prefix: str = "") -> tuple[str, str]:
    """The (field, error) of the first of pydantic's errors; ``prefix`` is put before the field (``intents[2].``)."""
    err = errors[0]
    if err.get("type") == "json_invalid":  # loc: ("body", character offset)
        offset = err["loc"][-1] if err.get("loc") else "?"
        return "body", f"not valid JSON at character {offset}: {(err.get('ctx') or {}).get('error', err['msg'])}"
    field = field_name(err.get("loc", ()))
    if prefix:
        field = prefix + field if field != "body" else prefix.rstrip(".")
    return field, str(err["msg"])


async def _validation_failed(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    field, problem = first_problem(exc.errors()) if exc.errors() else ("body", "invalid request")
    return JSONResponse({"detail": {"field": field, "error": problem}}, status_code=400)


def install_error_handlers(app: FastAPI) -> None:
    """FastAPI's request validation answered in the one shape: 400 ``{"field", "error"}``, not 422."""
    app.add_exception_handler(RequestValidationError, _validation_failed)


def document_error_shape(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document as ``install_error_handlers`` answers: each operation's 422 becomes its 400 (bad input,
    ``ErrorBody``), and the 422 list's schemas go."""
    for operations in schema.get("paths", {}).values():
        for op in operations.values():
            responses = op.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {"description": _ERROR_TEXT[400], "content": ERROR_BODY_REF})
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components.setdefault("ErrorBody", ErrorBody.model_json_schema())
    return schema
