"""``QuorumRpc``: JSON-RPC over several endpoints of one EVM chain that must agree (``rpc_mode = "quorum"``).

Every request goes to all endpoints ``Endpoints.ready`` names (not demoted, or their cool-down over: that request is
their probe), concurrently; each answers or fails. A failure to connect, a timeout, HTTP 429 or 5xx demotes the
endpoint (``Endpoints.failed``), so a dead or hung one costs one timeout and then is no voter until its probe answers.
What is accepted depends on the request:

* **Reads, by agreement.** The answer is the one at least ``quorum`` endpoints returned identically: the canonical
  JSON (sorted keys) of each call's ``result`` or ``error``, a batch compared as a whole, its calls ordered by id.
  Endpoints that answered otherwise are outvoted: counted per (method, endpoint) for
  ``relayer_rpc_quorum_disagreements_total`` and logged as ``rpc_quorum_outvoted`` by index, never by URL (a
  provider's URL often holds its API key). Without a quorum the read raises ``RpcUnavailable`` saying how the
  endpoints split, a retryable error: the pipeline retries the stage later (``rpc_unavailable``).
* **Heights: the quorum-th highest.** ``eth_blockNumber`` answers differ between honest nodes by a block or two, so
  exact agreement would fail at every new block. The answer is the highest height at least ``quorum`` endpoints
  have reached (``adapters.endpoints.quorum_height``): a minority cannot raise it above every honest node, and it
  is never ahead of what a quorum can serve. No endpoint is counted as outvoted for a height.
* **Blocks at a tag** (``eth_getBlockByNumber`` with ``latest``, ``finalized``, ``safe``, ``pending``): accepted
  when a quorum returned the same block. Otherwise the read is pinned: the quorum-th highest of the block numbers
  the endpoints returned, read again by number, by agreement. For ``finalized`` that is a height at least
  ``quorum`` endpoints call final, so at least one honest node does while the liars are fewer than the quorum.
* **Other reads at a tag** (``eth_call``, ``eth_getBalance``, ``eth_getTransactionCount``, ``eth_estimateGas``,
  ``eth_feeHistory`` at ``latest`` or ``pending``): by agreement only, not pinned. The state they read changes at
  most once a block and rarely in the few contracts this relayer reads, so honest nodes at the tip agree almost
  always; when they do not, the read fails as ``rpc_unavailable`` and its retry a moment later agrees. Pinning
  would cost a height vote before every read, and ``pending`` (the nonce manager's) cannot be pinned at all.
  A node a block behind can therefore be outvoted now and then; a lying one shows as a steady rate. (``eth_feeHistory``
  at ``latest`` moves with every block: only the health job's chain stats read it, and they skip a failed round.)
* **Sends** (``eth_sendRawTransaction``): broadcast to every ready endpoint (all of them when none is ready),
  accepted when any accepts; for a batch, per transaction. "already known" or a nonce error from the others is
  then expected: they got it from the network or from us. Without an acceptance the first endpoint's answer
  (in configured order) is returned, for the sender's own error handling.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from adapters.endpoints import Endpoints, QuorumVote

HEIGHT_TAGS = frozenset({"latest", "finalized", "safe", "pending", "earliest"})
Body = dict[str, Any] | list[dict[str, Any]]  # one JSON-RPC request, or a batch


class PostTo(Protocol):
    """One JSON-RPC POST of ``data`` to ``url``: the decoded JSON answer (``EvmChain._post_to``)."""

    async def __call__(self, url: str, data: str) -> Any: ...


def canonical(answer: Any) -> str:
    """What endpoints must agree on: each call's result or error (and id), keys sorted, a batch ordered by id."""
    if isinstance(answer, list):
        items = sorted((_outcome(a) for a in answer), key=lambda o: json.dumps(o.get("id")))
        return json.dumps(items, sort_keys=True, separators=(",", ":"))
    return json.dumps(_outcome(answer), sort_keys=True, separators=(",", ":"))


def _outcome(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        return {"other": answer}
    if answer.get("error") is not None:
        return {"id": answer.get("id"), "error": answer["error"]}
    return {"id": answer.get("id"), "result": answer.get("result")}


def method_of(body: Body) -> str:
    """The JSON-RPC method of a request, or of a batch's first call (the adapter's batches are of one method)."""
    first = body[0] if isinstance(body, list) and body else body
    return str(first.get("method", "batch")) if isinstance(first, Mapping) else "batch"


def accepted_first(answers: list[Any]) -> Any:
    """Of the endpoints' answers to one send (in endpoint order), one that accepted it, else the first."""
    if isinstance(answers[0], list):
        return _accepted_per_transaction(answers)
    return next((a for a in answers if isinstance(a, dict) and a.get("error") is None and "result" in a), answers[0])


def _accepted_per_transaction(answers: list[Any]) -> list[Any]:
    batches = [a for a in answers if isinstance(a, list)]
    merged = {json.dumps(item.get("id")): item for item in batches[0] if isinstance(item, dict)}
    for batch in batches[1:]:
        for item in batch:
            key = json.dumps(item.get("id")) if isinstance(item, dict) else None
            if key in merged and merged[key].get("error") is not None and item.get("error") is None:
                merged[key] = item
    return list(merged.values())


def _is_send(body: Body) -> bool:
    calls = body if isinstance(body, list) else [body]
    return bool(calls) and all(c.get("method") == "eth_sendRawTransaction" for c in calls)


def _tagged_block_read(body: Body) -> bool:
    if isinstance(body, list) or body.get("method") != "eth_getBlockByNumber":
        return False
    params = body.get("params") or []
    return bool(params) and params[0] in HEIGHT_TAGS


class QuorumRpc:
    """JSON-RPC requests answered by a quorum of a chain's endpoints (the rules are in the module docstring; the
    vote itself is ``adapters.endpoints.QuorumVote``, shared with Solana and Cosmos)."""

    def __init__(self, chain: str, endpoints: Endpoints, quorum: int, post_to: PostTo, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._vote = QuorumVote(chain, endpoints, quorum, clock=clock)
        self._endpoints = endpoints
        self.quorum = quorum
        self._post_to = post_to

    async def post(self, body: Body, data: str) -> Any:
        """The accepted answer to ``body`` (``data`` is its JSON), as ``EvmChain._post`` returns it."""
        if _is_send(body):
            return await self._broadcast(data)
        if isinstance(body, dict) and body.get("method") == "eth_blockNumber":
            return await self._block_number(body, data)
        if isinstance(body, dict) and _tagged_block_read(body):
            return await self._tagged_block(body, data)
        return await self._agreed(body, data)

    def take_disagreements(self) -> dict[tuple[str, int], int]:
        """Outvoted answers per (method, endpoint index) since the last call (the metric's increments)."""
        return self._vote.take_disagreements()

    def _asker(self, data: str) -> Callable[[int], Awaitable[Any]]:
        return lambda i: self._post_to(self._endpoints.urls[i], data)

    async def _agreed(self, body: Body, data: str) -> Any:
        asked = await self._vote.voters(method_of(body), self._asker(data))
        return self._vote.agreed(method_of(body), asked, canonical)

    async def _block_number(self, body: dict[str, Any], data: str) -> Any:
        asked = await self._vote.voters(method_of(body), self._asker(data))
        height = self._vote.height(method_of(body), asked,
                                   lambda a: int(a["result"], 16) if _hex_result(a) else None, canonical)
        return {"jsonrpc": "2.0", "id": body.get("id"), "result": hex(height)}

    async def _tagged_block(self, body: dict[str, Any], data: str) -> Any:
        asked = await self._vote.voters(method_of(body), self._asker(data))
        answer = self._vote.winner(method_of(body), asked, canonical)
        if answer is not None:
            return answer
        height = self._vote.height(method_of(body), asked,
                                   lambda a: int(a["result"]["number"], 16) if _block_result(a) else None, canonical)
        pinned = {**body, "params": [hex(height), *body["params"][1:]]}
        return await self._agreed(pinned, json.dumps(pinned))

    async def _broadcast(self, data: str) -> Any:
        asked = await self._vote.broadcast(self._asker(data))
        if not asked.answers:
            raise next(iter(asked.failures.values()))
        return accepted_first([a for _, a in sorted(asked.answers.items())])


def _hex_result(answer: Any) -> bool:
    return (isinstance(answer, dict) and answer.get("error") is None and isinstance(answer.get("result"), str)
            and answer["result"].startswith("0x"))


def _block_result(answer: Any) -> bool:
    result = answer.get("result") if isinstance(answer, dict) else None
    return isinstance(result, dict) and isinstance(result.get("number"), str)
