"""Where light blocks come from: the ``LightBlockProvider`` Protocol and an in-memory provider."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from light_clients.tendermint.blocks import LightBlock
from light_clients.tendermint.errors import LightBlockUnavailable


class LightBlockProvider(Protocol):
    """One full node (or a fake). ``light_block`` raises ``LightBlockUnavailable`` when it has no block."""

    def light_block(self, height: int) -> LightBlock: ...


class MemoryLightBlockProvider:
    """Serves light blocks from a mapping; counts the requests, so tests can see what bisection fetched."""

    def __init__(self, blocks: Mapping[int, LightBlock]) -> None:
        self._blocks = blocks
        self.requested: list[int] = []

    def light_block(self, height: int) -> LightBlock:
        self.requested.append(height)
        block = self._blocks.get(height)
        if block is None:
            raise LightBlockUnavailable(height)
        return block
