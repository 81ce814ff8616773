"""The validator's sync-committee path on real processes: an anvil making blocks, the devnet beacon process
(``python -m devnets.beacon``) following it, and the validator (OriginIndexer + OriginAttester +
EvmInclusionVerifier with a BeaconLightClient, a real SQLite store) starting from a trusted block root.

- honest node and beacon: the dispatch is signed, once the light client finalized its block;
- a lying single RPC: an anvil forked from the origin that mined a dispatch of its own (a message that never
  happened on the origin), consistent in every method by construction (logs, receipts, headers, mailbox state):
  refused as ``not linked to finalized``, the forged message never signed (messages in the blocks both chains
  share are the origin's own and may be);
- a beacon endpoint (a rewriting proxy in front of the real one) serving forged updates, bad signature, bad
  finality branch, a next committee of the attacker's, another network: refused as ``beacon update refused``,
  nothing signed;
- ``relayer run`` without a light-client source refuses to start and names the keys; with ``trust_single_rpc``
  it starts, logs the trust and exports ``validator_single_rpc_trust``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blspy  # type: ignore[import-untyped]
import httpx
import pytest
from structlog.testing import capture_logs
from web3 import HTTPProvider, Web3

from adapters.base import Domain, Height, MailboxState
from adapters.checkpoint import CheckpointSigner
from adapters.evm import deploy
from adapters.evm import devnet as evm_devnet
from adapters.evm.adapter import EvmAdapter
from adapters.message import Message, address_to_bytes32
from config.settings import EvmChainConfig
from devnets.beacon import (
    ChainSpec,
    finalized_block_root,
    start_beacon_devnet,
    wait_until_ready,
    write_committee_secret,
)
from light_clients.ethereum.consensus.beacon_client import BeaconLightClient
from light_clients.ethereum.consensus.config import DEVNET_SLOT_DURATION_MS, devnet_network
from light_clients.ethereum.consensus.preset import LightClientFork
from light_clients.ethereum.inclusion import EvmInclusionVerifier
from relayer.daemon.metrics import Metrics
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.validator import OriginAttester
from relayer.store import Store
from tests.integration.anvil import Anvil, start_anvil
from tests.integration.harness import ROOT, DaemonProcess, free_port_block, wait_for, write_daemon_config
from tests.integration.rpc_rewriter import RewritingHttpProxy

pytestmark = pytest.mark.integration

DOMAIN = 41301
DESTINATION = 2000
CONFIRMATIONS = 2
BLOCK_TIME_S = 0.25
DEPLOYER = evm_devnet.devnet_key(evm_devnet.DEPLOYER)      # public anvil devnet test key
USER = evm_devnet.devnet_key(evm_devnet.USER_A)            # public anvil devnet test key
VALIDATOR = evm_devnet.devnet_key(evm_devnet.VALIDATOR_INDICES[0])  # public anvil devnet test key


@dataclass
class Origin:
    node: Anvil
    contracts: dict[str, str]
    beacon_url: str
    beacon_log: Path

    @property
    def mailbox(self) -> str:
        return self.contracts["mailbox"]


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """An anvil making a block every 0.25 s with the core contracts, and the beacon process following it."""
    directory = tmp_path_factory.mktemp("beacon-origin")
    node = start_anvil(DOMAIN, directory, block_time_s=BLOCK_TIME_S)
    beacon = None
    try:
        contracts = deploy.deploy_core(Web3(HTTPProvider(node.url)), DEPLOYER, DOMAIN)
        spec = ChainSpec("origin", DOMAIN, node.url, CONFIRMATIONS, CONFIRMATIONS)
        write_committee_secret(directory / "beacon.secret")
        beacon = start_beacon_devnet([spec], directory / "ports.json", directory / "beacon.secret",
                                     log_path=directory / "beacon.log")
        urls = wait_until_ready(directory / "ports.json", ["origin"], process=beacon)
        yield Origin(node, contracts, urls["origin"], directory / "beacon.log")
    finally:
        if beacon is not None:
            evm_devnet.stop_process(beacon.pid)
            beacon.wait(10)
        node.stop()


def trusted_root(url: str) -> bytes:
    """The beacon chain's finalized block root now (slot 1 at least): what an operator pins."""
    found: list[str] = []

    def finalized() -> bool:
        slot, root = finalized_block_root(url)
        found[:] = [root]
        return slot >= 1

    wait_for(finalized, 30, "the beacon chain to finalize a block")
    return bytes.fromhex(found[0][2:])


def _config(rpc_url: str, mailbox: str) -> EvmChainConfig:
    return EvmChainConfig(family="evm", domain=DOMAIN, chain_id=DOMAIN, rpc_url=rpc_url, mailbox=mailbox,
                          finality=CONFIRMATIONS)


async def _dispatch(rpc_url: str, contracts: dict[str, str], body: bytes) -> tuple[bytes, int]:
    sender = EvmAdapter("origin", _config(rpc_url, contracts["mailbox"]))
    try:
        await sender.dispatch_messages(USER, Domain(DESTINATION), address_to_bytes32(contracts["test_recipient"]),
                                       [body])
        found = await sender.fetch_dispatched(Height(0), await sender.latest_height())
        mine = next(d for d in found if d.message.body == body)
        return mine.raw, int(mine.height)
    finally:
        await sender.close()


@dataclass
class Validator:
    attester: OriginAttester
    verifier: EvmInclusionVerifier
    store: Store


async def _validate(rpc_url: str, mailbox: str, store_path: Path, beacon_url: str, root: bytes, *,
                    until: Callable[[OriginAttester], bool], timeout_s: float = 60.0) -> Validator:
    """Run the validator's poll loop (as the daemon's origin loop does) until ``until`` holds or the deadline."""
    adapter = EvmAdapter("origin", _config(rpc_url, mailbox))
    store = Store(f"sqlite:///{store_path}")
    indexer = OriginIndexer(adapter, store, known_destinations={DESTINATION})
    beacon = BeaconLightClient("origin", beacon_url, root, devnet_network(DOMAIN), LightClientFork.ELECTRA,
                               DEVNET_SLOT_DURATION_MS)
    verifier = EvmInclusionVerifier("origin", rpc_url, mailbox, beacon=beacon)
    attester = OriginAttester(adapter, indexer, [CheckpointSigner.from_hex(VALIDATOR)], store, Metrics(),
                              verifier=verifier)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not until(attester):
            await indexer.poll_once()
            await attester.poll_once()
            await asyncio.sleep(0.1)
        return Validator(attester, verifier, store)
    finally:
        await verifier.close()
        await adapter.close()


async def _mailbox(rpc_url: str, mailbox: str, height: int) -> MailboxState:
    adapter = EvmAdapter("origin", _config(rpc_url, mailbox))
    try:
        return await adapter.mailbox_state(Height(height))
    finally:
        await adapter.close()


def _signed(store: Store, index: int) -> bool:
    return store.checkpoint(CheckpointSigner.from_hex(VALIDATOR).address, DOMAIN, index) is not None


def _block_hash(url: str, number: int) -> bytes:
    return bytes.fromhex(evm_devnet.rpc_call(url, "eth_getBlockByNumber", [hex(number), False])["hash"][2:])


async def test_a_validator_following_the_beacon_signs_honest_dispatches(origin, tmp_path):
    root = trusted_root(origin.beacon_url)
    raw, height = await _dispatch(origin.node.url, origin.contracts, b"honest, via the sync committee")
    with capture_logs() as logs:
        v = await _validate(origin.node.url, origin.mailbox, tmp_path / "v.db", origin.beacon_url, root,
                            until=lambda a: a.proven_count >= 1 and a.latest_index >= 0)
    assert v.attester.refusals == 0 and _signed(v.store, v.attester.latest_index)
    finalized = v.verifier.light_client_finalized
    assert finalized is not None and finalized.number >= height  # signed only once the committee finalized it
    assert finalized.block_hash == _block_hash(origin.node.url, finalized.number)
    assert v.verifier.verified_hash(height) == _block_hash(origin.node.url, height)
    assert any(e["event"] == "light_client_anchor" and e["source"] == "beacon" for e in logs)
    assert not [e for e in logs if e["event"] in ("checkpoint_refused", "beacon_update_refused")]


def start_fork(upstream: str, directory: Path) -> Anvil:
    """An anvil forked from ``upstream`` at its head, making its own blocks as fast (another history from there)."""
    chain = evm_devnet.EvmDevnetChain("fork", DOMAIN, DOMAIN, free_port_block(1), BLOCK_TIME_S, 60_000_000, 1)
    args = [evm_devnet.anvil_binary(ROOT), "--host", "127.0.0.1", "--port", str(chain.port), "--fork-url", upstream,
            "--block-time", str(BLOCK_TIME_S), "--slots-in-an-epoch", "1", "--order", "fifo"]
    proc = subprocess.Popen(args, stdout=open(directory / "fork.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            stdin=subprocess.DEVNULL, start_new_session=True)
    evm_devnet.wait_until_answers(chain, proc)
    return Anvil(chain, proc)


async def test_a_lying_single_rpc_serving_a_forked_chain_is_refused(origin, tmp_path):
    root = trusted_root(origin.beacon_url)
    await _dispatch(origin.node.url, origin.contracts, b"an honest message before the fork")
    fork = start_fork(origin.node.url, tmp_path)
    try:
        forged, forged_height = await _dispatch(fork.url, origin.contracts, b"mint 1000000 to eve: never happened")
        assert forged_height > 0
        honest_hash = _block_hash(origin.node.url, forged_height)
        assert _block_hash(fork.url, forged_height) != honest_hash  # the fork's own block, consistent in itself
        with capture_logs() as logs:
            v = await _validate(fork.url, origin.mailbox, tmp_path / "v.db", origin.beacon_url, root,
                                until=lambda a: a.refusals >= 1)
        assert v.attester.refusals >= 1
        nonce = Message.decode(forged).nonce
        assert v.attester.latest_index < nonce and not _signed(v.store, nonce)  # the forged message: never signed
        if v.attester.latest_index >= 0:  # messages in blocks both chains share are the origin's own: signable
            honest = await _mailbox(origin.node.url, origin.mailbox, forged_height - 1)
            signed = v.store.checkpoint(CheckpointSigner.from_hex(VALIDATOR).address, DOMAIN, v.attester.latest_index)
            assert signed is not None and v.attester.latest_index < honest.count
            assert signed.root == "0x" + v.attester.indexer.tree.root(v.attester.latest_index + 1).hex()
        refused = [e for e in logs if e["event"] == "checkpoint_refused"]
        assert refused and {e["reason"] for e in refused} == {"not linked to finalized"}
        (alert, *_) = [e for e in logs if e["event"] == "not_linked_to_finalized"]
        assert alert["served"] != "0x" + _block_hash(origin.node.url, alert["finalized_number"]).hex()
        assert alert["finalized_hash"] == "0x" + _block_hash(origin.node.url, alert["finalized_number"]).hex()
        assert v.attester.metrics.value("validator_checkpoint_refused_total", origin="origin",
                                        reason="not_linked_to_finalized") >= 1
    finally:
        fork.stop()


def _updates(fn: Callable[[dict[str, Any]], None]) -> Callable[[object], object]:
    def rewrite(doc: object) -> object:
        for item in doc if isinstance(doc, list) else [doc]:
            assert isinstance(item, dict)
            fn(item["data"])
        return doc

    return rewrite


def _attacker_signature(data: dict[str, Any]) -> None:
    """A valid BLS signature, by a key the attacker holds, in place of the committee's."""
    key = blspy.PopSchemeMPL.key_gen(b"\x07" * 32)
    data["sync_aggregate"]["sync_committee_signature"] = "0x" + bytes(blspy.PopSchemeMPL.sign(key, b"forged")).hex()


def _bad_finality_branch(data: dict[str, Any]) -> None:
    if "finality_branch" in data:
        data["finality_branch"][3] = "0x" + "11" * 32


def _attacker_committee(data: dict[str, Any]) -> None:
    if "next_sync_committee" in data:
        keys = [bytes(blspy.PopSchemeMPL.key_gen(bytes([i]) * 32).get_g1()) for i in range(1, 33)]
        data["next_sync_committee"] = {"pubkeys": ["0x" + k.hex() for k in keys],
                                       "aggregate_pubkey": "0x" + keys[0].hex()}


def _other_network(doc: Any) -> Any:
    doc["data"]["genesis_validators_root"] = "0x" + devnet_network(DOMAIN + 1).genesis_validators_root.hex()
    return doc


LC = "/eth/v1/beacon/light_client/"


@pytest.mark.parametrize(("forgery", "routes", "detail"), [
    (_updates(_attacker_signature), ("updates", "finality_update", "optimistic_update"), "bad signature"),
    (_updates(_bad_finality_branch), ("updates", "finality_update"), "bad finality branch"),
    (_updates(_attacker_committee), ("updates",), "bad next sync committee branch"),
    (_other_network, ("/eth/v1/beacon/genesis",), "genesis validators root"),
], ids=["signature", "finality-branch", "next-committee", "other-network"])
async def test_a_beacon_endpoint_serving_forged_updates_is_refused(origin, tmp_path, forgery, routes, detail):
    root = trusted_root(origin.beacon_url)
    raw, height = await _dispatch(origin.node.url, origin.contracts, f"waits for an honest beacon ({detail})".encode())
    nonce = Message.decode(raw).nonce
    proxy = RewritingHttpProxy(origin.beacon_url)
    for route in routes:
        proxy.rewrite(route if route.startswith("/") else LC + route, forgery)
    try:
        with capture_logs() as logs:
            v = await _validate(origin.node.url, origin.mailbox, tmp_path / "v.db", proxy.url, root,
                                until=lambda a: a.refusals >= 2)
        # earlier messages under the trusted block (finalized by the bootstrap itself) may be signed; this one,
        # above it, only with an update the client accepted: never
        assert v.attester.refusals >= 2 and v.attester.latest_index < nonce and not _signed(v.store, nonce)
        finalized = v.verifier.light_client_finalized
        assert finalized is None or (finalized.slot == finalized.number < height)  # the store never moved
        refused = [e for e in logs if e["event"] == "checkpoint_refused"]
        assert refused and {e["reason"] for e in refused} == {"beacon update refused"}
        assert detail in refused[0]["error"]
        assert v.attester.metrics.value("validator_checkpoint_refused_total", origin="origin",
                                        reason="beacon_update_refused") >= 2
        assert any(p.startswith(LC) or p == "/eth/v1/beacon/genesis" for p in proxy.paths)
    finally:
        proxy.close()


def _beacon_execution_hash(url: str, slot: int) -> str | None:
    """The execution block hash the beacon chain carries at ``slot`` (its bootstrap shows the payload header)."""
    header = httpx.get(f"{url}/eth/v1/beacon/headers/{slot}", timeout=5)
    if header.status_code != 200:
        return None
    root = header.json()["data"]["root"]
    bootstrap = httpx.get(f"{url}/eth/v1/beacon/light_client/bootstrap/{root}", timeout=5)
    return str(bootstrap.json()["data"]["header"]["execution"]["block_hash"]) if bootstrap.status_code == 200 else None


def test_the_beacon_chain_follows_a_reorg_of_its_node(origin):
    url = origin.node.url
    top = int(evm_devnet.rpc_call(url, "eth_blockNumber"), 16)
    wait_for(lambda: _beacon_execution_hash(origin.beacon_url, top) == "0x" + _block_hash(url, top).hex(), 30,
             "the beacon chain at the node's head")
    evm_devnet.rpc_call(url, "anvil_reorg", [2, []])  # the last two blocks replaced (by empty ones)
    after = int(evm_devnet.rpc_call(url, "eth_blockNumber"), 16)
    replaced = range(top - 1, after + 1)
    wait_for(lambda: all(_beacon_execution_hash(origin.beacon_url, n) == "0x" + _block_hash(url, n).hex()
                         for n in replaced), 30, "the beacon chain rebuilt over the replaced blocks")
    events = [json.loads(line) for line in origin.beacon_log.read_text().splitlines() if line.startswith("{")]
    # within finality (2 confirmations) unless the node made a block between our last look and the reorg
    assert any(e["event"] in ("beacon_reorg", "beacon_finality_reverted") and e["dropped_slots"] >= 1 for e in events)


# ---------------------------------------------------------------- the daemon's start-up rule (real `relayer run`)
def _relayer_run(config: Path, role: str = "validator") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "relayer.cli", "run", "-c", str(config), "--role", role,
                           "--no-status"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def _without_beacon(text: str, chain: str) -> str:
    """The config with ``chain``'s beacon_url and trusted_block_root lines removed."""
    out, current = [], None
    for line in text.splitlines():
        if line.startswith("[chains."):
            current = line.strip("[]").split(".", 1)[1]
        if current == chain and line.startswith(("beacon_url", "trusted_block_root")):
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def test_a_validator_without_a_light_client_source_refuses_to_start(devnet, tmp_path):
    config = write_daemon_config(devnet, tmp_path, api_port=free_port_block(1))
    config.write_text(_without_beacon(config.read_text(), "rollup_a"))
    done = _relayer_run(config)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "config error: chains.rollup_a:" in done.stderr
    for key in ("beacon_url + trusted_block_root", "verify_rpc_urls", "trust_single_rpc = true"):
        assert key in done.stderr
    assert not (tmp_path / "relayer.db").exists()  # refused before opening anything


def test_trust_single_rpc_is_logged_at_start_and_exported(devnet, tmp_path):
    port = free_port_block(1)
    config = write_daemon_config(devnet, tmp_path, api_port=port)
    text = _without_beacon(config.read_text(), "rollup_b")
    config.write_text(text.replace("[chains.rollup_b]\n", "[chains.rollup_b]\ntrust_single_rpc = true\n"))
    daemon = DaemonProcess(config, tmp_path / "daemon.log", role="validator", instance="trust").start()
    try:
        metrics = httpx.get(f"{daemon.api_url}/metrics", timeout=5).text
        assert 'validator_single_rpc_trust{chain="rollup_b"} 1' in metrics
        assert 'validator_single_rpc_trust{chain="l1"} 0' in metrics
        assert "# HELP validator_single_rpc_trust" in metrics
        wait_for(lambda: "validator_single_rpc_trust" in (tmp_path / "daemon.log").read_text(), 10, "the warning")
        lines = [line for line in (tmp_path / "daemon.log").read_text().splitlines()
                 if '"validator_single_rpc_trust"' in line]
        assert len(lines) == 1 and '"chain": "rollup_b"' in lines[0] and '"level": "warning"' in lines[0]
        assert "chains.rollup_b.trust_single_rpc = true" in lines[0]

        def light_client_height(chain: str) -> float:
            for line in httpx.get(f"{daemon.api_url}/metrics", timeout=5).text.splitlines():
                if line.startswith(f'validator_light_client_finalized_height{{origin="{chain}"}}'):
                    return float(line.split()[-1])
            return 0.0

        wait_for(lambda: light_client_height("l1") > 0, 30, "l1's light client followed and exported")
        assert light_client_height("rollup_b") == 0  # no light client there
    finally:
        daemon.stop()
