"""``CheckpointCollector``: gathers a quorum of validator signatures over one checkpoint per origin.

Validators attest at their own pace, so their latest indices differ. The collector asks each for its
latest index, takes the highest index that at least ``threshold`` validators have reached, and fetches
their signatures *at that index* (a validator signs any index up to its latest). Each signature is
checked before use: it must recover to the validator it came from, and the root must equal the root of
our own indexed tree at that count, so we never submit a delivery the destination would refuse.
"""

from __future__ import annotations

import asyncio
import time

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

log = structlog.get_logger("relayer.checkpoints")


class CheckpointCollector:
    def __init__(self, security: SecuritySettings, http: httpx.AsyncClient, *, timeout_s: float = 5.0,
                 refresh_s: float = 0.2) -> None:
        self.validators = [(v.address.lower(), v.url) for v in security.validators]
        self.threshold = security.threshold
        self.http = http
        self.timeout_s = timeout_s
        self.refresh_s = refresh_s
        self._cache: dict[int, tuple[float, SignedCheckpoint | None]] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.last_problem: dict[int, str] = {}

    async def _get(self, url: str) -> dict | None:  # type: ignore[type-arg]
        try:
            resp = await self.http.get(url, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            log.debug("validator_unreachable", url=url, error=type(exc).__name__)
            return None
        if resp.status_code != 200:
            return None
        try:
            return resp.json()  # type: ignore[no-any-return]
        except ValueError:
            return None

    async def quorum(self, origin: int, tree: MerkleTree) -> SignedCheckpoint | None:
        """The freshest checkpoint of ``origin`` signed by a quorum, or None (reason in ``last_problem``)."""
        lock = self._locks.setdefault(origin, asyncio.Lock())
        async with lock:
            cached = self._cache.get(origin)
            if cached and time.monotonic() - cached[0] < self.refresh_s:
                return cached[1]
            result = await self._collect(origin, tree)
            self._cache[origin] = (time.monotonic(), result)
            return result

    async def _collect(self, origin: int, tree: MerkleTree) -> SignedCheckpoint | None:
        latest = await asyncio.gather(*(self._get(f"{url}/checkpoints/{origin}/latest") for _, url in self.validators))
        indices = sorted((i for i in map(_index_or_none, latest) if i is not None), reverse=True)
        if len(indices) < self.threshold:
            self.last_problem[origin] = f"{len(indices)} of {len(self.validators)} validators answered; need {self.threshold}"
            return None
        target = min(indices[self.threshold - 1], tree.count - 1)
        if target < 0:
            self.last_problem[origin] = "nothing indexed yet"
            return None
        cached = self._cache.get(origin)
        if cached and cached[1] and cached[1].checkpoint.index == target:
            return cached[1]
        docs = await asyncio.gather(*(self._get(f"{url}/checkpoints/{origin}/{target}") for _, url in self.validators))
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
            self.last_problem[origin] = f"{len(good)} valid signatures at index {target}, need {self.threshold}; " + "; ".join(problems)
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
