"""The chains' adapters for the fixture's own sending and reading, on an event loop of their own (a thread): the
fixture is synchronous, and works the same from a plain or an ``async`` test."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from adapters.base import ChainAdapter, MessageSender
from config.loader import load_settings
from config.settings import Settings
from relayer.testing.chains import XChainError

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running in a daemon thread; ``run`` waits for a coroutine on it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="xchain-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()


class ChainClients:
    """An adapter per devnet chain from the daemon's config (without the relayer's signers: the test's own keys
    sign what it sends), built when first asked for. ``rebuild`` after a reset: an adapter keeps nonces and heights
    of the chain it saw, so the old ones are closed (on the loop, not waited for) and new ones built on the next use
    (a test that sends nothing after a reset builds none: some 0.2 s of a reset otherwise)."""

    def __init__(self, config: Path) -> None:
        self.settings: Settings = load_settings(config, env={})
        self._loop = LoopThread()
        self._adapters: dict[str, ChainAdapter] | None = None
        self._closing: list[concurrent.futures.Future[None]] = []

    @property
    def adapters(self) -> dict[str, ChainAdapter]:
        if self._adapters is None:
            from relayer.daemon.composition import build_adapters

            self._adapters = build_adapters(self.settings, with_signers=False)
        return self._adapters

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self._loop.run(coro, timeout)

    def adapter(self, chain: str) -> ChainAdapter:
        if chain not in self.adapters:
            raise XChainError(f"no devnet chain {chain!r}; chains: {', '.join(self.adapters)}")
        return self.adapters[chain]

    def sender(self, chain: str) -> MessageSender:
        adapter = self.adapter(chain)
        if not isinstance(adapter, MessageSender):
            raise XChainError(f"the {chain} adapter cannot send messages or tokens")
        return adapter

    def rebuild(self) -> None:
        if self._adapters is not None:
            self._closing = [f for f in self._closing if not f.done()]
            self._closing.append(self._loop.submit(_close_all(list(self._adapters.values()))))
            self._adapters = None

    def close(self) -> None:
        if self._adapters is not None:
            self._closing.append(self._loop.submit(_close_all(list(self._adapters.values()))))
            self._adapters = None
        concurrent.futures.wait(self._closing, timeout=30)
        self._loop.close()


async def _close_all(adapters: list[ChainAdapter]) -> None:
    for adapter in adapters:
        with contextlib.suppress(Exception):  # closing is best effort; the chain may be gone
            await adapter.close()
