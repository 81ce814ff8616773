"""The token bridges' rate limits as users see them before they sign (issue 15): ``/v1/quote``'s estimated wait,
``/v1/chains``' figures and the explorer's "Bridge limits" table.

Each EVM ``TokenBridge`` holds a token bucket per remote domain, token and direction (``BridgeRateLimits``). Outbound,
a transfer over the bucket's room reverts with the seconds to wait, and one above its capacity can never pass;
inbound, a transfer over the room is delivered but queued on chain, and paid out (by the relayer's
``QueuedTransferReleaser``, or anyone) once the bucket has room for it and for the transfers queued before it.

``BridgeLimitReader`` reads a chain's buckets (both directions of every remote domain and bridged token, one JSON-RPC
batch) and its open queued transfers, and keeps them ``ttl_s`` (3 s), so quotes stay cheap; a chain whose limits
cannot be read (or not within ``read_timeout_s``, 2 s) is reported ``unknown``, never as unlimited or as zero.
``outbound_leg``, ``inbound_leg`` and ``route_wait`` are the arithmetic, in the token's smallest units on each chain
(the bridge's home units).

The wait of a route, in seconds, counted as a delay to its ``latency_s``: ``w_out`` = until the origin's outbound bucket
has room for the amount (sending before then reverts); ``t_in`` = from now, until the destination's inbound bucket has
refilled enough for what is queued there before it and for the amount (at most a full bucket); the transfer reaches the
destination ``w_out + latency_s`` from now and is paid at ``max(w_out + latency_s, t_in)``, so the bridge adds
``max(w_out, t_in - latency_s, 0)``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from adapters.base import AdapterError
from adapters.capabilities import BridgeQueue, BridgeRateLimit, BridgeRateLimits, RateLimitBucket

log = structlog.get_logger("router.bridge_limits")

LIMITS_TTL_S = 3.0
READ_TIMEOUT_S = 2.0  # a chain slower than this is ``unknown`` for the TTL: /v1/chains and quotes stay fast


@dataclass(frozen=True, slots=True)
class Leg:
    """One direction's verdict for one amount: ``status`` ``unlimited``, ``limited``, ``unknown`` (could not be read)
    or ``none`` (the chain's bridge has no rate limits); ``wait_s`` from now (None: unknown or never); ``possible``
    False with ``reason`` when the amount cannot pass (None: unknown)."""

    status: str
    wait_s: float | None = 0.0
    possible: bool | None = True
    reason: str | None = None
    bucket: RateLimitBucket | None = None
    queued: int = 0


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def outbound_leg(bucket: RateLimitBucket, amount: int) -> Leg:
    """The origin's bucket towards the destination: ``amount`` passes at once within the room, after
    ``ceil((amount - room) / rate)`` seconds within the capacity, never above it (nor, without refill, above the room:
    only transfers coming in refill it then)."""
    if not bucket.limited:
        return Leg("unlimited", bucket=bucket)
    if amount > bucket.capacity:
        return Leg("limited", None, False, "amount above the bridge's outbound capacity: it can never pass in one "
                                           "transfer; split it", bucket)
    if amount <= bucket.room:
        return Leg("limited", 0.0, True, None, bucket)
    if bucket.rate_per_s == 0:
        return Leg("limited", None, False, "amount above the bridge's outbound room, which does not refill over time "
                                           "(only transfers coming in refill it)", bucket)
    return Leg("limited", float(_ceil_div(amount - bucket.room, bucket.rate_per_s)), True, None, bucket)


def inbound_leg(bucket: RateLimitBucket, amount: int, queued: int) -> Leg:
    """The destination's bucket from the origin: paid at delivery within the room (and, with nothing queued before
    it, when the bucket is full, whatever the amount); else queued on chain until the bucket has refilled enough for
    ``queued`` (what waits there already, paid first) and for the amount, capped at a full bucket."""
    if not bucket.limited:
        return Leg("unlimited", bucket=bucket, queued=queued)
    need = queued + min(amount, bucket.capacity)
    if need <= bucket.room:
        return Leg("limited", 0.0, True, None, bucket, queued)
    if bucket.rate_per_s == 0:
        return Leg("limited", None, False, "the bridge's inbound bucket has no room for it and does not refill: the "
                                           "transfer would stay queued on chain", bucket, queued)
    return Leg("limited", float(_ceil_div(need - bucket.room, bucket.rate_per_s)), True, None, bucket, queued)


UNKNOWN = Leg("unknown", None, None, "the bridge's rate limits could not be read")
NO_LIMITS = Leg("none")


def route_wait(outbound: Leg, inbound: Leg, latency_s: float) -> tuple[float | None, bool | None, str | None]:
    """(seconds the limits add to the route's latency, whether the amount can pass, why not): see the module."""
    if outbound.possible is False or inbound.possible is False:
        return None, False, outbound.reason if outbound.possible is False else inbound.reason
    if outbound.wait_s is None or inbound.wait_s is None:
        return None, None, outbound.reason or inbound.reason
    return max(outbound.wait_s, inbound.wait_s - latency_s, 0.0), True, None


def units(amount: Decimal, decimals: int) -> int:
    """A token amount (whole tokens) in smallest units, rounded up (a part of a unit still needs room)."""
    return math.ceil(amount.scaleb(decimals))


def tokens(n: int, decimals: int) -> str:
    """Smallest units as an exact decimal string of whole tokens."""
    return format(Decimal(n).scaleb(-decimals).normalize(), "f") if n else "0"


def bucket_view(b: RateLimitBucket, decimals: int) -> dict[str, Any]:
    if not b.limited:
        return {"limited": False}
    return {"limited": True, "capacity": tokens(b.capacity, decimals), "refill_per_s": tokens(b.rate_per_s, decimals),
            "room": tokens(b.room, decimals)}


def leg_view(leg: Leg, decimals: int, *, inbound: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"status": leg.status}
    if leg.bucket is not None and leg.bucket.limited:
        view |= bucket_view(leg.bucket, decimals)
    if inbound and leg.status in ("limited", "unlimited"):
        view["queued"] = tokens(leg.queued, decimals)
    return view | {"wait_s": leg.wait_s, "possible": leg.possible, "reason": leg.reason}


@dataclass(frozen=True, slots=True)
class ChainLimits:
    """What one chain's bridge said, as of ``read_at`` (monotonic): buckets by (remote domain, symbol), open queued
    inbound transfers (total, count) by (origin domain, token address); ``error`` when they could not be read."""

    limits: dict[tuple[int, str], BridgeRateLimit] = field(default_factory=dict)
    queued: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    error: str | None = None
    read_at: float = 0.0


class BridgeLimitReader:
    """Reads and caches every rate-limited chain's buckets (``adapters`` that are ``BridgeRateLimits``): one read per
    chain at most every ``ttl_s``, concurrent askers waiting for the same read. ``domains``: every configured chain's
    domain by name (the remotes); ``decimals(chain, symbol)``: the token's decimals there."""

    def __init__(self, adapters: Mapping[str, object], domains: Mapping[str, int],
                 decimals: Callable[[str, str], int], *, ttl_s: float = LIMITS_TTL_S,
                 read_timeout_s: float = READ_TIMEOUT_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.sources = {n: a for n, a in adapters.items() if isinstance(a, BridgeRateLimits) and a.bridge_tokens()}
        self.domains = dict(domains)
        self.names = {d: n for n, d in domains.items()}
        self.decimals = decimals
        self.ttl_s = ttl_s
        self.read_timeout_s = read_timeout_s
        self.clock = clock
        self._cache: dict[str, ChainLimits] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._scan_from: dict[str, int] = defaultdict(lambda: 1)  # per chain: no open queued transfer below this id

    def has_limits(self, chain: str) -> bool:
        """The chain's bridge has rate limits to read (False: its family has none, or no bridge is configured)."""
        return chain in self.sources

    async def chain(self, name: str) -> ChainLimits:
        cached = self._cache.get(name)
        if cached is not None and self.clock() - cached.read_at < self.ttl_s:
            return cached
        async with self._locks[name]:
            cached = self._cache.get(name)
            if cached is not None and self.clock() - cached.read_at < self.ttl_s:
                return cached
            self._cache[name] = fresh = await self._read(name)
            return fresh

    async def _read(self, name: str) -> ChainLimits:
        source = self.sources[name]
        remotes = [d for n, d in self.domains.items() if n != name]
        try:
            async with asyncio.timeout(self.read_timeout_s):
                limits = await source.bridge_rate_limits(remotes, source.bridge_tokens())
                queued = await self._queued(name, source)
        except (AdapterError, TimeoutError) as exc:
            error = str(exc)[:300] or f"no answer within {self.read_timeout_s:g} s"
            log.warning("bridge_limits_unavailable", chain=name, error=error)
            return ChainLimits(error=error, read_at=self.clock())
        return ChainLimits({(b.remote_domain, b.symbol): b for b in limits}, queued, read_at=self.clock())

    async def _queued(self, name: str, source: object) -> dict[tuple[int, str], tuple[int, int]]:
        if not isinstance(source, BridgeQueue):
            return {}
        waiting = await source.queued_transfers(self._scan_from[name])
        if waiting:
            self._scan_from[name] = waiting[0].queue_id
        totals: dict[tuple[int, str], tuple[int, int]] = {}
        for q in waiting:
            amount, count = totals.get((q.origin, q.token), (0, 0))
            totals[(q.origin, q.token)] = (amount + q.amount, count + 1)
        return totals

    async def legs(self, origin: str, destination: str, symbol: str, amount: Decimal) -> tuple[Leg, Leg]:
        """The outbound leg on ``origin`` and the inbound leg on ``destination`` of ``amount`` (whole tokens)."""
        return (await self._leg(origin, destination, symbol, amount, inbound=False),
                await self._leg(destination, origin, symbol, amount, inbound=True))

    async def _leg(self, chain: str, remote: str, symbol: str, amount: Decimal, *, inbound: bool) -> Leg:
        if not self.has_limits(chain):
            return NO_LIMITS
        read = await self.chain(chain)
        limit = read.limits.get((self.domains[remote], symbol))
        if read.error is not None or limit is None:
            reason = read.error or f"{symbol} is not a bridged token of {chain}"
            return Leg("unknown", None, None, f"the bridge's rate limits could not be read: {reason}")
        n = units(amount, self.decimals(chain, symbol))
        if not inbound:
            return outbound_leg(limit.outbound, n)
        queued, _count = read.queued.get((self.domains[remote], limit.token), (0, 0))
        return inbound_leg(limit.inbound, n, queued)

    async def chain_view(self, name: str) -> dict[str, Any]:
        """``/v1/chains``' ``bridge_limits`` of one chain: every (remote, token) with a limit in either direction or
        transfers queued, or ``unknown`` with the error."""
        if not self.has_limits(name):
            return {"status": "none", "limits": []}
        read = await self.chain(name)
        if read.error is not None:
            return {"status": "unknown", "error": read.error, "limits": []}
        rows = []
        for (domain, symbol), b in sorted(read.limits.items()):
            queued, count = read.queued.get((domain, b.token), (0, 0))
            if not (b.outbound.limited or b.inbound.limited or count):
                continue
            d = self.decimals(name, symbol)
            rows.append({"remote": self.names.get(domain, str(domain)), "remote_domain": domain, "token": symbol,
                         "outbound": bucket_view(b.outbound, d),
                         "inbound": bucket_view(b.inbound, d) | {"queued": tokens(queued, d),
                                                                 "queued_transfers": count}})
        return {"status": "ok", "limits": rows}


async def quote_limits(reader: BridgeLimitReader, origin: str, destination: str, symbol: str, amount: Decimal,
                       latency_s: float) -> dict[str, Any]:
    """A quote option's ``bridge_limit``: both legs, and what they add to the route's latency."""
    out, inn = await reader.legs(origin, destination, symbol, amount)
    wait, possible, reason = route_wait(out, inn, latency_s)
    return {"outbound": leg_view(out, reader.decimals(origin, symbol), inbound=False),
            "inbound": leg_view(inn, reader.decimals(destination, symbol), inbound=True),
            "wait_s": None if wait is None else round(wait, 3), "possible": possible, "reason": reason}


def fold_wait(room_wait_s: float | None, bridge: Mapping[str, Any] | None) -> float | None:
    """``/v1/quote``'s ``wait_s``: the later of the wait for the chains' room and the bridge's wait (both must have
    room before the transfer goes); None when either is unknown or never."""
    if bridge is None or room_wait_s is None:
        return room_wait_s
    wait = bridge.get("wait_s")
    return None if wait is None else round(max(room_wait_s, float(wait)), 3)


__all__ = ["BridgeLimitReader", "ChainLimits", "Leg", "fold_wait", "inbound_leg", "outbound_leg", "quote_limits",
           "route_wait", "tokens", "units"]
