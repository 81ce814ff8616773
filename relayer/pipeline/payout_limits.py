"""Payout limits on the chains the validators co-sign for (Solana, Cosmos; issue 15): what ``TokenBridge``'s inbound
buckets are on EVM, enforced in the co-signing.

``validator.payout_limits`` gives, per destination chain, remote chain (``"*"``: every other) and token, a bucket:
``capacity`` and ``refill_per_s`` in the token's home units. Each (validator, destination, origin domain, token) has a
bucket of its own, starting full. Before a validator co-signs a payload (``CosignService``, after the once-rule and
before the accountant), every token transfer in it to this chain counts against its bucket, summed per bucket:

* a payload whose sum fits the bucket's room is co-signed and takes it; a payload of one transfer larger than the
  capacity fits once the bucket is full and empties it (as the contract does for an inbound transfer: it would
  otherwise never fit);
* otherwise it is refused (``CosignRateLimited``: reason ``payout rate limited``, HTTP 429 with Retry-After) with
  the room and when it would fit: "rate limited: room 2 of 10 TST (from l1), refills 0.2 TST/s, would fit in 10 s".
  Counted in ``validator_cosign_rate_limited_total{chain}``; each bucket's room is the gauge
  ``validator_payout_limit_room_home_units{chain,remote,token,validator}``. Plain messages are never limited.

**Deterministic and safe across restarts and retries.** The buckets live in the validator's store
(``payout_limit_log``): an append-only log of every payout a bucket counted, with the time and the level after it;
a bucket's state is its newest row (no row: full), its room ``min(capacity, level + refill_per_s x elapsed)``
(elapsed in whole milliseconds, never negative: a clock stepping back refills nothing). A restart reads the same log,
so it cannot refill a bucket. Room is taken only once the payload passed every check and is about to be signed
(the row is written before the signature exists: a crash in between takes room for nothing, never the reverse), and
once per payload: the same payload again (rule 5's idempotent retry) finds its row and takes nothing.

**Room given back.** A payload that can never land gives its room back when the once-rule proves it (rule 5: the
chain shows the earlier payload of a message can no longer land and, read after that, the message undelivered): the
validator is then asked to sign a new payload for the message, and the old payload's rows get a ``give_back`` row
(once; capped at the capacity). A payload that expires and is never replaced is not given back: nothing asks the
chain about it, and the bucket refills by itself within ``capacity / refill_per_s``.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import structlog

from adapters.base import CosignRateLimited, CosignRequest
from config.settings import Settings
from relayer.daemon.metrics import Metrics
from relayer.pipeline.accountant import TokenDirectory
from relayer.store.payout_limits import GIVE_BACK, TAKE, BucketKey, BucketState, LogRow

log = structlog.get_logger("relayer.pipeline.payout_limits")


@dataclass(frozen=True, slots=True)
class Bucket:
    """One configured limit: home units, and the token's home decimals and symbol (for people)."""

    capacity: int
    refill_per_s: int
    symbol: str
    decimals: int

    def room(self, state: BucketState | None, now: float) -> int:
        if state is None:
            return self.capacity
        elapsed_ms = max(0, int((now - state.at) * 1000))
        return min(self.capacity, max(0, state.level) + self.refill_per_s * elapsed_ms // 1000)

    def fits(self, room: int, amount: int, transfers: int) -> bool:
        """``amount`` (of ``transfers`` transfers) may be paid now: within the room, or one transfer over the
        capacity into a full bucket."""
        return amount <= room or (transfers == 1 and amount > self.capacity and room >= self.capacity)

    def wait_s(self, room: int, amount: int) -> float:
        """Seconds until ``amount`` fits (until the bucket is full, for more than the capacity), rounded up to ms."""
        need = min(amount, self.capacity) - room
        if need <= 0:
            return 0.0
        return -(-need * 1000 // self.refill_per_s) / 1000

    def text(self, amount: int) -> str:
        value = Decimal(amount).scaleb(-self.decimals).normalize()
        return f"{value:f} {self.symbol}"


@dataclass(frozen=True, slots=True)
class Payout:
    """What one payload pays out through one bucket."""

    key: BucketKey
    amount: int
    transfers: int
    bucket: Bucket


class PayoutLog(Protocol):
    """The store's side (``Store.aio``)."""

    async def bucket_state(self, key: BucketKey) -> BucketState | None: ...

    async def payout_log(self, validator: str, chain: str, payload_sha256: str) -> list[LogRow]: ...

    async def append_payout_log(self, rows: Sequence[LogRow]) -> None: ...


LimitKey = tuple[str, int | None, str]  # (destination chain, origin domain or None for "*", token symbol there)


class PayoutLimiter:
    """One per validator process; ``CosignService`` calls it holding its per-chain lock."""

    def __init__(self, limits: Mapping[LimitKey, Bucket], directory: TokenDirectory, store: PayoutLog,
                 metrics: Metrics, *, clock: Callable[[], float] = time.time) -> None:
        self.limits = dict(limits)
        self.directory = directory
        self.store = store
        self.metrics = metrics
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, directory: TokenDirectory, store: PayoutLog, metrics: Metrics, *,
                      clock: Callable[[], float] = time.time) -> PayoutLimiter:
        limits: dict[LimitKey, Bucket] = {}
        for lim in settings.validator.payout_limits:
            token = settings.chains[lim.chain].tokens[lim.token]
            home_decimals = getattr(token, "home_decimals", None)  # Solana and Cosmos tokens have it
            decimals = token.decimals if home_decimals is None else int(home_decimals)
            remote = None if lim.remote == "*" else settings.chains[lim.remote].domain
            limits[(lim.chain, remote, lim.token)] = Bucket(lim.capacity, lim.refill_per_s, lim.token, decimals)
        return cls(limits, directory, store, metrics, clock=clock)

    def _bucket(self, chain: str, origin: int, symbol: str) -> Bucket | None:
        return self.limits.get((chain, origin, symbol)) or self.limits.get((chain, None, symbol))

    def payouts(self, validator: str, chain: str, domain: int, messages: Iterable[bytes]) -> list[Payout]:
        """The limited payouts of ``messages`` to ``chain`` (domain ``domain``), summed per bucket."""
        sums: dict[BucketKey, list[int]] = defaultdict(lambda: [0, 0])
        buckets: dict[BucketKey, Bucket] = {}
        for raw in messages:
            t = self.directory.transfer(raw)
            if t is None or t.destination != domain:
                continue  # a plain message: not limited
            place = self.directory.places.get((domain, t.token))
            bucket = None if place is None else self._bucket(chain, t.origin, place.symbol)
            if place is None or bucket is None:
                continue
            key = BucketKey(validator, chain, t.origin, place.symbol)
            buckets[key] = bucket
            sums[key][0] += t.amount
            sums[key][1] += 1
        return [Payout(k, amount, n, buckets[k]) for k, (amount, n) in sums.items()]

    async def check(self, validator: str, chain: str, domain: int, request: CosignRequest, digest: str
                    ) -> list[Payout]:
        """Raise ``CosignRateLimited`` unless every limited payout of ``request`` fits its bucket now; the payouts
        to ``take`` once it is signed (none when nothing is limited or this payload took its room already)."""
        payouts = self.payouts(validator, chain, domain, request.messages)
        if not payouts or await self.store.payout_log(validator, chain, digest):
            return []
        now = self.clock()
        for p in payouts:
            room = p.bucket.room(await self.store.bucket_state(p.key), now)
            self._publish(p.key, room)
            if not p.bucket.fits(room, p.amount, p.transfers):
                raise self._refused(p, room)
        return payouts

    def _refused(self, p: Payout, room: int) -> CosignRateLimited:
        b, wait = p.bucket, p.bucket.wait_s(room, p.amount)
        remote = self.directory.chain_label(p.key.remote)
        detail = (f"rate limited: room {b.text(room)} of {b.text(b.capacity)} (from {remote}), refills "
                  f"{b.text(b.refill_per_s)}/s, would fit in {math.ceil(wait)} s")
        if p.transfers > 1 and p.amount > b.capacity:
            detail += f" (for one transfer of its {p.transfers}: together they are over the capacity)"
        self.metrics.inc("validator_cosign_rate_limited_total", chain=p.key.chain)
        log.warning("cosign_rate_limited", chain=p.key.chain, validator=p.key.validator, remote=remote,
                    token=p.key.token, amount=p.amount, room=room, capacity=b.capacity, wait_s=wait)
        return CosignRateLimited(detail, chain=p.key.chain, retry_after_s=wait)

    async def take(self, validator: str, chain: str, digest: str, payouts: Sequence[Payout]) -> None:
        """``payouts`` (from ``check``, under the same lock) are about to be signed: take their room."""
        if not payouts:
            return
        now = self.clock()
        rows = []
        for p in payouts:
            room = p.bucket.room(await self.store.bucket_state(p.key), now)
            rows.append(LogRow(p.key, digest, TAKE, p.amount, max(0, room - p.amount), now))
        await self.store.append_payout_log(rows)
        for r in rows:
            self._publish(r.key, r.level_after)

    async def give_back(self, validator: str, chain: str, digests: Iterable[str]) -> None:
        """The payloads ``digests`` can never land and did not (the once-rule read it from the chain): give their
        room back, once each."""
        now = self.clock()
        for digest in set(digests):
            done = await self.store.payout_log(validator, chain, digest)
            if not done or any(r.kind == GIVE_BACK for r in done):
                continue
            rows = []
            for r in done:
                bucket = self._bucket(chain, r.key.remote, r.key.token)
                if bucket is None:  # no longer limited
                    continue
                room = bucket.room(await self.store.bucket_state(r.key), now)
                rows.append(LogRow(r.key, digest, GIVE_BACK, r.amount, min(bucket.capacity, room + r.amount), now))
            if rows:
                await self.store.append_payout_log(rows)
                log.info("payout_room_given_back", chain=chain, validator=validator, payload_sha256=digest,
                         buckets=len(rows))
                for row in rows:
                    self._publish(row.key, row.level_after)

    def _publish(self, key: BucketKey, room: int) -> None:
        self.metrics.set("validator_payout_limit_room_home_units", room, chain=key.chain,
                         remote=self.directory.chain_label(key.remote), token=key.token, validator=key.validator)
