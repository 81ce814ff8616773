"""Operator-facing logic without a network: the metrics page, insufficient funds as a wait, and a collector that
does not wait on a hung validator."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.base import Checkpoint, InsufficientFunds
from adapters.checkpoint import CheckpointSigner
from adapters.merkle import MerkleTree
from config.settings import RelayerRoleSettings, SecuritySettings
from relayer.daemon.metrics import Metrics
from relayer.pipeline.checkpoints import CheckpointCollector
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.processor import DestinationProcessor
from relayer.store import FailureReason, MessageState, Store
from tests.fakes.chain import FakeChain
from tests.unit.test_pipeline import Clock, TreeCollector

# public anvil devnet test keys (the devnet's three validators)
VALIDATOR_KEYS = ("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
                  "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
                  "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356")


def test_metrics_page_is_exact_and_parses_as_prometheus_text():
    m = Metrics()
    m.set("relayer_chain_height", 12_345_678, chain="l1")
    m.set("relayer_wallet_balance", 10**22 / 10**18 - 0.001234567891, chain="l1", address="0xAb")
    m.inc("relayer_failures_total", 3, destination="l1", reason="insufficient_funds")
    m.set("odd", 1, label='a "quoted" \\ value')
    text = m.render()
    assert 'relayer_chain_height{chain="l1"} 12345678\n' in text  # no exponent, no lost digits
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (balance,) = families["relayer_wallet_balance"].samples
    assert balance.value == 10**22 / 10**18 - 0.001234567891
    assert families["relayer_failures"].type == "counter"
    assert families["relayer_failures"].documentation.startswith("failed or deferred")
    assert families["odd"].samples[0].labels == {"label": 'a "quoted" \\ value'}


class BrokeDestination(FakeChain):
    """A destination whose relayer wallet cannot pay: every send is refused until ``funded``."""

    funded = False

    async def submit_delivery(self, batch, estimate=None):  # type: ignore[no-untyped-def]
        if not self.funded:
            raise InsufficientFunds("insufficient funds for gas * price + value", chain=self.name,
                                    reason="insufficient funds")
        return await super().submit_delivery(batch, estimate)


async def test_insufficient_funds_waits_for_the_operator_without_spending_attempts(tmp_path):
    clock = Clock()
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="test", clock=clock)
    origin, dest = FakeChain("o", 1), BrokeDestination("d", 2)
    indexer = OriginIndexer(origin, store, known_destinations={1, 2})
    settings = RelayerRoleSettings(batch_size=4, backoff_base_s=1.0, backoff_max_s=8.0, max_attempts=3)
    metrics = Metrics()
    proc = DestinationProcessor(dest, store, {1: indexer}, TreeCollector(origin.mailbox), settings, metrics,  # type: ignore[arg-type]
                                clock=clock)
    for i in range(3):
        origin.dispatch(2, b"m%d" % i)
    await indexer.poll_once()
    for _ in range(10):  # far more rounds than max_attempts
        assert await proc.prepare_and_submit_once() == 0
        clock.now += 5.0
    recs = store.recent(limit=10)
    assert {r.state for r in recs} == {MessageState.ATTESTED.value}
    assert all(r.attempts == 0 and r.last_reason == FailureReason.INSUFFICIENT_FUNDS.value for r in recs)
    assert metrics.value("relayer_failures_total", destination="d", reason="insufficient_funds") == 30
    dest.funded = True
    assert await proc.prepare_and_submit_once() == 3
    assert await proc.confirm_once() == 3
    store.close()


def _validator_app(signer: CheckpointSigner, tree: MerkleTree, origin: int, mailbox: bytes, behaviour: str):
    async def handler(request: httpx.Request) -> httpx.Response:
        if behaviour == "dead":
            raise httpx.ConnectError("connection refused", request=request)
        if behaviour == "hung":
            await asyncio.sleep(30)
        last = request.url.path.rsplit("/", 1)[1]
        index = tree.count - 1 if last == "latest" else int(last)
        cp = Checkpoint(origin, mailbox, tree.root(index + 1), index)
        return httpx.Response(200, json={"validator": signer.address, "origin": origin, "index": index,
                                         "origin_mailbox": "0x" + mailbox.hex(), "root": "0x" + cp.root.hex(),
                                         "signature": "0x" + signer.sign(cp).hex()})
    return handler


@pytest.mark.parametrize("behaviours", [("ok", "ok", "hung"), ("dead", "ok", "ok")])
async def test_collector_gets_a_quorum_without_waiting_on_a_hung_or_dead_validator(behaviours):
    signers = [CheckpointSigner.from_hex(k) for k in VALIDATOR_KEYS]
    tree = MerkleTree([bytes([i]) * 32 for i in range(1, 6)])
    mailbox = b"\x11" * 32
    routes = {f"http://v{i}.test": _validator_app(s, tree, 7, mailbox, b)
              for i, (s, b) in enumerate(zip(signers, behaviours))}

    async def route(request: httpx.Request) -> httpx.Response:
        return await routes[f"http://{request.url.host}"](request)

    security = SecuritySettings(threshold=2, validators=[{"address": s.address, "url": f"http://v{i}.test/validators/{s.address}"}
                                                         for i, s in enumerate(signers)])
    metrics = Metrics()
    async with httpx.AsyncClient(transport=httpx.MockTransport(route)) as http:
        collector = CheckpointCollector(security, http, timeout_s=5.0, metrics=metrics, chain_names={7: "o"})
        started = time.monotonic()
        signed = await collector.quorum(7, tree)
        elapsed = time.monotonic() - started
    assert signed is not None and signed.checkpoint.index == 4 and len(signed.signatures) == 2
    assert elapsed < 2.0, f"waited {elapsed:.2f}s on one validator (timeout_s is 5)"
    bad = signers[behaviours.index("hung" if "hung" in behaviours else "dead")].address
    reason = "slow" if "hung" in behaviours else "unreachable"
    assert metrics.value("relayer_validator_up", validator=bad) == 0
    assert metrics.value("relayer_checkpoint_fetch_failures_total", validator=bad, reason=reason) >= 1
    assert all(metrics.value("relayer_validator_up", validator=s.address) == 1 for s in signers if s.address != bad)
    assert metrics.value("relayer_checkpoint_quorum", origin="o") == 1


def test_every_metric_the_code_emits_has_help_text():
    import re
    from pathlib import Path

    from relayer.daemon.metrics import _HELP

    root = Path(__file__).resolve().parents[2]
    emitted = set()
    for path in [*root.glob("relayer/**/*.py"), *root.glob("router/**/*.py")]:
        emitted |= set(re.findall(r'metrics\.(?:inc|set|observe)\(\s*"([a-z_]+)"', path.read_text()))
    assert emitted, "found no metric names"
    assert sorted(emitted - set(_HELP)) == []
