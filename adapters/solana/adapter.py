"""``SolanaAdapter``: ``ChainAdapter``, ``MessageSender``, ``CapacitySource`` and ``CosignedDelivery`` for a
Solana cluster, over JSON-RPC with solana-py (``AsyncClient``) and solders.

Origin. No program of ours: a dispatch is a transaction referencing the ``bridge`` address with a Memo
``xchain:v1:...`` (rules in ``adapters.solana.bridge``, format in ``adapters.solana.memo``). The watcher lists
``getSignaturesForAddress(bridge)`` at commitment ``finalized``, orders the transactions by (slot, position
in the block), keeps the successful valid dispatches, and builds the canonical message itself: its nonce is
the dispatch's position among all valid dispatches since ``start_height``; the running list and the Merkle
tree ("mailbox", ``mailbox_state``) are cached. With ``verify_rpc_urls`` every other endpoint must return
the same signatures and the same transaction bytes and results, else ``RpcError`` (``endpoints disagree``).

Destination. A delivery is one transaction paid by the relayer's ``signer`` and co-signed by a quorum of the
validators' SPL multisig (``multisig_threshold`` of its N members, threshold > N/2), gathered through the
``Cosigner``; ``check_cosign`` (validator side) rebuilds the exact message bytes from the messages and the
request's context and refuses anything else. Replay protection is on chain: the per-validator guard accounts
(``bridge.guard_instructions``), which is also how ``delivered`` answers: a message is delivered when at least
``multisig_threshold`` of its guards exist (owner and size checked, lamports ignored).

Endpoints. Every request goes to ``rpc_url``, then to ``fallback_rpc_urls`` in order, a failing endpoint demoted
(``adapters.solana.transport``, the shared rules of ``adapters.endpoints``); ``endpoint_health`` is their health by
index. With ``rpc_mode = "quorum"`` every request goes to all of them and a quorum must agree
(``take_quorum_disagreements``: the answers outvoted).

Every public method raises only ``AdapterError`` (``adapters.solana.errors`` maps solana-py / httpx errors).
Keys handed in (``sender_key``, co-signing keys) are used and dropped, never logged.
"""

from __future__ import annotations

from solders.pubkey import Pubkey

from adapters.base import (
    CapacitySource,
    ChainAdapter,
    CosignedDelivery,
    CosignLiveness,
    MessageSender,
    SendCosts,
    WalletSource,
)
from adapters.capabilities import (
    BatchLimit,
    Bytes32Accounts,
    EndpointHealth,
    FeeAccountPayments,
    GasPaymentSource,
    NativePayoutMinimum,
    NativeTokenIds,
    OperatorAccounts,
    QuorumDisagreements,
    VaultHoldings,
    WriteAheadSender,
)
from adapters.cosigned import CosignedSteps
from adapters.solana.chain import (
    DELIVERY_COMPUTE_PER_MESSAGE,
    MAX_GUARD_LAMPORTS,
    SolanaChain,
    keypair_from_hex,
)
from adapters.solana.cosign import SolanaCosignCheck
from adapters.solana.health import SolanaHealth
from adapters.solana.send_costs import SolanaSendCosts
from adapters.solana.writeahead import SolanaWriteAhead
from adapters.tokens import UnknownToken

__all__ = ["DELIVERY_COMPUTE_PER_MESSAGE", "MAX_GUARD_LAMPORTS", "SolanaAdapter", "SolanaChain", "UnknownToken",
           "keypair_from_hex"]


class SolanaAdapter(SolanaCosignCheck, SolanaWriteAhead, SolanaHealth, SolanaSendCosts,
                    ChainAdapter, MessageSender, WalletSource, CapacitySource, BatchLimit, Bytes32Accounts,
                    NativeTokenIds, CosignedDelivery, CosignLiveness, VaultHoldings, WriteAheadSender,
                    OperatorAccounts, EndpointHealth, QuorumDisagreements, GasPaymentSource, FeeAccountPayments,
                    NativePayoutMinimum, SendCosts, CosignedSteps[list[Pubkey]]):
    """One Solana cluster: origin (memo dispatches referencing the bridge, ``adapters.solana.origin``),
    destination (co-signed payouts, ``destination``; the validator's checks of them, ``cosign``), sender (and what a
    send costs, ``send_costs``) and health: the roles, composed; the capabilities it declares are the Protocols after
    them.

    ``cosigner`` gathers the validators' signatures for deliveries (``None``: this adapter only watches, or a
    validator uses it for ``check_cosign``/``cosign_with``). ``confirm_at``: the commitment at which a delivery
    counts as confirmed. ``clock``: unix time (the ``expires_at`` a relayer puts in its co-sign requests).
    """
