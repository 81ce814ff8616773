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

Every public method raises only ``AdapterError`` (``adapters.solana.errors`` maps solana-py / httpx errors).
Keys handed in (``sender_key``, co-signing keys) are used and dropped, never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, ParamSpec, TypeVar

import structlog
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed, Finalized, Processed
from solana.rpc.models import TxOpts
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message as SolanaMessage
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams as SystemTransferParams
from solders.system_program import transfer as system_transfer
from solders.transaction import Transaction, VersionedTransaction
from solders.transaction_status import TransactionDetails
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    burn,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    transfer,
    transfer_checked,
)
from spl.token.models import BurnParams, TransferCheckedParams, TransferParams

from adapters.base import (
    AdapterError,
    CapacitySource,
    ChainAdapter,
    ChainHealth,
    ChainStats,
    CosignedDelivery,
    Cosigner,
    CosignLiveness,
    CosignRefused,
    CosignRequest,
    CostEstimate,
    DeliveryBatch,
    DispatchedMessage,
    Height,
    MailboxState,
    MessageSender,
    RpcError,
    SignedTerms,
    SubmittedTx,
    TxHash,
    TxNotFound,
    TxOutcome,
    TxReceipt,
    TxReverted,
    TxState,
    WalletBalance,
    WalletSource,
)
from adapters.boundary import bytes32, error_boundary
from adapters.capabilities import BatchLimit, Bytes32Accounts, VaultHoldings
from adapters.cosigned import CosignedSteps, deliver_cosigned
from adapters.keys import resolve_private_key
from adapters.merkle import MerkleTree
from adapters.message import Domain, MessageId
from adapters.solana.bridge import (
    GUARD_SPACE,
    MAX_TX_SIZE,
    MEMO_PROGRAMS,
    BridgeRules,
    NotADispatch,
    TokenRule,
    Undeliverable,
    guard_address,
    is_guard,
    token_rules,
    transaction_size,
)
from adapters.solana.errors import BLOCKHASH_EXPIRED, map_exception
from adapters.solana.memo import TokenBody, decode_delivery_memo, encode_dispatch_memo
from adapters.tokens import UnknownToken
from config.errors import ConfigError
from config.settings import SolanaChainConfig

log = structlog.get_logger("adapters.solana")

T = TypeVar("T")
P = ParamSpec("P")

LAMPORTS_PER_SIGNATURE = 5000
BLOCK_COMPUTE_LIMIT = 48_000_000
DELIVERY_COMPUTE_PER_MESSAGE = 60_000  # ATA create-idempotent + MintTo/Transfer + the guards, generously
DEFAULT_SLOT_TIME_S = 0.4
SIGNATURES_PAGE = 1000
MULTISIG_ACCOUNT_LEN = 355
COSIGN_TTL_S = 60.0
MAX_GUARD_LAMPORTS = 10_000_000  # a co-signer accepts at most this rent per guard (paid by the relayer)
MAX_QUORUM_TRIES = 4
TX_WAIT_S = 60.0
RPC_CONCURRENCY = 8


_boundary = error_boundary(lambda exc, chain, context: map_exception(exc, chain=chain, context=context))
_bytes32 = bytes32


def keypair_from_hex(key: str) -> Keypair:
    """A keypair from a 32-byte ed25519 seed (or a 64-byte secret key) in hex, or a base58 64-byte keypair (the
    form wallets and the devnet manifest use)."""
    text = key.strip()
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        try:
            return Keypair.from_base58_string(text)
        except Exception as exc:  # solders raises its own error types for bad base58
            raise ValueError("not a hex seed nor a base58 keypair") from exc
    if len(raw) == 32:
        return Keypair.from_seed(raw)
    if len(raw) == 64:
        return Keypair.from_bytes(raw)
    raise ValueError(f"a Solana key is a 32-byte seed or a 64-byte secret key, got {len(raw)} bytes")


def _status_level(status: Any) -> str:
    return str(getattr(status, "confirmation_status", "") or "").lower().rsplit(".", 1)[-1]


class SolanaAdapter(ChainAdapter, MessageSender, WalletSource, CapacitySource, BatchLimit, Bytes32Accounts,
                    CosignedDelivery, CosignLiveness, VaultHoldings, CosignedSteps[list[Pubkey]]):
    """One Solana cluster: origin (memo dispatches referencing the bridge) and destination (co-signed payouts).

    ``cosigner`` gathers the validators' signatures for deliveries (``None``: this adapter only watches, or a
    validator uses it for ``check_cosign``/``cosign_with``). ``confirm_at``: the commitment at which a delivery
    counts as confirmed. ``clock``: unix time (the ``expires_at`` a relayer puts in its co-sign requests).
    """

    max_delivery_batch: int = 1
    """Messages per delivery transaction: with a 2-of-N quorum one message takes 1,033 bytes (1,077 with a
    priority fee) of the 1,232-byte limit; two would take 1,530."""

    def __init__(
        self,
        name: str,
        config: SolanaChainConfig,
        *,
        cosigner: Cosigner | None = None,
        confirm_at: Literal["confirmed", "finalized"] = "finalized",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._config = config
        self._domain = Domain(config.domain)
        self._cosigner = cosigner
        self._confirm_at = confirm_at
        self._clock = clock
        try:
            self._bridge = Pubkey.from_string(config.bridge)
        except ValueError as exc:
            raise ConfigError(f"chains.{name}.bridge", f"not a base58 public key: {exc}") from exc
        try:
            self._multisig = Pubkey.from_string(config.multisig)
        except ValueError as exc:
            raise ConfigError(f"chains.{name}.multisig", f"not a base58 public key: {exc}") from exc
        try:
            remote = {int(d): _bytes32(b) for d, b in config.remote_bridges.items()}
        except ValueError as exc:
            raise ConfigError(f"chains.{name}.remote_bridges", f"not 0x-hex bytes32: {exc}") from exc
        try:
            tokens = token_rules(config.domain, self._multisig, config.tokens)
        except ValueError as exc:
            raise ConfigError(f"chains.{name}.tokens", str(exc)) from exc
        self._rules = BridgeRules(config.domain, self._bridge, self._multisig, tokens, remote)
        self._payer: Keypair | None = None
        if config.signer is not None:
            key = resolve_private_key(config.signer, where=f"chains.{name}.signer")
            try:
                self._payer = keypair_from_hex(key)
            except ValueError as exc:
                raise ConfigError(f"chains.{name}.signer", str(exc)) from exc
        self._client = AsyncClient(config.rpc_url, timeout=config.request_timeout_s)
        self._verifiers = [AsyncClient(url, timeout=config.request_timeout_s) for url in config.verify_rpc_urls]
        self._dispatches: list[DispatchedMessage] = []
        self._tree = MerkleTree()
        self._scanned = config.start_height - 1  # valid dispatches are known through this slot
        self._last_signature: Signature | None = None  # newest signature at or below ``_scanned``
        self._scan_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._members: list[Pubkey] | None = None
        self._guard_lamports: int | None = None
        self._quorum_start = 0
        self._limit = asyncio.Semaphore(RPC_CONCURRENCY)

    @staticmethod
    def account_bytes32(address: str) -> bytes:
        """A base58 account (a wallet, not its token account) as the bytes32 a token body carries."""
        try:
            return bytes(Pubkey.from_string(address))
        except ValueError as exc:
            raise RpcError(f"{address!r} is not a base58 Solana address", reason="bad address") from exc

    def __repr__(self) -> str:
        return f"SolanaAdapter(name={self._name!r}, domain={self._domain}, rpc_url={self._config.rpc_url!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def domain(self) -> Domain:
        return self._domain

    @property
    def rules(self) -> BridgeRules:
        return self._rules

    @property
    def fee_payer(self) -> Pubkey | None:
        return self._payer.pubkey() if self._payer is not None else None

    # ---- heights
    @_boundary
    async def latest_height(self) -> Height:
        return Height((await self._client.get_slot(Processed)).value)

    @_boundary
    async def finalized_height(self) -> Height:
        return Height((await self._client.get_slot(Finalized)).value)

    # ---- origin
    async def _signatures(self, client: AsyncClient, until: Signature | None) -> list[Any]:
        """Finalized signatures referencing the bridge, newest first, strictly newer than ``until``."""
        found: list[Any] = []
        before: Signature | None = None
        while True:
            page = (await client.get_signatures_for_address(self._bridge, before=before, until=until,
                                                            limit=SIGNATURES_PAGE, commitment=Finalized)).value
            found.extend(page)
            if len(page) < SIGNATURES_PAGE:
                return found
            before = page[-1].signature

    async def _block_order(self, slot: int) -> dict[str, int]:
        """Position of each transaction in the finalized block ``slot`` (every endpoint must agree)."""
        orders = []
        for client in (self._client, *self._verifiers):
            block = (await client.get_block(slot, transaction_details=TransactionDetails.Signatures, rewards=False,
                                            commitment=Finalized, max_supported_transaction_version=0)).value
            orders.append([str(sig) for sig in block.signatures or []])
        if any(order != orders[0] for order in orders[1:]):
            raise self._disagree(f"order of transactions in slot {slot}")
        return {sig: i for i, sig in enumerate(orders[0])}

    async def _transaction(self, client: AsyncClient, signature: Signature, commitment: Commitment = Finalized
                           ) -> tuple[int, float, VersionedTransaction, bool] | None:
        """(slot, block time, transaction, succeeded) of a transaction at ``commitment``, ``None`` if unknown."""
        async with self._limit:
            answer = (await client.get_transaction(signature, encoding="base64", commitment=commitment,
                                                   max_supported_transaction_version=0)).value
        if answer is None:
            return None
        tx = answer.transaction.transaction
        if not isinstance(tx, VersionedTransaction):
            raise RpcError(f"transaction {signature} did not come back in base64", chain=self._name,
                           reason="bad answer")
        meta = answer.transaction.meta
        ok = meta is not None and meta.err is None
        return answer.slot, float(answer.block_time or 0), tx, ok

    def _disagree(self, what: str) -> RpcError:
        log.warning("endpoints_disagree", chain=self._name, what=what)
        return RpcError(f"verify endpoints disagree: {what}", chain=self._name, reason="endpoints disagree")

    async def _scan(self, to_height: int) -> None:
        async with self._scan_lock:
            if to_height <= self._scanned:
                return
            finalized = [(await client.get_slot(Finalized)).value for client in (self._client, *self._verifiers)]
            top = min(to_height, *finalized)  # what every endpoint has finalized
            if top <= self._scanned:
                return
            listed = await self._signatures(self._client, self._last_signature)
            fresh = [s for s in listed if self._scanned < s.slot <= top]
            for verifier in self._verifiers:
                theirs = [s for s in await self._signatures(verifier, self._last_signature)
                          if self._scanned < s.slot <= top]
                if sorted((str(s.signature), s.slot, s.err is None) for s in theirs) != \
                        sorted((str(s.signature), s.slot, s.err is None) for s in fresh):
                    raise self._disagree(f"signatures for slots {self._scanned + 1}..{top}")
            by_slot: dict[int, list[Any]] = {}
            for entry in fresh:
                by_slot.setdefault(entry.slot, []).append(entry)
            ordered: list[Any] = []
            for slot in sorted(by_slot):
                entries = by_slot[slot]
                if len(entries) > 1:
                    order = await self._block_order(slot)
                    entries.sort(key=lambda e: order.get(str(e.signature), len(order)))
                ordered.extend(entries)
            candidates = [e for e in ordered if e.err is None]
            fetched = await asyncio.gather(*(self._transaction(self._client, e.signature) for e in candidates))
            for verifier in self._verifiers:
                theirs = await asyncio.gather(*(self._transaction(verifier, e.signature) for e in candidates))
                for entry, mine, other in zip(candidates, fetched, theirs, strict=True):
                    if mine is None or other is None or (mine[0], bytes(mine[2]), mine[3]) != \
                            (other[0], bytes(other[2]), other[3]):
                        raise self._disagree(f"transaction {entry.signature}")
            found: list[DispatchedMessage] = []
            for entry, got in zip(candidates, fetched, strict=True):
                if got is None:
                    raise RpcError(f"finalized transaction {entry.signature} not returned", chain=self._name,
                                   reason="bad answer")
                slot, block_time, tx, ok = got
                if not ok:
                    continue
                try:
                    parsed = self._rules.parse_dispatch(tx)
                except NotADispatch as exc:
                    if "no dispatch memo" not in str(exc) and "does not reference" not in str(exc):
                        log.info("dispatch_ignored", chain=self._name, tx=str(entry.signature), reason=str(exc))
                    continue
                for position, item in enumerate(parsed):
                    message = self._rules.canonical(item, len(self._dispatches) + len(found))
                    raw = message.encode()
                    found.append(DispatchedMessage(message, raw, message.id, Height(slot),
                                                   TxHash(str(entry.signature)), position, block_time))
            for dispatched in found:
                self._dispatches.append(dispatched)
                self._tree.append(dispatched.id)
            newest = [e for e in listed if e.slot <= top]
            if newest:
                self._last_signature = newest[0].signature
            self._scanned = top
            if found:
                log.info("dispatches_indexed", chain=self._name, count=len(found), through_slot=top,
                         total=len(self._dispatches))

    @_boundary
    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        await self._scan(int(to_height))
        return [d for d in self._dispatches if from_height <= d.height <= to_height]

    @_boundary
    async def mailbox_state(self, height: Height) -> MailboxState:
        await self._scan(int(height))
        if height > self._scanned:
            raise RpcError(f"slot {height} is not finalized yet (finalized through {self._scanned})",
                           chain=self._name, reason="not finalized")
        count = sum(1 for d in self._dispatches if d.height <= height)
        return MailboxState(bytes(self._bridge), self._tree.root(count), count, height)

    # ---- destination: the multisig and the guards
    @_boundary
    async def multisig_members(self) -> list[Pubkey]:
        """The multisig's members, read from the chain once; refuses a threshold that is not a majority."""
        if self._members is None:
            account = (await self._client.get_account_info(self._multisig, commitment=Confirmed)).value
            if account is None or account.owner != TOKEN_PROGRAM_ID or len(account.data) != MULTISIG_ACCOUNT_LEN:
                raise ConfigError(f"chains.{self._name}.multisig", f"{self._multisig} is not an SPL Token multisig")
            data = bytes(account.data)
            m, n = data[0], data[1]
            members = [Pubkey(data[3 + 32 * i: 35 + 32 * i]) for i in range(n)]
            if m != self._config.multisig_threshold:
                raise ConfigError(f"chains.{self._name}.multisig_threshold",
                                  f"is {self._config.multisig_threshold}, the multisig on chain requires {m}")
            if 2 * m <= n:
                raise ConfigError(f"chains.{self._name}.multisig_threshold",
                                  f"{m} of {n} is not a majority: two disjoint quorums could deliver a message twice")
            self._members = members
        return self._members

    async def _rent_for_guard(self) -> int:
        """Lamports each guard is sent: the rent-exempt minimum for ``GUARD_SPACE`` bytes (asked once)."""
        if self._guard_lamports is None:
            self._guard_lamports = (await self._client.get_minimum_balance_for_rent_exemption(GUARD_SPACE)).value
        return self._guard_lamports

    async def _guards_taken(self, ids: Sequence[MessageId]) -> list[list[Pubkey]]:
        """For each id, the members whose guard for it exists (``is_guard``: owner and size; an address that
        only holds lamports, sent by anyone, is no guard)."""
        members = await self.multisig_members()
        keys = [guard_address(member, i) for i in ids for member in members]
        taken: list[bool] = []
        for start in range(0, len(keys), 100):
            accounts = (await self._client.get_multiple_accounts(keys[start:start + 100], commitment=Confirmed)).value
            taken.extend(a is not None and is_guard(a.owner, bytes(a.data)) for a in accounts)
        n = len(members)
        return [[m for m, t in zip(members, taken[k * n:(k + 1) * n], strict=True) if t] for k in range(len(ids))]

    @_boundary
    async def delivered(self, ids: Sequence[MessageId]) -> list[bool]:
        """Delivered = at least ``multisig_threshold`` of the id's guards exist.

        A delivery makes the guards of its whole quorum in the transaction that pays out, so it leaves at
        least ``threshold`` of them; honest validators sign guards only inside such a transaction. Fewer than
        ``threshold`` (but some) can only be made by validators signing a guard alone: at most
        ``n - threshold < threshold`` of them may be dishonest, so that never counts as delivered (it is
        logged as ``solana_guards_partial``; ``submit_delivery`` then picks a quorum around those members)."""
        threshold = self._config.multisig_threshold
        answers: list[bool] = []
        for message_id, taken in zip(ids, await self._guards_taken(ids), strict=True):
            if 0 < len(taken) < threshold:
                log.warning("solana_guards_partial", chain=self._name, id="0x" + bytes(message_id).hex(),
                            guards=[str(m) for m in taken], threshold=threshold)
            answers.append(len(taken) >= threshold)
        return answers

    def _undeliverable(self, exc: Undeliverable, refuse: type[AdapterError]) -> AdapterError:
        return refuse(str(exc), chain=self._name, reason=exc.reason)

    def _require_payer(self) -> Keypair:
        if self._payer is None:
            raise TxReverted("no signer configured: the relayer pays Solana deliveries", chain=self._name,
                             reason="no signer")
        return self._payer

    def _fee(self, signatures: int) -> int:
        compute = DELIVERY_COMPUTE_PER_MESSAGE * self.max_delivery_batch
        return LAMPORTS_PER_SIGNATURE * signatures + -(-self._config.priority_fee_micro_lamports * compute // 10**6)

    @_boundary
    async def estimate_delivery(self, batch: DeliveryBatch) -> CostEstimate:
        raws = [item.message for item in batch.items]
        payer = self._require_payer().pubkey()
        members = await self.multisig_members()
        signers = members[:self._config.multisig_threshold]
        try:
            self._rules.delivery_message(raws, fee_payer=payer, signers=signers, blockhash=Hash.default(),
                                         guard_lamports=await self._rent_for_guard(),
                                         priority_micro_lamports=self._config.priority_fee_micro_lamports)
        except Undeliverable as exc:
            raise self._undeliverable(exc, TxReverted) from exc
        signatures = 1 + len(signers)
        fee = self._fee(signatures)
        return CostEstimate(gas=signatures, max_fee_per_gas=-(-fee // signatures), priority_fee_per_gas=0)

    @_boundary
    async def cosign_request(self, messages: Sequence[bytes], signers: Sequence[Pubkey] | None = None
                             ) -> CosignRequest:
        """The request a quorum (``signers``; default: the first ``threshold`` members) co-signs to deliver
        ``messages``, on a fresh blockhash."""
        payer = self._require_payer().pubkey()
        members = await self.multisig_members()
        chosen = list(signers) if signers is not None else members[:self._config.multisig_threshold]
        answer = (await self._client.get_latest_blockhash(Confirmed)).value
        lamports = await self._rent_for_guard()
        try:
            message, _ = self._rules.delivery_message(
                messages, fee_payer=payer, signers=chosen, blockhash=answer.blockhash, guard_lamports=lamports,
                priority_micro_lamports=self._config.priority_fee_micro_lamports)
        except Undeliverable as exc:
            raise self._undeliverable(exc, TxReverted) from exc
        context = {
            "blockhash": str(answer.blockhash),
            "last_valid_block_height": str(answer.last_valid_block_height),
            "expires_at": str(int(self._clock() + COSIGN_TTL_S)),
            "fee_payer": str(payer),
            "signers": ",".join(str(s) for s in chosen),
            "guard_lamports": str(lamports),
            "priority_fee_micro_lamports": str(self._config.priority_fee_micro_lamports),
        }
        return CosignRequest(self._name, bytes(message), tuple(bytes(m) for m in messages), context)

    def _quorums(self, members: Sequence[Pubkey], taken: Collection[Pubkey] = ()) -> list[tuple[int, list[Pubkey]]]:
        """Up to ``MAX_QUORUM_TRIES`` (position, quorum) to ask, from the last one that worked on; quorums with
        a member whose guard for a message of the batch already exists (the chain would refuse them) last."""
        combos = [list(c) for c in itertools.combinations(members, self._config.multisig_threshold)]
        start = self._quorum_start % len(combos)
        rotated = [((start + i) % len(combos), combos[(start + i) % len(combos)]) for i in range(len(combos))]
        rotated.sort(key=lambda item: any(m in taken for m in item[1]))  # stable: rotation order otherwise
        return rotated[:MAX_QUORUM_TRIES]

    @_boundary
    async def submit_delivery(self, batch: DeliveryBatch, estimate: CostEstimate | None = None) -> SubmittedTx:
        if self._cosigner is None:
            raise TxReverted("no cosigner configured: solana deliveries need the validators' signatures",
                             chain=self._name, reason="no cosigner")
        return await deliver_cosigned(self, self._cosigner, batch)

    # ---- the steps of the shared co-signed delivery flow (adapters.cosigned)
    @property
    def cosign_threshold(self) -> int:
        return self._config.multisig_threshold

    def delivery_lock(self) -> AbstractAsyncContextManager[object]:
        return contextlib.nullcontext()  # each delivery has its own blockhash and guards: they may overlap

    async def quorums(self, batch: DeliveryBatch) -> list[tuple[int, list[Pubkey]]]:
        members = await self.multisig_members()
        taken = {m for guards in await self._guards_taken([item.id for item in batch.items]) for m in guards}
        return self._quorums(members, taken)

    async def request_for(self, messages: Sequence[bytes], quorum: list[Pubkey]) -> CosignRequest:
        return await self.cosign_request(messages, quorum)

    def quorum_worked(self, position: int) -> None:
        self._quorum_start = position

    def _request_signers(self, request: CosignRequest, refuse: type[AdapterError]) -> list[Pubkey]:
        try:
            return [Pubkey.from_string(s) for s in request.context["signers"].split(",") if s]
        except (KeyError, ValueError) as exc:
            raise refuse(f"context signers: {exc}", chain=self._name, reason="bad context") from exc

    def _rebuild(self, request: CosignRequest, refuse: type[AdapterError]) -> tuple[SolanaMessage, list[MessageId]]:
        """The delivery message this request must be, from its messages and context alone: the guards' owner,
        size and seeds come from the rules (``bridge.guard_instructions``), never from the request; the only
        number taken from it, the rent sent to each guard, is bounded by ``MAX_GUARD_LAMPORTS``."""
        if request.chain != self._name:
            raise refuse(f"request is for chain {request.chain!r}", chain=self._name, reason="wrong chain")
        signers = self._request_signers(request, refuse)
        ctx = request.context
        try:
            blockhash = Hash.from_string(ctx["blockhash"])
            payer = Pubkey.from_string(ctx["fee_payer"])
            lamports = int(ctx["guard_lamports"])
            priority = int(ctx.get("priority_fee_micro_lamports", "0"))
        except (KeyError, ValueError) as exc:
            raise refuse(f"context: {exc!r}", chain=self._name, reason="bad context") from exc
        if len(signers) < self._config.multisig_threshold:
            raise refuse(f"{len(signers)} co-signers, the multisig needs {self._config.multisig_threshold}",
                         chain=self._name, reason="too few signers")
        if not 0 < lamports <= MAX_GUARD_LAMPORTS or priority != self._config.priority_fee_micro_lamports:
            raise refuse("guard rent or priority fee out of bounds", chain=self._name, reason="bad fee")
        try:
            return self._rules.delivery_message(list(request.messages), fee_payer=payer, signers=signers,
                                                blockhash=blockhash, guard_lamports=lamports,
                                                priority_micro_lamports=priority)
        except Undeliverable as exc:
            raise self._undeliverable(exc, refuse) from exc

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        """The payload must be the delivery rebuilt from the messages (its freshness is ``cosign_terms``'s
        question, asked of the chain; the context's ``expires_at`` is the relayer's own bookkeeping)."""
        message, ids = self._rebuild(request, CosignRefused)
        if bytes(message) != request.payload:
            raise CosignRefused("payload is not the delivery of these messages", chain=self._name,
                                reason="payload mismatch")
        return ids

    @_boundary
    async def cosign_terms(self, request: CosignRequest) -> SignedTerms:
        """Validator side: the rebuilt message's recent blockhash, which the chain must still accept now
        (``getFeeForMessage`` answers null for an expired or unknown one), and an upper bound of the last block
        height it is valid at: that of the newest blockhash now (the request's is no newer), never the request's
        ``last_valid_block_height``."""
        message, _ids = self._rebuild(request, CosignRefused)
        if bytes(message) != request.payload:
            raise CosignRefused("payload is not the delivery of these messages", chain=self._name,
                                reason="payload mismatch")
        newest = (await self._client.get_latest_blockhash(Processed)).value
        if (await self._client.get_fee_for_message(message, Processed)).value is None:  # type: ignore[arg-type]
            raise CosignRefused(f"blockhash {message.recent_blockhash} is expired or unknown to the chain",
                                chain=self._name, reason="expired")
        return SignedTerms(last_height=int(newest.last_valid_block_height), anchor=str(message.recent_blockhash))

    @_boundary
    async def terms_can_land(self, terms: SignedTerms) -> bool:
        """False once the *finalized* block height passed the blockhash's last valid height: no block from then
        on can include it, and one that did is finalized, so ``delivered`` (asked next) sees it."""
        return int((await self._client.get_block_height(Finalized)).value) <= terms.last_height

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        self.check_cosign(request)
        try:
            keypair = keypair_from_hex(key)
        except ValueError as exc:
            raise CosignRefused("co-signing key is not a hex ed25519 seed", chain=self._name,
                                reason="bad key") from exc
        if keypair.pubkey() not in self._request_signers(request, CosignRefused):
            raise CosignRefused(f"{keypair.pubkey()} is not among the request's signers", chain=self._name,
                                reason="not a signer")
        return str(keypair.pubkey()), bytes(keypair.sign_message(request.payload))

    @_boundary
    async def cosign_can_land(self, request: CosignRequest) -> bool:
        """``CosignLiveness``: a delivery can never land once its blockhash (in the signed message) is no longer
        valid (``getFeeForMessage`` answers null), nor once one of its messages is delivered (the replay guards
        make any second delivery of a message fail atomically). A request that does not rebuild: True."""
        try:
            message, ids = self._rebuild(request, CosignRefused)
        except CosignRefused:
            return True
        if bytes(message) != request.payload:
            return True
        if any(await self.delivered(ids)):
            return False
        fee = await self._client.get_fee_for_message(message, commitment=Processed)  # type: ignore[arg-type]
        return fee.value is not None

    @_boundary
    async def submit_cosigned(self, request: CosignRequest, signatures: Sequence[tuple[str, bytes]]
                              ) -> SubmittedTx:
        """Assemble the delivery from the fee payer's and the co-signers' signatures (checked) and send it."""
        payer = self._require_payer()
        message, ids = self._rebuild(request, TxReverted)
        if bytes(message) != request.payload:
            raise TxReverted("payload is not the delivery of these messages", chain=self._name,
                             reason="payload mismatch")
        valid: dict[Pubkey, Signature] = {payer.pubkey(): payer.sign_message(request.payload)}
        for signer_id, raw in signatures:
            try:
                key, signature = Pubkey.from_string(signer_id), Signature.from_bytes(bytes(raw))
            except ValueError:
                continue
            if signature.verify(key, request.payload):
                valid[key] = signature
        required = list(message.account_keys[:message.header.num_required_signatures])
        missing = [str(k) for k in required if k not in valid]
        if missing:
            raise AdapterError(f"no valid co-signature from {', '.join(missing)}", chain=self._name,
                               reason="no valid co-signature")
        tx = Transaction.populate(message, [valid[k] for k in required])
        try:
            await self._client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_confirmation=True,
                                                                            preflight_commitment=Confirmed))
        except Exception as exc:
            mapped = map_exception(exc, chain=self._name, context="send delivery")
            log.warning("delivery_refused", chain=self._name, ids=[i.hex() for i in ids], reason=mapped.reason)
            raise mapped from exc
        signature = tx.signatures[0]
        log.info("delivery_submitted", chain=self._name, tx=str(signature), ids=[i.hex() for i in ids],
                 signers=len(required) - 1)
        return SubmittedTx(TxHash(str(signature)), int(request.context.get("last_valid_block_height", "0")),
                           str(payer.pubkey()), self._clock(), gas_limit=len(required),
                           max_fee=self._fee(len(required)))

    async def _delivered_ids(self, signature: Signature) -> tuple[MessageId, ...]:
        got = await self._transaction(self._client, signature, Confirmed)
        if got is None:
            return ()
        message = got[2].message
        keys = list(message.account_keys)
        ids: list[MessageId] = []
        for ix in message.instructions:
            if keys[ix.program_id_index] in MEMO_PROGRAMS:
                try:
                    ids.extend(decode_delivery_memo(bytes(ix.data).decode("utf-8")))
                except (UnicodeDecodeError, ValueError):
                    continue
        return tuple(ids)

    @_boundary
    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        signature = Signature.from_string(tx.tx_hash)
        status = (await self._client.get_signature_statuses([signature], search_transaction_history=True)).value[0]
        if status is None:
            height = (await self._client.get_block_height(Processed)).value
            if tx.nonce and height > tx.nonce:
                return TxOutcome(TxState.DROPPED, reason=BLOCKHASH_EXPIRED)
            return TxOutcome(TxState.PENDING)
        if status.err is not None:
            return TxOutcome(TxState.REVERTED, Height(status.slot), fee_paid=tx.max_fee, reason=repr(status.err))
        if _status_level(status) not in ("finalized", self._confirm_at):
            return TxOutcome(TxState.PENDING, Height(status.slot))
        return TxOutcome(TxState.CONFIRMED, Height(status.slot), gas_used=tx.gas_limit, fee_paid=tx.max_fee,
                         delivered_ids=await self._delivered_ids(signature))

    @_boundary
    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        """Ids delivered here in ``[from_height, to_height]`` (confirmed), from the delivery memos."""
        found: list[tuple[MessageId, Height]] = []
        before: Signature | None = None
        while True:
            page = (await self._client.get_signatures_for_address(self._multisig, before=before,
                                                                  limit=SIGNATURES_PAGE, commitment=Confirmed)).value
            for entry in page:
                if entry.err is None and from_height <= entry.slot <= to_height:
                    found.extend((i, Height(entry.slot)) for i in await self._delivered_ids(entry.signature))
            if len(page) < SIGNATURES_PAGE or (page and page[-1].slot < from_height):
                break
            before = page[-1].signature
        return sorted(found, key=lambda item: item[1])

    # ---- health and capacity
    @_boundary
    async def health(self) -> ChainHealth:
        started = time.monotonic()
        try:
            latest = await self.latest_height()
            finalized = await self.finalized_height()
        except AdapterError as exc:
            return ChainHealth(False, None, None, time.monotonic() - started, detail=str(exc))
        return ChainHealth(True, Height(latest), Height(finalized), time.monotonic() - started,
                           extra={"finality_lag_slots": float(latest - finalized)})

    @_boundary
    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        latest = (await self._client.get_slot(Confirmed)).value
        window = max(1, min(max(blocks, 150), latest - 1))  # block times are whole seconds: a wide window
        first, last = await asyncio.gather(self._client.get_block_time(latest - window),
                                           self._client.get_block_time(latest))
        span = float((last.value or 0) - (first.value or 0))
        slot_time = span / window if span > 0 else DEFAULT_SLOT_TIME_S
        # fees are per signature (5000 lamports), not per compute unit: 1 lamport per CU is the closest integer
        return ChainStats(Height(latest), min(blocks, window), slot_time, BLOCK_COMPUTE_LIMIT, 0.0, 1, 1.0, None, 9)

    native_decimals = 9  # lamports per SOL

    @_boundary
    async def wallet_balance(self) -> WalletBalance | None:
        """The relayer's fee payer's lamports (it pays every delivery's signature fees)."""
        if self._payer is None:
            return None
        payer = self._payer.pubkey()
        lamports = (await self._client.get_balance(payer, Confirmed)).value
        return WalletBalance(self._name, str(payer), int(lamports), self.native_decimals)

    async def close(self) -> None:
        for client in (self._client, *self._verifiers):
            await client.close()

    # ---- MessageSender
    def _token(self, symbol: str) -> TokenRule:
        token = self._rules.tokens.get(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        return token

    def _key(self, key: str) -> Keypair:
        try:
            return keypair_from_hex(key)
        except ValueError as exc:
            raise TxReverted("sender key is not a hex ed25519 seed", chain=self._name, reason="bad key") from exc

    async def _send(self, signer: Keypair, ixs: list[Instruction]) -> Signature:
        blockhash = (await self._client.get_latest_blockhash(Confirmed)).value.blockhash
        message = SolanaMessage.new_with_blockhash(ixs, signer.pubkey(), blockhash)
        size = transaction_size(message)
        if size > MAX_TX_SIZE:
            raise TxReverted(f"transaction is {size} bytes > {MAX_TX_SIZE}", chain=self._name, reason="too large")
        tx = Transaction([signer], message, blockhash)
        try:
            await self._client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_confirmation=True,
                                                                            preflight_commitment=Confirmed))
        except Exception as exc:
            raise map_exception(exc, chain=self._name, context="send") from exc
        return tx.signatures[0]

    async def _wait_finalized(self, signature: Signature, timeout: float = TX_WAIT_S) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = (await self._client.get_signature_statuses([signature], search_transaction_history=True)
                      ).value[0]
            if status is not None and status.err is not None:
                raise TxReverted(f"tx {signature} failed: {status.err!r}", chain=self._name, reason=repr(status.err))
            if status is not None and _status_level(status) == "finalized":
                return int(status.slot)
            await asyncio.sleep(self._config.poll_interval_s)  # polling the node with a deadline
        raise TxNotFound(f"tx {signature} not finalized within {timeout}s", chain=self._name, reason="not found")

    async def _dispatched_by(self, signature: Signature, slot: int) -> list[MessageId]:
        await self._scan(slot)
        ids = [d.id for d in self._dispatches if d.tx_hash == str(signature)]
        if not ids:
            raise TxReverted(f"tx {signature} is not a valid dispatch", chain=self._name, reason="not a dispatch")
        return ids

    def _bridge_reference(self, sender: Pubkey) -> Instruction:
        """A 0-lamport transfer to the bridge so ``getSignaturesForAddress(bridge)`` lists the dispatch."""
        return system_transfer(SystemTransferParams(from_pubkey=sender, to_pubkey=self._bridge, lamports=0))

    @_boundary
    async def send_token(self, sender_key: str, symbol: str, amount: int, destination: Domain, recipient: bytes
                         ) -> tuple[TxHash, MessageId]:
        token = self._token(symbol)
        remote = self._rules.remote_bridges.get(int(destination))
        if remote is None:
            raise TxReverted(f"no remote bridge for domain {destination}", chain=self._name, reason="unknown route")
        if not 0 < amount <= 2**64 - 1:
            raise TxReverted(f"amount {amount} is not a positive u64", chain=self._name, reason="bad amount")
        signer = self._key(sender_key)
        owner = signer.pubkey()
        source = get_associated_token_address(owner, token.mint)
        body = TokenBody(token.home_domain, token.home_token, _bytes32(recipient), amount * token.scale).encode()
        move: Instruction
        if token.wrapped:
            move = burn(BurnParams(program_id=TOKEN_PROGRAM_ID, account=source, mint=token.mint, owner=owner,
                                   amount=amount))
        else:
            move = transfer(TransferParams(program_id=TOKEN_PROGRAM_ID, source=source, dest=token.vault,
                                           owner=owner, amount=amount))
        memo = create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner,
                                      message=encode_dispatch_memo(int(destination), remote, body).encode()))
        signature = await self._send(signer, [move, self._bridge_reference(owner), memo])
        log.info("token_dispatched", chain=self._name, tx=str(signature), symbol=symbol, amount=amount,
                 destination=int(destination))
        slot = await self._wait_finalized(signature)
        return TxHash(str(signature)), (await self._dispatched_by(signature, slot))[0]

    @_boundary
    async def dispatch_messages(self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes]
                                ) -> tuple[TxHash, list[MessageId]]:
        if not bodies:
            raise TxReverted("no bodies to dispatch", chain=self._name, reason="empty dispatch")
        signer = self._key(sender_key)
        owner = signer.pubkey()
        ixs = [self._bridge_reference(owner)]
        for body in bodies:
            ixs.append(create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner, message=encode_dispatch_memo(
                int(destination), _bytes32(recipient), bytes(body)).encode())))
        signature = await self._send(signer, ixs)
        slot = await self._wait_finalized(signature)
        return TxHash(str(signature)), await self._dispatched_by(signature, slot)

    @_boundary
    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        token = self._token(symbol)
        signer = self._key(sender_key)
        owner, recipient = signer.pubkey(), Pubkey.from_string(to)
        dest = get_associated_token_address(recipient, token.mint)
        ixs = [create_idempotent_associated_token_account(owner, recipient, token.mint),
               transfer_checked(TransferCheckedParams(program_id=TOKEN_PROGRAM_ID,
                                                      source=get_associated_token_address(owner, token.mint),
                                                      mint=token.mint, dest=dest, owner=owner, amount=amount,
                                                      decimals=token.decimals))]
        return TxHash(str(await self._send(signer, ixs)))

    @_boundary
    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        status = (await self._client.get_signature_statuses([Signature.from_string(tx_hash)],
                                                            search_transaction_history=True)).value[0]
        if status is None:
            raise TxNotFound(f"tx {tx_hash} not found", chain=self._name, reason="not found")
        return Height(status.slot), status.err is None

    @_boundary
    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        """``getTransaction`` at confirmed: slot, success, ``meta.fee`` (lamports actually charged) and the fee
        payer (the first account key: the signer). A Solana transaction runs several instructions, so it has no
        single called address or call data: ``to`` and ``input`` stay empty and cannot be checked."""
        answer = (await self._client.get_transaction(Signature.from_string(tx_hash), encoding="base64",
                                                     commitment=Confirmed, max_supported_transaction_version=0)).value
        if answer is None:
            raise TxNotFound(f"tx {tx_hash} not found", chain=self._name, reason="not found")
        meta = answer.transaction.meta
        tx = answer.transaction.transaction
        payer = str(tx.message.account_keys[0]) if isinstance(tx, VersionedTransaction) and tx.message.account_keys else ""
        return TxReceipt(Height(answer.slot), meta is not None and meta.err is None, int(meta.fee) if meta else 0,
                         payer, native_decimals=self.native_decimals)

    async def _token_amount(self, account: Pubkey) -> int:
        info = (await self._client.get_account_info(account, commitment=Confirmed)).value
        if info is None:
            return 0
        return int.from_bytes(bytes(info.data)[64:72], "little")

    @_boundary
    async def token_balance(self, symbol: str, holder: str) -> int:
        token = self._token(symbol)
        return await self._token_amount(get_associated_token_address(Pubkey.from_string(holder), token.mint))

    @_boundary
    async def token_supply(self, symbol: str) -> int:
        token = self._token(symbol)
        info = (await self._client.get_account_info(token.mint, commitment=Confirmed)).value
        if info is None:
            raise UnknownToken(f"mint {token.mint} of {symbol} does not exist", chain=self._name,
                               reason="unknown token")
        return int.from_bytes(bytes(info.data)[36:44], "little")

    @_boundary
    async def vault_balance(self, symbol: str) -> int:
        """What the bridge vault holds of a native token (what came in and has not gone home)."""
        return await self._token_amount(self._token(symbol).vault)

    def remote_bridge(self, domain: int) -> bytes | None:
        return self._rules.remote_bridges.get(int(domain))
