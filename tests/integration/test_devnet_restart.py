"""`relayer devnet down` then `up` is a new devnet on every family (anvils, beacon, Cosmos, Solana) with a new relayer
store; `down --keep-state` then `up` resumes the same devnet where it stopped."""

from __future__ import annotations

import json
import random
import socket
from pathlib import Path

import httpx
import pytest

from adapters.base import DispatchedMessage
from adapters.message import Message
from devnets.devnet import COSMOS_DOMAIN, Devnet
from relayer.store import Store
from tests.integration.harness import free_port_block, wait_for

pytestmark = pytest.mark.integration

ADVANCE = {"cosmos": 30, "solana": 60, "l1": 15}  # blocks / slots past the first `up` before stopping


def port_block_below_ephemeral(n: int) -> int:
    """A base port with ``n`` free ports below Linux's ephemeral range (32768-60999): the devnet leaves its ports
    and takes them again, and in between an outgoing connection could be given one from that range."""
    for _ in range(200):
        base = random.randrange(20_000, 32_000 - n)
        try:
            for port in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no block of free ports")


def heights(net: Devnet) -> dict[str, int]:
    found = {name: chain["height"] for name, chain in net.status()["chains"].items()}
    assert all(h is not None for h in found.values()), found
    return found


def advanced(net: Devnet, since: dict[str, int]) -> dict[str, int]:
    """Wait until each chain in ``ADVANCE`` is that far past ``since``; the heights then."""
    wait_for(lambda: all(heights(net)[n] >= since[n] + k for n, k in ADVANCE.items()), 90,
             f"the chains to advance {ADVANCE}")
    return heights(net)


def store(net: Devnet) -> Store:
    return Store(f"sqlite:///{net.dir / 'relayer.db'}")


def record_cosmos_message(net: Devnet, height: int, body: bytes) -> str:
    """What the daemon's indexer writes for a message dispatched on this devnet's Cosmos chain at ``height``
    (``body`` tells two messages apart: a new devnet may reach the same height again)."""
    message = Message(3, height, COSMOS_DOMAIN, b"\x01" * 32, net.manifest()["chains"]["l1"]["domain"], b"\x02" * 32,
                      body)
    found = DispatchedMessage(message, message.encode(), message.id, height, "0x" + "ab" * 32, 0, 0.0)
    s = store(net)
    try:
        s.record_dispatched([found], cursor=("origin:cosmos", height), known_destinations={message.destination})
    finally:
        s.close()
    return "0x" + bytes(message.id).hex()


def stored_ids(net: Devnet) -> list[str]:
    s = store(net)
    try:
        return [m.id for m in s.recent(limit=10)]
    finally:
        s.close()


def beacon_serves_trusted_roots(net: Devnet) -> bool:
    """Every EVM chain's beacon answers the light-client bootstrap of the root ``relayer.toml`` trusts."""
    chains = [c for c in net.manifest()["chains"].values() if "beacon_url" in c]
    return all(httpx.get(f"{c['beacon_url']}/eth/v1/beacon/light_client/bootstrap/{c['trusted_block_root']}",
                         timeout=5).status_code == 200 for c in chains)


def test_up_after_down_is_a_new_devnet_and_keep_state_resumes_it(tmp_path: Path) -> None:
    net = Devnet(tmp_path / "devnet", base_port=port_block_below_ephemeral(21), api_port=free_port_block(1))
    net.up()
    try:
        first = heights(net)
        old = advanced(net, first)
        old_id = record_cosmos_message(net, old["cosmos"], b"before down")
        old_vault = net.manifest()["chains"]["cosmos"]["vault"]
        net.down()
        assert not (net.dir / "relayer.db").exists() and not (net.dir / "cosmos").exists()

        net.up()  # a new devnet: every chain from genesis again, an empty store
        new = heights(net)
        assert all(new[n] < old[n] for n in ADVANCE), (old, new)
        assert net.manifest()["chains"]["cosmos"]["vault"] == old_vault  # same validators, same multisig vault
        assert stored_ids(net) == []
        fresh = store(net)
        assert fresh.cursor("origin:cosmos") is None
        fresh.close()

        kept = advanced(net, new)
        kept_id = record_cosmos_message(net, kept["cosmos"], b"before down --keep-state")
        manifest = net.manifest()
        net.down(keep_state=True)
        assert json.loads(net.kept_path.read_text())["families"] == ["evm", "cosmos", "solana"]

        net.up()  # resumed: the same chains go on from where they stopped, with the same store and contracts
        resumed = heights(net)
        assert all(resumed[n] >= kept[n] for n in kept), (kept, resumed)
        assert net.manifest() == manifest and not net.kept_path.exists()
        assert stored_ids(net) == [kept_id] and old_id != kept_id
        assert beacon_serves_trusted_roots(net)
    finally:
        net.down()
