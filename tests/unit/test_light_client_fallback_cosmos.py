"""The Cosmos inclusion verifier over several CometBFT RPC endpoints (rpc_url, then fallback_rpc_urls): the devnet's
own chain (devnets/cosmos, in-process, real signed commits) with one dispatch in it, served on loopback by the devnet's
RPC app, and in front of it ``FaultyEndpoint``s (tests/unit/loopback_endpoints.py).

- The first endpoint dead, resetting, hung, answering 503 or not JSON: the claim is proven through the second, the
  bisection's light blocks included (they are read on the event loop from the bisection's thread), at the cost of one
  request timeout.
- The first endpoint dropping the dispatch from its block: refused at once as ``data hash mismatch``, naming it by
  index, the second not asked in that call; the next call is proven through the second.
- A ``verify_rpc_urls`` endpoint unreachable and one that disagrees are told apart, by index.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cosmpy.aerial.client.bank import create_bank_send_msg
from cosmpy.aerial.tx import SigningCfg, Transaction, TxFee
from cosmpy.aerial.wallet import LocalWallet
from cosmpy.crypto.address import Address
from structlog.testing import capture_logs

from adapters.base import DispatchClaim, Domain, Height, InclusionRefused, RpcUnavailable, TxHash
from adapters.bridge_memo import encode_dispatch_memo
from adapters.cosmos.transactions import DispatchRules
from devnets.cosmos.chain import CosmosChain
from devnets.cosmos.genesis import GenesisSettings, genesis_accounts
from devnets.cosmos.server import rpc_app
from light_clients.tendermint.inclusion import CosmosInclusionVerifier
from tests.unit.loopback_endpoints import Fault, FaultyEndpoint, LoopbackServers, dead_url

DOMAIN = 41401
DISPATCH_AT = 3
TOP = 8
TIMEOUT_S = 2.0  # a request timeout; 0.5 s timed out the healthy endpoint under CI load
SETTINGS = GenesisSettings()
SENDER, VAULT = genesis_accounts(SETTINGS)[0], genesis_accounts(SETTINGS)[1]  # PUBLIC DEVNET TEST KEYS


def _dispatch_tx(chain: CosmosChain) -> bytes:
    """A signed bank send of 1 ustake to the vault whose memo is a dispatch to domain 2000."""
    wallet = LocalWallet(SENDER.private_key, prefix=SETTINGS.prefix)
    account = chain.state.account(SENDER.address_bytes)
    assert account is not None
    tx = Transaction()
    tx.add_message(create_bank_send_msg(wallet.address(), Address(VAULT.address), 1, SETTINGS.fee_denom))
    memo = encode_dispatch_memo(2000, b"\x22" * 32, b"proven over any endpoint")
    tx.seal(SigningCfg.direct(wallet.public_key(), account.sequence), fee=TxFee(amount="1000ustake", gas_limit=200_000),
            memo=memo)
    tx.sign(wallet.signer(), SETTINGS.chain_id, account.number)
    tx.complete()
    return bytes(tx.tx.SerializeToString())


@dataclass
class Net:
    rpc: list[FaultyEndpoint]
    claim: DispatchClaim


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    chain = CosmosChain(SETTINGS, tmp_path / "cosmos")
    while chain.height < DISPATCH_AT - 1:
        chain.produce_block()
    raw = _dispatch_tx(chain)
    assert chain.check_tx(raw).code == 0
    block = chain.produce_block()
    assert block.height == DISPATCH_AT and block.results[0].code == 0
    while chain.height < TOP:
        chain.produce_block()
    parsed = DispatchRules(Domain(DOMAIN), VAULT.address, ()).parse(raw)
    assert parsed is not None
    claim = DispatchClaim(parsed.message(0, Domain(DOMAIN)).encode(), Height(DISPATCH_AT),
                          TxHash(hashlib.sha256(raw).hexdigest().upper()))
    servers = LoopbackServers()
    try:
        node = servers.asgi(rpc_app(chain))
        yield Net([servers.faulty(node), servers.faulty(node)], claim)
    finally:
        servers.close()
        chain.store.close()


def _verifier(rpc_urls: list[str], other_rpc_urls: Sequence[str] = ()) -> CosmosInclusionVerifier:
    return CosmosInclusionVerifier("cosmos", rpc_urls, VAULT.address, DOMAIN, other_rpc_urls=other_rpc_urls,
                                   trusting_period_s=3600, timeout_s=TIMEOUT_S)


def _events(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == event]


@pytest.mark.parametrize("fault", [Fault.RESET, Fault.HANG, Fault.STATUS_503, Fault.GARBAGE], ids=lambda f: f.value)
async def test_a_failing_first_endpoint_costs_one_timeout_and_the_next_proves_the_claim(net: Net, fault: Fault) -> None:
    first, second = net.rpc
    first.set(fault)
    verifier = _verifier([first.url, second.url])
    try:
        started = time.monotonic()
        with capture_logs() as logs:
            await verifier.verify_dispatches([net.claim], Height(TOP - 1))
        assert time.monotonic() - started < 2 * TIMEOUT_S  # one timeout at most, then the next endpoint
        assert [e["endpoint"] for e in _events(logs, "light_client_endpoint_failed")] == [0]
        assert [e["endpoint"] for e in _events(logs, "light_client_endpoint_serving")] == [1]
        assert first.url.removeprefix("http://") not in repr(logs)
        assert verifier.rpc.healthy() == [False, True]
    finally:
        await verifier.close()


async def test_nothing_listening_on_the_first_endpoint_and_light_blocks_through_the_second(net: Net) -> None:
    verifier = _verifier([dead_url(), net.rpc[1].url])
    try:
        await verifier.verify_dispatches([net.claim], Height(TOP - 1))
    finally:
        await verifier.close()


def _drop_txs(path: str, doc: Any) -> Any:
    if path.startswith("/block?") and int(doc["result"]["block"]["header"]["height"]) == DISPATCH_AT:
        doc["result"]["block"]["data"]["txs"] = []
    return doc


async def test_a_first_endpoint_hiding_the_dispatch_is_refused_at_once_then_skipped(net: Net) -> None:
    first, second = net.rpc
    first.set(Fault.LIE, _drop_txs)
    verifier = _verifier([first.url, second.url])
    try:
        with capture_logs() as logs, pytest.raises(InclusionRefused) as refused:
            await verifier.verify_dispatches([net.claim], Height(TOP - 1))
        assert refused.value.reason == "data hash mismatch"
        assert "rpc_url and fallback_rpc_urls index 0" in str(refused.value)
        assert second.requests == 0
        assert [(e["endpoint"], e["reason"]) for e in _events(logs, "light_client_endpoint_refused")] == [
            (0, "data hash mismatch")]
        await verifier.verify_dispatches([net.claim], Height(TOP - 1))  # the next poll: through the next endpoint
        assert second.requests > 0
    finally:
        await verifier.close()


async def test_verify_endpoints_unreachable_and_disagreeing_are_told_apart(net: Net) -> None:
    primary, verify = net.rpc
    unreachable = _verifier([primary.url], other_rpc_urls=[verify.url, dead_url()])
    try:
        with pytest.raises(RpcUnavailable) as failed:
            await unreachable.verify_dispatches([net.claim], Height(TOP - 1))
        assert failed.value.reason == "verify endpoint unreachable"
        assert "verify_rpc_urls index 1 is unreachable (ConnectError)" in str(failed.value)
    finally:
        await unreachable.close()

    def other_app_hash(path: str, doc: Any) -> Any:
        if path.startswith("/commit?"):
            doc["result"]["signed_header"]["header"]["app_hash"] = "AB" * 32
        return doc

    verify.set(Fault.LIE, other_app_hash)
    disagreeing = _verifier([primary.url], other_rpc_urls=[verify.url])
    try:
        with capture_logs() as logs, pytest.raises(InclusionRefused) as refused:
            await disagreeing.verify_dispatches([net.claim], Height(TOP - 1))
        assert refused.value.reason == "endpoints disagree"
        assert "verify_rpc_urls index 0 serves another header" in str(refused.value)
        assert [e["other"] for e in _events(logs, "rpc_endpoints_disagree")] == [0]
    finally:
        await disagreeing.close()


async def test_every_endpoint_failing_is_rpc_unavailable(net: Net) -> None:
    verifier = _verifier([dead_url(), dead_url()])
    try:
        with pytest.raises(RpcUnavailable) as failed:
            await verifier.verify_dispatches([net.claim], Height(TOP - 1))
        assert "index 0: ConnectError, index 1: ConnectError" in str(failed.value)
    finally:
        await verifier.close()
