"""A sync-committee light client that follows a Beacon API endpoint (``/eth/v1/beacon/light_client/*``).

Trust input: one block root (``trusted_block_root``, from the operator) and the network (genesis validators
root, fork schedule, preset). Nothing the endpoint says is taken on its word:

1. ``/eth/v1/beacon/genesis`` must name the network's genesis validators root (a foreign chain's endpoint is
   refused); its ``genesis_time`` only sets the clock of the future-slot check (a lying endpoint can loosen that
   check, never forge a signature).
2. The bootstrap must hash to the trusted root and prove its committee against its state root
   (``initialize_light_client_store``).
3. Every update goes through the spec's ``process_light_client_update`` (``sync.py``): participation, execution,
   finality and next-committee branches, signature slot after the attested slot and not ahead of the clock,
   the committee of the signature period, BLS FastAggregateVerify in the fork's domain. Period updates
   (``updates?start_period=&count=``) bring the next committees; finality and optimistic updates move the heads.
   Forced updates (``process_light_client_store_force_update``) are never applied: a header the committee only
   attested is not final, and the validator acts on finality alone.

An update that fails a check is refused with its ``RejectReason`` (``InvalidUpdate``) and the store is unchanged.
Updates that are valid but of no use now (not newer than the store, signed by a committee the store does not
know yet, finalizing another period, from a slot the clock has not reached) are skipped quietly: the next sync
retries them. ``finalized`` is the execution block (number, hash) of the store's finalized header: what the
validator's inclusion check links every header to.

Endpoints. The client reads ``beacon_url``, then ``fallback_beacon_urls`` in order (``light_clients.fallback``): one
that fails to connect, times out (``request_timeout_s``), answers 429/5xx or not JSON is demoted and the read goes on
at the next, since every answer is checked as above whichever endpoint gave it. One that serves what a check refuses
(a foreign network, a bootstrap or update that fails the sync protocol, a document of the wrong shape) is demoted too,
and the error is raised at once (the sync is refused; the next one reads from the next endpoint): a forged update is
an alarm, never hidden behind an honest fallback. Every endpoint failing is ``BeaconUnavailable``; an HTTP 4xx (a
root the endpoint does not know) is that endpoint's answer and raised as ``BeaconUnavailable`` too. Endpoints are
logged by index (0 is ``beacon_url``), never by URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from adapters.endpoints import Endpoints
from light_clients.ethereum.consensus import beacon_json
from light_clients.ethereum.consensus.config import BeaconClock, NetworkConfig
from light_clients.ethereum.consensus.containers import LightClientHeader, LightClientUpdate
from light_clients.ethereum.consensus.errors import InvalidUpdate, LightClientError, RejectReason
from light_clients.ethereum.consensus.preset import LightClientFork
from light_clients.ethereum.consensus.store import LightClientStore, initialize_light_client_store
from light_clients.ethereum.consensus.sync import process_light_client_update
from light_clients.fallback import (
    Endpoint,
    EndpointHttp,
    EveryEndpointFailed,
    FallbackReads,
    Served,
    json_of,
    raise_for_endpoint_status,
    urls_of,
)

log = structlog.get_logger("light_clients.ethereum.beacon")

MAX_UPDATES_PER_REQUEST = 128
BEACON_ENDPOINTS = "beacon_url and fallback_beacon_urls"
NOT_APPLICABLE_NOW = frozenset({
    RejectReason.NOT_NEWER, RejectReason.WRONG_SYNC_COMMITTEE, RejectReason.SIGNATURE_SLOT_IN_FUTURE,
    RejectReason.FINALIZED_PERIOD_MISMATCH,
})


class BeaconUnavailable(LightClientError):
    """The beacon endpoint did not answer (or answered with an HTTP error): retried later, nothing refused."""


class GenesisMismatch(LightClientError):
    """The endpoint serves another network than the one configured."""


@dataclass(frozen=True, slots=True)
class ExecutionCheckpoint:
    """An execution block named by a verified beacon header: its number and hash, and the beacon slot."""

    number: int
    block_hash: bytes
    slot: int

    @classmethod
    def of(cls, header: LightClientHeader) -> ExecutionCheckpoint:
        return cls(header.execution.block_number, header.execution.block_hash, header.beacon.slot)


class BeaconLightClient:
    """Follows one beacon chain from a trusted block root; see the module docstring for what is checked.

    ``urls``: the Beacon API endpoints in order (``beacon_url``, then ``fallback_beacon_urls``), or one URL;
    ``timeout_s``: what one request to one endpoint may take (the chain's ``request_timeout_s``)."""

    def __init__(self, name: str, urls: str | Sequence[str], trusted_block_root: bytes, network: NetworkConfig,
                 fork: LightClientFork, slot_duration_ms: int, *, http: httpx.AsyncClient | None = None,
                 timeout_s: float = 10.0, now: Callable[[], float] = time.time) -> None:
        self.name = name
        self.endpoints = FallbackReads(name, BEACON_ENDPOINTS, Endpoints(urls_of(urls)))
        self.trusted_block_root = trusted_block_root
        self.network = network
        self.fork = fork
        self.slot_duration_ms = slot_duration_ms
        self._requests = EndpointHttp(http or httpx.AsyncClient(timeout=timeout_s), timeout_s)
        self._now = now
        self.clock: BeaconClock | None = None
        self.store: LightClientStore | None = None
        self.updates_applied = 0
        self._last_skipped: RejectReason | None = None
        self._last_seen: dict[str, tuple[int, bytes]] = {}  # kind -> (signature slot, attested root) last processed
        self._lock = asyncio.Lock()  # one sync at a time (the daemon's health job and the attester both sync)

    # ------------------------------------------------------------------ reading the endpoint
    async def _get(self, path: str, params: Mapping[str, int] | None = None) -> Served[Any]:
        """The JSON answer to ``path`` of the first endpoint that answers, and which one it was."""
        try:
            return await self.endpoints.read(path, lambda endpoint: self._get_from(endpoint, path, params))
        except EveryEndpointFailed as exc:
            raise BeaconUnavailable(str(exc)) from exc

    async def _get_from(self, endpoint: Endpoint, path: str, params: Mapping[str, int] | None) -> Any:
        response = await self._requests.get(f"{endpoint.url}{path}", params=params)
        raise_for_endpoint_status(response)
        if response.status_code != 200:
            raise BeaconUnavailable(f"{endpoint} {path}: HTTP {response.status_code}: {response.text[:200]}")
        return json_of(response)

    @contextlib.contextmanager
    def _served_by(self, endpoint: Endpoint) -> Iterator[None]:
        """Checks of what ``endpoint`` served: one that fails demotes the endpoint (the next sync reads the next
        one) and is raised."""
        try:
            yield
        except LightClientError as exc:
            self.endpoints.refused(endpoint, type(exc).__name__)
            raise

    def current_slot(self) -> int:
        assert self.clock is not None
        return self.clock.slot_at(self._now())

    @property
    def finalized(self) -> ExecutionCheckpoint | None:
        """The execution block of the store's finalized header (None before the bootstrap)."""
        return None if self.store is None else ExecutionCheckpoint.of(self.store.finalized_header)

    @property
    def optimistic(self) -> ExecutionCheckpoint | None:
        return None if self.store is None else ExecutionCheckpoint.of(self.store.optimistic_header)

    # ------------------------------------------------------------------ following
    async def start(self) -> None:
        """Check the endpoint's network, then initialise the store from the bootstrap of the trusted root."""
        genesis = await self._get("/eth/v1/beacon/genesis")
        with self._served_by(genesis.endpoint):
            genesis_time = self._genesis_time(genesis)
        self.clock = BeaconClock(genesis_time, self.slot_duration_ms)
        answer = await self._get(f"/eth/v1/beacon/light_client/bootstrap/0x{self.trusted_block_root.hex()}")
        with self._served_by(answer.endpoint):
            bootstrap = beacon_json.decode_bootstrap(beacon_json.unwrap(answer.answer, self.fork), self.network.preset,
                                                     self.fork)
            store = initialize_light_client_store(self.trusted_block_root, bootstrap, self.network.preset, self.fork)
        self.store = store
        finalized = ExecutionCheckpoint.of(store.finalized_header)
        log.info("beacon_light_client_started", chain=self.name, endpoints=BEACON_ENDPOINTS,
                 endpoint=answer.endpoint.index, slot=finalized.slot, execution_block=finalized.number,
                 trusted_block_root="0x" + self.trusted_block_root.hex())

    def _genesis_time(self, genesis: Served[Any]) -> int:
        """The genesis time ``genesis`` names, once it names the configured network."""
        try:
            data = genesis.answer["data"]
            root = bytes.fromhex(str(data["genesis_validators_root"]).removeprefix("0x"))
            genesis_time = int(data["genesis_time"])
        except (KeyError, TypeError, ValueError) as exc:
            raise beacon_json.MalformedJson(f"genesis: {type(exc).__name__}: {exc}") from None
        if root != self.network.genesis_validators_root:
            raise GenesisMismatch(f"{genesis.endpoint} serves genesis validators root 0x{root.hex()}, network "
                                  f"{self.network.name} is 0x{self.network.genesis_validators_root.hex()}")
        return genesis_time

    async def sync(self) -> ExecutionCheckpoint:
        """Catch up: the periods the store misses, then the latest finality and optimistic updates. Returns the
        finalized execution block. Raises ``InvalidUpdate`` (the endpoint served an update that fails a check),
        ``MalformedJson``, ``GenesisMismatch`` or ``BeaconUnavailable``."""
        async with self._lock:
            return await self._sync()

    async def _sync(self) -> ExecutionCheckpoint:
        if self.store is None:
            await self.start()
        store = self.store
        assert store is not None
        answer = await self._get("/eth/v1/beacon/light_client/finality_update")
        with self._served_by(answer.endpoint):
            finality = beacon_json.decode_finality_update(beacon_json.unwrap(answer.answer, self.fork), store.preset,
                                                          self.fork)
        head_period = store.preset.period_at_slot(finality.signature_slot)
        if store.next_sync_committee is None or head_period > store.finalized_period + 1:
            await self._catch_up(head_period)
        with self._served_by(answer.endpoint):
            self._apply(LightClientUpdate.from_finality_update(finality, store.preset, self.fork), "finality_update",
                        answer.endpoint)
        answer = await self._get("/eth/v1/beacon/light_client/optimistic_update")
        with self._served_by(answer.endpoint):
            optimistic = beacon_json.decode_optimistic_update(beacon_json.unwrap(answer.answer, self.fork),
                                                              store.preset)
            self._apply(LightClientUpdate.from_optimistic_update(optimistic, store.preset, self.fork),
                        "optimistic_update", answer.endpoint)
        finalized = self.finalized
        assert finalized is not None
        return finalized

    async def _catch_up(self, head_period: int) -> None:
        """Period updates from the store's period on, until the store knows the committee signing at the head."""
        store = self.store
        assert store is not None
        while store.next_sync_committee is None or head_period > store.finalized_period + 1:
            start = store.finalized_period
            count = min(MAX_UPDATES_PER_REQUEST, max(1, head_period - start + 1))
            answer = await self._get("/eth/v1/beacon/light_client/updates", {"start_period": start, "count": count})
            before = (store.finalized_period, store.next_sync_committee)
            with self._served_by(answer.endpoint):
                for update in beacon_json.decode_updates(answer.answer, store.preset, self.fork, count):
                    self._apply(update, "update", answer.endpoint)
            if (store.finalized_period, store.next_sync_committee) == before:
                return  # the endpoint has nothing newer yet

    def _apply(self, update: LightClientUpdate, kind: str, endpoint: Endpoint) -> None:
        store = self.store
        assert store is not None
        seen = (update.signature_slot, update.attested_header.beacon.hash_tree_root())
        if kind != "update" and self._last_seen.get(kind) == seen:
            return  # the same signed header as last time: already processed, nothing new
        try:
            process_light_client_update(store, update, self.current_slot(), self.network.genesis_validators_root,
                                        self.network.fork_schedule)
        except InvalidUpdate as exc:
            if exc.reason not in NOT_APPLICABLE_NOW:  # not remembered as seen: another endpoint's may be valid
                log.error("beacon_update_refused", chain=self.name, endpoints=BEACON_ENDPOINTS,
                          endpoint=endpoint.index, kind=kind,
                          reject_reason=exc.reason.value,
                          signature_slot=update.signature_slot, attested_slot=update.attested_header.beacon.slot,
                          detail=exc.detail[:200])
                raise
            if exc.reason is not self._last_skipped and exc.reason is not RejectReason.NOT_NEWER:
                log.info("beacon_update_skipped", chain=self.name, kind=kind, reason=exc.reason.value,
                         signature_slot=update.signature_slot)
            self._last_skipped = exc.reason
            self._last_seen[kind] = seen
            return
        self._last_seen[kind] = seen
        self.updates_applied += 1
        self._last_skipped = None

    async def close(self) -> None:
        await self._requests.aclose()
