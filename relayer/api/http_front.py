"""The HTTP front: uvicorn's httptools protocol with what it lacks against a hostile client.

``GuardedHttpToolsProtocol`` (uvicorn's ``HttpToolsProtocol``, given to ``uvicorn.Config(http=...)`` through
``guarded_protocol(limits)``) adds, per connection:

* **connection caps**: more than ``api.max_connections_per_client`` open connections from one client is answered
  429, more than ``api.max_connections`` in all 503, both with ``Retry-After`` and a JSON body naming the cap,
  at once (before any request is read) and the connection closed after a short linger (the request the client
  is sending is read and dropped, so its TCP stack does not reset the connection before it read the answer);
* **a header size limit**: more than ``api.max_header_bytes`` of request line and headers is answered 431 and
  closed, decided while they stream in (at most one read's worth past the limit is ever buffered; an 8 MB header
  is not);
* **a header timeout**: a connection that has not sent a request's complete headers ``api.header_timeout_s``
  after it opened, or after the previous response (keep-alive), is answered 408 (if it sent anything) and
  closed, however slowly its bytes trickle (uvicorn's own keep-alive timer restarts on every byte, so a client
  sending one byte a second held a connection for ever).

Request-level caps (in flight, streams) and the body checks are in ``relayer.api.request_guard``.
"""

from __future__ import annotations

import asyncio
import json
from asyncio import TimerHandle
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from relayer.api.request_guard import Cap, FrontLimits, cap_answer, client_key

LINGER_S = 1.0      # how long a refused connection is read (and dropped) before it is closed
MAX_LINGERING = 256  # refused connections lingering at once; past that they are closed at once


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the request line and headers passed ``max_header_bytes``."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[FrontLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client_key = "unknown"
        self._admitted = False
        self._refused = False
        self._in_head = True       # the next bytes belong to a request line / headers
        self._head_bytes = 0       # bytes received while in a head
        self._head_size = 0        # request line + headers as parsed
        self._head_over = False    # the parsed head passed the limit
        self._head_timer: TimerHandle | None = None
        self._linger: TimerHandle | None = None

    # ---- connections
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._client_key = client_key(self.client[0] if self.client else None)
        cap = self.limits.connections.acquire(self._client_key)
        if cap is not None:
            self._refuse(cap)
            return
        self._admitted = True
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
            self.limits.lingering -= 1
        if self._admitted:
            self._admitted = False
            self.limits.connections.release(self._client_key)
        super().connection_lost(exc)

    def _refuse(self, cap: Cap) -> None:
        """Answer a refused connection at once (then linger and close)."""
        self.limits.refused(cap.key, client=self._client_key)
        status, headers, body = cap_answer(cap, self.limits.connections.what)
        self._answer_and_close(status, body, headers)

    def eof_received(self) -> None:
        if self._refused and self._linger is not None:
            self.transport.close()  # the client read our answer and closed its side: done lingering

    # ---- heads: size and time
    def data_received(self, data: bytes) -> None:
        """uvicorn's ``data_received`` (same parser errors: 400; upgrades) with the head counted as it arrives."""
        if self._refused:
            return  # read and dropped while a refused connection lingers
        self._unset_keepalive_if_required()
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._head_over:
                self._head_too_large()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head and self._head_bytes > self.limits.max_header_bytes and not self.transport.is_closing():
            self._head_too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._head_size += len(url)
        self._check_head_size()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        self._check_head_size()
        super().on_header(name, value)

    def _check_head_size(self) -> None:
        if self._head_size > self.limits.max_header_bytes:
            self._head_over = True
            raise _HeadTooLarge  # stops the parser (as HttpParserCallbackError); ``data_received`` answers 431

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what follows is the next request's head (pipelined or after the response)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline and (self.cycle is None
                                                                      or self.cycle.response_complete):
            self._arm_head_timer()

    def _head_too_large(self) -> None:
        if self._refused or self.transport.is_closing():
            return
        limit = self.limits.max_header_bytes
        self.limits.refused("max_header_bytes", client=self._client_key)
        body = json.dumps({"detail": {"error": f"request line and headers over {limit} bytes (api.max_header_bytes)",
                                      "limit": limit}}).encode()
        self._answer_and_close(431, body)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._refused or self.transport.is_closing() or (self.cycle is not None
                                                            and not self.cycle.response_complete):
            return  # a request is being answered: the timer is armed again after its response
        self.limits.refused("header_timeout", client=self._client_key)
        if self._head_bytes == 0:
            self.transport.close()  # an idle connection: nothing to answer
            return
        timeout = self.limits.header_timeout_s
        body = json.dumps({"detail": {"error": f"request headers not complete within {timeout:g} s "
                                               "(api.header_timeout_s)", "limit": timeout}}).encode()
        self._answer_and_close(408, body)

    def _answer_and_close(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Write a refusal, stop reading requests, and close after ``LINGER_S``: what the client still sends is read
        and dropped meanwhile (closing a socket with unread data makes the kernel reset it, and the client may
        lose the answer before reading it)."""
        if headers is None:
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
        self._refused = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        self.transport.write(_raw_response(status, headers, body))
        if self.transport.can_write_eof() and self.limits.lingering < MAX_LINGERING:
            self.transport.write_eof()
            self.limits.lingering += 1
            self._linger = self.loop.call_later(LINGER_S, self.transport.close)
        else:
            self.transport.close()


def _raw_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    reason = {408: b"Request Timeout", 429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
              503: b"Service Unavailable"}.get(status, b"")
    head = b"HTTP/1.1 %d %s\r\n" % (status, reason) + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return head + b"\r\n" + body


def guarded_protocol(limits: FrontLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to one server's shared ``limits``."""
    return type("BoundGuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
