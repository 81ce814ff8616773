"""``CheckpointCollector``: gathers a quorum of validator signatures over one checkpoint per origin.

Validators attest at their own pace, so their latest indices differ. The collector asks each for its
latest index, takes the highest index that at least ``threshold`` validators have reached, and fetches
their signatures *at that index* (a validator signs any index up to its latest). Each signature is
checked before use: it must recover to the validator it came from, and the root must equal the root of
our own indexed tree at that count, so we never submit a delivery the destination would refuse.

Availability: every validator is asked at once, and the collector does not wait on the slowest. Once
``threshold`` validators answered, the others get ``QUORUM_GRACE_S`` more and are then abandoned (counted
``slow``), so one validator that hangs costs each batch at most that grace, not ``timeout_s``; a validator
that refuses connections costs nothing. Each validator's state is a metric: ``relayer_validator_up``,
``relayer_checkpoint_fetch_failures_total{validator,reason}``, ``relayer_validator_latest_index``, and per
origin ``relayer_checkpoint_quorum``.

Each request is signed with the relayer's identity (``auth``, ``relayer.api.relayer_auth.RelayerAuth``): checkpoints
are public, but a validator serves an allow-listed relayer from its own budget, so an anonymous flood on the same
validator does not starve the relayer.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import structlog

from adapters.base import Checkpoint, SignedCheckpoint
from adapters.checkpoint import (
    checkpoint_from_json,
    checkpoint_index_from_json,
    recover_signer,
    sorted_signatures,
)
from adapters.merkle import MerkleTree
from adapters.message import MessageFormatError
from config.settings import SecuritySettings
from relayer.daemon.metrics import Metrics

log = structlog.get_logger("relayer.pipeline.checkpoints")

QUORUM_GRACE_S = 0.25
_NOT_FOUND = object()  # the validator answered 404: up, but it has nothing signed there yet


class CheckpointCollector:
    def __init__(self, security: SecuritySettings, http: httpx.AsyncClient, *, timeout_s: float = 5.0,
                 refresh_s: float = 0.2, metrics: Metrics | None = None, chain_names: dict[int, str] | None = None,
                 grace_s: float = QUORUM_GRACE_S, auth: httpx.Auth | None = None) -> None:
        self.auth = auth
        self.validators = [(v.address.lower(), v.url) for v in security.validators]
        self.threshold = security.threshold
        self.http = http
        self.timeout_s = timeout_s
        self.refresh_s = refresh_s
        self.grace_s = min(grace_s, timeout_s)
        self.metrics = metrics or Metrics()
        self.names = chain_names or {}
        self._cache: dict[int, tuple[float, SignedCheckpoint | None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.last_problem: dict[int, str] = {}
        self.up: dict[str, bool] = {}

    def _mark(self, validator: str, up: bool, reason: str = "") -> None:
        was = self.up.get(validator)
        self.up[validator] = up
        self.metrics.set("relayer_validator_up", 1.0 if up else 0.0, validator=validator)
        if not up:
            self.metrics.inc("relayer_checkpoint_fetch_failures_total", validator=validator, reason=reason)
        if was is not None and was != up:
            (log.info if up else log.warning)("validator_up" if up else "validator_down", validator=validator,
                                              reason=reason or None)

    async def _get(self, validator: str, url: str) -> Any:
        """The validator's JSON answer; ``_NOT_FOUND`` on 404; None when it failed (recorded per validator)."""
        try:
            resp = await self.http.get(url, timeout=self.timeout_s, auth=self.auth)
        except httpx.TimeoutException:
            self._mark(validator, False, "timeout")
            return None
        except httpx.HTTPError as exc:
            log.debug("validator_unreachable", url=url, error=type(exc).__name__)
            self._mark(validator, False, "unreachable")
            return None
        if resp.status_code == 404:
            self._mark(validator, True)
            return _NOT_FOUND
        if resp.status_code != 200:
            self._mark(validator, False, f"http_{resp.status_code}")
            return None
        try:
            doc = resp.json()
        except ValueError:
            self._mark(validator, False, "malformed")
            return None
        self._mark(validator, True)
        return doc

    async def _ask_all(self, path: str) -> list[dict[str, Any] | None]:
        """``GET {url}{path}`` of every validator at once; returns when all answered, or ``grace_s`` after
        ``threshold`` of them did (the rest are abandoned as ``slow``). None where there is no document."""
        tasks = {asyncio.create_task(self._get(address, f"{url}{path}")): i
                 for i, (address, url) in enumerate(self.validators)}
        answers: list[Any] = [None] * len(tasks)
        pending = set(tasks)
        loop = asyncio.get_running_loop()
        give_up_at: float | None = None
        try:
            while pending:
                timeout = None if give_up_at is None else max(0.0, give_up_at - loop.time())
                done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    break
                for task in done:
                    answers[tasks[task]] = task.result()
                if give_up_at is None and sum(1 for a in answers if isinstance(a, dict)) >= self.threshold:
                    give_up_at = loop.time() + self.grace_s
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for task in pending:
            self._mark(self.validators[tasks[task]][0], False, "slow")
        return [a if isinstance(a, dict) else None for a in answers]

    async def quorum(self, origin: int, tree: MerkleTree) -> SignedCheckpoint | None:
        """The freshest checkpoint of ``origin`` signed by a quorum, or None (reason in ``last_problem``)."""
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            cached = self._cache.get(origin)
            if cached and time.monotonic() - cached[0] < self.refresh_s:
                return cached[1]
            result = await self._collect(origin, tree)
            self._cache[origin] = (time.monotonic(), result)
            self.metrics.set("relayer_checkpoint_quorum", 0.0 if result is None else 1.0,
                             origin=self.names.get(origin, origin))
            return result

    async def _collect(self, origin: int, tree: MerkleTree) -> SignedCheckpoint | None:
        latest = await self._ask_all(f"/checkpoints/{origin}/latest")
        indices: list[int] = []
        for (address, _), doc in zip(self.validators, latest):
            index = _index_or_none(doc)
            if index is None:
                continue
            indices.append(index)
            self.metrics.set("relayer_validator_latest_index", index, origin=self.names.get(origin, origin),
                             validator=address)
        indices.sort(reverse=True)
        if len(indices) < self.threshold:
            down = [a for a, _ in self.validators if not self.up.get(a, False)]
            self.last_problem[origin] = (f"{len(indices)} of {len(self.validators)} validators answered; "
                                         f"need {self.threshold}"
                                         + (f" (down: {', '.join(down)})" if down else ""))
            return None
        target = min(indices[self.threshold - 1], tree.count - 1)
        if target < 0:
            self.last_problem[origin] = "nothing indexed yet"
            return None
        cached = self._cache.get(origin)
        if cached and cached[1] and cached[1].checkpoint.index == target:
            return cached[1]
        docs = await self._ask_all(f"/checkpoints/{origin}/{target}")
        our_root = tree.root(target + 1)
        good: list[tuple[str, bytes]] = []
        checkpoint: Checkpoint | None = None
        problems: list[str] = []
        for (address, _), doc in zip(self.validators, docs):
            if not doc:
                continue
            try:
                cp, sig = checkpoint_from_json(doc, origin=origin)
                if cp.root != our_root or cp.index != target:
                    problems.append(f"{address}: root differs from our indexed tree")
                    continue
                if recover_signer(cp, sig) != address:
                    problems.append(f"{address}: signature recovers to another address")
                    continue
            except MessageFormatError as exc:  # SignatureError is one
                problems.append(f"{address}: malformed checkpoint ({exc})")
                continue
            if checkpoint is not None and cp.origin_mailbox != checkpoint.origin_mailbox:
                problems.append(f"{address}: different origin mailbox")
                continue
            checkpoint = cp
            good.append((address, sig))
        for p in problems:
            log.warning("checkpoint_signature_rejected", origin=origin, index=target, problem=p)
        if checkpoint is None or len(good) < self.threshold:
            self.last_problem[origin] = (f"{len(good)} valid signatures at index {target}, need {self.threshold}; "
                                         + "; ".join(problems))
            return None
        self.last_problem.pop(origin, None)
        return SignedCheckpoint(checkpoint, sorted_signatures(good)[: self.threshold])


def _index_or_none(doc: object) -> int | None:
    """A validator's latest index, or None when it did not answer or answered something malformed."""
    if not doc:
        return None
    try:
        return checkpoint_index_from_json(doc)
    except MessageFormatError:
        return None
