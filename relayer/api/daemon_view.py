"""What the HTTP API reads of the daemon: one narrow interface, ``DaemonView``, which ``RelayerDaemon`` satisfies.

The API never imports the daemon (``relayer.daemon`` imports ``relayer.api.server`` to serve it, not the other way);
it is handed a ``DaemonView``. Before this interface the API read 13 of the daemon's attributes (settings, metrics,
store, ready(), store_status, chain_status, attesters, role, signers, cosign, capacity, intents, samples); it now
reads 10 members, of which ``readiness()``, ``status()`` and ``checkpoints()`` answer whole questions instead of
handing out the daemon's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from adapters.base import CosignRequest
    from config.settings import Settings
    from relayer.daemon.metrics import Metrics
    from relayer.explorer import ChainSampleBuffer
    from relayer.store import CheckpointRecord, Store
    from router.api import IntentsBackend
    from router.capacity import CapacityModel


@dataclass(frozen=True)
class Readiness:
    """``/readyz``: ready when every chain answers and the store does; per chain ``ok`` or why not."""

    ready: bool
    chains: dict[str, str]
    store: str  # "ok" or why the last heartbeat could not reach the store


class SignedCheckpoints(Protocol):
    """The checkpoints this process signed for one origin (``relayer.pipeline.validator.OriginAttester``)."""

    async def signed(self, address: str, index: int | None) -> CheckpointRecord | None: ...


class Cosigning(Protocol):
    """Co-signs a delivery to a Solana/Cosmos destination (``relayer.pipeline.cosign.CosignService``)."""

    async def cosign(self, validator: str, request: CosignRequest) -> tuple[str, bytes]: ...


class DaemonView(Protocol):
    """The daemon as its HTTP API sees it."""

    @property
    def settings(self) -> Settings:
        """chains (names, domains), ``api.*`` (the front), ``validator.*`` (who may co-sign), ``router.api_keys``."""
        ...

    @property
    def metrics(self) -> Metrics: ...

    @property
    def store(self) -> Store:
        """Message reads (``/v1/messages/{key}``) and the explorer's queries."""
        ...

    def readiness(self) -> Readiness: ...

    async def status(self) -> dict[str, Any]:
        """The body of ``GET /v1/status``."""
        ...

    def checkpoints(self, origin: int) -> SignedCheckpoints | None:
        """The signed checkpoints of ``origin``; None when this process does not attest it."""
        ...

    @property
    def cosign(self) -> Cosigning | None: ...

    @property
    def capacity(self) -> CapacityModel | None:
        """The routing API's live capacity model (None until every chain was sampled)."""
        ...

    @property
    def intents(self) -> IntentsBackend | None: ...

    @property
    def samples(self) -> ChainSampleBuffer:
        """The explorer's chain history."""
        ...

    def message_filters(self) -> dict[str, Any]:
        """relayer.allow / relayer.deny in force, as configured, with when they were loaded and the reloads so far."""
        ...

    async def reload_filters(self, source: str) -> dict[str, Any]:
        """Read relayer.allow / relayer.deny again and apply them (``ConfigError``: the old lists stay)."""
        ...

    def destinations_changed(self) -> None:
        """The operator paused, resumed or retried something: the destination processors look again now."""
        ...
