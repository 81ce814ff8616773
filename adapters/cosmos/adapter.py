"""``CosmosAdapter``: ``ChainAdapter``, ``MessageSender``, ``CapacitySource`` and ``CosignedDelivery`` for a
Cosmos SDK chain, over CometBFT RPC and the Cosmos REST gateway (httpx; cosmpy for protobufs and keys).

Origin. There is no mailbox contract: a dispatch is a bank ``MsgSend`` to the validators' ``vault`` with the
message in its memo (``adapters.cosmos.memo``; validity rules in ``transactions.DispatchRules``). The
adapter builds the canonical message itself; its nonce is the dispatch's position among all valid
dispatches in chain order (height, tx index), so the adapter scans every tx paying the vault from height 1
(``tx_search transfer.recipient='<vault>'``), keeps the running list, and computes the "mailbox" tree
(``mailbox_state``) with ``adapters.merkle.MerkleTree``. Only successful txs (code 0) count. CometBFT has
instant finality: ``finalized_height`` is the latest height with a commit.

Destination. Only token messages are delivered (``TxReverted`` "cosmos destinations take token transfers
only" otherwise): one transaction of one ``MsgSend`` per message, from the vault multisig to each
recipient, the ids in the memo (``xchain-delivery:``), a ``timeout_height`` (the relayer's latest height +
``delivery_timeout_blocks``), LEGACY_AMINO_JSON sign bytes co-signed by the validators through the
``Cosigner``; ``check_cosign`` (validator side) rebuilds those bytes from the messages and refuses anything
else, ``cosign_terms`` checks the timeout and the vault sequence against the chain, ``terms_can_land`` says
from the chain whether a signed payout may still be included. ``delivered`` reads the vault's own successful
txs' memos. The multisig threshold must be a strict majority of its members (checked at construction).

Endpoints. CometBFT RPC requests go to ``rpc_url``, then ``fallback_rpc_urls``; REST reads and broadcasts to
``rest_url``, then ``fallback_rest_urls``; a failing endpoint is demoted (``adapters.cosmos.client``, the shared rules
of ``adapters.endpoints``). ``endpoint_health`` numbers them in that order. With ``rpc_mode = "quorum"`` every
request goes to all endpoints of its kind and a quorum must agree (``take_quorum_disagreements``: the answers
outvoted, numbered as ``endpoint_health``).

Every public method raises only ``AdapterError`` (``adapters.cosmos.client`` maps httpx / protobuf errors).
Keys handed in (``sender_key``, co-signing keys) are used and dropped, never logged.
"""

from __future__ import annotations

from adapters.base import (
    CapacitySource,
    ChainAdapter,
    CosignedDelivery,
    CosignLiveness,
    MessageSender,
    SendCosts,
    UnsignedTransactions,
    WalletSource,
)
from adapters.capabilities import (
    BatchLimit,
    Bytes32Accounts,
    EndpointHealth,
    FeeAccountPayments,
    GasPaymentSource,
    NativeTokenIds,
    OperatorAccounts,
    QuorumDisagreements,
    WriteAheadSender,
)
from adapters.cosigned import CosignedSteps
from adapters.cosmos.chain import CosmosChain, address_of
from adapters.cosmos.destination import CosmosDestination
from adapters.cosmos.health import CosmosHealth
from adapters.cosmos.send_costs import CosmosSendCosts
from adapters.cosmos.writeahead import CosmosWriteAhead
from adapters.tokens import UnknownToken

__all__ = ["CosmosAdapter", "CosmosChain", "UnknownToken", "address_of"]


class CosmosAdapter(CosmosDestination, CosmosWriteAhead, CosmosHealth, CosmosSendCosts,
                    ChainAdapter, MessageSender, UnsignedTransactions, WalletSource, CapacitySource, BatchLimit,
                    Bytes32Accounts, NativeTokenIds, CosignedDelivery, CosignLiveness, OperatorAccounts,
                    WriteAheadSender, EndpointHealth, QuorumDisagreements, GasPaymentSource, FeeAccountPayments,
                    SendCosts, CosignedSteps[tuple[()]]):
    """One Cosmos SDK chain: origin (MsgSend-to-vault dispatches, ``adapters.cosmos.origin``), destination
    (co-signed multisig payouts, ``destination``; the validator's checks of them, ``cosign``), sender (and what a
    send costs, ``send_costs``) and health: the roles, composed; the capabilities it declares are the Protocols after
    them.

    ``remote_bridges``: domain -> bytes32 of the TokenBridge there (the recipient of a lock's message, and the
    only sender whose token messages are paid out here). ``wrapped_escrow``: symbol -> what the vault was
    funded with for a wrapped token (``token_supply`` of a wrapped token = escrow paid out).
    """
