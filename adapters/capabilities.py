"""What an adapter can do beyond ``ChainAdapter``: small Protocols an adapter declares by subclassing them.

Every adapter class names its capabilities in its bases (``class SolanaAdapter(ChainAdapter, BatchLimit, ...)``);
code above ``adapters/`` asks for a capability by its type (``isinstance`` on these runtime-checkable Protocols)
and never probes attributes. ``tests/unit/test_adapter_capabilities.py`` checks that each adapter declares
exactly the capabilities it implements.

    capability            declared by              asked by
    MessageSender         evm, solana, cosmos      daemon (router's operators), CLI send, bench
      MessageDispatcher   evm, solana, cosmos      CLI send, bench relay
      TokenSender         evm, solana, cosmos      router intents, accountant, bench
      TxLookup            evm, solana, cosmos      router intents, bench relay
    UnsignedTransactions  evm, cosmos              router intents (signer mode)
    ContractCalls         evm                      router intents ("call" intents)
    WalletSource          evm, solana, cosmos      daemon wallet metrics, processor (fee decimals)
    CapacitySource        evm, solana, cosmos      daemon (router capacity feed)
    WriteAheadSender      evm, solana, cosmos      router lanes (durable operator intents: sign, store, then send)
    OperatorAccounts      evm, solana, cosmos      daemon (each operator key's account on each chain)
    BatchLimit            solana, cosmos           processor (messages per delivery)
    Bytes32Accounts       solana, cosmos           CLI send, bench, accountant
    NativeTokenIds        solana, cosmos           audit, accountant
    CosignedDelivery      solana, cosmos           validator co-sign service (pipeline/cosign.py)
    CosignLiveness        solana, cosmos           accountant
    BridgeLedger          evm                      audit
    GasPaymaster          evm                      oracle upkeep, CLI add-gas, API (the call a wallet signs)
      GasPaymentSource    evm, solana, cosmos      indexer (payments read with the dispatches)
      GasQuoteSource      evm                      gas policy (Solana, Cosmos: the relayer's own quotes)
    FeeAccountPayments    solana, cosmos           CLI send --pay-gas, add-gas and API (how such a message pays)
    BridgeQueue           evm                      daemon (pays out inbound transfers the rate limits queued)
    BridgeRateLimits      evm                      routing API (/v1/quote waits, /v1/chains and explorer figures)
    BridgeRefusals        evm                      CLI send (a transfer the bridge's route or bucket refuses, before it)
    SendCosts             evm, solana, cosmos      CLI send (the sender's coin, and what a send needs of it)
    LiquidityPools        evm                      netting keeper (settle, complete, release), send, router, bench
    ExactEstimates        evm                      processor (a message over relayer.max_gas_per_message)
    VaultHoldings         solana                   audit
    NativePayoutMinimum   solana                   integrator payouts (a payout below it is not made: it waits)
    LightClientFollower   light_clients.ethereum   daemon (keeps sync-committee clients caught up)
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from adapters.base import (
    CapacitySource,
    ChainAdapter,
    ContractCalls,
    CosignedDelivery,
    CosignLiveness,
    CostEstimate,
    DeliveryBatch,
    Height,
    MessageDispatcher,
    MessageSender,
    SendCosts,
    TokenSender,
    TxHash,
    TxLookup,
    TxReceipt,
    UnsignedTransactions,
    WalletSource,
)
from adapters.message import Domain, MessageId


@runtime_checkable
class BatchLimit(Protocol):
    """A destination whose delivery transaction holds at most ``max_delivery_batch`` messages (the processor
    sends no larger batches than this, whatever ``batch_size`` says)."""

    @property
    def max_delivery_batch(self) -> int: ...


@dataclass(frozen=True, slots=True)
class GasPayment:
    """One payment for a message's delivery, as the origin's paymaster recorded it (EVM: a ``GasPayment`` log)."""

    message_id: bytes
    destination: int
    gas_limit: int
    payment: int  # origin smallest units kept by the paymaster (the excess was refunded)
    height: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class GasOracleEntry:
    """What an origin's gas oracle holds for one destination; ``updated_at`` 0: never written."""

    destination: int
    exchange_rate: int  # origin smallest units per destination smallest unit, x 1e10
    gas_price: int  # destination smallest units per gas
    minimum_payment: int  # origin smallest units per message
    updated_at: float  # chain time of the last write

    def quote(self, gas_limit: int) -> int:
        """The paymaster's quote for ``gas_limit`` gas, as its contract computes it."""
        return max(gas_limit * self.gas_price * self.exchange_rate // GAS_EXCHANGE_RATE_SCALE, self.minimum_payment)


GAS_EXCHANGE_RATE_SCALE = 10**10


@runtime_checkable
class GasPaymentSource(Protocol):
    """An origin where senders pay for their messages' delivery: the payments made in a height range, read with the
    dispatches of the same heights (EVM: the paymaster's ``GasPayment`` logs; Solana, Cosmos: transfers to the
    relayer's ``gas_fee_account`` in the dispatch transactions themselves). ``has_paymaster`` False: none is
    configured, and nothing is paid here."""

    def has_paymaster(self) -> bool: ...

    async def fetch_gas_payments(self, from_height: Height, to_height: Height) -> list[GasPayment]: ...


@runtime_checkable
class GasQuoteSource(Protocol):
    """What an origin's quotes are computed from, per destination (EVM: its ``GasOracle``'s entries)."""

    async def gas_oracle_entries(self, destinations: Sequence[int]) -> list[GasOracleEntry]: ...


@runtime_checkable
class FeeAccountPayments(Protocol):
    """An origin where a dispatch pays the relayer's fee account in its own transaction (Solana: a System transfer
    of lamports; Cosmos: a bank send of the fee denom): the account, and dispatching with ``payment`` per message
    (CLI ``send --pay-gas``); and topping up a message already dispatched: a transaction moving native tokens to
    the fee account with a gas memo naming the message and its destination (``adapters.bridge_memo.GasMemo``; CLI
    ``messages add-gas``). A payment in any other transaction counts for nothing."""

    @property
    def gas_fee_account(self) -> str | None: ...

    async def dispatch_paying(self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes],
                              payment: int) -> tuple[TxHash, list[MessageId]]: ...

    async def top_up_gas(self, payer_key: str, message_id: bytes, destination: int, amount: int) -> TxHash:
        """Pay ``amount`` (native smallest units) more for ``message_id``, in a transaction of its own; its hash once
        final."""
        ...

    def top_up_call(self, message_id: bytes, destination: int, amount: int) -> dict[str, str]:
        """What a wallet signs to top up ``message_id`` (``to``: the fee account, ``value``, ``memo``, and what else
        the chain's transaction must hold)."""
        ...


@runtime_checkable
class GasPaymaster(GasPaymentSource, GasQuoteSource, Protocol):
    """An origin with an on-chain paymaster and oracle (EVM: ``GasPaymaster`` and its ``GasOracle``): besides the
    payments and the oracle's entries, writing the oracle (the updater key), and paying for a message already
    dispatched (CLI ``messages add-gas``)."""

    async def write_gas_oracle(self, updater_key: str, entries: Sequence[GasOracleEntry]) -> str:
        """Write ``entries`` (their ``updated_at`` is ignored: the chain stamps it) in one transaction; its hash."""
        ...

    async def pay_for_gas(self, payer_key: str, message_id: bytes, destination: int, gas_limit: int,
                          value: int) -> str:
        """Pay ``value`` (at least the quote for ``gas_limit``; the excess comes back) for ``message_id``."""
        ...

    def pay_for_gas_call(self, message_id: bytes, destination: int, gas_limit: int, refund_to: str) -> dict[str, str]:
        """The call a wallet signs to pay for ``message_id`` (``to``, ``data``; the value is the caller's)."""
        ...


@dataclass(frozen=True, slots=True)
class QueuedTransfer:
    """An inbound token transfer the destination's bridge queued for want of rate-limit room (EVM:
    ``TokenBridge.queued``): delivered as a message, not yet paid out."""

    queue_id: int
    origin: int
    token: str
    recipient: str
    amount: int


@runtime_checkable
class BridgeQueue(Protocol):
    """A token bridge whose inbound rate limits queue transfers (EVM ``TokenBridge``): the open ones, the room of a
    bucket, and paying one out (anyone may; the relayer's wallet does it for the recipients)."""

    def can_release(self) -> bool:
        """A bridge is configured and a wallet to send from."""
        ...

    async def queued_transfers(self, from_id: int) -> list[QueuedTransfer]:
        """The open queued transfers with ids from ``from_id`` on, oldest first."""
        ...

    async def inbound_room(self, origin: int, token: str) -> tuple[int, int]:
        """(what ``token`` from ``origin`` may be paid out now, the bucket's capacity; 0: no limit)."""
        ...

    async def release_queued(self, queue_id: int) -> str:
        """Pay out one queued transfer (``TxReverted`` while its bucket has no room); the transaction hash."""
        ...


@dataclass(frozen=True, slots=True)
class PoolState:
    """A liquidity pool now (smallest units of its token): ``balance`` held, ``free`` = balance minus what its
    ``owed`` deferred payouts need, the epoch it is in and the epoch length."""

    symbol: str
    pool: str
    epoch: int
    epoch_seconds: int
    balance: int
    free: int
    owed: int
    deferred_count: int


@dataclass(frozen=True, slots=True)
class PoolEpoch:
    """What a pool holds about one epoch with the pool of domain ``remote``: its deposits towards it (``sent``), the
    remote's deposits delivered here (``received``), whether our settlement went out, and the remote's settlement
    as received here (``settlement_in``: none, pending or done; ``adjusted``: what this pool burnt (> 0) or minted
    (< 0) when it completed)."""

    remote: int
    epoch: int
    sent: int
    sent_count: int
    received: int
    received_count: int
    settled_out: bool
    settlement_in: str
    remote_sent: int
    remote_count: int
    adjusted: int

    @property
    def has_flow(self) -> bool:
        return bool(self.sent_count or self.received_count or self.settlement_in != "none")


@dataclass(frozen=True, slots=True)
class DeferredPayout:
    """A payout the pool could not cover when its deposit arrived: it waits until the pool holds everything owed."""

    payout_id: int
    origin: int
    recipient: str
    amount: int


@runtime_checkable
class LiquidityPools(Protocol):
    """A chain's liquidity pools (EVM ``LiquidityPool``, one per pooled token): deposits, what they hold per epoch,
    and the permissionless calls the relayer makes for everyone: settle a closed epoch, complete a settlement that
    waited, release deferred payouts."""

    def pooled_tokens(self) -> list[str]: ...

    async def pool_deposit(self, sender_key: str, symbol: str, amount: int, destination: Domain,
                           recipient: bytes) -> tuple[TxHash, MessageId]: ...

    async def pool_state(self, symbol: str) -> PoolState: ...

    async def pool_epochs(self, symbol: str, remote: int, epochs: Sequence[int]) -> list[PoolEpoch]: ...

    async def deferred_payouts(self, symbol: str, from_id: int = 1) -> list[DeferredPayout]: ...

    async def pool_settle(self, symbol: str, remote: int, epoch: int) -> TxHash: ...

    async def pool_complete(self, symbol: str, remote: int, epoch: int) -> TxHash: ...

    async def pool_release(self, symbol: str, payout_id: int) -> TxHash: ...


@dataclass(frozen=True, slots=True)
class RateLimitBucket:
    """One direction of a bridge's token bucket for one remote domain and token (EVM: ``TokenBridge.rateLimitRoom``),
    in the token's smallest units on this chain: at most ``capacity`` at once, refilled at ``rate_per_s``; ``room``
    is what may move now. ``capacity`` 0: no limit (``room`` and ``rate_per_s`` then mean nothing)."""

    capacity: int
    rate_per_s: int
    room: int

    @property
    def limited(self) -> bool:
        return self.capacity > 0


@dataclass(frozen=True, slots=True)
class BridgeRateLimit:
    """A bridge's two buckets for ``symbol`` (``token``: its address here, lower-case) and one remote domain:
    ``outbound`` (transfers to it; over the room they revert) and ``inbound`` (transfers from it; over the room they
    are queued on chain until it has room)."""

    remote_domain: int
    symbol: str
    token: str
    outbound: RateLimitBucket
    inbound: RateLimitBucket


@runtime_checkable
class BridgeRateLimits(Protocol):
    """A token bridge with rate limits per remote domain, token and direction (EVM ``TokenBridge``): what they are
    now, read in one round trip, so that users see them before they sign (``/v1/quote``, ``/v1/chains``)."""

    def bridge_tokens(self) -> list[str]:
        """The bridged token symbols configured here; none when the chain has no token bridge configured."""
        ...

    async def bridge_rate_limits(self, remote_domains: Sequence[int], symbols: Sequence[str]) -> list[BridgeRateLimit]:
        """Both buckets of every (remote domain, symbol), in that order (``AdapterError`` when they cannot be read)."""
        ...


@runtime_checkable
class BridgeRefusals(Protocol):
    """A token bridge that refuses an outbound transfer for its route or its rate limit (EVM ``TokenBridge``), asked
    before anything is sent (``TokenSender.send_token`` may approve the bridge before its transfer is refused)."""

    async def bridge_refusal(self, symbol: str, amount: int, destination: Domain) -> str | None:
        """Why the bridge would refuse ``amount`` (smallest units) of ``symbol`` to ``destination`` now, named as the
        ``TxReverted`` reason of the refused transfer would name it (the contract's custom error with its arguments:
        ``NoRoute``, ``AmountNotRepresentable``, ``AmountAboveRouteMax``, ``AmountAboveCapacity``, ``RateLimited``);
        None when it would take it."""
        ...


@runtime_checkable
class ExactEstimates(Protocol):
    """A destination whose ``estimate_delivery`` may size a batch by a model (``CostEstimate.exact`` False): this
    one simulates it (EVM: ``eth_estimateGas``), for decisions a model's error must not make (a message's gas over
    ``relayer.max_gas_per_message``)."""

    async def estimate_delivery_exactly(self, batch: DeliveryBatch) -> CostEstimate: ...


@runtime_checkable
class EndpointHealth(Protocol):
    """A chain served by several RPC endpoints (``adapters.endpoints``): per endpoint, by its index in the
    configuration, whether its last request succeeded."""

    def endpoint_health(self) -> list[bool]: ...


@runtime_checkable
class QuorumDisagreements(Protocol):
    """A chain whose reads a quorum of RPC endpoints must agree on (``rpc_mode = "quorum"``, ``adapters.evm.quorum``):
    the answers outvoted per (JSON-RPC method, endpoint index) since the last call."""

    def take_quorum_disagreements(self) -> dict[tuple[str, int], int]: ...


@runtime_checkable
class NativeTokenIds(Protocol):
    """A chain whose own tokens are not 0x-hex contract addresses: the bytes32 identity a bridge message carries
    for the configured token ``symbol`` homed here (Solana: its mint; Cosmos: sha256 of its denom).
    ``UnknownToken`` for a symbol the chain's configuration does not name."""

    def native_token_id(self, symbol: str) -> bytes: ...


@runtime_checkable
class Bytes32Accounts(Protocol):
    """A chain whose account addresses are not 0x-hex: turns one (bech32, base58) into the bytes32 a message or
    token body carries. Chains without it take 0x-hex addresses (``adapters.message.address_to_bytes32``)."""

    def account_bytes32(self, address: str) -> bytes: ...


@runtime_checkable
class BridgeLedger(Protocol):
    """A chain whose TokenBridge contract says what it holds of each token identity (the solvency audit)."""

    async def bridge_home_of(self, symbol: str) -> tuple[int, bytes]:
        """(home domain, home token as bytes32) of the configured token ``symbol``."""
        ...

    async def bridge_holding(self, home_domain: int, home_token: bytes) -> object | None:
        """What the bridge holds of one token identity (``adapters.evm.BridgeHolding``), None if nothing."""
        ...


@runtime_checkable
class VaultHoldings(Protocol):
    """A chain whose bridge vault holds native tokens that came in and have not gone home (the solvency audit)."""

    async def vault_balance(self, symbol: str) -> int: ...


@dataclass(frozen=True, slots=True)
class PayoutMinimum:
    """The least a native transfer to an address must carry now (smallest units; 0: any amount), and the chain's
    reason, in words a payee understands."""

    amount: int
    reason: str = ""


@runtime_checkable
class NativePayoutMinimum(Protocol):
    """A chain that refuses a native transfer leaving its recipient with less than a minimum (Solana: the rent-exempt
    minimum of an account without data, for an account that holds less than that, most often nothing yet)."""

    async def minimum_native_payout(self, address: str) -> PayoutMinimum:
        """What a native transfer to ``address`` must carry now; ``AdapterError`` when it cannot be read."""
        ...


class FollowedHead(Protocol):
    """The block a light client has verified as finalized."""

    @property
    def number(self) -> int: ...


@runtime_checkable
class LightClientFollower(Protocol):
    """An inclusion verifier with a light client of its own that is kept caught up between claims."""

    async def follow_light_client(self) -> FollowedHead | None:
        """Sync now; the finalized head it verified (None when it has no light client to follow)."""
        ...


@dataclass(frozen=True, slots=True)
class TxSpec:
    """What an operator transaction does, before it has a nonce: ``transfer`` ``amount`` of ``symbol`` to ``to``,
    ``call`` the contract ``to`` with ``data``, or ``xchain``: send ``amount`` of ``symbol`` through the token bridge
    to ``to`` (0x-hex, as the intent names it) on the chain of domain ``destination``."""

    kind: str
    to: str
    amount: int = 0
    symbol: str = ""
    data: bytes = b""
    destination: int = 0


@dataclass(frozen=True, slots=True)
class PreparedTx:
    """A transaction priced and bounded (gas limit, fees) but not yet signed: opaque to the caller."""

    spec: TxSpec
    target: str
    data: bytes
    gas: int
    max_fee: int
    tip: int


@dataclass(frozen=True, slots=True)
class PresignedTx:
    """A signed transaction the caller stores before it is sent (write-ahead)."""

    raw: bytes
    tx_hash: str
    nonce: int


def account_bytes32(adapter: object, address: str) -> bytes:
    """``address`` as the bytes32 a message carries on ``adapter``'s chain: 0x-hex of 20 or 32 bytes on any chain,
    else the chain's own account format (``Bytes32Accounts``: base58 on Solana, bech32 on Cosmos). ``ValueError``
    when it is neither."""
    from adapters.base import AdapterError
    from adapters.message import address_to_bytes32

    text = address.strip()
    if text[:2].lower() == "0x" and len(text) in (42, 66):
        with contextlib.suppress(ValueError):
            return address_to_bytes32(text)
    if isinstance(adapter, Bytes32Accounts):
        try:
            return bytes(adapter.account_bytes32(text))
        except AdapterError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"{address!r} is not 0x-hex of 20 or 32 bytes")


def xchain_recipient(spec: TxSpec, chain: str, family: str) -> bytes:
    """The recipient bytes of a lane's cross-chain transfer on a chain whose lanes sign nothing else (Solana,
    Cosmos): ``TxReverted`` for another kind, or a recipient that is not 0x-hex of at most 32 bytes."""
    from adapters.base import TxReverted

    if spec.kind != "xchain":
        raise TxReverted(f"{family} lanes sign cross-chain transfers only, not {spec.kind!r}", chain=chain,
                         reason="kind not signed here")
    if not spec.to.startswith("0x") or len(spec.to) > 66:
        raise TxReverted(f"recipient {spec.to!r} is not 0x-hex of at most 32 bytes", chain=chain,
                         reason="bad recipient")
    return bytes.fromhex(spec.to[2:])


class Broadcast(enum.Enum):
    """What the node said to a signed transaction."""

    ACCEPTED = "accepted"        # in the pool now (or already was)
    NONCE_USED = "nonce_used"    # its nonce is taken: mined, by it or by another transaction
    REFUSED = "refused"          # refused for another reason (funds, fees, node away): send it again later


@runtime_checkable
class OperatorAccounts(Protocol):
    """The account a private key signs for on this chain (EVM: its 0x address; Solana: the ed25519 public key of the
    key as seed; Cosmos: its bech32 address), so that one operator key has an account on every family."""

    def account_of(self, key: str) -> str: ...


@runtime_checkable
class WriteAheadSender(Protocol):
    """Operator transactions in three steps, so that a crash between any two loses nothing and sends nothing
    twice: ``prepare`` (gas and fees, for many at once; refuses a call that would revert), ``sign`` at a nonce
    the caller owns (CPU only), then, once the caller has stored the signed bytes, ``broadcast``. ``decided`` and
    ``receipts`` tell which transactions the chain has settled one way or the other, and how.

    The *nonce* is the lane's sequence: on EVM the account's nonce, on Cosmos its sequence; on Solana, which has
    none, a number the lane gives each transaction, in order, and nothing on chain (there a transaction is bound by
    its recent blockhash, and is dead once that has expired with the transaction unseen)."""

    def lane_kinds(self) -> frozenset[str]:
        """The intent kinds this chain's lanes sign (``transfer``, ``call``, ``xchain``): EVM all three; Solana and
        Cosmos only ``xchain`` (an intent's recipient is a 0x address, which names no account there)."""
        ...

    async def prerequisites(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx]:
        """Transactions of ``sender`` that must be mined before ``specs`` can be prepared (EVM: the standing approval
        of the token bridge that ``xchain`` transfers of a home token spend); none most of the time."""
        ...

    async def prepare(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx | Exception]:
        """Each spec priced and bounded, or the typed error that refused it (in order); one fee read and one gas
        estimate per kind of transfer serve the whole list."""
        ...

    def sign(self, key: str, prepared: PreparedTx, nonce: int) -> PresignedTx: ...

    async def broadcast(self, raws: Sequence[bytes]) -> list[tuple[Broadcast, str]]: ...

    async def replacements(self, key: str, raws: Sequence[bytes]) -> list[PresignedTx | None]:
        """Per signed transaction of ``key``'s account: a copy at the same nonce re-priced for the chain's fees now
        when they have outgrown it (it could not be included any more), else None."""
        ...

    async def decided(self, account: str, txs: Sequence[PresignedTx]) -> list[bool]:
        """Per signed transaction of ``account``: whether the chain has decided it, so that ``receipts`` is final for
        it: a receipt if it was included, none if it never can be (EVM: its nonce is mined, by it or by another
        transaction; Cosmos: the account's committed sequence is past it; Solana: finalized, or unseen with its
        blockhash expired)."""
        ...

    async def pending_nonce(self, account: str) -> int:
        """The first nonce no transaction the node holds uses (Solana: 0, there are none)."""
        ...

    async def receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        """Each transaction's receipt, or None while it is not mined."""
        ...


ADAPTER_CAPABILITIES: tuple[type, ...] = (
    ChainAdapter, MessageSender, MessageDispatcher, TokenSender, TxLookup, UnsignedTransactions, ContractCalls,
    WalletSource, CapacitySource, BatchLimit, Bytes32Accounts, NativeTokenIds, CosignedDelivery, CosignLiveness,
    BridgeLedger, VaultHoldings, WriteAheadSender, OperatorAccounts, EndpointHealth, QuorumDisagreements, GasPaymaster,
    GasPaymentSource, GasQuoteSource, FeeAccountPayments, BridgeQueue, ExactEstimates, BridgeRateLimits,
    NativePayoutMinimum, SendCosts, BridgeRefusals, LiquidityPools,
)
"""Every capability an adapter can declare (the test checks declarations against implementations)."""

__all__ = [
    "ADAPTER_CAPABILITIES",
    "BatchLimit",
    "BridgeLedger",
    "BridgeQueue",
    "BridgeRateLimit",
    "BridgeRateLimits",
    "BridgeRefusals",
    "Broadcast",
    "Bytes32Accounts",
    "CapacitySource",
    "ChainAdapter",
    "ContractCalls",
    "CosignLiveness",
    "CosignedDelivery",
    "EndpointHealth",
    "ExactEstimates",
    "FeeAccountPayments",
    "FollowedHead",
    "GasOracleEntry",
    "GasPaymaster",
    "GasPayment",
    "GasPaymentSource",
    "GasQuoteSource",
    "LightClientFollower",
    "MessageDispatcher",
    "MessageSender",
    "NativePayoutMinimum",
    "NativeTokenIds",
    "OperatorAccounts",
    "PayoutMinimum",
    "PreparedTx",
    "PresignedTx",
    "QueuedTransfer",
    "QuorumDisagreements",
    "RateLimitBucket",
    "SendCosts",
    "TokenSender",
    "TxLookup",
    "TxSpec",
    "UnsignedTransactions",
    "VaultHoldings",
    "WriteAheadSender",
    "account_bytes32",
]

