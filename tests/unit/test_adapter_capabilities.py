"""Adapters declare their capabilities (adapters/capabilities.py) and the processor asks for them by type."""

from __future__ import annotations

import pytest

from adapters.capabilities import (
    ADAPTER_CAPABILITIES,
    BatchLimit,
    BridgeLedger,
    BridgeQueue,
    BridgeRateLimits,
    BridgeRefusals,
    Bytes32Accounts,
    CapacitySource,
    ChainAdapter,
    ContractCalls,
    CosignedDelivery,
    CosignLiveness,
    EndpointHealth,
    ExactEstimates,
    FeeAccountPayments,
    GasPaymaster,
    GasPaymentSource,
    GasQuoteSource,
    LiquidityPools,
    MessageDispatcher,
    MessageSender,
    NativePayoutMinimum,
    NativeTokenIds,
    OperatorAccounts,
    QuorumDisagreements,
    SendCosts,
    TokenSender,
    TxLookup,
    UnsignedTransactions,
    VaultHoldings,
    WalletSource,
    WriteAheadSender,
)
from adapters.cosmos import CosmosAdapter
from adapters.evm.adapter import EvmAdapter
from adapters.solana import SolanaAdapter
from config.settings import RelayerRoleSettings
from relayer.daemon.metrics import Metrics
from relayer.pipeline.indexer import OriginIndexer
from relayer.pipeline.processor import DestinationProcessor
from relayer.store import Store
from tests.fakes.chain import FakeChain
from tests.unit.test_pipeline import TreeCollector

SENDER_ROLES = {MessageSender, MessageDispatcher, TokenSender, TxLookup, SendCosts}
EXPECTED: dict[type, set[type]] = {
    EvmAdapter: {ChainAdapter, *SENDER_ROLES, UnsignedTransactions, ContractCalls, WalletSource, CapacitySource,
                 BridgeLedger, WriteAheadSender, OperatorAccounts, EndpointHealth, QuorumDisagreements,
                 GasPaymaster, GasPaymentSource, GasQuoteSource, BridgeQueue, ExactEstimates, BridgeRateLimits,
                 BridgeRefusals, LiquidityPools},
    SolanaAdapter: {ChainAdapter, *SENDER_ROLES, WalletSource, CapacitySource, BatchLimit, Bytes32Accounts,
                    NativeTokenIds, CosignedDelivery, CosignLiveness, VaultHoldings, WriteAheadSender,
                    OperatorAccounts, EndpointHealth, QuorumDisagreements, GasPaymentSource, FeeAccountPayments,
                    NativePayoutMinimum},
    CosmosAdapter: {ChainAdapter, *SENDER_ROLES, UnsignedTransactions, WalletSource, CapacitySource, BatchLimit,
                    Bytes32Accounts, NativeTokenIds, CosignedDelivery, CosignLiveness, OperatorAccounts,
                    WriteAheadSender, EndpointHealth, QuorumDisagreements, GasPaymentSource, FeeAccountPayments},
}


def _is_protocol(cls: type) -> bool:
    return bool(vars(cls).get("_is_protocol", False))


def protocol_members(capability: type) -> set[str]:
    """The names a capability asks for: methods, properties and annotated attributes of it and its bases."""
    names: set[str] = set()
    for klass in capability.__mro__:
        if not _is_protocol(klass) or klass is object:
            continue
        names |= {n for n in vars(klass) if not n.startswith("_")}
        names |= set(vars(klass).get("__annotations__", {}))
    return names - {"__annotations__"}


def implements(adapter: type, capability: type) -> bool:
    """Every member of ``capability`` is defined by a class of ``adapter`` that is not a Protocol (so not just
    the Protocol's own ``...`` stub, which an explicit subclass inherits)."""
    for name in protocol_members(capability):
        owner = next((k for k in adapter.__mro__ if name in vars(k)), None)
        if owner is None or _is_protocol(owner):
            return False
    return True


@pytest.mark.parametrize("adapter", list(EXPECTED), ids=lambda a: a.__name__)
def test_each_adapter_declares_exactly_what_it_implements(adapter: type) -> None:
    declared = {c for c in ADAPTER_CAPABILITIES if c in adapter.__mro__}
    implemented = {c for c in ADAPTER_CAPABILITIES if implements(adapter, c)}
    assert declared == implemented
    assert declared == EXPECTED[adapter]


def test_no_sender_method_answers_not_supported() -> None:
    """Solana has no contracts and builds no unsigned transactions: it does not have those methods at all."""
    assert not hasattr(SolanaAdapter, "call_contract") and not hasattr(SolanaAdapter, "unsigned_transaction")
    assert not hasattr(CosmosAdapter, "call_contract")


class CappedChain(FakeChain, BatchLimit):
    """A destination whose transactions hold at most two messages."""

    max_delivery_batch = 2


def _processor(tmp_path, dest: FakeChain) -> tuple[FakeChain, OriginIndexer, DestinationProcessor, Store]:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", owner="test")
    origin = FakeChain("o", 1)
    indexer = OriginIndexer(origin, store, known_destinations={1, 2})
    settings = RelayerRoleSettings(batch_size=4, backoff_base_s=1.0, backoff_max_s=8.0, max_attempts=3)
    proc = DestinationProcessor(dest, store, {1: indexer}, TreeCollector(origin.mailbox),  # type: ignore[arg-type]
                                settings, Metrics())
    return origin, indexer, proc, store


async def test_processor_takes_the_batch_limit_from_the_capability(tmp_path) -> None:
    dest = CappedChain("d", 2)
    origin, indexer, proc, store = _processor(tmp_path, dest)
    try:
        assert proc.batch_size == 2
        for i in range(5):
            origin.dispatch(2, b"m%d" % i)
        await indexer.poll_once()
        assert await proc.prepare_and_submit_once() == 5
        assert [len(b.items) for b in dest.submitted] == [2, 2, 1]
    finally:
        store.close()


async def test_processor_without_the_capability_uses_the_setting(tmp_path) -> None:
    dest = FakeChain("d", 2)
    origin, indexer, proc, store = _processor(tmp_path, dest)
    try:
        assert not isinstance(dest, BatchLimit)
        assert proc.batch_size == 4
    finally:
        store.close()
