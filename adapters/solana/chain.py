"""``SolanaChain``: one Solana cluster's clients, configuration, heights and the rules a delivery is rebuilt
by, shared by the roles ``SolanaAdapter`` is composed of (origin, destination, co-sign checks, sender, health)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

import structlog
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed, Finalized, Processed
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message as SolanaMessage
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID

from adapters.base import (
    AdapterError,
    Cosigner,
    CosignRequest,
    DispatchedMessage,
    Height,
    RpcError,
    TxReverted,
)
from adapters.boundary import bytes32, error_boundary
from adapters.capabilities import GasPayment
from adapters.endpoints import Endpoints, QuorumVote
from adapters.keys import resolve_private_key
from adapters.merkle import MerkleTree
from adapters.message import Domain, MessageId
from adapters.solana.bridge import (
    GUARD_SPACE,
    BridgeRules,
    TokenRule,
    Undeliverable,
    guard_address,
    is_guard,
    token_rules,
)
from adapters.solana.errors import map_exception
from adapters.solana.transport import fallback_client, quorum_client
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


solana_boundary = error_boundary(lambda exc, chain, context: map_exception(exc, chain=chain.name, context=context))


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


def _fee_account(name: str, address: str | None, bridge: Pubkey) -> Pubkey | None:
    """``chains.<name>.gas_fee_account`` as a public key (``ConfigError`` naming the key)."""
    if address is None:
        return None
    try:
        account = Pubkey.from_string(address)
    except ValueError as exc:
        raise ConfigError(f"chains.{name}.gas_fee_account", f"not a base58 public key: {exc}") from exc
    if account == bridge:
        raise ConfigError(f"chains.{name}.gas_fee_account", "is the bridge: every dispatch sends it 0 lamports")
    return account


def status_level(status: Any) -> str:
    return str(getattr(status, "confirmation_status", "") or "").lower().rsplit(".", 1)[-1]


class SolanaChain:
    """One Solana cluster's clients and bridge rules (the roles in ``adapters.solana.origin`` etc. build on it)."""

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
            remote = {int(d): bytes32(b) for d, b in config.remote_bridges.items()}
        except ValueError as exc:
            raise ConfigError(f"chains.{name}.remote_bridges", f"not 0x-hex bytes32: {exc}") from exc
        try:
            tokens = token_rules(config.domain, self._multisig, config.tokens)
        except ValueError as exc:
            raise ConfigError(f"chains.{name}.tokens", str(exc)) from exc
        self._rules = BridgeRules(config.domain, self._bridge, self._multisig, tokens, remote)
        self._fee_account = _fee_account(name, config.gas_fee_account, self._bridge)
        self._payer: Keypair | None = None
        if config.signer is not None:
            key = resolve_private_key(config.signer, where=f"chains.{name}.signer")
            try:
                self._payer = keypair_from_hex(key)
            except ValueError as exc:
                raise ConfigError(f"chains.{name}.signer", str(exc)) from exc
        self._endpoints = Endpoints(config.rpc_urls)  # rpc_url, then fallback_rpc_urls (adapters.solana.transport)
        self._vote = (QuorumVote(name, self._endpoints, config.quorum_size) if config.rpc_mode == "quorum" else None)
        self._client = (quorum_client(self._vote, timeout_s=config.request_timeout_s) if self._vote is not None
                        else fallback_client(name, self._endpoints, timeout_s=config.request_timeout_s))
        self._verifiers = [AsyncClient(url, timeout=config.request_timeout_s) for url in config.verify_rpc_urls]
        self._dispatches: list[DispatchedMessage] = []
        self._payments: list[GasPayment] = []  # to the fee account, in the dispatch transactions
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

    def native_token_id(self, symbol: str) -> bytes:
        """The bytes32 a bridge message carries for the token ``symbol`` homed here: its mint."""
        token = self._config.tokens.get(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        return self.account_bytes32(token.mint)

    def __repr__(self) -> str:
        return f"SolanaChain(name={self._name!r}, domain={self._domain}, rpc_url={self._config.rpc_url!r})"

    @property
    def name(self) -> str:
        return self._name

    @property
    def domain(self) -> Domain:
        return self._domain

    @property
    def rules(self) -> BridgeRules:
        return self._rules

    def endpoint_health(self) -> list[bool]:
        """Per JSON-RPC endpoint (0: rpc_url, then fallback_rpc_urls): True unless its last request failed
        (``EndpointHealth``)."""
        return self._endpoints.healthy()

    def take_quorum_disagreements(self) -> dict[tuple[str, int], int]:
        """In rpc_mode "quorum": answers outvoted per (JSON-RPC method, endpoint index) since the last call, for
        relayer_rpc_quorum_disagreements_total; always empty in fallback mode."""
        return self._vote.take_disagreements() if self._vote is not None else {}

    @property
    def fee_payer(self) -> Pubkey | None:
        return self._payer.pubkey() if self._payer is not None else None

    @solana_boundary
    async def latest_height(self) -> Height:
        return Height((await self._client.get_slot(Processed)).value)

    @solana_boundary
    async def finalized_height(self) -> Height:
        return Height((await self._client.get_slot(Finalized)).value)

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

    native_decimals = 9  # lamports per SOL

    async def close(self) -> None:
        for client in (self._client, *self._verifiers):
            await client.close()

    def _token(self, symbol: str) -> TokenRule:
        token = self._rules.tokens.get(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        return token

    def account_of(self, key: str) -> str:
        """The base58 public key ``key`` (an ed25519 seed in hex) signs for (``OperatorAccounts``)."""
        return str(self._key(key).pubkey())

    def _key(self, key: str) -> Keypair:
        try:
            return keypair_from_hex(key)
        except ValueError as exc:
            raise TxReverted("sender key is not a hex ed25519 seed", chain=self._name, reason="bad key") from exc

    def _undeliverable(self, exc: Undeliverable, refuse: type[AdapterError]) -> AdapterError:
        return refuse(str(exc), chain=self._name, reason=exc.reason)

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

    @solana_boundary
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

    @solana_boundary
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
