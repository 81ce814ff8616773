"""The validator's endpoints: signed checkpoints (public, rate limited) and co-signing (allow-listed relayers only).

    GET  /validators/{address}/checkpoints/{origin}/latest | /{index}    a signed checkpoint
    POST /validators/{address}/cosign                                   co-sign a Solana/Cosmos delivery (checked)

Who may call and how often is ``ValidatorEndpointGuard`` (relayer.api.relayer_auth), decided on the API's own loop by
``ValidatorAdmission`` before a request reaches the relay loop, or by the route itself when no admission ran.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from adapters.base import CosignRateLimited, CosignRefused, CosignRequest
from relayer.api.daemon_view import DaemonView
from relayer.api.ratelimit import retry_after_header
from relayer.api.relayer_auth import Endpoint, RequestRefused, ValidatorEndpointGuard
from relayer.api.request_guard import json_answer, replaying, send_answer
from relayer.api.schemas import ADDRESS, AUTH_RESPONSES, BODY_ERRORS, COSIGN_BODY, bad_input, error_responses


def validator_routes(daemon: DaemonView, guard: ValidatorEndpointGuard) -> APIRouter:
    api = APIRouter()

    @api.post("/validators/{address}/cosign", openapi_extra=COSIGN_BODY,
              responses={**error_responses(*BODY_ERRORS, 403, 404), **AUTH_RESPONSES})
    async def cosign(address: str, request: Request) -> dict[str, Any]:
        """Co-sign a delivery to a Solana/Cosmos destination (``CosignRequest`` JSON), for an allow-listed relayer's
        signed request only (401/403 with the reason otherwise, before the body is even parsed); 403 with the reason
        when the validator's checks refuse the delivery; 429 ``payout rate limited`` with ``retry_after_s`` (and
        Retry-After) when it pays out more than a payout limit has room for now."""
        if daemon.cosign is None:
            raise HTTPException(404, "this process co-signs no deliveries (validator.cosign_keys)")
        raw = await request.body()
        _admit(guard, request, "cosign", raw)
        try:
            body = json.loads(raw)
            request_ = CosignRequest.from_json(body)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise bad_input("body", f"not a cosign request: {type(exc).__name__}: {str(exc)[:200]}") from None
        try:
            signer, signature = await daemon.cosign.cosign(address, request_)
        except CosignRateLimited as exc:  # over a payout limit: when it would fit
            raise HTTPException(429, {"error": str(exc), "reason": exc.reason, "retry_after_s": exc.retry_after_s},
                                headers={"Retry-After": retry_after_header(exc.retry_after_s)}) from None
        except CosignRefused as exc:
            raise HTTPException(403, {"error": str(exc), "reason": exc.reason}) from None
        return {"signer": signer, "signature": signature.hex()}

    @api.get("/validators/{address}/checkpoints/{origin}/latest",
             responses={**error_responses(400, 404), **AUTH_RESPONSES})
    async def latest_checkpoint(address: str, origin: int, request: Request) -> dict[str, Any]:
        """The latest checkpoint ``address`` signed for ``origin``: public; a relayer's signed request uses its
        budget."""
        _admit(guard, request, "checkpoint", await request.body())
        return await _checkpoint(daemon, address, origin, None)

    @api.get("/validators/{address}/checkpoints/{origin}/{index}",
             responses={**error_responses(400, 404), **AUTH_RESPONSES})
    async def checkpoint_at(address: str, origin: int, index: int, request: Request) -> dict[str, Any]:
        """The checkpoint ``address`` signed for ``origin`` at ``index``: public; a relayer's signed request uses its
        budget."""
        _admit(guard, request, "checkpoint", await request.body())
        return await _checkpoint(daemon, address, origin, index)

    return api


async def _checkpoint(daemon: DaemonView, address: str, origin: int, index: int | None) -> dict[str, Any]:
    if not ADDRESS.match(address):
        raise bad_input("address", f"{address!r} is not a 0x-prefixed 20-byte address")
    attester = daemon.checkpoints(origin)
    if attester is None:
        raise HTTPException(404, f"this process does not attest origin domain {origin}")
    rec = await attester.signed(address, index)
    if rec is None:
        raise HTTPException(404,
                            f"no checkpoint of origin {origin} at index {index if index is not None else 'latest'} "
                            f"signed by {address}")
    return {"validator": rec.validator, "origin": rec.origin, "origin_mailbox": rec.origin_mailbox,
            "root": rec.root, "index": rec.index, "signature": rec.signature}


def _admit(guard: ValidatorEndpointGuard, request: Request, endpoint: Endpoint, body: bytes) -> str:
    """Who may call (an allow-listed relayer's signature, or anonymous for checkpoints) and how often: the
    served client, or the HTTP refusal with its reason (401/403) or Retry-After (429). Already decided when the
    daemon's front (``ValidatorAdmission``) admitted the request; decided here otherwise."""
    admitted = request.scope.get(ADMITTED_SCOPE_KEY)
    if admitted is not None:
        return str(admitted)
    try:
        return guard.admit(endpoint, request.method, _target(request.scope), request.headers, body,
                           request.client.host if request.client else "")
    except RequestRefused as exc:
        headers = {"Retry-After": retry_after_header(exc.retry_after_s)} if exc.status == 429 else None
        raise HTTPException(exc.status, {"error": str(exc), "reason": exc.reason.value}, headers=headers) from None


ADMITTED_SCOPE_KEY = "relayer.validator_admitted"  # set by ValidatorAdmission: who was served (server-side only)
_VALIDATOR_ENDPOINTS: tuple[tuple[str, re.Pattern[str], Endpoint], ...] = (
    ("POST", re.compile(r"^/validators/[^/]+/cosign$"), "cosign"),
    ("GET", re.compile(r"^/validators/[^/]+/checkpoints/.*$"), "checkpoint"),
)


def _target(scope: Any) -> bytes:
    """The request target as sent (path and query): what a relayer's signature covers."""
    target = bytes(scope.get("raw_path") or str(scope.get("path", "")).encode())
    if query := scope.get("query_string"):
        target += b"?" + bytes(query)
    return target


class ValidatorAdmission:
    """ASGI, on the API's own loop: the co-sign and checkpoint endpoints' admission (``ValidatorEndpointGuard``: an
    allow-listed relayer's signature, the budgets) decided before a request is handed to the relay loop, so an
    unauthenticated flood costs the relay loop nothing and cannot crowd out the relayers' requests there. The routes
    see who was admitted in the scope (``ADMITTED_SCOPE_KEY``) and do not decide again."""

    def __init__(self, app: Any, guard: ValidatorEndpointGuard, *, cosigns: bool = True) -> None:
        """``cosigns``: this process co-signs deliveries (else its co-sign route answers 404 unadmitted)."""
        self.app = app
        self.guard = guard
        self.cosigns = cosigns

    def endpoint(self, scope: Any) -> Endpoint | None:
        method, path = scope.get("method"), scope.get("path", "")
        found = next((e for m, p, e in _VALIDATOR_ENDPOINTS if m == method and p.match(path)), None)
        return None if found == "cosign" and not self.cosigns else found

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        endpoint = self.endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:  # the request guard in front has bounded and buffered the body already
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = (scope.get("client") or ("", 0))[0] or ""
        try:
            admitted = self.guard.admit(endpoint, str(scope.get("method")), _target(scope), headers, body, client)
        except RequestRefused as exc:
            extra = [(b"retry-after", retry_after_header(exc.retry_after_s).encode())] if exc.status == 429 else []
            await send_answer(send, exc.status, *json_answer({"error": str(exc), "reason": exc.reason.value}, *extra))
            return
        scope[ADMITTED_SCOPE_KEY] = admitted
        await self.app(scope, replaying(body, receive), send)

