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

Every public method raises only ``AdapterError`` (``adapters.cosmos.client`` maps httpx / protobuf errors).
Keys handed in (``sender_key``, co-signing keys) are used and dropped, never logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import httpx
import structlog
from cosmpy.crypto.keypairs import PrivateKey, PublicKey
from cosmpy.protos.cosmos.bank.v1beta1.tx_pb2 import MsgSend  # type: ignore[import-untyped]
from cosmpy.protos.cosmos.base.v1beta1.coin_pb2 import Coin  # type: ignore[import-untyped]
from cosmpy.protos.cosmos.crypto.secp256k1.keys_pb2 import PubKey  # type: ignore[import-untyped]
from cosmpy.protos.cosmos.tx.signing.v1beta1.signing_pb2 import SignMode  # type: ignore[import-untyped]
from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import (  # type: ignore[import-untyped]
    AuthInfo,
    Fee,
    ModeInfo,
    SignDoc,
    SignerInfo,
    TxBody,
    TxRaw,
)
from google.protobuf.any_pb2 import Any as ProtoAny

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
    InsufficientFunds,
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
    UnsignedTransactions,
    WalletBalance,
    WalletSource,
)
from adapters.boundary import bytes32, error_boundary
from adapters.capabilities import BatchLimit, Bytes32Accounts
from adapters.cosigned import CosignedSteps, deliver_cosigned
from adapters.cosmos.client import CosmosHttp, RpcAnswerError, map_exception
from adapters.cosmos.memo import MAX_DELIVERY_IDS, TokenBody, decode_delivery_memo, encode_dispatch_memo
from adapters.cosmos.transactions import (
    DeliveryPlan,
    DeliveryRefused,
    DispatchRules,
    bech32,
    bech32_bytes,
    decode_tx_body,
    delivery_gas,
    fee_for,
    multisig_key_address,
    pack_send,
    payout_of,
    tokens_from_config,
)
from adapters.merkle import MerkleTree
from adapters.message import Domain, Message, MessageFormatError, MessageId
from adapters.tokens import UnknownToken
from config.errors import ConfigError
from config.settings import CosmosChainConfig

log = structlog.get_logger("adapters.cosmos")

T = TypeVar("T")
P = ParamSpec("P")

DEFAULT_BLOCK_GAS = 100_000_000  # consensus max_gas -1 means unlimited
SEND_GAS = 120_000
FEE_TOLERANCE = 3  # a co-signer accepts a fee up to this many times gas * gas_price
TX_WAIT_S = 30.0


_boundary = error_boundary(lambda exc, chain, context: map_exception(exc, chain=chain, context=context))
_bytes32 = bytes32


def _address_of(key: PrivateKey, prefix: str) -> str:
    pub = bytes(key.public_key.public_key_bytes)
    return bech32(hashlib.new("ripemd160", hashlib.sha256(pub).digest()).digest(), prefix)


class CosmosAdapter(ChainAdapter, MessageSender, UnsignedTransactions, WalletSource, CapacitySource, BatchLimit,
                    Bytes32Accounts, CosignedDelivery, CosignLiveness, CosignedSteps[tuple[()]]):
    """One Cosmos SDK chain: origin (MsgSend-to-vault dispatches) and destination (co-signed multisig payouts).

    ``remote_bridges``: domain -> bytes32 of the TokenBridge there (the recipient of a lock's message, and the
    only sender whose token messages are paid out here). ``wrapped_escrow``: symbol -> what the vault was
    funded with for a wrapped token (``token_supply`` of a wrapped token = escrow paid out).
    """

    max_delivery_batch = MAX_DELIVERY_IDS  # a delivery's ids travel in its memo (256 characters)

    def __init__(
        self,
        name: str,
        config: CosmosChainConfig,
        *,
        cosigner: Cosigner | None = None,
        remote_bridges: Mapping[int, bytes | str] | None = None,
        wrapped_escrow: Mapping[str, int] | None = None,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._name = name
        self._config = config
        self._domain = Domain(config.domain)
        self._cosigner = cosigner
        self._clock = clock
        self._prefix = config.bech32_prefix
        self._members = [bytes.fromhex(k.removeprefix("0x")) for k in config.multisig_pubkeys]
        self._threshold = config.multisig_threshold
        _check_majority(name, self._threshold, self._members)
        self._timeout_blocks = config.delivery_timeout_blocks
        try:
            vault_raw = bech32_bytes(config.vault)
        except ValueError as exc:
            raise ConfigError(f"chains.{name}.vault", str(exc)) from exc
        if multisig_key_address(self._threshold, self._members) != vault_raw:
            raise ConfigError(f"chains.{name}.vault",
                              "is not the address of multisig_threshold-of-multisig_pubkeys")
        self._vault = config.vault
        self._rules = DispatchRules(self._domain, config.vault, tokens_from_config(config.domain, config.tokens))
        self._bridges = {int(d): _bytes32(b) for d, b in (remote_bridges or {}).items()}
        self._escrow = dict(wrapped_escrow or {})
        self._http = CosmosHttp(name, config.rpc_url, config.rest_url, timeout_s=config.request_timeout_s,
                                http=http)
        self._dispatches: list[DispatchedMessage] = []
        self._dispatch_hashes: set[str] = set()
        self._tree = MerkleTree()
        self._scanned = 0  # dispatches are known through this height
        self._delivered: set[bytes] = set()
        self._processed: list[tuple[MessageId, Height]] = []
        self._out_scanned = 0  # vault's outgoing txs are known through this height
        self._timestamps: dict[int, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._next_sequence: dict[str, int] = {}  # sender -> next sequence, ahead of the chain while in mempool
        self._timeouts: dict[str, int] = {}  # delivery tx hash -> its timeout height (confirm: dropped after it)

    @staticmethod
    def account_bytes32(address: str) -> bytes:
        """A bech32 account address as the bytes32 a message or token body carries (left-padded 20 bytes)."""
        try:
            return bech32_bytes(address).rjust(32, b"\0")
        except ValueError as exc:
            raise RpcError(f"{address!r} is not a bech32 account address", reason="bad address") from exc

    def __repr__(self) -> str:
        return f"CosmosAdapter(name={self._name!r}, domain={self._domain}, rpc_url={self._config.rpc_url!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def domain(self) -> Domain:
        return self._domain

    @property
    def vault(self) -> str:
        return self._vault

    @property
    def rules(self) -> DispatchRules:
        return self._rules

    def _lock(self, what: str) -> asyncio.Lock:
        return self._locks.setdefault(what, asyncio.Lock())

    # ------------------------------------------------------------------ heights
    @_boundary
    async def latest_height(self) -> Height:
        status = await self._http.rpc("status")
        return Height(int(status["sync_info"]["latest_block_height"]))

    @_boundary
    async def finalized_height(self) -> Height:
        """One below the latest committed height: a block's transactions are final once committed, but their
        results are only proven by the *next* header's ``last_results_hash``, which the validators' light client
        checks before signing (so the watcher indexes no further than what can be proven)."""
        commit = await self._http.rpc("commit")
        return Height(max(0, int(commit["signed_header"]["header"]["height"]) - 1))

    async def _block_time(self, height: int) -> float:
        if height not in self._timestamps:
            block = await self._http.rpc("block", height=height)
            self._timestamps[height] = _rfc3339_seconds(str(block["block"]["header"]["time"]))
        return self._timestamps[height]

    # ------------------------------------------------------------------ origin
    async def _scan_dispatches(self, height: int) -> None:
        """Extend the list of valid dispatches through ``height`` (clamped to the latest height)."""
        async with self._lock("dispatches"):
            height = min(height, int(await self.latest_height()))
            if height <= self._scanned:
                return
            txs = await self._http.tx_search(
                f"transfer.recipient='{self._vault}' AND tx.height>{self._scanned} AND tx.height<={height}")
            for tx in txs:
                tx_hash = str(tx["hash"]).upper()
                if tx_hash in self._dispatch_hashes or int(tx["tx_result"].get("code") or 0) != 0:
                    continue
                parsed = self._rules.parse(base64.b64decode(tx["tx"]))
                if parsed is None:
                    log.debug("cosmos_dispatch_ignored", chain=self._name, tx_hash=tx_hash)
                    continue
                message = parsed.message(len(self._dispatches), self._domain)
                raw = message.encode()
                tx_height = int(tx["height"])
                self._dispatches.append(DispatchedMessage(
                    message, raw, message.id, Height(tx_height), TxHash(tx_hash), int(tx.get("index") or 0),
                    await self._block_time(tx_height)))
                self._dispatch_hashes.add(tx_hash)
                self._tree.append(message.id)
            self._scanned = height

    @_boundary
    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        await self._scan_dispatches(to_height)
        return [d for d in self._dispatches if from_height <= d.height <= to_height]

    @_boundary
    async def mailbox_state(self, height: Height) -> MailboxState:
        await self._scan_dispatches(height)
        count = sum(1 for d in self._dispatches if d.height <= height)
        return MailboxState(self._rules.vault32, self._tree.root(count), count, height)

    # ------------------------------------------------------------------ destination
    async def _scan_outgoing(self, height: int | None = None) -> None:
        async with self._lock("outgoing"):
            latest = int(await self.latest_height())
            height = latest if height is None else min(height, latest)
            if height <= self._out_scanned:
                return
            txs = await self._http.tx_search(
                f"message.sender='{self._vault}' AND tx.height>{self._out_scanned} AND tx.height<={height}")
            for tx in txs:
                if int(tx["tx_result"].get("code") or 0) != 0:
                    continue
                for message_id in decode_delivery_memo(decode_tx_body(base64.b64decode(tx["tx"])).memo):
                    if message_id not in self._delivered:
                        self._delivered.add(message_id)
                        self._processed.append((message_id, Height(int(tx["height"]))))
            self._out_scanned = height

    @_boundary
    async def delivered(self, ids: Sequence[MessageId]) -> list[bool]:
        if any(i not in self._delivered for i in ids):
            await self._scan_outgoing()
        return [i in self._delivered for i in ids]

    @_boundary
    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        await self._scan_outgoing(to_height)
        return [(i, h) for i, h in self._processed if from_height <= h <= to_height]

    def _payouts(self, messages: Sequence[bytes], refuse: type[AdapterError]) -> list[Any]:
        if not messages:
            raise refuse("no messages to deliver", chain=self._name, reason="empty delivery")
        if len(messages) > MAX_DELIVERY_IDS:
            raise refuse(f"a delivery memo holds at most {MAX_DELIVERY_IDS} message ids, got {len(messages)}",
                         chain=self._name, reason="batch too large")
        payouts = []
        for raw in messages:
            try:
                payouts.append(payout_of(Message.decode(raw), self._rules, self._bridges, self._prefix))
            except (DeliveryRefused, MessageFormatError) as exc:
                raise refuse(str(exc), chain=self._name, reason=str(exc)) from exc
        return payouts

    def _plan_for(self, payouts: Sequence[Any], account_number: int, sequence: int, gas: int,
                  fee: tuple[str, int], timeout_height: int) -> DeliveryPlan:
        return DeliveryPlan(self._config.chain_id, self._vault, tuple(payouts), account_number, sequence, gas, fee,
                            timeout_height)

    async def _account(self, address: str) -> tuple[int, int] | None:
        status, body = await self._http.rest(f"/cosmos/auth/v1beta1/accounts/{address}")
        if status == 404:
            return None
        if status >= 400:
            raise RpcError(f"account {address}: HTTP {status}: {body}", chain=self._name, reason="bad answer")
        account = body["account"]
        return int(account.get("account_number") or 0), int(account.get("sequence") or 0)

    async def _balance(self, address: str, denom: str) -> int:
        status, body = await self._http.rest(f"/cosmos/bank/v1beta1/balances/{address}/by_denom", denom=denom)
        if status >= 400:
            raise RpcError(f"balance {address}: HTTP {status}: {body}", chain=self._name, reason="bad answer")
        return int(body["balance"]["amount"])

    async def _plan(self, messages: Sequence[bytes]) -> DeliveryPlan:
        payouts = self._payouts(messages, TxReverted)
        account = await self._account(self._vault)
        if account is None:
            raise InsufficientFunds(f"vault {self._vault} has no account yet", chain=self._name,
                                    reason="vault not funded")
        gas = delivery_gas(len(payouts))
        fee = (self._config.fee_denom, fee_for(gas, self._config.gas_price))
        needed: dict[str, int] = {fee[0]: fee[1]}
        for payout in payouts:
            needed[payout.denom] = needed.get(payout.denom, 0) + payout.amount
        for denom, amount in needed.items():
            have = await self._balance(self._vault, denom)
            if have < amount:
                raise InsufficientFunds(f"vault holds {have}{denom}, the delivery needs {amount}{denom}",
                                        chain=self._name, reason="vault balance")
        sequence = max(account[1], self._next_sequence.get(self._vault, 0))  # ahead while ours is in mempool
        timeout = int(await self.latest_height()) + self._timeout_blocks
        return self._plan_for(payouts, account[0], sequence, gas, fee, timeout)

    @_boundary
    async def estimate_delivery(self, batch: DeliveryBatch) -> CostEstimate:
        plan = await self._plan([item.message for item in batch.items])
        return CostEstimate(plan.gas, math.ceil(self._config.gas_price), 0)

    async def cosign_request(self, messages: Sequence[bytes]) -> CosignRequest:
        """The request the validators co-sign for delivering ``messages`` (the vault's current sequence)."""
        plan = await self._plan(messages)
        return CosignRequest(self._name, plan.sign_bytes(), tuple(messages), plan.context())

    @_boundary
    async def submit_delivery(self, batch: DeliveryBatch, estimate: CostEstimate | None = None) -> SubmittedTx:
        if self._cosigner is None:
            raise TxReverted("no cosigner configured: cosmos deliveries need the validators' signatures",
                             chain=self._name, reason="no cosigner")
        return await deliver_cosigned(self, self._cosigner, batch)

    # ------------------------------------------------------------------ steps of the shared flow (adapters.cosigned)
    @property
    def cosign_threshold(self) -> int:
        return self._threshold

    def delivery_lock(self) -> AbstractAsyncContextManager[object]:
        # one delivery at a time from plan to broadcast: two plans at one vault sequence would both be co-signed
        # and one would fail, holding its messages at the validators until its timeout height
        return self._lock("deliver")

    async def quorums(self, batch: DeliveryBatch) -> list[tuple[int, tuple[()]]]:
        return [(0, ())]  # the vault's members: whichever threshold of them answers

    async def request_for(self, messages: Sequence[bytes], quorum: tuple[()]) -> CosignRequest:
        return await self.cosign_request(messages)

    def quorum_worked(self, position: int) -> None:
        pass

    @_boundary
    async def submit_cosigned(self, request: CosignRequest, signatures: Sequence[tuple[str, bytes]]) -> SubmittedTx:
        """Assemble the multisig tx from ``signatures`` (signer id = compressed pubkey hex) and broadcast it.
        Signatures of non-members or that do not verify are dropped; fewer than the threshold is not an
        error here (the chain refuses with code 4, as a test of the chain's own check wants)."""
        plan = self._plan_from_request(request, CosignRefused)
        chosen: dict[int, bytes] = {}
        for signer, signature in signatures:
            try:
                index = self._members.index(bytes.fromhex(signer.removeprefix("0x")))
            except ValueError:
                log.warning("cosmos_cosign_unknown_signer", chain=self._name, signer=signer)
                continue
            if not PublicKey(self._members[index]).verify(request.payload, signature):
                log.warning("cosmos_cosign_bad_signature", chain=self._name, signer=signer)
                continue
            chosen.setdefault(index, bytes(signature))
        if not chosen:
            raise AdapterError("no valid co-signature", chain=self._name, reason="no cosign quorum")
        raw = plan.assemble(self._threshold, self._members, dict(sorted(chosen.items())[: self._threshold]))
        try:
            tx_hash = await self._http.broadcast(raw)
        except RpcError as exc:
            expected = re.search(r"expected (\d+), got", str(exc))
            if exc.reason == "sequence mismatch" and expected is not None:
                self._next_sequence[self._vault] = int(expected.group(1))  # the next request uses it
            raise
        self._next_sequence[self._vault] = plan.sequence + 1
        self._timeouts[tx_hash] = plan.timeout_height
        log.info("cosmos_delivery_submitted", chain=self._name, tx_hash=tx_hash, sequence=plan.sequence,
                 timeout_height=plan.timeout_height, messages=len(plan.payouts), signers=len(chosen))
        return SubmittedTx(TxHash(tx_hash), plan.sequence, self._vault, self._clock(), plan.gas, plan.fee[1])

    def _plan_from_request(self, request: CosignRequest, refuse: type[AdapterError]) -> DeliveryPlan:
        payouts = self._payouts(request.messages, refuse)
        try:
            context = request.context
            account_number, sequence = int(context["account_number"]), int(context["sequence"])
            gas, fee_denom, fee_amount = int(context["gas"]), context["fee_denom"], int(context["fee_amount"])
            timeout_height = int(context.get("timeout_height", "0"))
        except (KeyError, ValueError) as exc:
            raise refuse(f"context lacks {exc}", chain=self._name, reason="bad context") from exc
        if not (0 <= account_number < 2**64 and 0 <= sequence < 2**64 and 0 <= timeout_height < 2**63):
            raise refuse("account number, sequence or timeout height out of range", chain=self._name,
                         reason="bad context")
        if context.get("sign_mode", "LEGACY_AMINO_JSON") != "LEGACY_AMINO_JSON":
            raise refuse("unsupported sign mode", chain=self._name, reason="bad context")
        if gas != delivery_gas(len(payouts)) or fee_denom != self._config.fee_denom:
            raise refuse("gas or fee denom differs from this chain's rule", chain=self._name, reason="bad fee")
        if not 0 < fee_amount <= FEE_TOLERANCE * fee_for(gas, self._config.gas_price):
            raise refuse(f"fee {fee_amount}{fee_denom} is out of bounds", chain=self._name, reason="bad fee")
        return self._plan_for(payouts, account_number, sequence, gas, (fee_denom, fee_amount), timeout_height)

    def check_cosign(self, request: CosignRequest) -> list[MessageId]:
        """Validator side: the payload must be exactly the multisig tx paying out ``request.messages`` (each a
        token message from the origin's enrolled bridge, to its recipient, its amount of its token), with the
        ids in the memo, this chain's id, fee within bounds, and a timeout height (without one a co-signed payout
        could land at any later time). Signing at most once per message is the caller's duty (the chain itself
        does not refuse a second payout), with ``cosign_terms`` and ``terms_can_land``."""
        plan = self._checked_plan(request)
        return [p.id for p in plan.payouts]

    def _checked_plan(self, request: CosignRequest) -> DeliveryPlan:
        if request.chain != self._name:
            raise CosignRefused(f"request is for chain {request.chain!r}", chain=self._name, reason="wrong chain")
        plan = self._plan_from_request(request, CosignRefused)
        if plan.sign_bytes() != request.payload:
            raise CosignRefused("payload is not the delivery of these messages", chain=self._name,
                                reason="payload differs")
        if plan.timeout_height == 0:
            raise CosignRefused("the delivery has no timeout_height: once co-signed it could land at any later time",
                                chain=self._name, reason="no timeout")
        return plan

    @_boundary
    async def cosign_terms(self, request: CosignRequest) -> SignedTerms:
        """Validator side: the payload's (sequence, timeout height), rebuilt from the request and checked against
        this node's chain now. Refused: a timeout at or below the latest committed height (it cannot land), one
        more than ``2 * delivery_timeout_blocks`` ahead (a co-signature must stop counting soon: that bound is how
        long a payout that never lands can hold its messages), an account number other than the vault's (it
        could never verify), a sequence below the vault's (``stale sequence``: used already)."""
        plan = self._checked_plan(request)
        height = int(await self.latest_height())
        if plan.timeout_height <= height:
            raise CosignRefused(f"timeout height {plan.timeout_height} is at or below the chain's height {height}: "
                                "the payout can no longer land", chain=self._name, reason="expired")
        window = 2 * self._timeout_blocks
        if plan.timeout_height > height + window:
            raise CosignRefused(f"timeout height {plan.timeout_height} is more than {window} blocks above the "
                                f"chain's height {height} (chains.{self._name}.delivery_timeout_blocks x 2)",
                                chain=self._name, reason="timeout too far")
        account = await self._account(self._vault)
        if account is None:
            raise CosignRefused(f"vault {self._vault} has no account on chain", chain=self._name,
                                reason="vault not funded")
        number, on_chain = account
        if plan.account_number != number:
            raise CosignRefused(f"account number {plan.account_number} is not the vault's ({number})",
                                chain=self._name, reason="bad context")
        if plan.sequence < on_chain:
            raise CosignRefused(f"sequence {plan.sequence} is below the vault's sequence {on_chain} on chain: "
                                "already used", chain=self._name, reason="stale sequence")
        return SignedTerms(last_height=plan.timeout_height, sequence=plan.sequence)

    @_boundary
    async def terms_can_land(self, terms: SignedTerms) -> bool:
        """False once the chain's committed height reached the timeout height (no later block may include it) or
        the vault's sequence moved past the payout's (that sequence was used by a transaction, this one or
        another). Whether it landed is then ``delivered``'s answer, which scans through a height read after
        these two reads."""
        if int(await self.latest_height()) >= terms.last_height:
            return False
        account = await self._account(self._vault)
        return not (account is not None and terms.sequence is not None and account[1] > terms.sequence)

    @_boundary
    async def cosign_can_land(self, request: CosignRequest) -> bool:
        """``CosignLiveness``: the payload (rebuilt from the request and compared with the signed bytes, so its
        sequence and timeout height are the payload's, not the context's word) can never land once the chain's
        committed height reached its timeout height or the vault's sequence is past its sequence
        (``terms_can_land``). A request that does not rebuild is not judged: True (the caller keeps counting it)."""
        try:
            plan = self._plan_from_request(request, CosignRefused)
        except CosignRefused:
            return True
        if plan.sign_bytes() != request.payload:
            return True
        return bool(await self.terms_can_land(SignedTerms(last_height=plan.timeout_height, sequence=plan.sequence)))

    def cosign_with(self, key: str, request: CosignRequest) -> tuple[str, bytes]:
        """(compressed pubkey hex, 64-byte low-s secp256k1 signature over sha256(payload))."""
        private = PrivateKey(bytes.fromhex(key.removeprefix("0x")))
        return bytes(private.public_key.public_key_bytes).hex(), bytes(private.sign(request.payload))

    async def _find_tx(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            return await self._http.rpc("tx", hash="0x" + tx_hash.removeprefix("0x"))
        except RpcAnswerError as exc:
            if "not found" in exc.reason:
                return None
            raise

    @_boundary
    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        outcome = await self._outcome(tx)
        if outcome.state is not TxState.PENDING:
            self._timeouts.pop(tx.tx_hash, None)
        return outcome

    async def _outcome(self, tx: SubmittedTx) -> TxOutcome:
        """A tx not found is dropped once no block can include it any more: its timeout height (known for what
        this process submitted) is committed, or its sequence was used by another tx; the tx is looked up again
        after that observation, so one included meanwhile is not missed."""
        found = await self._find_tx(tx.tx_hash)
        if found is None:
            timeout = self._timeouts.get(tx.tx_hash)
            if (timeout is not None and int(await self.latest_height()) >= timeout
                    and await self._find_tx(tx.tx_hash) is None):
                self._next_sequence.pop(tx.sender, None)  # its sequence was never used: plan from the chain's again
                return TxOutcome(TxState.DROPPED, reason=f"timeout height {timeout} passed")
            account = await self._account(tx.sender)
            if account is not None and account[1] > tx.nonce and await self._find_tx(tx.tx_hash) is None:
                return TxOutcome(TxState.DROPPED, reason="sequence used by another transaction")
            return TxOutcome(TxState.PENDING)
        result = found["tx_result"]
        height = Height(int(found["height"]))
        code = int(result.get("code") or 0)
        gas_used = int(result.get("gas_used") or 0)
        if code != 0:
            return TxOutcome(TxState.REVERTED, height, gas_used, tx.max_fee,
                             reason=f"code {code}: {result.get('log', '')}")
        ids = tuple(decode_delivery_memo(decode_tx_body(base64.b64decode(found["tx"])).memo))
        for message_id in ids:
            if message_id not in self._delivered:
                self._delivered.add(message_id)
                self._processed.append((message_id, height))
        return TxOutcome(TxState.CONFIRMED, height, gas_used, tx.max_fee, delivered_ids=ids)

    # ------------------------------------------------------------------ health, capacity
    @_boundary
    async def health(self) -> ChainHealth:
        started = time.monotonic()
        try:
            latest = await self.latest_height()
        except AdapterError as exc:
            return ChainHealth(False, None, None, time.monotonic() - started, detail=str(exc))
        return ChainHealth(True, latest, latest, time.monotonic() - started)

    @_boundary
    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        latest = int(await self.latest_height())
        count = max(1, min(blocks, latest - 1))
        heights = list(range(latest - count, latest + 1))
        times = await asyncio.gather(*(self._block_time(h) for h in heights))
        results = await asyncio.gather(*(self._http.rpc("block_results", height=h) for h in heights[1:]))
        status, params = await self._http.rest("/cosmos/consensus/v1/params")
        max_gas = int(params["params"]["block"]["max_gas"]) if status < 400 else -1
        gas_limit = DEFAULT_BLOCK_GAS if max_gas <= 0 else max_gas
        used = [sum(int(r.get("gas_used") or 0) for r in (res.get("txs_results") or [])) for res in results]
        base_fee = math.ceil(self._config.gas_price)
        return ChainStats(Height(latest), count, (times[-1] - times[0]) / count, gas_limit,
                          sum(used) / len(used) / gas_limit if used else 0.0, base_fee, 1.0, None, 6)

    @property
    def native_decimals(self) -> int:
        """Decimals of the fee denom: a configured token with that denom says, else the Cosmos convention (6)."""
        for token in self._config.tokens.values():
            if token.denom == self._config.fee_denom:
                return token.decimals
        return 6

    @_boundary
    async def wallet_balance(self) -> WalletBalance | None:
        """The vault multisig's fee-denom balance: it pays the fees of every co-signed delivery."""
        amount = await self._balance(self._vault, self._config.fee_denom)
        return WalletBalance(self._name, self._vault, amount, self.native_decimals)

    async def close(self) -> None:
        await self._http.close()

    # ------------------------------------------------------------------ MessageSender
    async def _send(self, key: PrivateKey, messages: Sequence[ProtoAny], memo: str, *,
                    sequence: int | None = None, gas: int = SEND_GAS) -> tuple[str, int]:
        """Sign (SIGN_MODE_DIRECT) and broadcast; (tx hash, sequence used)."""
        sender = _address_of(key, self._prefix)
        account = await self._account(sender)
        if account is None:
            raise InsufficientFunds(f"account {sender} does not exist (never funded)", chain=self._name,
                                    reason="no account")
        number = account[0]
        if sequence is None:
            sequence = max(account[1], self._next_sequence.get(sender, 0))
        try:
            tx_hash = await self._sign_and_broadcast(key, number, sequence, messages, memo, gas)
        except RpcError as exc:
            expected = re.search(r"expected (\d+), got", str(exc))
            if exc.reason != "sequence mismatch" or expected is None:
                raise
            sequence = int(expected.group(1))
            log.info("cosmos_sequence_resync", chain=self._name, sender=sender, sequence=sequence)
            tx_hash = await self._sign_and_broadcast(key, number, sequence, messages, memo, gas)
        self._next_sequence[sender] = sequence + 1
        return tx_hash, sequence

    async def _sign_and_broadcast(self, key: PrivateKey, number: int, sequence: int, messages: Sequence[ProtoAny],
                                  memo: str, gas: int) -> str:
        packed_key = ProtoAny()
        packed_key.Pack(PubKey(key=bytes(key.public_key.public_key_bytes)), type_url_prefix="/")
        body = TxBody(messages=list(messages), memo=memo)
        fee = Fee(amount=[Coin(denom=self._config.fee_denom, amount=str(fee_for(gas, self._config.gas_price)))],
                  gas_limit=gas)
        auth_info = AuthInfo(signer_infos=[SignerInfo(
            public_key=packed_key, mode_info=ModeInfo(single=ModeInfo.Single(mode=SignMode.SIGN_MODE_DIRECT)),
            sequence=sequence)], fee=fee)
        body_bytes, auth_bytes = body.SerializeToString(), auth_info.SerializeToString()
        sign_doc = SignDoc(body_bytes=body_bytes, auth_info_bytes=auth_bytes, chain_id=self._config.chain_id,
                           account_number=number)
        raw = TxRaw(body_bytes=body_bytes, auth_info_bytes=auth_bytes,
                    signatures=[key.sign(sign_doc.SerializeToString())]).SerializeToString()
        return await self._http.broadcast(bytes(raw))

    async def _wait_tx(self, tx_hash: str, timeout: float = TX_WAIT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = await self._find_tx(tx_hash)
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise TxNotFound(f"tx {tx_hash} not included within {timeout}s", chain=self._name,
                                 reason="not included")
            await asyncio.sleep(self._config.poll_interval_s / 2)

    async def _dispatch_id(self, tx_hash: str, height: int) -> MessageId:
        await self._scan_dispatches(height)
        for dispatch in self._dispatches:
            if dispatch.tx_hash == tx_hash:
                return dispatch.id
        raise TxReverted(f"tx {tx_hash} is not a valid dispatch", chain=self._name, reason="not a dispatch")

    def _key(self, key: str) -> PrivateKey:
        try:
            return PrivateKey(bytes.fromhex(key.removeprefix("0x")))
        except Exception as exc:
            raise TxReverted("sender key is not a hex secp256k1 key", chain=self._name, reason="bad key") from exc

    @_boundary
    async def send_token(
        self, sender_key: str, symbol: str, amount: int, destination: Domain, recipient: bytes
    ) -> tuple[TxHash, MessageId]:
        token = self._rules.token_by_symbol(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        bridge = self._bridges.get(int(destination))
        if bridge is None:
            raise TxReverted(f"no remote bridge for domain {destination}", chain=self._name,
                             reason="no remote bridge")
        key = self._key(sender_key)
        body = TokenBody(token.home_domain, token.home_token, _bytes32(recipient), token.to_home(amount)).encode()
        memo = encode_dispatch_memo(destination, bridge, body)
        send = pack_send(_address_of(key, self._prefix), self._vault, [(token.denom, amount)])
        async with self._lock("send:" + _address_of(key, self._prefix)):
            tx_hash, _ = await self._send(key, [send], memo)
            found = await self._wait_tx(tx_hash)
        self._check_included(found)
        return TxHash(tx_hash), await self._dispatch_id(tx_hash, int(found["height"]))

    def _check_included(self, found: dict[str, Any]) -> None:
        result = found["tx_result"]
        if int(result.get("code") or 0) != 0:
            raise TxReverted(f"tx {found['hash']} failed: code {result.get('code')}: {result.get('log')}",
                             chain=self._name, reason=f"code {result.get('code')}: {result.get('log')}")

    @_boundary
    async def dispatch_messages(
        self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes]
    ) -> tuple[TxHash, list[MessageId]]:
        """One tx per body (a memo holds one message), each paying the vault 1 unit of the fee denom;
        returns the last tx's hash and every message id, after inclusion."""
        key = self._key(sender_key)
        sender = _address_of(key, self._prefix)
        hashes: list[str] = []
        async with self._lock("send:" + sender):
            sequence: int | None = None
            for body in bodies:
                memo = encode_dispatch_memo(destination, _bytes32(recipient), body)
                tx_hash, used = await self._send(
                    key, [pack_send(sender, self._vault, [(self._config.fee_denom, 1)])], memo, sequence=sequence)
                hashes.append(tx_hash)
                sequence = used + 1
            found = [await self._wait_tx(h) for h in hashes]
        for tx in found:
            self._check_included(tx)
        ids = [await self._dispatch_id(h, int(tx["height"])) for h, tx in zip(hashes, found, strict=True)]
        return TxHash(hashes[-1] if hashes else ""), ids

    @_boundary
    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        token = self._rules.token_by_symbol(symbol)
        denom = token.denom if token else (self._config.fee_denom if symbol == self._config.fee_denom else None)
        if denom is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        key = self._key(sender_key)
        sender = _address_of(key, self._prefix)
        async with self._lock("send:" + sender):
            tx_hash, _ = await self._send(key, [pack_send(sender, to, [(denom, amount)])], "")
        return TxHash(tx_hash)

    @_boundary
    async def unsigned_transaction(self, sender: str, kind: str, *, to: str, amount: int = 0, symbol: str = "",
                                   data: bytes = b"") -> dict[str, Any]:
        if kind != "transfer":
            raise TxReverted("cosmos chains here have no contracts to call", chain=self._name, reason="no contracts")
        token = self._rules.token_by_symbol(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        account = await self._account(sender)
        return {
            "chain_id": self._config.chain_id,
            "account_number": str(account[0]) if account else None,
            "messages": [{"@type": "/cosmos.bank.v1beta1.MsgSend", "from_address": sender, "to_address": to,
                          "amount": [{"denom": token.denom, "amount": str(amount)}]}],
            "fee": {"amount": [{"denom": self._config.fee_denom,
                                "amount": str(fee_for(SEND_GAS, self._config.gas_price))}], "gas": str(SEND_GAS)},
            "memo": "",
        }

    @_boundary
    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        found = await self._find_tx(tx_hash)
        if found is None:
            raise TxNotFound(f"tx {tx_hash} not found", chain=self._name, reason="not found")
        return Height(int(found["height"])), int(found["tx_result"].get("code") or 0) == 0

    @_boundary
    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        """The committed transaction (CometBFT ``tx``): height, success (code 0), the fee it declared in the fee
        denom (the SDK charges the declared fee whole) and, for a bank ``MsgSend``, its ``from_address`` (sender)
        and ``to_address`` (to). There is no call data on a bank send: ``input`` stays empty; the sender of any
        other message type is not decoded (empty)."""
        found = await self._find_tx(tx_hash)
        if found is None:
            raise TxNotFound(f"tx {tx_hash} not found", chain=self._name, reason="not found")
        raw = TxRaw.FromString(base64.b64decode(found["tx"]))
        fee = sum(int(c.amount) for c in AuthInfo.FromString(raw.auth_info_bytes).fee.amount
                  if c.denom == self._config.fee_denom)
        sender = to = ""
        messages = TxBody.FromString(raw.body_bytes).messages
        if messages and messages[0].type_url == "/cosmos.bank.v1beta1.MsgSend":
            send = MsgSend.FromString(messages[0].value)
            sender, to = send.from_address, send.to_address
        return TxReceipt(Height(int(found["height"])), int(found["tx_result"].get("code") or 0) == 0, fee, sender,
                         to=to, native_decimals=self.native_decimals)

    @_boundary
    async def token_balance(self, symbol: str, holder: str) -> int:
        token = self._rules.token_by_symbol(symbol)
        denom = token.denom if token else (self._config.fee_denom if symbol == self._config.fee_denom else None)
        if denom is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        return await self._balance(holder, denom)

    @_boundary
    async def token_supply(self, symbol: str) -> int:
        """Native token: what the vault holds locked. Wrapped token: the escrow paid out so far, i.e. the
        configured initial escrow minus what the vault still holds (``wrapped_escrow``)."""
        token = self._rules.token_by_symbol(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        held = await self._balance(self._vault, token.denom)
        if not token.wrapped:
            return held
        if symbol not in self._escrow:
            raise UnknownToken(f"no initial escrow known for wrapped {symbol!r}", chain=self._name,
                               reason="unknown escrow")
        return self._escrow[symbol] - held


def _check_majority(name: str, threshold: int, members: Sequence[bytes]) -> None:
    """The vault's threshold must be a strict majority of distinct members: then any two quorums share a
    validator, and the validators' once-per-message rule (relayer/pipeline/cosign.py) keeps a message from being paid
    out twice. A minority threshold would let two disjoint quorums each co-sign a payout of the same message."""
    if len(set(members)) != len(members):
        raise ConfigError(f"chains.{name}.multisig_pubkeys", "lists a key twice: one validator would count twice")
    if threshold > len(members):
        raise ConfigError(f"chains.{name}.multisig_threshold",
                          f"is {threshold}, above the {len(members)} multisig_pubkeys")
    if 2 * threshold <= len(members):
        raise ConfigError(f"chains.{name}.multisig_threshold",
                          f"{threshold} of {len(members)} is not a majority: two disjoint quorums could each "
                          "co-sign a payout of the same message")


def _rfc3339_seconds(text: str) -> float:
    """Seconds since the epoch of a CometBFT time (``2024-01-02T03:04:05.123456789Z``, nanoseconds allowed)."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    whole = datetime.fromisoformat(match.group(1) + zone).timestamp()
    return whole + int((match.group(2) or "0").ljust(9, "0")) / 1e9
