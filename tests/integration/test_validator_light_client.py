"""The validator's light-client path on a real anvil: it signs only dispatches proven in verified headers.

A real Mailbox on anvil; the validator (OriginIndexer + OriginAttester + EvmInclusionVerifier, a real SQLite
store) reads the chain through a JSON-RPC proxy that tells the truth or rewrites answers:

- honest: the checkpoint is signed;
- a rewritten Dispatch log (in eth_getLogs *and* eth_getBlockReceipts, with the message id fixed up so the
  indexer accepts it): refused, ``receipts root mismatch``, nothing signed;
- a rewritten header field (the node keeps the old ``hash``): refused, ``header hash mismatch``;
- a second configured endpoint serving another chain with the same id: refused, ``endpoints disagree``,
  and the ``rpc_endpoints_disagree`` alert logged.
"""

from __future__ import annotations

import time

import pytest
from structlog.testing import capture_logs
from web3 import HTTPProvider, Web3

from adapters.base import Domain, Height
from adapters.checkpoint import CheckpointSigner
from adapters.evm import deploy
from adapters.evm import devnet as evm_devnet
from adapters.evm.adapter import EvmAdapter
from adapters.message import address_to_bytes32, keccak256
from config.settings import EvmChainConfig
from light_clients.ethereum.inclusion import EvmInclusionVerifier
from relayer.daemon.metrics import Metrics
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.validator import OriginAttester
from relayer.store import Store
from tests.integration.anvil import start_anvil
from tests.integration.rpc_rewriter import RewritingRpcProxy

pytestmark = pytest.mark.integration

DOMAIN = 41201
DESTINATION = 2000
DEPLOYER = evm_devnet.devnet_key(evm_devnet.DEPLOYER)      # public anvil devnet test key
USER = evm_devnet.devnet_key(evm_devnet.USER_A)            # public anvil devnet test key
VALIDATOR = evm_devnet.devnet_key(evm_devnet.VALIDATOR_INDICES[0])  # public anvil devnet test key


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """An automining anvil with the core contracts and one dispatched message."""
    node = start_anvil(DOMAIN, tmp_path_factory.mktemp("lc"))
    try:
        contracts = deploy.deploy_core(Web3(HTTPProvider(node.url)), DEPLOYER, DOMAIN)
        yield node, contracts
    finally:
        node.stop()


def _config(rpc_url: str, mailbox: str) -> EvmChainConfig:
    return EvmChainConfig(family="evm", domain=DOMAIN, chain_id=DOMAIN, rpc_url=rpc_url, mailbox=mailbox, finality=0)


async def _dispatch(node, contracts, body: bytes) -> bytes:
    sender = EvmAdapter("origin", _config(node.url, contracts["mailbox"]))
    try:
        await sender.dispatch_messages(USER, Domain(DESTINATION), address_to_bytes32(contracts["test_recipient"]),
                                       [body])
        found = await sender.fetch_dispatched(Height(0), await sender.latest_height())
        return next(d.raw for d in found if d.message.body == body)
    finally:
        await sender.close()


async def _validate(rpc_url: str, mailbox: str, store_path, *, other_rpc_urls=(), want_index: int | None,
                    timeout_s: float = 20.0) -> tuple[OriginAttester, Store]:
    """Run the validator's poll loop until it signs ``want_index`` (or, with None, until it refuses once)."""
    adapter = EvmAdapter("origin", _config(rpc_url, mailbox))
    store = Store(f"sqlite:///{store_path}")
    indexer = OriginIndexer(adapter, store, known_destinations={DESTINATION})
    verifier = EvmInclusionVerifier("origin", rpc_url, mailbox, other_rpc_urls=list(other_rpc_urls))
    attester = OriginAttester(adapter, indexer, [CheckpointSigner.from_hex(VALIDATOR)], store, Metrics(),
                              verifier=verifier)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            await indexer.poll_once()
            signed = await attester.poll_once()
            if want_index is not None and signed is not None and signed >= want_index:
                break
            if want_index is None and attester.refusals > 0:
                break
        return attester, store
    finally:
        await verifier.close()
        await adapter.close()


def _signed(store: Store, index: int) -> bool:
    signer = CheckpointSigner.from_hex(VALIDATOR)
    return store.checkpoint(signer.address, DOMAIN, index) is not None


async def test_honest_rpc_gets_a_signature(origin, tmp_path):
    node, contracts = origin
    await _dispatch(node, contracts, b"honest " + str(time.time()).encode())
    proxy = RewritingRpcProxy(node.url)
    try:
        attester, store = await _validate(proxy.url, contracts["mailbox"], tmp_path / "v.db", want_index=0)
        assert attester.refusals == 0
        assert attester.proven_count >= 1
        assert _signed(store, attester.latest_index)
        assert "eth_getBlockReceipts" in proxy.calls  # the receipts were really checked
    finally:
        proxy.close()


async def test_rewritten_log_is_refused(origin, tmp_path):
    node, contracts = origin
    raw = await _dispatch(node, contracts, b"pay 100 to alice")
    forged = raw[:-5] + b"eve!!"  # same length: the ABI encoding around it stays valid
    proxy = RewritingRpcProxy(node.url)
    swap = {raw.hex(): forged.hex(), keccak256(raw).hex(): keccak256(forged).hex()}

    def lie(text: str) -> str:
        for a, b in swap.items():
            text = text.replace(a, b)
        return text

    proxy.rewrite("eth_getLogs", lie)
    proxy.rewrite("eth_getBlockReceipts", lie)
    try:
        with capture_logs() as logs:
            attester, store = await _validate(proxy.url, contracts["mailbox"], tmp_path / "v.db", want_index=None)
        assert attester.refusals >= 1
        assert attester.latest_index == -1 and not _signed(store, 0)
        refused = [e for e in logs if e["event"] == "checkpoint_refused"]
        assert refused and refused[0]["reason"] == "receipts root mismatch"
        assert any(e["event"] == "receipts_root_mismatch" for e in logs)
        assert attester.metrics.value("validator_checkpoint_refused_total", origin="origin",
                                      reason="receipts_root_mismatch") >= 1
    finally:
        proxy.close()


async def test_rewritten_header_is_refused(origin, tmp_path):
    node, contracts = origin
    await _dispatch(node, contracts, b"header lie")
    proxy = RewritingRpcProxy(node.url)
    w3 = Web3(HTTPProvider(node.url))
    latest = w3.eth.get_block("latest")
    true_root = latest["stateRoot"].hex().removeprefix("0x")
    proxy.rewrite("eth_getBlockByNumber", lambda text: text.replace(true_root, "ab" * 32))
    try:
        with capture_logs() as logs:
            attester, store = await _validate(proxy.url, contracts["mailbox"], tmp_path / "v.db", want_index=None)
        assert attester.refusals >= 1 and not _signed(store, 0)
        refused = [e for e in logs if e["event"] == "checkpoint_refused"]
        assert refused and refused[0]["reason"] == "header hash mismatch"
    finally:
        proxy.close()


async def test_disagreeing_endpoints_raise_an_alert_and_no_signature(origin, tmp_path):
    node, contracts = origin
    await _dispatch(node, contracts, b"two views")
    other = start_anvil(DOMAIN, tmp_path)  # same chain id, another history
    try:
        w3 = Web3(HTTPProvider(other.url))
        height = Web3(HTTPProvider(node.url)).eth.block_number
        w3.provider.make_request("anvil_mine", [hex(height + 5)])  # blocks of its own at every height checked
        with capture_logs() as logs:
            attester, store = await _validate(node.url, contracts["mailbox"], tmp_path / "v.db",
                                              other_rpc_urls=[other.url], want_index=None)
        assert attester.refusals >= 1 and not _signed(store, 0)
        assert any(e["event"] == "rpc_endpoints_disagree" and e["other"] == 0 for e in logs)  # by index, not URL
        refused = [e for e in logs if e["event"] == "checkpoint_refused"]
        assert refused and refused[0]["reason"] == "endpoints disagree"
    finally:
        other.stop()

