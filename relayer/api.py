"""The daemon's HTTP API (FastAPI): validator checkpoints, message status, health, readiness, metrics.

    GET /healthz                                       process is up
    GET /readyz                                        200 only when every configured chain answers
    GET /metrics                                       Prometheus text
    GET /v1/status                                     chains, queue depths by state, failure reasons
    GET /v1/messages?state=&chain=&limit=&before=      recent messages, filtered and paged (relayer.explorer)
    GET /v1/messages/{id or tx hash}                   one message's pipeline record
    GET /validators/{address}/checkpoints/{origin}/latest | /{index}    a signed checkpoint (public; rate limited)
    POST /validators/{address}/cosign                                   co-sign a Solana/Cosmos delivery (checked;
                                                                        allow-listed relayers only: relayer.relayer_auth)
    GET /v1/chains, POST /v1/quote, POST /v1/intents, GET /v1/intents/{id}, GET /v1/integrators/{code}/report
                                                       routing (router.api)
    GET /explorer, GET /v1/explorer/...                the operator's explorer page and its data (relayer.explorer)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import CosignRefused, CosignRequest
from relayer.explorer import ExplorerChain, ExplorerQueries, create_explorer_api
from relayer.ratelimit import retry_after_header
from relayer.relayer_auth import HEADERS as RELAYER_HEADERS
from relayer.relayer_auth import Endpoint, RequestRefused, ValidatorEndpointGuard
from relayer.request_guard import RequestGuard
from relayer.store import MessageRecord, StoreError
from router.api import BODY_ERRORS, ErrorBody, create_routing_api, error_responses

if TYPE_CHECKING:
    from relayer.app import RelayerDaemon

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "the relayer signature is missing, malformed, stale, over another "
                                             "request or body, or a replay: detail.reason says which "
                                             f"({', '.join(RELAYER_HEADERS)})"},
    429: {"model": ErrorBody, "description": "this client's budget is spent (a relayer's own, or the anonymous one of "
                                             "its address): retry after Retry-After seconds",
          "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}}},
}
_COSIGN_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "description": "a CosignRequest (adapters.base): chain, messages, payload, context"}}}}}


def message_view(rec: MessageRecord, names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": rec.id,
        "state": rec.state,
        "origin": names.get(rec.origin, str(rec.origin)),
        "origin_domain": rec.origin,
        "destination": names.get(rec.destination, str(rec.destination)),
        "destination_domain": rec.destination,
        "nonce": rec.nonce,
        "sender": rec.sender,
        "recipient": rec.recipient,
        "origin_tx": rec.origin_tx,
        "origin_height": rec.origin_height,
        "dispatched_at": rec.dispatched_at,
        "attempts": rec.attempts,
        "last_reason": rec.last_reason,
        "last_error": rec.last_error,
        "next_attempt_at": rec.next_attempt_at or None,
        "checkpoint_index": rec.checkpoint_index,
        "delivery_tx": rec.delivery_tx,
        "delivered_height": rec.delivered_height,
        "delivered_at": rec.delivered_at,
        "lease_owner": rec.lease_owner,
        "handed_over_from": rec.handed_over_from,
    }


def create_api(daemon: RelayerDaemon, stop: asyncio.Event | None = None) -> FastAPI:
    app = FastAPI(title="xchain relayer", version="0.1.0",
                  description="Validator checkpoints, message status and health of a relayer daemon.")
    names = {c.domain: n for n, c in daemon.settings.chains.items()}

    @app.exception_handler(StoreError)
    @app.exception_handler(SQLAlchemyError)
    async def store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        """The database is down or restarting: 503 with the reason (retry later), never a 500."""
        reason = exc.reason if isinstance(exc, StoreError) else "store_unavailable"
        return JSONResponse({"detail": f"the store is unavailable, retry later ({reason})", "reason": reason},
                            status_code=503, headers={"Retry-After": "2"})

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "a chain does not answer: {ready: false, chains: {name: detail}}"}})
    async def readyz() -> JSONResponse:
        ok, detail = daemon.ready()
        return JSONResponse({"ready": ok, "chains": detail, "store": daemon.store_status}, status_code=200 if ok else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        return daemon.metrics.render()

    @app.get("/v1/status")
    async def status() -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {}
        for (dest, state), n in daemon.store.counts_by_state().items():
            counts.setdefault(names.get(dest, str(dest)), {})[state] = n
        chains = {}
        for name, st in daemon.chain_status.items():
            h = st.health
            chains[name] = {"domain": st.domain, "healthy": bool(h and h.healthy),
                            "latest_height": h.latest_height if h else None,
                            "finalized_height": h.finalized_height if h else None,
                            "latency_s": h.latency_s if h else None, "detail": h.detail if h else "not checked yet",
                            "capacity": None if st.stats is None else {
                                "block_time_s": round(st.stats.block_time_s, 3), "gas_limit": st.stats.gas_limit,
                                "gas_per_s": round(st.stats.gas_per_s), "utilisation": round(st.stats.gas_used_ratio, 4),
                                "base_fee": st.stats.base_fee, "base_fee_trend": round(st.stats.base_fee_trend, 4),
                                "pending_txs": st.stats.pending_txs}}
        attest = {names.get(d, str(d)): a.latest_index for d, a in daemon.attesters.items()}
        return {"role": daemon.role, "chains": chains, "messages": counts, "reasons": daemon.store.reasons(),
                "validators": [s.address for s in daemon.signers], "latest_signed_index": attest}

    @app.get("/v1/messages/{key}", responses=error_responses(400, 404))
    async def show_message(key: str) -> dict[str, Any]:
        if not _HEX32.match(key):
            raise HTTPException(400, f"{key!r} is not a 0x-prefixed 32-byte hex message id or transaction hash")
        found = daemon.store.find(key)
        if not found:
            raise HTTPException(404, f"no message with id or transaction hash {key}")
        return {"messages": [message_view(r, names) for r in found]}

    def _checkpoint(address: str, origin: int, index: int | None) -> dict[str, Any]:
        if not _ADDRESS.match(address):
            raise HTTPException(400, f"{address!r} is not a 0x-prefixed 20-byte address")
        attester = daemon.attesters.get(origin)
        if attester is None:
            raise HTTPException(404, f"this process does not attest origin domain {origin}")
        rec = attester.signed(address, index)
        if rec is None:
            raise HTTPException(404, f"no checkpoint of origin {origin} at index {index if index is not None else 'latest'} "
                                     f"signed by {address}")
        return {"validator": rec.validator, "origin": rec.origin, "origin_mailbox": rec.origin_mailbox,
                "root": rec.root, "index": rec.index, "signature": rec.signature}

    guard = ValidatorEndpointGuard.from_settings(daemon.settings.validator, daemon.metrics)

    def _admit(request: Request, endpoint: Endpoint, body: bytes) -> str:
        """Who may call (an allow-listed relayer's signature, or anonymous for checkpoints) and how often: the
        served client, or the HTTP refusal with its reason (401/403) or Retry-After (429)."""
        target = bytes(request.scope.get("raw_path") or request.url.path.encode())
        if query := request.scope.get("query_string"):
            target += b"?" + bytes(query)
        try:
            return guard.admit(endpoint, request.method, target, request.headers, body,
                               request.client.host if request.client else "")
        except RequestRefused as exc:
            headers = {"Retry-After": retry_after_header(exc.retry_after_s)} if exc.status == 429 else None
            raise HTTPException(exc.status, {"error": str(exc), "reason": exc.reason.value}, headers=headers) from None

    @app.post("/validators/{address}/cosign", openapi_extra=_COSIGN_BODY,
              responses={**error_responses(*BODY_ERRORS, 403, 404), **_AUTH_RESPONSES})
    async def cosign(address: str, request: Request) -> dict[str, Any]:
        """Co-sign a delivery to a Solana/Cosmos destination (``CosignRequest`` JSON), for an allow-listed relayer's
        signed request only (401/403 with the reason otherwise, before the body is even parsed); 403 with the reason
        when the validator's checks refuse the delivery."""
        if daemon.cosign is None:
            raise HTTPException(404, "this process co-signs no deliveries (validator.cosign_keys)")
        raw = await request.body()
        _admit(request, "cosign", raw)
        try:
            body = json.loads(raw)
            request_ = CosignRequest.from_json(body)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise HTTPException(400, {"error": f"not a cosign request: {type(exc).__name__}: {str(exc)[:200]}"}) from None
        try:
            signer, signature = await daemon.cosign.cosign(address, request_)
        except CosignRefused as exc:
            raise HTTPException(403, {"error": str(exc), "reason": exc.reason}) from None
        return {"signer": signer, "signature": signature.hex()}

    @app.get("/validators/{address}/checkpoints/{origin}/latest", responses={**error_responses(400, 404), **_AUTH_RESPONSES})
    async def latest_checkpoint(address: str, origin: int, request: Request) -> dict[str, Any]:
        """The latest checkpoint ``address`` signed for ``origin``: public; a relayer's signed request uses its budget."""
        _admit(request, "checkpoint", await request.body())
        return _checkpoint(address, origin, None)

    @app.get("/validators/{address}/checkpoints/{origin}/{index}", responses={**error_responses(400, 404), **_AUTH_RESPONSES})
    async def checkpoint_at(address: str, origin: int, index: int, request: Request) -> dict[str, Any]:
        """The checkpoint ``address`` signed for ``origin`` at ``index``: public; a relayer's signed request uses its
        budget."""
        _admit(request, "checkpoint", await request.body())
        return _checkpoint(address, origin, index)

    app.include_router(create_explorer_api(
        ExplorerQueries(daemon.store.engine), daemon.samples,
        [ExplorerChain(n, c.domain, c.family) for n, c in daemon.settings.chains.items()],
        view=lambda rec: message_view(rec, names), stopping=stop.is_set if stop is not None else None))
    app.include_router(create_routing_api(lambda: daemon.capacity, intents=daemon.intents,
                                          api_keys=daemon.settings.router.api_keys))
    return app


async def serve_api(daemon: RelayerDaemon, stop: asyncio.Event) -> None:
    from relayer.app import api_host_port

    host, port = api_host_port(daemon.settings.api.url)
    app = RequestGuard(create_api(daemon, stop), max_body_bytes=daemon.settings.api.max_body_bytes)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=3)  # an open event stream must not hold up a stop
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # the daemon owns SIGINT/SIGTERM
    serve = asyncio.create_task(server.serve())
    try:
        while not server.started and not serve.done():
            await asyncio.sleep(0.02)
        if serve.done():
            serve.result()
            raise OSError(f"the API could not listen on {host}:{port}")
        await stop.wait()
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serve
