"""``CosmosChain``: one Cosmos SDK chain's HTTP access, configuration, heights, accounts and the delivery plan
rules, shared by the roles ``CosmosAdapter`` is composed of (origin, destination, co-sign checks, sender, health)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import httpx
import structlog
from cosmpy.crypto.keypairs import PrivateKey

from adapters.base import (
    AdapterError,
    Cosigner,
    CosignRequest,
    DispatchedMessage,
    Height,
    RpcError,
    TxNotFound,
    TxReverted,
)
from adapters.boundary import bytes32, error_boundary
from adapters.capabilities import GasPayment
from adapters.cosmos.client import CosmosHttp, map_exception
from adapters.cosmos.memo import MAX_DELIVERY_IDS, native_home_token
from adapters.cosmos.transactions import (
    DeliveryPlan,
    DeliveryRefused,
    DispatchRules,
    bech32,
    bech32_bytes,
    delivery_gas,
    fee_for,
    multisig_key_address,
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


cosmos_boundary = error_boundary(lambda exc, chain, context: map_exception(exc, chain=chain.name, context=context))


def address_of(key: PrivateKey, prefix: str) -> str:
    pub = bytes(key.public_key.public_key_bytes)
    return bech32(hashlib.new("ripemd160", hashlib.sha256(pub).digest()).digest(), prefix)


class CosmosChain:
    """One Cosmos chain's clients, vault and dispatch rules (the roles in ``adapters.cosmos.origin`` etc. build on
    it)."""

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
        self._fee_account = _fee_account(name, config.gas_fee_account, config.bech32_prefix, config.vault)
        self._rules = DispatchRules(self._domain, config.vault, tokens_from_config(config.domain, config.tokens))
        self._bridges = {int(d): bytes32(b) for d, b in (remote_bridges or {}).items()}
        self._escrow = dict(wrapped_escrow or {})
        quorums = ((config.quorum_size(len(config.rpc_urls)), config.quorum_size(len(config.rest_urls)))
                   if config.rpc_mode == "quorum" else None)
        self._http = CosmosHttp(name, config.rpc_urls, config.rest_urls, timeout_s=config.request_timeout_s,
                                http=http, quorums=quorums)  # each with its fallbacks or by quorum (.client)
        self._dispatches: list[DispatchedMessage] = []
        self._dispatch_hashes: set[str] = set()
        self._payments: list[GasPayment] = []  # to the fee account, in the dispatch transactions
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

    def native_token_id(self, symbol: str) -> bytes:
        """The bytes32 a bridge message carries for the native token ``symbol``: sha256 of its denom."""
        token = self._config.tokens.get(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        return native_home_token(token.denom)

    def __repr__(self) -> str:
        return f"CosmosChain(name={self._name!r}, domain={self._domain}, rpc_url={self._config.rpc_url!r})"

    @property
    def name(self) -> str:
        return self._name

    def endpoint_health(self) -> list[bool]:
        """Per endpoint, True unless its last request failed (``EndpointHealth``): 0 is rpc_url, then
        fallback_rpc_urls, rest_url and fallback_rest_urls."""
        return self._http.endpoint_health()

    def take_quorum_disagreements(self) -> dict[tuple[str, int], int]:
        """In rpc_mode "quorum": answers outvoted per (method, endpoint index, numbered as ``endpoint_health``) since
        the last call, for relayer_rpc_quorum_disagreements_total; always empty in fallback mode."""
        return self._http.take_quorum_disagreements()

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

    @cosmos_boundary
    async def latest_height(self) -> Height:
        status = await self._http.rpc("status")
        return Height(int(status["sync_info"]["latest_block_height"]))

    @cosmos_boundary
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

    async def _find_tx(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            return await self._http.rpc("tx", hash="0x" + tx_hash.removeprefix("0x"))
        except TxNotFound:
            return None

    @property
    def native_decimals(self) -> int:
        """Decimals of the fee denom: a configured token with that denom says, else the Cosmos convention (6)."""
        for token in self._config.tokens.values():
            if token.denom == self._config.fee_denom:
                return token.decimals
        return 6

    async def close(self) -> None:
        await self._http.close()

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

    def account_of(self, key: str) -> str:
        """The bech32 address ``key`` (secp256k1, hex) signs for (``OperatorAccounts``)."""
        return address_of(self._key(key), self._prefix)

    def _key(self, key: str) -> PrivateKey:
        try:
            return PrivateKey(bytes.fromhex(key.removeprefix("0x")))
        except Exception as exc:
            raise TxReverted("sender key is not a hex secp256k1 key", chain=self._name, reason="bad key") from exc


def _fee_account(name: str, address: str | None, prefix: str, vault: str) -> str | None:
    """``chains.<name>.gas_fee_account``, checked: a bech32 account of this chain's prefix, not the vault
    (``ConfigError`` naming the key)."""
    if address is None:
        return None
    try:
        bech32_bytes(address)
    except ValueError as exc:
        raise ConfigError(f"chains.{name}.gas_fee_account", str(exc)) from exc
    if not address.startswith(prefix + "1"):
        raise ConfigError(f"chains.{name}.gas_fee_account", f"{address} is not a {prefix}1... address")
    if address == vault:
        raise ConfigError(f"chains.{name}.gas_fee_account", "is the vault: every dispatch pays it")
    return address


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
