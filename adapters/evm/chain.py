"""``EvmChain``: one EVM chain's JSON-RPC transport, heights, accounts and sending primitives, shared by the
roles ``EvmAdapter`` is composed of (origin, destination, sender, bridge ledger, health).

Transport is web3's ``AsyncHTTPProvider`` used at the JSON-RPC level (``make_request`` /
``make_batch_request``): the hot paths (log scans, delivered checks, receipts) skip web3's per-field
result formatters, and calldata is built with ``eth_abi`` from precomputed selectors (``adapters.evm.abi``).
The provider gets a keep-alive aiohttp session and no transport retries: retrying is a wrapper's job
(STYLE.md), and a dead node must surface quickly as ``RpcUnavailable``.

Signing keys (the relayer's ``signer_key`` and any ``sender_key`` handed to the sender methods) live only
inside eth_account ``LocalAccount`` objects held here; they never appear in ``repr``, logs or error text.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import aiohttp
import structlog
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3

from adapters.base import (
    AdapterError,
    DeliveryBatch,
    Height,
    RpcError,
    SubmittedTx,
    TxHash,
    TxReverted,
)
from adapters.boundary import error_boundary
from adapters.endpoints import Endpoints, is_endpoint_failure
from adapters.evm import abi
from adapters.evm.errors import SigningError, map_exception, map_rpc_error
from adapters.evm.fees import Fees, fees_for
from adapters.evm.nonce import NonceManager, SignedTx
from adapters.evm.quorum import QuorumRpc
from adapters.evm.settlement import RollupOutputFinality
from adapters.message import Domain, address_to_bytes32
from adapters.tokens import UnknownToken
from config.errors import ConfigError
from config.settings import EvmChainConfig

log = structlog.get_logger("adapters.evm")

T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="EvmChain")

DELIVERED_MANY_CHUNK = 1000
ROUTE_UNBOUNDED = 2**128 - 1  # TokenBridge.UNBOUNDED: a route without a maximum
_JSON_HEADERS = {"Content-Type": "application/json"}


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):  # HexBytes included
        return "0x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an RPC request")


BATCH_LIMIT = 100  # JSON-RPC calls per HTTP batch; hosted nodes commonly cap batches near this
TIMESTAMP_CACHE = 8192
SENT_CACHE = 4096


@dataclass(slots=True)
class SentTx:
    """What we need to rebuild a transaction we sent, for a fee-bumped replacement."""

    sender: str
    nonce: int
    to: str
    data: bytes
    value: int
    gas: int
    fees: Fees


# any non-project exception leaving a public method, mapped onto the AdapterError family with the chain's own
# contract error ABIs (the shared boundary of adapters/boundary.py)
evm_boundary = error_boundary(lambda exc, chain, context: map_exception(exc, chain=chain.name, errors=chain._errors,
                                                                        context=context))


def hex_int(value: str | None) -> int:
    return int(value, 16) if value else 0


RECALIBRATE_EVERY = 25
CLEAN_BEFORE_OPTIMISTIC = 3
GAP_CHECK_AFTER_S = 3.0  # a tx still unmined this long may wait behind a nonce the node evicted


class EvmChain:
    """One EVM chain's connection and accounts (the roles in ``adapters.evm.origin`` etc. build on it)."""

    native_decimals = 18  # wei per ether

    def __init__(
        self,
        name: str,
        config: EvmChainConfig,
        *,
        signer_key: str | None = None,
        clock: Callable[[], float] = time.time,
        settlement_l1: EvmChainConfig | None = None,
    ) -> None:
        """``settlement_l1``: the config of the L1 that ``config.settlement`` names (required with it)."""
        self._name = name
        self._config = config
        self._clock = clock
        self._domain = Domain(config.domain)
        self._mailbox = config.mailbox.lower()
        self._mailbox32 = address_to_bytes32(config.mailbox)
        self._provider = AsyncHTTPProvider(
            config.rpc_url,
            request_kwargs={"timeout": aiohttp.ClientTimeout(total=config.request_timeout_s)},
            exception_retry_configuration=None,
        )
        self.w3 = AsyncWeb3(self._provider)
        self._endpoints = Endpoints(config.rpc_urls)
        # rpc_mode "quorum": every request through QuorumRpc (adapters.evm.quorum), else the fallback order of _post
        self._quorum = (QuorumRpc(name, self._endpoints, config.quorum_size, self._post_to)
                        if config.rpc_mode == "quorum" else None)
        self._timeout = aiohttp.ClientTimeout(total=config.request_timeout_s)
        self._request_id = 0
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._session_lock: asyncio.Lock | None = None
        self._session_lock_loop: asyncio.AbstractEventLoop | None = None
        self._errors = _error_table()
        self._signer: LocalAccount | None = self._load_account(signer_key) if signer_key else None
        self._accounts: dict[str, LocalAccount] = {}  # sender address (lower) -> account, for MessageSender keys
        self._accounts_by_key: dict[str, LocalAccount] = {}  # key -> account (never logged: repr shows no keys)
        if self._signer is not None:
            self._accounts[self._signer.address.lower()] = self._signer
        self._nonces: dict[str, NonceManager] = {}
        self._sent: OrderedDict[str, SentTx] = OrderedDict()
        self._siblings: dict[tuple[str, int], list[str]] = {}  # (sender, nonce) -> hashes we sent at it
        self._timestamps: OrderedDict[int, float] = OrderedDict()
        self._batch_supported = True
        self._delivered_many = True
        self._calldata_cache: OrderedDict[int, tuple[DeliveryBatch, bytes]] = OrderedDict()
        # gas limit per calldata byte of processBatch, calibrated by a real eth_estimateGas (see estimate_delivery)
        self._gas_per_byte: float | None = None
        self._gas_per_item = 0.0
        self._estimates_since_calibration = 0
        self._base_fee_cache: tuple[float, int] | None = None  # (clock, base fee per gas)
        self._clean_since_revert = 0  # confirmed deliveries since the last reverted one
        self._l1: EvmChain | None = None
        self.settlement: RollupOutputFinality | None = None
        if config.settlement is not None:
            if settlement_l1 is None:
                raise ConfigError(f"chains.{name}.settlement.l1", "the L1's chain config was not given to the adapter")
            self._l1 = EvmChain(config.settlement.l1, settlement_l1)
            self.settlement = RollupOutputFinality(name, config.settlement, l1_rpc=self._l1._rpc,
                                                   l1_finalized=self._l1.finalized_height, rollup_rpc=self._rpc)

    def __repr__(self) -> str:
        signer = self._signer.address if self._signer else None
        return (f"{type(self).__name__}(name={self._name!r}, domain={self._domain}, "
                f"rpc_url={self._config.rpc_url!r}, signer={signer})")

    @property
    def name(self) -> str:
        return self._name

    @property
    def domain(self) -> Domain:
        return self._domain

    async def _ensure_session(self) -> None:
        """A keep-alive aiohttp session for this event loop, handed to web3's provider (created once per loop)."""
        loop = asyncio.get_running_loop()
        if self._session is not None and not self._session.closed and self._session_loop is loop:
            return
        if self._session_lock is None or self._session_lock_loop is not loop:
            self._session_lock, self._session_lock_loop = asyncio.Lock(), loop
        async with self._session_lock:
            if self._session is not None and not self._session.closed and self._session_loop is loop:
                return
            connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=30)
            session = aiohttp.ClientSession(raise_for_status=True, connector=connector)
            await self._provider.cache_async_session(session)
            self._session, self._session_loop = session, loop

    async def _post(self, body: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """One JSON-RPC POST on this adapter's keep-alive session; the decoded JSON answer.

        Straight on aiohttp rather than through the provider: web3's session manager takes a thread lock
        (``run_in_executor``) on every request to look its session up, a tenth of the daemon's time under load.
        """
        await self._ensure_session()
        data = json.dumps(body, default=_json_default)
        if self._quorum is not None:
            return await self._quorum.post(body, data)
        order = self._endpoints.order()  # rpc_url, then fallback_rpc_urls, the failing ones last (adapters.endpoints)
        for k, i in enumerate(order):
            try:
                answer = await self._post_to(self._endpoints.urls[i], data)
            except Exception as exc:
                if not is_endpoint_failure(exc):
                    raise  # the node answered: the request is wrong, another endpoint would say the same
                self._endpoints.failed(i)
                if k == len(order) - 1:
                    raise
                log.warning("rpc_endpoint_failed", chain=self._name, endpoint=i, next_endpoint=order[k + 1],
                            error=type(exc).__name__)
                continue
            self._endpoints.succeeded(i)
            return answer
        raise AssertionError("unreachable")

    async def _post_to(self, url: str, data: str) -> Any:
        assert self._session is not None
        for attempt in (1, 2):
            try:
                async with self._session.post(url, data=data, headers=_JSON_HEADERS, timeout=self._timeout) as response:
                    raw = await response.read()
                return json.loads(raw)
            except aiohttp.ClientConnectionError as exc:
                # a pooled connection the node closed (it restarted, or dropped an idle one) fails on reuse: once
                # more on a fresh connection. Safe for every call here: reads, and a signed transaction sent again
                # is the same transaction (the node answers "already known" or a nonce error the sender handles)
                if attempt == 2 or isinstance(exc, asyncio.TimeoutError):
                    raise
        raise AssertionError("unreachable")

    def endpoint_health(self) -> list[bool]:
        """Per RPC endpoint (0: rpc_url, then fallback_rpc_urls): True unless its last request failed."""
        return self._endpoints.healthy()

    def take_quorum_disagreements(self) -> dict[tuple[str, int], int]:
        """In rpc_mode "quorum": answers outvoted per (JSON-RPC method, endpoint index) since the last call, for
        relayer_rpc_quorum_disagreements_total; always empty in fallback mode."""
        return self._quorum.take_disagreements() if self._quorum is not None else {}

    def _request(self, method: str, params: list[Any]) -> dict[str, Any]:
        self._request_id += 1
        return {"jsonrpc": "2.0", "method": method, "params": params, "id": self._request_id}

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        try:
            response = await self._post(self._request(method, params))
        except Exception as exc:
            raise map_exception(exc, chain=self._name, errors=self._errors, context=method) from exc
        if not isinstance(response, dict):
            raise RpcError(f"{method}: the node's answer is not a JSON-RPC object", chain=self._name,
                           reason="bad response")
        error = response.get("error")
        if error is not None:
            raise map_rpc_error(error, chain=self._name, errors=self._errors, context=method)
        return response.get("result")

    async def _batch(self, calls: Sequence[tuple[str, list[Any]]]) -> Any:
        """A JSON-RPC batch: the answers in call order, or the node's single answer when it refused the batch."""
        requests = [self._request(m, p) for m, p in calls]
        answer = await self._post(requests)
        if not isinstance(answer, list):
            return answer
        order = {r["id"]: i for i, r in enumerate(requests)}
        return sorted(answer, key=lambda a: order.get(a.get("id"), len(order)) if isinstance(a, dict) else len(order))

    async def _rpc_many(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """Results of many calls, in order: JSON-RPC batches of ``BATCH_LIMIT``, sent concurrently.

        Raises the first call's mapped error if any call failed.
        """
        if not calls:
            return []
        if not self._batch_supported:
            return list(await asyncio.gather(*(self._rpc(m, p) for m, p in calls)))
        chunks = [calls[i : i + BATCH_LIMIT] for i in range(0, len(calls), BATCH_LIMIT)]
        try:
            answers = await asyncio.gather(*(self._batch(c) for c in chunks))
        except Exception as exc:
            raise map_exception(exc, chain=self._name, errors=self._errors, context=calls[0][0]) from exc
        results: list[Any] = []
        for chunk, answer in zip(chunks, answers):
            if not isinstance(answer, list):  # the node refused the batch as a whole
                mapped = map_rpc_error(answer.get("error") or {"message": str(answer)}, chain=self._name,
                                       context="batch")
                if type(mapped) is RpcError:
                    log.info("rpc_batch_unsupported", chain=self._name, error=str(mapped))
                    self._batch_supported = False
                    return await self._rpc_many(calls)
                raise mapped
            if len(answer) != len(chunk):
                raise RpcError(f"batch of {len(chunk)} calls got {len(answer)} answers", chain=self._name)
            for (method, _), item in zip(chunk, answer):
                if item.get("error") is not None:
                    raise map_rpc_error(item["error"], chain=self._name, errors=self._errors, context=method)
                results.append(item.get("result"))
        return results

    async def _call(self, to: str, data: bytes, block: str = "latest") -> bytes:
        result = await self._rpc("eth_call", [{"to": to, "data": "0x" + data.hex()}, block])
        return bytes.fromhex(result[2:])

    @evm_boundary
    async def latest_height(self) -> Height:
        return Height(hex_int(await self._rpc("eth_blockNumber", [])))

    @evm_boundary
    async def finalized_height(self) -> Height:
        if self.settlement is not None:
            return await self.settlement.finalized_height()
        finality = self._config.finality
        if finality == "finalized":
            block = await self._rpc("eth_getBlockByNumber", ["finalized", False])
            if block is None:
                raise RpcError("the node has no block tagged finalized", chain=self._name, reason="no finalized block")
            return Height(hex_int(block["number"]))
        latest = await self.latest_height()
        return Height(max(0, latest - int(finality)))

    async def _base_fee(self, max_age_s: float = 0.2) -> int:
        """The latest block's base fee; one read serves every caller for ``max_age_s`` (a burst of transfers
        would otherwise fetch the same block once per transaction)."""
        cached = self._base_fee_cache
        if cached is not None and self._clock() - cached[0] <= max_age_s:
            return cached[1]
        block = await self._rpc("eth_getBlockByNumber", ["latest", False])
        if block is None or block.get("baseFeePerGas") is None:
            raise RpcError("the latest block has no baseFeePerGas: EIP-1559 is required", chain=self._name,
                           reason="no base fee")
        fee = hex_int(block["baseFeePerGas"])
        self._base_fee_cache = (self._clock(), fee)
        return fee

    async def _estimate(self, sender: str, to: str, data: bytes, value: int = 0) -> tuple[int, Fees]:
        tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "value": hex(value)}
        gas_hex, base_fee = await asyncio.gather(self._rpc("eth_estimateGas", [tx]), self._base_fee())
        gas_limit = math.ceil(hex_int(gas_hex) * self._config.gas.gas_limit_multiplier)
        return gas_limit, fees_for(base_fee, self._config.gas, chain=self._name)

    def _load_account(self, key: str) -> LocalAccount:
        try:
            return Account.from_key(key)
        except Exception:  # noqa: BLE001 - eth_keys raises several types; none may echo the key
            raise SigningError("the signer key is not a valid secp256k1 private key", chain=self._name,
                               reason="bad key") from None

    def account_of(self, key: str) -> str:
        """The 0x address (lower-case) ``key`` signs for (``OperatorAccounts``)."""
        return str(self._account_for(key).address).lower()

    def _account_for(self, key: str) -> LocalAccount:
        """The account of a sender key, derived once (deriving the public key costs ~1 ms of CPU per call)."""
        account = self._accounts_by_key.get(key)
        if account is None:
            loaded = self._load_account(key)
            account = self._accounts.setdefault(loaded.address.lower(), loaded)
            self._accounts_by_key[key] = account
        return account

    def _nonce_manager(self, address: str) -> NonceManager:
        key = address.lower()
        manager = self._nonces.get(key)
        if manager is None:
            async def pending() -> int:
                return hex_int(await self._rpc("eth_getTransactionCount", [address, "pending"]))
            manager = self._nonces[key] = NonceManager(address, pending, chain=self._name)
        return manager

    def _signer_fn(self, account: LocalAccount, record: SentTx) -> Callable[[int], SignedTx]:
        template = {
            "type": 2, "chainId": self._config.chain_id, "to": to_checksum_address(record.to), "data": record.data,
            "value": record.value, "gas": record.gas, "maxFeePerGas": record.fees.max_fee_per_gas,
            "maxPriorityFeePerGas": record.fees.priority_fee_per_gas,
        }

        def sign(nonce: int) -> SignedTx:
            try:
                signed = account.sign_transaction({**template, "nonce": nonce})  # type: ignore[dict-item]
            except Exception:  # noqa: BLE001 - eth_account validation errors vary; keep key material out
                raise SigningError("cannot sign the transaction", chain=self._name, reason="signing failed") from None
            return SignedTx(bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex(), nonce)

        return sign

    async def _broadcast(self, raw: bytes) -> None:
        await self._rpc("eth_sendRawTransaction", ["0x" + raw.hex()])

    def _remember(self, tx_hash: str, record: SentTx) -> None:
        self._sent[tx_hash] = record
        self._siblings.setdefault((record.sender.lower(), record.nonce), []).append(tx_hash)
        while len(self._sent) > SENT_CACHE:
            _, old = self._sent.popitem(last=False)
            self._siblings.pop((old.sender.lower(), old.nonce), None)

    async def _send(self, account: LocalAccount, to: str, data: bytes, gas: int, fees: Fees,
                    value: int = 0) -> SubmittedTx:
        record = SentTx(account.address, -1, to, data, value, gas, fees)
        signed = await self._nonce_manager(account.address).send(self._signer_fn(account, record), self._broadcast)
        record.nonce = signed.nonce
        self._remember(signed.tx_hash, record)
        return SubmittedTx(TxHash(signed.tx_hash), signed.nonce, account.address, self._clock(), gas,
                           fees.max_fee_per_gas)

    async def _revert_reason(self, receipt: dict[str, Any]) -> str:
        """Replay a reverted transaction as a call on the state before its block, to read the revert data."""
        tx_hash = receipt["transactionHash"]
        node_tx = await self._rpc("eth_getTransactionByHash", [tx_hash])
        if node_tx is None:
            return "reverted (transaction no longer served)"
        gas = hex_int(node_tx.get("gas"))
        if gas and hex_int(receipt.get("gasUsed")) >= gas:
            return "out of gas"
        call = {"from": node_tx["from"], "to": node_tx.get("to"), "data": node_tx.get("input", "0x"),
                "value": node_tx.get("value", "0x0"), "gas": node_tx.get("gas")}
        try:
            await self._rpc("eth_call", [call, hex(max(0, hex_int(receipt["blockNumber"]) - 1))])
        except TxReverted as exc:
            return exc.reason
        except AdapterError as exc:
            return f"reverted (replay failed: {exc.reason})"
        return "reverted (replay before its block succeeded: state changed within the block)"

    def _token(self, symbol: str) -> str:
        token = self._config.tokens.get(symbol)
        if token is None:
            known = ", ".join(sorted(self._config.tokens)) or "none configured"
            raise UnknownToken(f"no token {symbol!r} on {self._name}; known symbols: {known}", chain=self._name,
                               reason="unknown token")
        return token.address

    def _bridge(self) -> str:
        if self._config.token_bridge is None:
            raise UnknownToken(f"chains.{self._name}.token_bridge is not set", chain=self._name,
                               reason="no token bridge")
        return self._config.token_bridge.lower()

    async def _eth_calls(self, calls: Sequence[tuple[str, bytes]]) -> list[bytes]:
        results = await self._rpc_many([("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
                                        for to, data in calls])
        return [bytes.fromhex(str(r)[2:]) for r in results]

    async def close(self) -> None:
        if self._l1 is not None:
            await self._l1.close()
        session, self._session = self._session, None
        try:
            if session is not None and not session.closed:
                await session.close()
            await self._provider.disconnect()
        except Exception as exc:  # noqa: BLE001 - closing must not fail the caller's shutdown
            log.debug("close_failed", chain=self._name, error=type(exc).__name__)


@functools.lru_cache(maxsize=1)
def _error_table() -> abi.ErrorTable:
    """Built-in custom errors, widened with the ``error`` entries of whatever artifacts are present."""
    abis: list[Any] = []
    try:
        from adapters.evm.contracts import ARTIFACT_NAMES, ArtifactError, load_artifact
    except ImportError:
        return abi.ErrorTable()
    for name in ARTIFACT_NAMES:
        try:
            abis.append(load_artifact(name).abi)
        except ArtifactError as exc:
            log.debug("artifact_unavailable", artifact=name, error=str(exc))
    return abi.ErrorTable.from_abi(abis)

