"""Retry spacing: exponential from ``base_s``, doubling per attempt, capped at ``max_s``. Deterministic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    base_s: float
    max_s: float

    def __call__(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1``, given ``attempt`` (>= 1) attempts already failed."""
        if attempt < 1:
            return 0.0
        return min(self.max_s, self.base_s * 2 ** min(attempt - 1, 62))
