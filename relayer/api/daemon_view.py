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


class ExecutionRefused(Exception):
    """A manual execution refused: ``status`` is the admin API's answer (404, 409, 503), the message says why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


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

    async def gas_owed(self, message_id: str, refund_to: str | None) -> dict[str, Any] | None:
        """What the message still owes under relayer.gas_payment and, with ``refund_to``, the call paying it; None:
        no such message."""
        ...

    async def execute_message(self, message_id: str, gas_limit: int) -> dict[str, Any]:
        """Deliver one message now in a transaction of its own with ``gas_limit`` gas (the admin API's manual
        execution; on the relay loop); ``ExecutionRefused`` says why not."""
        ...

    async def route_profits(self) -> list[dict[str, Any]]:
        """Per route: fees collected, gas spent and their difference, in USD (``relayer.daemon.route_profit``)."""
        ...

    def destinations_changed(self) -> None:
        """The operator paused, resumed or retried something: the destination processors look again now."""
        ...
