"""A small client of the routing API for dApps (httpx, synchronous).

    client = RoutingClient("http://127.0.0.1:8900", api_key="...")
    ids = client.submit([{"amount": "5", "recipient": "0x...", "integrator": "mydapp"}])
    final = client.wait(ids[0], until={"included", "delivered"}, timeout=60)

Errors from the API raise ``RoutingError`` with the status code and the JSON body's ``detail`` (``router.errors``: one
shape; bad input is 400 and ``field`` names what was wrong, e.g. ``intents[2].amount``; a 429, over the client's
limit, also carries ``retry_after_s`` from the ``Retry-After`` header). An intent the router did not take
(``unserved``) comes back with ``None`` as its id: nothing of it is kept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator, Sequence
from typing import Any, Self

import httpx

FINAL = frozenset({"delivered", "failed", "unserved"})


class RoutingError(Exception):
    def __init__(self, status: int, detail: Any, retry_after_s: float | None = None) -> None:
        self.status = status
        self.detail = detail
        self.retry_after_s = retry_after_s  # from Retry-After (429: over the limit; 503: not ready or full)
        self.field = detail.get("field") if isinstance(detail, dict) else None  # bad input: the field named
        super().__init__(f"HTTP {status}: {detail}")


class RoutingClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _raise(resp: httpx.Response) -> None:
        try:
            detail = resp.json().get("detail", resp.json())
        except ValueError:
            detail = resp.text
        retry = resp.headers.get("retry-after")
        raise RoutingError(resp.status_code, detail, float(retry) if retry and retry.isdigit() else None)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._http.request(method, path, **kwargs)
        if resp.status_code >= 400:
            self._raise(resp)
        return resp.json()

    def chains(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/chains")["chains"]

    def quote(self, amount: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", "/v1/quote", json={"amount": str(amount), **fields})

    def submit(self, intents: Sequence[dict[str, Any]]) -> list[str | None]:
        """Submit a batch; the ids, in order, None for an intent left unserved (the others run in the background:
        poll ``status``)."""
        return self._call("POST", "/v1/intents", json={"intents": list(intents)})["ids"]

    def submit_batch(self, intents: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Submit a batch; the whole answer: ``batch`` (for ``events``; None when nothing was taken), ``ids`` (None
        where unserved), ``statuses`` and ``reasons``."""
        return self._call("POST", "/v1/intents", json={"intents": list(intents)})

    def submit_unsigned(self, intents: Sequence[dict[str, Any]], signer: str) -> dict[str, Any]:
        """Plan a batch for ``signer`` to sign itself: ``ids``, ``statuses`` and ``transactions`` (one per intent,
        None where unserved); after broadcasting one, report its hash with ``broadcast``."""
        return self._call("POST", "/v1/intents", json={"intents": list(intents), "signer": signer})

    def broadcast(self, intent_id: str, tx_hash: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/intents/{intent_id}/broadcast", json={"tx_hash": tx_hash})

    def batch(self, batch: str) -> dict[str, Any]:
        """Every intent of ``batch`` and counts by status (``GET /v1/batches/{batch}``)."""
        return self._call("GET", f"/v1/batches/{batch}")

    def events(self, batch: str, timeout: float = 300.0) -> Iterator[tuple[str, dict[str, Any]]]:
        """The batch's server-sent events as ``(event, data)``: ``intent`` per status change, then ``done``
        (or ``timeout``)."""
        with self._http.stream("GET", f"/v1/batches/{batch}/events", params={"timeout_s": timeout},
                               timeout=timeout + 10) as resp:
            if resp.status_code != 200:
                resp.read()
                self._raise(resp)
            event, data = "message", ""
            for line in resp.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    yield event, json.loads(data)
                    event, data = "message", ""

    def status(self, intent_id: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/intents/{intent_id}")

    def wait(self, intent_id: str, until: Collection[str] = ("included", "delivered"), timeout: float = 60.0,
             interval: float = 0.2) -> dict[str, Any]:
        """Poll until the intent's status is in ``until`` (returned) or final otherwise (``RoutingError``
        409), or ``timeout`` passes (``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(intent_id)
            if st["status"] in until:
                return st
            if st["status"] in FINAL:
                raise RoutingError(409, f"intent {intent_id} ended {st['status']}: {st.get('reason')}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"intent {intent_id} still {st['status']} after {timeout:.0f}s")
            time.sleep(interval)

    def report(self, code: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/integrators/{code}/report")
