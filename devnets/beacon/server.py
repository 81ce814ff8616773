"""The Beacon API of the devnet beacon chains: the light-client routes, ``genesis``, ``headers``, ``config/spec`` and
``node/health``; one process serves every followed chain, each on its own port.

Who may call: anyone (a public, read-only beacon node). No request chooses what is signed: the server signs only
headers it built from its own node's blocks, so the worst a caller can do is ask for something it gets a 400 or
404 for. Parameters are checked before any work (a root is 32 bytes of hex, a period and count are decimal
uint64, ``count`` is at most ``MAX_REQUEST_LIGHT_CLIENT_UPDATES``).

Routes (JSON as the beacon-APIs spec shapes it; ``version`` is the fork, ``electra``):

- ``GET /eth/v1/beacon/genesis``: ``genesis_time``, ``genesis_validators_root``, ``genesis_fork_version``;
- ``GET /eth/v1/config/spec``: the preset and the devnet clock (``SLOT_DURATION_MS``);
- ``GET /eth/v1/node/health``: 200 once the chain caught up with its node, 503 before;
- ``GET /eth/v1/beacon/headers/{head|finalized|genesis|<slot>|<root>}``;
- ``GET /eth/v1/beacon/light_client/bootstrap/{block_root}``;
- ``GET /eth/v1/beacon/light_client/updates?start_period=&count=``: one update per period from ``start_period``
  (consecutive, stopping at the first period that has none yet);
- ``GET /eth/v1/beacon/light_client/finality_update`` and ``.../optimistic_update``: the head, signed as soon as
  it is built (signature slot head + 1, see ``ChainFollower.signature_slot``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devnets.beacon.chain import BeaconChainError, DevnetBeaconChain
from devnets.beacon.follower import ChainFollower, NodeError
from light_clients.ethereum.consensus import beacon_json

MAX_REQUEST_LIGHT_CLIENT_UPDATES = 128
_ROOT = re.compile(r"^0x[0-9a-fA-F]{64}$")
_UINT64 = re.compile(r"^[0-9]{1,20}$")


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=code)


def _json(doc: Any) -> Response:
    return Response(json.dumps(doc, separators=(",", ":")), media_type="application/json")


class ChainApi:
    """The routes of one chain, over its follower."""

    def __init__(self, follower: ChainFollower) -> None:
        self.follower = follower
        self._cache: dict[tuple[str, int], tuple[bytes, dict[str, Any]]] = {}

    def _chain(self) -> DevnetBeaconChain:
        chain = self.follower.chain
        if chain is None or not self.follower.synced:
            raise _Unavailable("the beacon chain has not caught up with its node yet")
        return chain

    def _head(self) -> int:
        head = self.follower.head()
        if head is None:
            raise _Unavailable("no slot published yet")
        return head

    def _signature_slot(self) -> int:
        slot = self.follower.signature_slot()
        if slot is None:
            raise _Unavailable("no slot attested yet")
        return slot

    async def _cached(self, kind: str, signature_slot: int, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """One signed object per (kind, signature slot, attested block), built once."""
        chain = self._chain()
        key, tip = (kind, signature_slot), chain.block_root(signature_slot - 1)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == tip:
            return hit[1]
        await self.follower.load_executions(chain.slots_for_update(signature_slot))
        doc = build()
        if len(self._cache) > 512:
            self._cache.clear()
        self._cache[key] = (tip, doc)
        return doc

    # ------------------------------------------------------------------ routes
    async def genesis(self, request: Request) -> Response:
        chain = self._chain()
        network = chain.network
        return _json({"data": {"genesis_time": str(chain.clock.genesis_time),
                               "genesis_validators_root": "0x" + network.genesis_validators_root.hex(),
                               "genesis_fork_version": "0x" + network.fork_schedule.forks[0].version.hex()}})

    async def spec(self, request: Request) -> Response:
        chain = self._chain()
        preset = chain.preset
        doc = {"PRESET_BASE": preset.name, "CONFIG_NAME": chain.network.name,
               "SLOT_DURATION_MS": str(chain.clock.slot_duration_ms), "SLOTS_PER_EPOCH": str(preset.slots_per_epoch),
               "EPOCHS_PER_SYNC_COMMITTEE_PERIOD": str(preset.epochs_per_sync_committee_period),
               "SYNC_COMMITTEE_SIZE": str(preset.sync_committee_size),
               "MAX_REQUEST_LIGHT_CLIENT_UPDATES": str(MAX_REQUEST_LIGHT_CLIENT_UPDATES),
               "DEPOSIT_CHAIN_ID": str(chain.chain_id), "DEVNET_FINALITY_DEPTH": str(chain.finality_depth)}
        for fork in chain.network.fork_schedule.forks:
            doc[f"{fork.name.upper()}_FORK_VERSION"] = "0x" + fork.version.hex()
            if fork.name != "genesis":
                doc[f"{fork.name.upper()}_FORK_EPOCH"] = str(fork.epoch)
        return _json({"data": doc})

    async def health(self, request: Request) -> Response:
        return Response(status_code=200 if self.follower.synced and self.follower.head() is not None else 503)

    async def headers(self, request: Request) -> Response:
        chain, head = self._chain(), self._head()
        block_id = request.path_params["block_id"]
        if block_id == "head":
            slot: int | None = head
        elif block_id == "finalized":
            slot = chain.finalized_slot(head)
        elif block_id == "genesis":
            slot = 0
        elif _UINT64.match(block_id):
            slot = int(block_id)
        elif _ROOT.match(block_id):
            slot = chain.slot_of_root(bytes.fromhex(block_id[2:]))
        else:
            return _error(400, f"invalid block id {block_id[:80]!r}: head, finalized, genesis, a slot or a 0x root")
        if slot is None or slot > head:
            return _error(404, "block not found")
        header = chain.beacon_header(slot)
        return _json({"execution_optimistic": False, "finalized": slot <= chain.finalized_slot(head),
                      "data": {"root": "0x" + chain.block_root(slot).hex(), "canonical": True,
                               "header": {"message": beacon_json.beacon_header_json(header),
                                          "signature": "0x" + "00" * 96}}})

    async def bootstrap(self, request: Request) -> Response:
        chain, head = self._chain(), self._head()
        root = request.path_params["block_root"]
        if not _ROOT.match(root):
            return _error(400, "invalid block root: expected 0x and 64 hex digits")
        slot = chain.slot_of_root(bytes.fromhex(root[2:]))
        if slot is None or slot > head or slot == 0:
            return _error(404, "LC bootstrap unavailable")
        await self.follower.load_executions([slot])
        return _json(beacon_json.envelope(chain.fork, beacon_json.bootstrap_json(chain.bootstrap(slot))))

    async def updates(self, request: Request) -> Response:
        chain, head = self._chain(), self._signature_slot()
        start, count = request.query_params.get("start_period"), request.query_params.get("count")
        if start is None or count is None:
            return _error(400, "missing start_period or count")
        if not _UINT64.match(start) or not _UINT64.match(count) or int(start) >= 2**64 or int(count) >= 2**64:
            return _error(400, "start_period and count are decimal uint64")
        found: list[Any] = []
        for period in range(int(start), int(start) + min(int(count), MAX_REQUEST_LIGHT_CLIENT_UPDATES)):
            signature_slot = chain.period_update_signature_slot(period, head)
            if signature_slot is None:
                break
            found.append(await self._cached("update", signature_slot, _period_update(chain, signature_slot)))
        return _json(found)

    async def finality_update(self, request: Request) -> Response:
        chain, head = self._chain(), self._signature_slot()
        return _json(await self._cached("finality", head, lambda: beacon_json.envelope(
            chain.fork, beacon_json.finality_update_json(chain.finality_update(head)))))

    async def optimistic_update(self, request: Request) -> Response:
        chain, head = self._chain(), self._signature_slot()
        return _json(await self._cached("optimistic", head, lambda: beacon_json.envelope(
            chain.fork, beacon_json.optimistic_update_json(chain.optimistic_update(head)))))

    def app(self) -> Starlette:
        routes = [
            ("/eth/v1/beacon/genesis", self.genesis),
            ("/eth/v1/config/spec", self.spec),
            ("/eth/v1/node/health", self.health),
            ("/eth/v1/beacon/headers/{block_id}", self.headers),
            ("/eth/v1/beacon/light_client/bootstrap/{block_root}", self.bootstrap),
            ("/eth/v1/beacon/light_client/updates", self.updates),
            ("/eth/v1/beacon/light_client/finality_update", self.finality_update),
            ("/eth/v1/beacon/light_client/optimistic_update", self.optimistic_update),
        ]
        return Starlette(routes=[Route(path, _guarded(handler), methods=["GET"]) for path, handler in routes])


def _period_update(chain: DevnetBeaconChain, signature_slot: int) -> Callable[[], dict[str, Any]]:
    return lambda: beacon_json.envelope(chain.fork, beacon_json.update_json(chain.update(signature_slot)))


class _Unavailable(Exception):
    pass


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """503 while the chain is not there yet or changed under the request (a reorg); never a 500 for those."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except _Unavailable as exc:
            return _error(503, str(exc))
        except (BeaconChainError, NodeError) as exc:
            return _error(503, f"the chain changed while answering, retry: {str(exc)[:200]}")

    return run


class MultiChainApp:
    """One ASGI app for every chain: a request goes to the chain listening on the port it came in on; the
    lifespan runs the followers."""

    def __init__(self, followers: dict[int, ChainFollower]) -> None:
        self.followers = followers
        self.apps = {port: ChainApi(f).app() for port, f in followers.items()}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        server = scope.get("server") or ("", 0)
        app = self.apps.get(int(server[1] or 0))
        if app is None:
            await JSONResponse({"code": 404, "message": "no chain on this port"}, status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        async with self._running():
            message = await receive()
            assert message["type"] == "lifespan.startup"
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    @contextlib.asynccontextmanager
    async def _running(self) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(f.run(stop), name=f"follow-{f.spec.name}") for f in self.followers.values()]
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
