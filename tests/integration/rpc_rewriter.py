"""A JSON-RPC proxy in front of a real node that can rewrite its answers: the lying RPC of the fault tests.

Each request is forwarded to ``upstream`` as is; the answer's text then goes through ``rewrite(method, text)``
for every method named in ``methods`` (a batch is rewritten as a whole when any call in it matches).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RewritingRpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: dict[str, Callable[[str], str]] = {}
        self.calls: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                doc = json.loads(body)
                methods = [c.get("method", "") for c in (doc if isinstance(doc, list) else [doc])]
                proxy.calls.extend(methods)
                req = urllib.request.Request(proxy.upstream, body, {"content-type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    text = resp.read().decode()
                for method in methods:
                    rule = proxy.rules.get(method)
                    if rule is not None:
                        text = rule(text)
                out = text.encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rewrite(self, method: str, fn: Callable[[str], str]) -> None:
        self.rules[method] = fn

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RewritingHttpProxy:
    """A GET proxy in front of a real HTTP API (the devnet beacon endpoint, a CometBFT RPC or Cosmos REST endpoint)
    that can rewrite its JSON answers: ``rewrite(path_prefix, fn)`` passes the decoded answer of every path starting
    with ``path_prefix`` through ``fn`` (which returns the answer to send). ``paths`` lists what was asked. A POST
    (a Cosmos broadcast) is forwarded as it is."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules: dict[str, Callable[[object], object]] = {}
        self.paths: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.paths.append(self.path)
                try:
                    with urllib.request.urlopen(proxy.upstream + self.path, timeout=30) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                if status == 200:
                    for prefix, rule in proxy.rules.items():
                        if self.path.startswith(prefix):
                            body = json.dumps(rule(json.loads(body))).encode()
                self._answer(status, body)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length", "0")))
                req = urllib.request.Request(proxy.upstream + self.path, data, {"content-type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                self._answer(status, body)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rewrite(self, path_prefix: str, fn: Callable[[object], object]) -> None:
        self.rules[path_prefix] = fn

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
