"""Chain samples for the explorer's capacity and queue charts: a bounded, in-memory history per daemon.

The daemon's 2-second health job records one round (every chain) per run; the explorer reads the rounds
back by window or after a sequence number (its live stream). Nothing is persisted: a restart starts an
empty history, which the charts show as a gap.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ChainSample:
    seq: int
    at: float                           # unix seconds
    chain: str
    healthy: bool
    height: int | None
    finalized_lag: int | None
    utilisation: float | None           # fraction of the block gas limit used (the capacity model's EMA when it runs)
    base_fee: int | None                # smallest native unit per gas, next block
    spare_transfers_per_s: float | None  # what the routing API can still admit at the fee-market target
    queue: dict[str, int] = field(default_factory=dict)  # messages to this chain by pipeline state

    def view(self) -> dict[str, Any]:
        return asdict(self)


class _Health(Protocol):
    @property
    def healthy(self) -> bool: ...
    @property
    def latest_height(self) -> int | None: ...
    @property
    def finalized_height(self) -> int | None: ...


class _Stats(Protocol):
    @property
    def gas_used_ratio(self) -> float: ...
    @property
    def base_fee(self) -> int: ...


class ChainStatusLike(Protocol):
    """The part of the daemon's ``ChainStatus`` a sample is taken from."""

    @property
    def name(self) -> str: ...
    @property
    def domain(self) -> int: ...
    @property
    def health(self) -> _Health | None: ...
    @property
    def stats(self) -> _Stats | None: ...


class CapacityLike(Protocol):
    index: dict[str, int]
    used_fraction_ema: Any
    transfer_gas: Any

    def spare_gas_per_s(self, now_s: float) -> Any: ...


class ChainSampleBuffer:
    """The last ``max_rounds`` rounds of chain samples (default: one hour of 2-second rounds)."""

    def __init__(self, max_rounds: int = 1800, *, clock: Any = time.time) -> None:
        if max_rounds < 1:
            raise ValueError("max_rounds must be >= 1")
        self._rounds: deque[list[ChainSample]] = deque(maxlen=max_rounds)
        self._seq = 0
        self._lock = threading.Lock()
        self._clock = clock

    @property
    def last_seq(self) -> int:
        return self._seq

    def record(self, chains: Iterable[ChainStatusLike], *, capacity: CapacityLike | None,
               queue: Mapping[int, Mapping[str, int]], now_monotonic: float | None = None) -> list[ChainSample]:
        """One round: every chain's health, load and queue, as the health job just saw them."""
        at = self._clock()
        spare = None
        if capacity is not None:
            spare = capacity.spare_gas_per_s(time.monotonic() if now_monotonic is None else now_monotonic)
        with self._lock:
            self._seq += 1
            seq = self._seq
            samples = []
            for st in chains:
                h, s = st.health, st.stats
                i = capacity.index.get(st.name) if capacity is not None else None
                utilisation = s.gas_used_ratio if s is not None else None
                spare_tps = None
                if capacity is not None and i is not None and spare is not None:
                    utilisation = float(capacity.used_fraction_ema[i])
                    spare_tps = round(float(spare[i] / capacity.transfer_gas[i]), 1)
                lag = (h.latest_height - h.finalized_height
                       if h is not None and h.latest_height is not None and h.finalized_height is not None else None)
                samples.append(ChainSample(
                    seq=seq, at=at, chain=st.name, healthy=bool(h is not None and h.healthy),
                    height=h.latest_height if h is not None else None, finalized_lag=lag,
                    utilisation=None if utilisation is None else round(utilisation, 4),
                    base_fee=s.base_fee if s is not None else None, spare_transfers_per_s=spare_tps,
                    queue=dict(queue.get(st.domain, {}))))
            self._rounds.append(samples)
        return samples

    def window(self, seconds: float) -> list[ChainSample]:
        """Samples of the last ``seconds``, oldest first."""
        since = self._clock() - seconds
        with self._lock:
            return [s for r in self._rounds if r and r[0].at >= since for s in r]

    def after(self, seq: int) -> list[ChainSample]:
        """Samples of the rounds after sequence number ``seq``, oldest first."""
        with self._lock:
            return [s for r in self._rounds if r and r[0].seq > seq for s in r]
