"""Request bodies are checked before any route runs (so before any chain call): a size limit, the JSON content
type, UTF-8. An ASGI middleware around the daemon's whole app.

    413  body over ``api.max_body_bytes``: decided from Content-Length before reading anything, else (chunked) by
         counting the bytes as they stream in, stopping at the first byte over the limit
    415  a body whose Content-Type is not JSON (application/json or application/*+json)
    400  a JSON body that is not UTF-8, naming the byte offset

Each answer is JSON ``{"detail": {"error": ..., ...}}`` like the routes' own 4xx. Malformed JSON itself is left to
FastAPI (422, ``loc: ["body", <char offset>]``, ``ctx.error``: what the parser expected there).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

log = structlog.get_logger("relayer.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1 << 20


def is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class RequestGuard:
    """Buffers a request's body (at most ``max_body_bytes``) and hands it on only when it passes the checks."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        length_text = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length_text is not None:
            if not length_text.strip().isdigit():
                await _reject(send, 400, f"Content-Length {length_text[:40]!r} is not a byte count", scope)
                return
            if int(length_text) > self.max_body_bytes:
                await self._too_large(send, scope, f"Content-Length {int(length_text)}")
                return
        has_body = chunked or (length_text is not None and int(length_text) > 0)
        if not has_body:
            await self.app(scope, receive, send)
            return
        content_type = headers.get("content-type", "")
        if not is_json_media_type(content_type):
            await _reject(send, 415, f"a request body must be JSON (Content-Type: application/json), got "
                                     f"{content_type[:80] or 'no Content-Type'!r}", scope, expected="application/json")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(send, scope, f"more than {self.max_body_bytes} bytes streamed")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            await _reject(send, 400, f"the JSON body is not UTF-8 (byte {exc.start})", scope, field="body")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, scope: Scope, seen: str) -> None:
        await _reject(send, 413, f"request body too large: {seen}; the limit is {self.max_body_bytes} bytes "
                                 "(api.max_body_bytes)", scope, limit=self.max_body_bytes)


async def _reject(send: Send, status: int, error: str, scope: Scope, **extra: Any) -> None:
    log.info("request_rejected", status=status, method=scope.get("method"), path=scope.get("path"), error=error)
    body = json.dumps({"detail": {"error": error, **extra}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
