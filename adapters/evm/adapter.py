"""``EvmAdapter``: the ``ChainAdapter`` and ``MessageSender`` Protocols for EVM L1s and rollups, via web3.py (async).

Transport is web3's ``AsyncHTTPProvider`` used at the JSON-RPC level (``make_request`` /
``make_batch_request``): the hot paths (log scans, delivered checks, receipts) skip web3's per-field
result formatters, and calldata is built with ``eth_abi`` from precomputed selectors (``adapters.evm.abi``).
The provider gets a keep-alive aiohttp session and no transport retries: retrying is a wrapper's job
(STYLE.md), and a dead node must surface quickly as ``RpcUnavailable``.

Every public method raises only ``AdapterError`` (or, for malformed inputs, ``MessageFormatError``):
anything an SDK throws is mapped by ``adapters.evm.errors.map_exception`` at this boundary.

Signing keys (the relayer's ``signer_key`` and any ``sender_key`` handed to the MessageSender methods)
live only inside eth_account ``LocalAccount`` objects held here; they never appear in ``repr``, logs or
error text.
"""

from __future__ import annotations

from adapters.base import (
    CapacitySource,
    ChainAdapter,
    ContractCalls,
    MessageSender,
    SendCosts,
    UnsignedTransactions,
    WalletSource,
)
from adapters.capabilities import (
    BridgeLedger,
    BridgeQueue,
    BridgeRateLimits,
    BridgeRefusals,
    EndpointHealth,
    ExactEstimates,
    GasPaymaster,
    LiquidityPools,
    OperatorAccounts,
    QuorumDisagreements,
    WriteAheadSender,
)
from adapters.evm.bridge_queue import EvmBridgeQueue
from adapters.evm.chain import BATCH_LIMIT, EvmChain
from adapters.evm.destination import EvmDestination
from adapters.evm.health import EvmHealth
from adapters.evm.ledger import BridgeHolding, EvmBridgeLedger
from adapters.evm.origin import EvmOrigin
from adapters.evm.paymaster import EvmGasPaymaster
from adapters.evm.pool import EvmLiquidityPool
from adapters.evm.send_costs import EvmSendCosts
from adapters.evm.sender import EvmSender
from adapters.evm.writeahead import EvmWriteAhead
from adapters.tokens import UnknownToken

__all__ = ["BATCH_LIMIT", "BridgeHolding", "EvmAdapter", "EvmChain", "UnknownToken"]


class EvmAdapter(EvmLiquidityPool, EvmGasPaymaster, EvmBridgeQueue, EvmOrigin, EvmDestination, EvmSender, EvmWriteAhead,
                 EvmBridgeLedger, EvmHealth, EvmSendCosts, ChainAdapter, MessageSender, UnsignedTransactions,
                 ContractCalls, WalletSource, CapacitySource, BridgeLedger, WriteAheadSender, OperatorAccounts,
                 EndpointHealth, QuorumDisagreements, GasPaymaster, BridgeQueue, ExactEstimates, BridgeRateLimits,
                 LiquidityPools, SendCosts, BridgeRefusals):
    """One EVM chain: origin (scan Dispatch logs, mailbox root), destination (deliver batches, confirm), sender
    (dispatch, tokens, router transactions, what a send costs), bridge ledger, liquidity pools and health: the roles,
    composed; the capabilities it declares are the Protocols after them."""
