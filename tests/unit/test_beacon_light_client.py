"""The sync-committee client against the devnet beacon's real routes (served in-process over an ASGI transport,
the chain built from synthetic blocks): catch-up across committee rotations, quiet skipping of stale updates,
forged answers refused with the store unchanged, a foreign network refused; and the routes' input checks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from devnets.beacon.chain import DevnetBeaconChain
from devnets.beacon.follower import ChainFollower, ChainSpec
from devnets.beacon.server import ChainApi
from light_clients.ethereum.consensus.beacon_client import BeaconLightClient, GenesisMismatch
from light_clients.ethereum.consensus.config import DEVNET_SLOT_DURATION_MS, devnet_network
from light_clients.ethereum.consensus.errors import InvalidBootstrap, InvalidUpdate, RejectReason
from light_clients.ethereum.consensus.preset import LightClientFork
from tests.unit.test_devnet_beacon import SECRET, block

CHAIN_ID = 31337
GENESIS = int(time.time()) - 10**6  # the clock is far past every slot built here


class Served:
    """A follower whose chain the test grows by hand, its routes, and an optional rewrite of their answers."""

    def __init__(self, chain_id: int = CHAIN_ID) -> None:
        spec = ChainSpec("l1", chain_id, "http://unused.invalid", 2, 2)
        self.follower = ChainFollower(spec, httpx.AsyncClient(), SECRET)
        self.follower.chain = DevnetBeaconChain(chain_id, 2, GENESIS, SECRET)
        self.follower.synced = True
        self.app = ChainApi(self.follower).app()
        self.rewrite: Callable[[str, Any], Any] | None = None
        self.parent = b"\x00" * 32

    @property
    def chain(self) -> DevnetBeaconChain:
        assert self.follower.chain is not None
        return self.follower.chain

    def grow(self, to_length: int) -> None:
        while self.chain.length < to_length:
            header = block(self.chain.length, self.parent)
            self.chain.append(header)
            self.parent = header.hash()

    def transport(self) -> httpx.AsyncBaseTransport:
        inner = httpx.ASGITransport(app=self.app)
        served = self

        class Rewriting(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                response = await inner.handle_async_request(request)
                if served.rewrite is None or response.status_code != 200:
                    return response
                doc = json.loads(await response.aread())
                body = json.dumps(served.rewrite(request.url.path, doc)).encode()
                return httpx.Response(200, content=body, headers={"content-type": "application/json"})

        return Rewriting()

    def client(self, root_slot: int, chain_id: int = CHAIN_ID) -> BeaconLightClient:
        http = httpx.AsyncClient(transport=self.transport(), base_url="http://beacon")
        return BeaconLightClient("l1", "http://beacon", self.chain.block_root(root_slot), devnet_network(chain_id),
                                 LightClientFork.ELECTRA, DEVNET_SLOT_DURATION_MS, http=http)


async def test_client_follows_from_the_trusted_root_across_rotations() -> None:
    served = Served()
    served.grow(5 * 64 + 30)
    client = served.client(9)
    finalized = await client.sync()
    head = served.chain.length - 1  # signed at once: the head is attested, its finalized block is head - 2
    assert (finalized.number, finalized.block_hash) == (head - 2, served.chain.execution_hash(head - 2))
    assert client.optimistic is not None and client.optimistic.number == head
    assert client.store is not None and client.store.current_sync_committee == served.chain.committee(5)
    applied = client.updates_applied
    assert await client.sync() == finalized  # nothing new: the same updates are skipped quietly
    assert client.updates_applied == applied
    served.grow(served.chain.length + 70)  # into the next period
    moved = await client.sync()
    assert moved.number == served.chain.length - 3 and client.store.finalized_period == 6
    await client.close()


def _all_updates(fn: Callable[[dict[str, Any]], None]) -> Callable[[str, Any], Any]:
    """Apply ``fn`` to the data of every update answer (period, finality and optimistic)."""

    def rewrite(path: str, doc: Any) -> Any:
        if "/light_client/" in path and "/bootstrap/" not in path:
            for item in doc if isinstance(doc, list) else [doc]:
                fn(item["data"])
        return doc

    return rewrite


def _flip(hex_text: str) -> str:
    data = bytearray(bytes.fromhex(hex_text[2:]))
    data[-1] ^= 1
    return "0x" + data.hex()


@pytest.mark.parametrize(("forgery", "reason"), [
    (lambda d: d.update(sync_aggregate={**d["sync_aggregate"], "sync_committee_signature": _flip(
        d["sync_aggregate"]["sync_committee_signature"])}), RejectReason.BAD_SIGNATURE),
    (lambda d: "finality_branch" in d and d["finality_branch"].__setitem__(2, _flip(d["finality_branch"][2])),
     RejectReason.BAD_FINALITY_BRANCH),
    (lambda d: "next_sync_committee" in d and d["next_sync_committee"]["pubkeys"].reverse(),
     RejectReason.BAD_NEXT_SYNC_COMMITTEE_BRANCH),
    (lambda d: d["attested_header"]["execution"].update(block_hash="0x" + "ee" * 32),
     RejectReason.BAD_EXECUTION_BRANCH),
])
async def test_forged_updates_are_refused_and_the_store_does_not_move(forgery, reason) -> None:
    served = Served()
    served.grow(2 * 64 + 10)
    client = served.client(9)
    served.rewrite = _all_updates(forgery)
    with pytest.raises(InvalidUpdate) as raised:
        await client.sync()
    assert raised.value.reason is reason
    assert client.store is not None and client.finalized is not None and client.finalized.slot == 9
    await client.close()


async def test_a_foreign_network_or_a_wrong_bootstrap_is_refused() -> None:
    served = Served(chain_id=31338)  # another chain's beacon endpoint
    served.grow(40)
    foreign = served.client(9, chain_id=CHAIN_ID)
    with pytest.raises(GenesisMismatch, match="genesis validators root"):
        await foreign.sync()
    await foreign.close()
    served = Served()
    served.grow(40)
    other = Served()
    other.parent = b"\x01" * 32
    other.grow(10)  # the trusted root of another history
    client = served.client(9)
    client.trusted_block_root = other.chain.block_root(9)
    with pytest.raises(Exception) as raised:  # the endpoint has no block with that root: 404
        await client.sync()
    assert "404" in str(raised.value)

    def other_committee(path: str, doc: Any) -> Any:
        if "/bootstrap/" in path:
            doc["data"]["current_sync_committee"] = {**doc["data"]["current_sync_committee"],
                                                     "pubkeys": doc["data"]["current_sync_committee"]["pubkeys"][::-1]}
        return doc

    served.rewrite = other_committee
    with pytest.raises(InvalidBootstrap) as bootstrap_raised:
        await served.client(9).sync()
    assert bootstrap_raised.value.reason is RejectReason.BAD_CURRENT_SYNC_COMMITTEE_BRANCH


async def test_routes_check_their_parameters() -> None:
    served = Served()
    served.grow(200)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=served.app), base_url="http://beacon") as http:
        lc = "/eth/v1/beacon/light_client"
        assert (await http.get(f"{lc}/bootstrap/0x1234")).status_code == 400
        assert (await http.get(f"{lc}/bootstrap/0x" + "ab" * 32)).status_code == 404
        assert (await http.get(f"{lc}/updates?start_period=0")).status_code == 400
        assert (await http.get(f"{lc}/updates?start_period=-1&count=1")).status_code == 400
        assert (await http.get(f"{lc}/updates?start_period=0&count=99999999999999999999999")).status_code == 400
        assert len((await http.get(f"{lc}/updates?start_period=0&count=1000")).json()) == 4  # periods 0..3 (head 199)
        assert (await http.get(f"{lc}/updates?start_period=99&count=2")).json() == []
        assert (await http.get("/eth/v1/beacon/headers/nonsense")).status_code == 400
        assert (await http.get("/eth/v1/beacon/headers/100000")).status_code == 404
        head = (await http.get("/eth/v1/beacon/headers/head")).json()["data"]
        assert head["root"] == "0x" + served.chain.block_root(199).hex()
        finalized = (await http.get("/eth/v1/beacon/headers/finalized")).json()["data"]
        assert finalized["header"]["message"]["slot"] == "197"
        spec = (await http.get("/eth/v1/config/spec")).json()["data"]
        assert spec["SLOT_DURATION_MS"] == "100" and spec["SYNC_COMMITTEE_SIZE"] == "32"
