"""The ``ChainAdapter`` Protocol, the chain-neutral types that cross layers, and the adapter error family.

Everything above ``adapters/`` (relayer, router) talks to a chain only through these. An adapter translates
its SDK's exceptions into the ``AdapterError`` family at its boundary (``raise Mapped(...) from exc``), so
no web3 / solana / cosmpy / httpx exception leaks upward.

    AdapterError (RelayerError)
    +-- RpcUnavailable        endpoint down, timeout, connection refused
    +-- RpcError              the endpoint answered with an error we did not expect
    |   +-- MailboxNotDeployed  the origin mailbox has no code at the asked height (before its deployment)
    +-- TxReverted            the chain executed and reverted (or estimation reverted); ``reason``
    +-- NonceTooLow           our nonce was already used
    +-- SequenceMismatch      the account sequence the chain expected is another (``expected``, when it says)
    +-- ReplacementUnderpriced a replacement did not pay enough more
    +-- InsufficientFunds     the signer cannot pay for gas (an operator tops up)
    +-- TxNotFound            a submitted transaction is neither mined nor pending
    +-- FeeTooHigh            the chain's fee is above our configured cap
    +-- NoCosignQuorum        fewer validators co-signed a delivery than its threshold (Solana, Cosmos)
    +-- CosignRefused         a validator will not co-sign a delivery (``reason``: why, e.g. ``PAYLOAD_MISMATCH``)
    +-- InclusionRefused      a light client could not prove what an RPC node claims
    |   +-- InclusionPending  not proven yet
    +-- FinalityViolation     the chain's finality source contradicts the chain (a rollup's output root that does not
                              match its blocks): the origin halts as for a reorg deeper than its finality

What the relayer does about each is decided by its class alone (``relayer.pipeline.outcome.reason_of`` and
``RetryPolicy``); ``reason`` is a short description for logs, never matched on.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NewType, Protocol, runtime_checkable

from adapters.message import Domain, Message, MessageFormatError, MessageId
from config.errors import RelayerError

Height = NewType("Height", int)
TxHash = NewType("TxHash", str)


class AdapterError(RelayerError):
    def __init__(self, message: str, *, chain: str = "", reason: str = "") -> None:
        self.chain = chain
        self.reason = reason or message
        super().__init__(f"[{chain}] {message}" if chain else message)


class RpcUnavailable(AdapterError):
    pass


class RpcError(AdapterError):
    pass


class MailboxNotDeployed(RpcError):
    """The origin mailbox has no code at the asked height: the chain's mailbox count there is 0."""


class TxReverted(AdapterError):
    pass


class OutboundRateLimited(TxReverted):
    """The origin's token bridge has no outbound room for this amount yet (EVM ``TokenBridge.RateLimited``): nothing
    was sent; it fits in ``wait_s`` seconds (a transfer above the bucket's capacity, which never fits, is a plain
    ``TxReverted``)."""

    def __init__(self, message: str, *, chain: str = "", reason: str = "", wait_s: float) -> None:
        super().__init__(message, chain=chain, reason=reason)
        self.wait_s = wait_s


class NonceTooLow(AdapterError):
    pass


class SequenceMismatch(AdapterError):
    """The chain refused the account sequence a transaction was signed with; ``expected`` is the one it wants,
    when its answer says (Cosmos SDK code 32)."""

    def __init__(self, message: str, *, chain: str = "", reason: str = "sequence mismatch",
                 expected: int | None = None) -> None:
        super().__init__(message, chain=chain, reason=reason)
        self.expected = expected


class ReplacementUnderpriced(AdapterError):
    pass


class InsufficientFunds(AdapterError):
    pass


class TxNotFound(AdapterError):
    pass


class FeeTooHigh(AdapterError):
    """The fee the chain asks is above the configured cap; waits for fees to fall."""


class NoCosignQuorum(AdapterError):
    """Fewer validators co-signed a delivery (with valid signatures) than its threshold."""

    def __init__(self, message: str, *, chain: str = "", reason: str = "no cosign quorum") -> None:
        super().__init__(message, chain=chain, reason=reason)


PAYOUT_RATE_LIMITED = "payout rate limited"  # CosignRefused reason: over a validator.payout_limits bucket's room


class PayoutRateLimited(NoCosignQuorum):
    """Too few validators co-signed because the others' payout limits (``validator.payout_limits``) have no room
    for the delivery yet: it fits in ``retry_after_s`` (the wait a quorum of them gave)."""

    def __init__(self, message: str, *, chain: str = "", retry_after_s: float) -> None:
        super().__init__(message, chain=chain, reason=PAYOUT_RATE_LIMITED)
        self.retry_after_s = retry_after_s


PAYLOAD_MISMATCH = "payload mismatch"  # CosignRefused reason: the payload is not the delivery of its messages


class InclusionRefused(AdapterError):
    """A light client could not prove what an RPC node claims (a header, a receipt, a log); ``reason`` says
    which check failed. Retried on the next poll: an honest node that lagged passes later, a lying one never."""


class InclusionPending(InclusionRefused):
    """Not proven *yet*: the light client has not seen the claimed block finalized (its consensus source is behind
    the node). Nothing is signed; the validator waits and asks again, without counting a refusal."""


class FinalityViolation(AdapterError):
    """What the chain's finality rests on contradicts the chain itself, at ``height``: for a rollup that settles on
    an L1, an output root posted there that does not match the rollup's blocks. Never retried: the indexer halts the
    origin as for a reorg deeper than its finality (``origin_reorged``), and the operator decides."""

    def __init__(self, message: str, *, chain: str = "", reason: str = "", height: int) -> None:
        super().__init__(message, chain=chain, reason=reason)
        self.height = height


@dataclass(frozen=True, slots=True)
class DispatchedMessage:
    """A message as found on its origin chain, with where it was found."""

    message: Message
    raw: bytes
    id: MessageId
    height: Height
    tx_hash: TxHash
    log_index: int
    timestamp: float  # block timestamp, seconds


@dataclass(frozen=True, slots=True)
class CosignRequest:
    """A destination transaction that needs the validators' own signatures before it can be submitted.

    Chains without a contract that checks checkpoints (Solana: the wrapped mint's authority is an SPL Token
    M-of-N multisig of the validators; Cosmos: an M-of-N multisig account) are delivered to by a
    transaction the validators co-sign. The adapter builds it (``payload``: the exact bytes each co-signer
    signs), a validator checks it does nothing but deliver ``messages`` (``CosignedDelivery.check_cosign``)
    and signs it at most once per message; the adapter then assembles and submits it."""

    chain: str                          # destination chain name (as in config)
    payload: bytes                      # what each co-signer signs
    messages: tuple[bytes, ...]         # the raw messages the transaction delivers, in order
    context: dict[str, str] = field(default_factory=dict)  # what the adapter needs to re-check or assemble it

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "payload": self.payload.hex(), "messages": [m.hex() for m in self.messages],
                "context": dict(self.context)}

    @classmethod
    def from_json(cls, doc: object) -> CosignRequest:
        """The request a relayer sent (``to_json``); ``MessageFormatError`` naming the field when malformed."""
        if not isinstance(doc, dict):
            raise MessageFormatError(f"a cosign request is a JSON object, got {type(doc).__name__}")
        unknown = set(doc) - {"chain", "payload", "messages", "context"}
        if unknown:
            raise MessageFormatError(f"cosign request: unknown field {min(map(str, unknown))!r}")
        chain = doc.get("chain")
        if not isinstance(chain, str) or not chain:
            raise MessageFormatError(f"cosign request field 'chain': expected a chain name, got {chain!r:.80}")
        payload = _hex_bytes(doc.get("payload"), "payload")
        messages = doc.get("messages")
        if not isinstance(messages, list):
            raise MessageFormatError("cosign request field 'messages': expected a list of hex strings, got "
                                     f"{messages!r:.80}")
        context = doc.get("context") or {}
        if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
            raise MessageFormatError("cosign request field 'context': expected an object of strings, got "
                                     f"{context!r:.80}")
        return cls(chain, payload, tuple(_hex_bytes(m, f"messages[{i}]") for i, m in enumerate(messages)),
                   {str(k): v for k, v in context.items()})


def _hex_bytes(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise MessageFormatError(f"cosign request field {where!r}: expected hex, got {value!r:.80}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MessageFormatError(f"cosign request field {where!r}: not hex ({value!r:.80})") from None


class Cosigner(Protocol):
    """Gathers co-signatures from the validators (implemented by the relayer: HTTP to their endpoints)."""

    async def cosign(self, request: CosignRequest, threshold: int) -> list[tuple[str, bytes]]:
        """``threshold`` (signer id on the destination chain, signature) pairs, or ``AdapterError`` (reason
        ``no cosign quorum``) when fewer validators agreed."""
        ...


@dataclass(frozen=True, slots=True)
class SignedTerms:
    """What decides whether a co-signed transaction can still land, as the validator read it from the payload
    it rebuilt itself and from its own view of the chain, never from the request's ``context``.

    Cosmos: ``sequence`` is the vault's account sequence the sign bytes commit to and ``last_height`` the body's
    ``timeout_height`` (the chain refuses the tx in any block above it). Solana: ``anchor`` is the recent
    blockhash the message commits to and ``last_height`` the last block height at which it can be valid (an
    upper bound read from the chain when signing); ``sequence`` is None."""

    last_height: int
    sequence: int | None = None
    anchor: str = ""


@runtime_checkable
class CosignedDelivery(Protocol):
    """Optional capability of a destination delivered by validator co-signatures (adapters/<family>/)."""

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        """Validator side: decode ``request.payload`` and raise ``CosignRefused`` unless it does exactly what
        ``request.messages`` say (mint/unlock/transfer of each message's amount to its recipient, replay
        guard per message id) and nothing else; returns the ids it delivers."""
        ...

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        """Validator side: (this key's signer id on the chain, its signature over ``request.payload``)."""
        ...

    async def cosign_terms(self, request: CosignRequest) -> SignedTerms:
        """Validator side, after ``check_cosign``: the terms of the payload rebuilt from ``request``, checked
        against the chain now; ``CosignRefused`` (reason says which) when the transaction could not land now or
        its expiry is further ahead than this chain allows (a co-signature must stop counting soon)."""
        ...

    async def terms_can_land(self, terms: SignedTerms) -> bool:
        """Validator side: whether a transaction signed with ``terms`` may still be included, read from the chain
        (False only once it never can: its expiry height passed, or its sequence was used). Whether it *did*
        land is the caller's next question (``delivered``, asked after this answer)."""
        ...

    async def delivered(self, ids: Sequence[MessageId]) -> list[bool]: ...


@runtime_checkable
class CosignLiveness(Protocol):
    """Optional capability of a ``CosignedDelivery`` destination: can a delivery co-signed earlier still execute?

    The validator's accountant (``relayer/pipeline/accountant.py``) counts every co-signed delivery as a payout until
    the chain says it can no longer happen; without this capability it assumes so until its messages are delivered."""

    async def cosign_can_land(self, request: CosignRequest) -> bool:
        """False only when the chain guarantees that ``request`` (which passed ``check_cosign``) can never execute
        from now on, whatever anyone sends; decided from the chain's state and the signed payload, never from
        what the request's context claims alone (its ``expires_at`` is the requester's word)."""
        ...


class CosignRefused(AdapterError):
    """A validator will not co-sign this delivery (what it does differs from the messages, or a message was
    not attested, or it already co-signed another transaction for it)."""


class CosignRateLimited(CosignRefused):
    """A validator will not co-sign this delivery now: it pays out more than its payout limit has room for; it
    would fit in ``retry_after_s``."""

    def __init__(self, message: str, *, chain: str = "", retry_after_s: float) -> None:
        super().__init__(message, chain=chain, reason=PAYOUT_RATE_LIMITED)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class DispatchClaim:
    """What the indexer says it saw: ``raw`` message dispatched by tx ``tx_hash`` in block ``height``."""

    raw: bytes
    height: Height
    tx_hash: TxHash


class InclusionVerifier(Protocol):
    """The light-client check a validator runs before it signs (light_clients/<family>/inclusion.py)."""

    async def verify_dispatches(self, claims: Sequence[DispatchClaim], finalized: Height) -> None:
        """Return only if every claim is a successful dispatch in a verified block at or below ``finalized``;
        raise ``InclusionRefused`` (with the failed check as ``reason``) otherwise."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MailboxState:
    """The origin mailbox's Merkle tree at one height: ``root`` over the first ``count`` message ids."""

    mailbox: bytes  # 32 bytes, left-padded
    root: bytes
    count: int
    height: Height


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What validators sign: the origin mailbox's root when it held ``index + 1`` messages."""

    origin: Domain
    origin_mailbox: bytes  # bytes32
    root: bytes
    index: int


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signatures: tuple[tuple[str, bytes], ...]  # (validator address, 65-byte r|s|v), sorted by address


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    message: bytes
    id: MessageId
    leaf_index: int  # the message's nonce: its leaf in the origin mailbox's tree


@dataclass(frozen=True, slots=True)
class DeliveryBatch:
    """Messages from one origin, all proven under one signed checkpoint, for one destination transaction.

    ``items`` are in strictly increasing ``leaf_index`` order and ``proof`` is their Merkle multiproof
    against the checkpoint's root (``adapters.merkle.multiproof``): siblings shared by several messages
    are sent once, so a run of 200 consecutive messages needs a handful of hashes, not 200 x 32.
    """

    checkpoint: SignedCheckpoint
    items: tuple[DeliveryItem, ...]
    proof: tuple[bytes, ...]


class TxState(enum.Enum):
    PENDING = "pending"  # known to the node, not yet at the confirmation depth
    CONFIRMED = "confirmed"
    REVERTED = "reverted"
    DROPPED = "dropped"  # neither mined nor in the mempool


@dataclass(frozen=True, slots=True)
class SubmittedTx:
    tx_hash: TxHash
    nonce: int
    sender: str
    submitted_at: float
    gas_limit: int = 0
    max_fee: int = 0


@dataclass(frozen=True, slots=True)
class TxOutcome:
    state: TxState
    height: Height | None = None
    gas_used: int = 0
    fee_paid: int = 0  # smallest unit of the native token
    delivered_ids: tuple[MessageId, ...] = ()  # ids the destination reports processed by this tx
    reason: str = ""
    replacement: SubmittedTx | None = None  # set when confirm() bumped a stuck tx: track this one now


@dataclass(frozen=True, slots=True)
class CostEstimate:
    gas: int
    max_fee_per_gas: int
    priority_fee_per_gas: int
    exact: bool = True  # False: sized by a model (EVM's calibrated gas per byte), not by simulating this batch

    @property
    def max_cost(self) -> int:
        return self.gas * self.max_fee_per_gas


@dataclass(frozen=True, slots=True)
class ChainHealth:
    healthy: bool
    latest_height: Height | None
    finalized_height: Height | None
    latency_s: float
    detail: str = ""
    extra: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class ChainAdapter(Protocol):
    """What the relayer needs of one chain, as origin and as destination.

    Every method either returns chain-neutral data or raises an ``AdapterError``. Implementations keep no
    pipeline state: they may be wrapped (retrying, metering, quorum) without changing behaviour.
    """

    @property
    def name(self) -> str: ...

    @property
    def domain(self) -> Domain: ...

    async def latest_height(self) -> Height: ...

    async def finalized_height(self) -> Height:
        """Highest height final by this chain's configured rule (N confirmations or the ``finalized`` tag)."""
        ...

    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        """Messages dispatched by the mailbox in ``[from_height, to_height]``, in nonce order."""
        ...

    async def mailbox_state(self, height: Height) -> MailboxState:
        """Root and count of the origin mailbox's tree as of ``height``."""
        ...

    async def delivered(self, ids: Sequence[MessageId]) -> list[bool]:
        """Whether each id was already processed by this chain's mailbox (asked of the chain)."""
        ...

    async def estimate_delivery(self, batch: DeliveryBatch) -> CostEstimate:
        """Gas and fees to deliver ``batch``; raises ``TxReverted`` if the chain would refuse it."""
        ...

    async def submit_delivery(self, batch: DeliveryBatch, estimate: CostEstimate | None = None) -> SubmittedTx: ...

    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        """The state of a submitted transaction at this chain's confirmation depth; may bump a stuck one."""
        ...

    async def health(self) -> ChainHealth: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChainStats:
    """A chain's recent capacity and fee market, averaged over the last ``blocks`` blocks (router input)."""

    height: Height
    blocks: int
    block_time_s: float  # mean seconds per block over the window
    gas_limit: int  # per block (compute units on non-EVM chains)
    gas_used_ratio: float  # mean fraction of the limit used
    base_fee: int  # smallest native unit per gas, next block
    base_fee_trend: float  # next base fee / base fee at the start of the window
    pending_txs: int | None = None
    native_decimals: int = 18  # smallest native units per native token = 10 ** native_decimals
    # what our transactions pay here beyond base_fee x gas (smallest native units; the router's fee model):
    priority_fee: int = 0  # per gas, on top of the base fee (EVM: the tip we offer)
    tx_fee: int = 0  # per transaction we send (Cosmos: a plain send's declared fee; Solana: one signature)
    payout_gas: int | None = None  # gas (compute units) of a delivery paying out one transfer; None: router's estimate
    payout_fee: int | None = None  # per such delivery, instead of tx_fee (Cosmos: its declared fee, payout_gas x gas
    #                                price; Solana: its signatures, priority fee and the rent of the accounts it opens)

    @property
    def base_fee_native(self) -> float:
        """The base fee in native tokens per gas (chain-neutral, for fee arithmetic above the adapters)."""
        return self.base_fee / 10**self.native_decimals

    @property
    def gas_per_s(self) -> float:
        return self.gas_limit / self.block_time_s if self.block_time_s > 0 else 0.0


@runtime_checkable
class CapacitySource(Protocol):
    """Optional capability: live capacity and fees, for the router's capacity model."""

    async def chain_stats(self, blocks: int = 20) -> ChainStats: ...


@dataclass(frozen=True, slots=True)
class WalletBalance:
    """The native balance of the account that pays this chain's deliveries (the relayer's signer, a Solana fee
    payer, the Cosmos vault multisig)."""

    chain: str
    address: str
    amount: int  # smallest native unit (wei, lamports, u<denom>)
    decimals: int  # smallest units per native token = 10 ** decimals

    @property
    def native(self) -> float:
        """The balance in native tokens (ETH, SOL, ATOM ...)."""
        return self.amount / 10**self.decimals


@runtime_checkable
class WalletSource(Protocol):
    """Optional capability: the balance of the account that pays for deliveries, for the wallet metrics."""

    @property
    def native_decimals(self) -> int:
        """Smallest native units per native token = 10 ** native_decimals (fees in ``TxOutcome`` use them)."""
        ...

    async def wallet_balance(self) -> WalletBalance | None:
        """The paying account's balance, or None when this adapter has no account of its own (no signer)."""
        ...


@dataclass(frozen=True, slots=True)
class TxReceipt:
    """A mined transaction as the chain reports it, in chain-neutral terms (``MessageSender.tx_receipt``): what
    the router checks before it counts an intent (who sent it, what it called, whether it succeeded) and the fee
    it actually cost.

    ``to`` and ``input`` are the called (or paid) address and the call data where the chain has such a notion (EVM:
    ``to`` lower-case hex, ``input`` the calldata); a chain without one leaves them empty, and a check of them
    must then be skipped, not passed."""

    height: Height
    success: bool
    fee_paid: int            # smallest native units actually paid (EVM: gas used x effective gas price)
    sender: str              # the paying / signing account, in the chain's own address format (EVM: lower-case hex)
    to: str = ""
    input: bytes = b""
    value: int = 0           # native value sent along (EVM: wei)
    native_decimals: int = 18  # smallest native units per native token = 10 ** native_decimals
    message_id: bytes | None = None  # the token-bridge message it dispatched, if any (read by the intent lanes)

    @property
    def fee_native(self) -> float:
        """The fee in native tokens (ETH, SOL, ATOM ...)."""
        return self.fee_paid / 10**self.native_decimals


@runtime_checkable
class MessageDispatcher(Protocol):
    """Sender role: dispatch messages from this chain and list the ones it processed (CLI ``send``, benchmarks)."""

    async def dispatch_messages(
        self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes]
    ) -> tuple[TxHash, list[MessageId]]:
        """Dispatch ``bodies`` to ``recipient`` on ``destination`` in one transaction, signed by ``sender_key``."""
        ...

    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        """Ids this chain's mailbox processed in ``[from_height, to_height]``, one entry per Process event."""
        ...


@runtime_checkable
class TokenSender(Protocol):
    """Sender role: bridge and transfer configured tokens, read balances and supplies (router, CLI, accountant)."""

    async def send_token(
        self, sender_key: str, symbol: str, amount: int, destination: Domain, recipient: bytes
    ) -> tuple[TxHash, MessageId]:
        """Bridge ``amount`` (smallest units) of ``symbol`` (approving first if needed); waits for inclusion."""
        ...

    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        """ERC-20-style ``transfer`` of ``amount`` (smallest units) of ``symbol`` to ``to`` on this chain, signed by
        ``sender_key``; returns once the node accepted it (no waiting for inclusion)."""
        ...

    async def token_balance(self, symbol: str, holder: str) -> int: ...

    async def token_supply(self, symbol: str) -> int: ...


@runtime_checkable
class TxLookup(Protocol):
    """Sender role: what became of a transaction (the router's receipts, tests)."""

    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        """(height, succeeded) of a mined transaction; ``TxNotFound`` while it is not mined."""
        ...

    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        """The mined transaction's receipt (height, success, fee paid, sender, and where the chain has them the
        called address and call data); ``TxNotFound`` while it is not mined (or unknown)."""
        ...


@runtime_checkable
class MessageSender(MessageDispatcher, TokenSender, TxLookup, Protocol):
    """The sender roles every chain family has: dispatch messages, move tokens, look transactions up (CLI
    ``send``, benchmarks, the router's operators). What only some chains do is a capability of its own
    (``adapters.capabilities``: ``UnsignedTransactions``, ``ContractCalls``)."""


@dataclass(frozen=True, slots=True)
class NativeCoin:
    """The coin a chain's fees are paid in, and how an amount of it is written: in whole coins to ``decimals`` places
    ("0.000005 SOL"), or, where the chain's own notation counts smallest units (``denom_notation``: Cosmos, whose
    ``symbol`` is then the fee denom), as that integer with the denom right after it ("300ustake")."""

    symbol: str
    decimals: int  # smallest units per coin = 10 ** decimals
    denom_notation: bool = False


@dataclass(frozen=True, slots=True)
class SendPlan:
    """A send from this chain, described before it is made (``SendCosts.send_fee_need``): ``sender`` dispatches
    ``bodies`` to ``recipient`` (32 bytes) on ``destination``, each paying ``payment`` (smallest native units) to the
    relayer's fee account in its dispatch transaction (``FeeAccountPayments.dispatch_paying``); or, with ``symbol``,
    sends ``amount`` (smallest units) of that token to ``recipient``: into its liquidity pool when ``pooled``
    (``LiquidityPools.pool_deposit``), else over the token bridge (``TokenSender.send_token``)."""

    sender: str
    destination: Domain
    recipient: bytes
    bodies: tuple[bytes, ...] = ()
    payment: int = 0
    symbol: str = ""
    amount: int = 0
    pooled: bool = False


@dataclass(frozen=True, slots=True)
class FeeNeed:
    """What a send needs its sender to hold of the chain's coin (``units``, smallest units): every transaction's fee
    at the most the chain may charge for it, plus what the send itself moves of the coin (a payment to the fee
    account; on Cosmos the unit a dispatch pays the vault, or the amount of a token that is the fee denom).
    ``approval``: the send approves its spender in a transaction of its own first (EVM: the sender's allowance is
    short of the amount)."""

    units: int
    approval: bool = False


@runtime_checkable
class SendCosts(Protocol):
    """Sender role: what a send costs its sender in the chain's own coin, read from the chain before anything is sent
    (CLI ``send`` refuses a sender that cannot pay, in words: what it has, what the send needs, how to fund it).
    The reads go through the adapter's endpoints and fail with its typed errors, like every other read."""

    @property
    def native_coin(self) -> NativeCoin: ...

    async def native_balance(self, address: str) -> int:
        """What ``address`` holds of the native coin, in smallest units (wei at latest, lamports at confirmed, the
        Cosmos fee denom)."""
        ...

    async def send_fee_need(self, plan: SendPlan) -> FeeNeed:
        """What ``plan`` needs ``plan.sender`` to hold of the native coin, estimated as the adapter would send it
        (EVM: each transaction's gas estimate with the configured multiplier, at the max fee per gas it would offer;
        a transaction that cannot be estimated before the approval it waits for is counted at a typical gas, not
        refused); ``AdapterError`` when the chain cannot be read, ``UnknownToken`` for a symbol not configured."""
        ...

    async def transactions_sent(self, address: str) -> int | None:
        """How many transactions ``address`` has sent here, those the node holds unmined included (EVM: its pending
        nonce), where one send may be several (an approval, then the transfer): read before and after a send that
        failed, it tells what went out before the failure. None where every send is one transaction (Solana,
        Cosmos): nothing goes out before the one that failed."""
        ...


@runtime_checkable
class UnsignedTransactions(Protocol):
    """Optional capability: build a transaction for a wallet to sign itself (the router's signer mode)."""

    async def unsigned_transaction(self, sender: str, kind: str, *, to: str, amount: int = 0, symbol: str = "",
                                   data: bytes = b"") -> dict[str, Any]:
        """A transaction for ``sender`` to sign itself (JSON-able, in this chain's own shape; the wallet adds
        the nonce): ``kind`` "transfer" (``amount`` of ``symbol`` to ``to``) or "call" (``data`` to ``to``).
        Raises ``TxReverted`` when the chain would refuse it."""
        ...


@runtime_checkable
class ContractCalls(Protocol):
    """Optional capability: call a contract (chains with contracts of the router's dApps: EVM)."""

    async def call_contract(self, sender_key: str, to: str, data: bytes) -> TxHash:
        """Send a contract call (no value); the hash once the node accepted it. A call the chain would revert
        is refused before sending (``TxReverted``)."""
        ...
