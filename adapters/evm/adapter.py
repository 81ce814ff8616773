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

import asyncio
import functools
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import aiohttp
import structlog
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3

from adapters.base import (
    AdapterError,
    CapacitySource,
    ChainAdapter,
    ChainHealth,
    ChainStats,
    ContractCalls,
    CostEstimate,
    DeliveryBatch,
    DispatchedMessage,
    FeeTooHigh,
    Height,
    MailboxState,
    MessageSender,
    NonceTooLow,
    ReplacementUnderpriced,
    RpcError,
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
from adapters.capabilities import BridgeLedger
from adapters.evm import abi
from adapters.evm.errors import LogQueryTooLarge, SigningError, map_exception, map_rpc_error
from adapters.evm.fees import GWEI, Fees, bumped, fees_for
from adapters.evm.nonce import NonceManager, SignedTx
from adapters.message import Domain, Message, MessageFormatError, MessageId, address_to_bytes32, keccak256
from adapters.tokens import UnknownToken
from config.errors import RelayerError
from config.settings import EvmChainConfig

log = structlog.get_logger("adapters.evm")

T = TypeVar("T")
P = ParamSpec("P")

DELIVERED_MANY_CHUNK = 1000
ROUTE_UNBOUNDED = 2**128 - 1  # TokenBridge.UNBOUNDED: a route without a maximum
_JSON_HEADERS = {"Content-Type": "application/json"}


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray):  # HexBytes included
        return "0x" + bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable in an RPC request")


BATCH_LIMIT = 100  # JSON-RPC calls per HTTP batch; hosted nodes commonly cap batches near this
_TIMESTAMP_CACHE = 8192
_SENT_CACHE = 4096


@dataclass(frozen=True, slots=True)
class BridgeHolding:
    """What this chain's TokenBridge holds of one token identity (home domain, home token), for the solvency audit."""

    token: str  # the token's 0x address on this chain
    wrapped: bool  # True: the bridge's wrapped token, amount = its totalSupply; False: homed here, amount = locked
    amount: int  # smallest units; the bridge mints and burns message amounts unscaled, so these are home units
    decimals: int


@dataclass(slots=True)
class _SentTx:
    """What we need to rebuild a transaction we sent, for a fee-bumped replacement."""

    sender: str
    nonce: int
    to: str
    data: bytes
    value: int
    gas: int
    fees: Fees


def _boundary(method: Callable[Concatenate[EvmAdapter, P], Coroutine[Any, Any, T]]
              ) -> Callable[Concatenate[EvmAdapter, P], Coroutine[Any, Any, T]]:
    """Map any non-project exception leaving a public method onto the AdapterError family."""

    @functools.wraps(method)
    async def wrapper(self: EvmAdapter, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(self, *args, **kwargs)
        except RelayerError:
            raise
        except Exception as exc:
            raise map_exception(exc, chain=self._name, errors=self._errors, context=method.__name__) from exc

    return wrapper


def _int(value: str | None) -> int:
    return int(value, 16) if value else 0


RECALIBRATE_EVERY = 25
CLEAN_BEFORE_OPTIMISTIC = 3
GAP_CHECK_AFTER_S = 3.0  # a tx still unmined this long may wait behind a nonce the node evicted


class EvmAdapter(ChainAdapter, MessageSender, UnsignedTransactions, ContractCalls, WalletSource, CapacitySource,
                 BridgeLedger):
    """One EVM chain: origin (scan Dispatch logs, mailbox root) and destination (deliver batches, confirm)."""

    def __init__(
        self,
        name: str,
        config: EvmChainConfig,
        *,
        signer_key: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
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
        self._sent: OrderedDict[str, _SentTx] = OrderedDict()
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

    def __repr__(self) -> str:
        signer = self._signer.address if self._signer else None
        return f"EvmAdapter(name={self._name!r}, domain={self._domain}, rpc_url={self._config.rpc_url!r}, signer={signer})"

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self._name

    @property
    def domain(self) -> Domain:
        return self._domain

    # ------------------------------------------------------------------ transport
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
        assert self._session is not None
        data = json.dumps(body, default=_json_default)
        for attempt in (1, 2):
            try:
                async with self._session.post(self._config.rpc_url, data=data, headers=_JSON_HEADERS,
                                              timeout=self._timeout) as response:
                    raw = await response.read()
                return json.loads(raw)
            except aiohttp.ClientConnectionError as exc:
                # a pooled connection the node closed (it restarted, or dropped an idle one) fails on reuse: once
                # more on a fresh connection. Safe for every call here: reads, and a signed transaction sent again
                # is the same transaction (the node answers "already known" or a nonce error the sender handles)
                if attempt == 2 or isinstance(exc, asyncio.TimeoutError):
                    raise
        raise AssertionError("unreachable")

    def _request(self, method: str, params: list[Any]) -> dict[str, Any]:
        self._request_id += 1
        return {"jsonrpc": "2.0", "method": method, "params": params, "id": self._request_id}

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        try:
            response = await self._post(self._request(method, params))
        except Exception as exc:
            raise map_exception(exc, chain=self._name, errors=self._errors, context=method) from exc
        if not isinstance(response, dict):
            raise RpcError(f"{method}: the node's answer is not a JSON-RPC object", chain=self._name, reason="bad response")
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
                mapped = map_rpc_error(answer.get("error") or {"message": str(answer)}, chain=self._name, context="batch")
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

    # ------------------------------------------------------------------ heights
    @_boundary
    async def latest_height(self) -> Height:
        return Height(_int(await self._rpc("eth_blockNumber", [])))

    @_boundary
    async def finalized_height(self) -> Height:
        finality = self._config.finality
        if finality == "finalized":
            block = await self._rpc("eth_getBlockByNumber", ["finalized", False])
            if block is None:
                raise RpcError("the node has no block tagged finalized", chain=self._name, reason="no finalized block")
            return Height(_int(block["number"]))
        latest = await self.latest_height()
        return Height(max(0, latest - int(finality)))

    # ------------------------------------------------------------------ origin side
    async def _get_logs(self, topic0: str, from_height: int, to_height: int) -> list[dict[str, Any]]:
        """Logs of the mailbox with ``topic0`` in the range, in chunks; halves the chunk when the node refuses."""
        chunk = self._config.log_chunk_blocks
        start = from_height
        out: list[dict[str, Any]] = []
        while start <= to_height:
            end = min(to_height, start + chunk - 1)
            try:
                logs = await self._rpc(
                    "eth_getLogs",
                    [{"address": self._mailbox, "topics": [topic0], "fromBlock": hex(start), "toBlock": hex(end)}],
                )
            except LogQueryTooLarge:
                if chunk == 1:
                    raise
                chunk = max(1, (end - start + 1) // 2)
                log.info("log_chunk_halved", chain=self._name, chunk_blocks=chunk)
                continue
            out.extend(lg for lg in logs if not lg.get("removed"))
            start = end + 1
        return out

    async def _timestamps_of(self, heights: set[int]) -> dict[int, float]:
        cache = self._timestamps
        missing = sorted(h for h in heights if h not in cache)
        if missing:
            blocks = await self._rpc_many([("eth_getBlockByNumber", [hex(h), False]) for h in missing])
            for h, block in zip(missing, blocks):
                if block is None:
                    raise RpcError(f"block {h} is missing on the node (reorg or pruned?)", chain=self._name, reason="block missing")
                cache[h] = float(_int(block["timestamp"]))
            while len(cache) > _TIMESTAMP_CACHE:
                cache.popitem(last=False)
        return {h: cache[h] for h in heights}

    @_boundary
    async def fetch_dispatched(self, from_height: Height, to_height: Height) -> list[DispatchedMessage]:
        if to_height < from_height:
            return []
        logs = await self._get_logs(abi.DISPATCH_TOPIC, from_height, to_height)
        if not logs:
            return []
        times = await self._timestamps_of({_int(lg["blockNumber"]) for lg in logs})
        found: list[DispatchedMessage] = []
        for lg in logs:
            tx_hash = lg["transactionHash"]
            height = _int(lg["blockNumber"])
            try:
                raw = abi.decode_single_bytes(bytes.fromhex(lg["data"][2:]))
                message = Message.decode(raw)
            except (MessageFormatError, ValueError) as exc:
                raise RpcError(f"Dispatch log {_int(lg['logIndex'])} of tx {tx_hash} does not hold a message: {exc}",
                               chain=self._name, reason="malformed dispatch log") from exc
            mid = keccak256(raw)
            topic_id = lg["topics"][1] if len(lg["topics"]) > 1 else ""
            if "0x" + mid.hex() != topic_id.lower():
                raise RpcError(
                    f"Dispatch log {_int(lg['logIndex'])} of tx {tx_hash}: message hashes to 0x{mid.hex()}, the log's id is {topic_id}",
                    chain=self._name, reason="dispatch id mismatch",
                )
            found.append(DispatchedMessage(message, raw, MessageId(mid), Height(height), TxHash(tx_hash),
                                           _int(lg["logIndex"]), times[height]))
        found.sort(key=lambda d: d.message.nonce)
        return found

    @_boundary
    async def mailbox_state(self, height: Height) -> MailboxState:
        block = hex(height)
        call = {"to": self._mailbox}
        root_hex, count_hex = await self._rpc_many([
            ("eth_call", [{**call, "data": "0x" + abi.ROOT.hex()}, block]),
            ("eth_call", [{**call, "data": "0x" + abi.COUNT.hex()}, block]),
        ])
        if len(root_hex) < 66 or len(count_hex) < 66:
            raise RpcError(f"mailbox {self._config.mailbox} returned no data at height {height} (no code there yet?)",
                           chain=self._name, reason="mailbox not deployed")
        return MailboxState(self._mailbox32, bytes.fromhex(root_hex[2:66]), _int(count_hex[:66]), Height(height))

    @_boundary
    async def processed_messages(self, from_height: Height, to_height: Height) -> list[tuple[MessageId, Height]]:
        if to_height < from_height:
            return []
        logs = await self._get_logs(abi.PROCESS_TOPIC, from_height, to_height)
        return [(MessageId(bytes.fromhex(lg["topics"][1][2:])), Height(_int(lg["blockNumber"]))) for lg in logs]

    # ------------------------------------------------------------------ destination side
    @_boundary
    async def delivered(self, ids: Sequence[MessageId]) -> list[bool]:
        """One ``deliveredMany(bytes32[])`` call per ``DELIVERED_MANY_CHUNK`` ids (concurrently); batched
        ``delivered(bytes32)`` calls against a mailbox without it."""
        if not ids:
            return []
        if self._delivered_many:
            chunks = [ids[i : i + DELIVERED_MANY_CHUNK] for i in range(0, len(ids), DELIVERED_MANY_CHUNK)]
            try:
                answers = await asyncio.gather(*(self._call(self._mailbox, abi.encode_delivered_many(c)) for c in chunks))
                flags = [f for answer in answers for f in abi.decode_bool_array(answer)]
                if len(flags) == len(ids):
                    return flags
            except (TxReverted, DecodingError, ValueError):
                pass  # a mailbox without deliveredMany reverts or answers nothing decodable
            log.info("delivered_many_unsupported", chain=self._name)
            self._delivered_many = False
        prefix = "0x" + abi.DELIVERED.hex()
        calls = [("eth_call", [{"to": self._mailbox, "data": prefix + bytes(i).hex()}, "latest"]) for i in ids]
        return [_int(r) != 0 for r in await self._rpc_many(calls)]

    def _calldata(self, batch: DeliveryBatch) -> bytes:
        cached = self._calldata_cache.get(id(batch))
        if cached is not None and cached[0] is batch:
            return cached[1]
        data = abi.encode_process_batch(batch)
        self._calldata_cache[id(batch)] = (batch, data)
        while len(self._calldata_cache) > 64:
            self._calldata_cache.popitem(last=False)
        return data

    async def _base_fee(self, max_age_s: float = 0.2) -> int:
        """The latest block's base fee; one read serves every caller for ``max_age_s`` (a burst of transfers
        would otherwise fetch the same block once per transaction)."""
        cached = self._base_fee_cache
        if cached is not None and self._clock() - cached[0] <= max_age_s:
            return cached[1]
        block = await self._rpc("eth_getBlockByNumber", ["latest", False])
        if block is None or block.get("baseFeePerGas") is None:
            raise RpcError("the latest block has no baseFeePerGas: EIP-1559 is required", chain=self._name, reason="no base fee")
        fee = _int(block["baseFeePerGas"])
        self._base_fee_cache = (self._clock(), fee)
        return fee

    async def _estimate(self, sender: str, to: str, data: bytes, value: int = 0) -> tuple[int, Fees]:
        tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "value": hex(value)}
        gas_hex, base_fee = await asyncio.gather(self._rpc("eth_estimateGas", [tx]), self._base_fee())
        gas_limit = math.ceil(_int(gas_hex) * self._config.gas.gas_limit_multiplier)
        return gas_limit, fees_for(base_fee, self._config.gas, chain=self._name)

    def _require_signer(self) -> LocalAccount:
        if self._signer is None:
            raise SigningError("this adapter has no signer key: deliveries need chains.<name>.signer",
                               chain=self._name, reason="no signer")
        return self._signer

    @_boundary
    async def estimate_delivery(self, batch: DeliveryBatch) -> CostEstimate:
        """Gas limit and EIP-1559 fees (``adapters.evm.fees``); raises ``TxReverted`` if the chain would refuse.

        ``eth_estimateGas`` on a large batch is a binary search of several full executions (188 ms of node
        CPU for 200 messages on anvil, against 39 ms for one ``eth_call``). So a real estimate calibrates gas
        per calldata byte (node estimate x ``gas_limit_multiplier``); the next batches are pre-flighted with
        one ``eth_call`` (which still raises the decoded revert) and sized by that ratio. The model is
        re-calibrated every ``RECALIBRATE_EVERY`` batches (the larger of per-byte and per-message, so batches of
        smaller or larger messages than the calibrating one are both covered) and after any reverted delivery (out of gas included).

        With ``simulate_deliveries = "adaptive"`` the ``eth_call`` is skipped once ``CLEAN_BEFORE_OPTIMISTIC``
        deliveries in a row succeeded: the relayer has already checked every signature, the root against its
        own tree and every proof, so what a simulation would catch is a recipient's ``handle`` reverting;
        the first such revert costs one batch's gas, switches simulation back on, and the retry is bisected.
        """
        signer = self._require_signer()
        data = self._calldata(batch)
        if self._gas_per_byte is None or self._estimates_since_calibration >= RECALIBRATE_EVERY:
            gas, fees = await self._estimate(signer.address, self._mailbox, data)
            self._gas_per_byte, self._gas_per_item = gas / len(data), gas / len(batch.items)
            self._estimates_since_calibration = 0
            return CostEstimate(gas, fees.max_fee_per_gas, fees.priority_fee_per_gas)
        self._estimates_since_calibration += 1
        if self._config.simulate_deliveries == "always" or self._clean_since_revert < CLEAN_BEFORE_OPTIMISTIC:
            tx = {"from": signer.address, "to": self._mailbox, "data": "0x" + data.hex()}
            _, base_fee = await asyncio.gather(self._rpc("eth_call", [tx, "latest"]), self._base_fee())
        else:
            base_fee = await self._base_fee()
        fees = fees_for(base_fee, self._config.gas, chain=self._name)
        gas = math.ceil(max(self._gas_per_byte * len(data), self._gas_per_item * len(batch.items)))
        return CostEstimate(gas, fees.max_fee_per_gas, fees.priority_fee_per_gas)

    @_boundary
    async def submit_delivery(self, batch: DeliveryBatch, estimate: CostEstimate | None = None) -> SubmittedTx:
        signer = self._require_signer()
        if estimate is None:
            estimate = await self.estimate_delivery(batch)
        fees = Fees(estimate.max_fee_per_gas, estimate.priority_fee_per_gas)
        return await self._send(signer, self._mailbox, self._calldata(batch), estimate.gas, fees)

    # ------------------------------------------------------------------ sending
    def _load_account(self, key: str) -> LocalAccount:
        try:
            return Account.from_key(key)
        except Exception:  # noqa: BLE001 - eth_keys raises several types; none may echo the key
            raise SigningError("the signer key is not a valid secp256k1 private key", chain=self._name,
                               reason="bad key") from None

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
                return _int(await self._rpc("eth_getTransactionCount", [address, "pending"]))
            manager = self._nonces[key] = NonceManager(address, pending, chain=self._name)
        return manager

    def _signer_fn(self, account: LocalAccount, record: _SentTx) -> Callable[[int], SignedTx]:
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

    def _remember(self, tx_hash: str, record: _SentTx) -> None:
        self._sent[tx_hash] = record
        self._siblings.setdefault((record.sender.lower(), record.nonce), []).append(tx_hash)
        while len(self._sent) > _SENT_CACHE:
            _, old = self._sent.popitem(last=False)
            self._siblings.pop((old.sender.lower(), old.nonce), None)

    async def _send(self, account: LocalAccount, to: str, data: bytes, gas: int, fees: Fees, value: int = 0) -> SubmittedTx:
        record = _SentTx(account.address, -1, to, data, value, gas, fees)
        signed = await self._nonce_manager(account.address).send(self._signer_fn(account, record), self._broadcast)
        record.nonce = signed.nonce
        self._remember(signed.tx_hash, record)
        return SubmittedTx(TxHash(signed.tx_hash), signed.nonce, account.address, self._clock(), gas, fees.max_fee_per_gas)

    # ------------------------------------------------------------------ confirming
    @_boundary
    async def confirm(self, tx: SubmittedTx) -> TxOutcome:
        receipt = await self._rpc("eth_getTransactionReceipt", [tx.tx_hash])
        if receipt is not None:
            return await self._outcome(tx, receipt)
        # a same-nonce sibling we sent (the original of a replacement, or a replacement of it) may have been mined
        for other in self._siblings.get((tx.sender.lower(), tx.nonce), []):
            if other != tx.tx_hash:
                sibling_receipt = await self._rpc("eth_getTransactionReceipt", [other])
                if sibling_receipt is not None:
                    return await self._outcome(tx, sibling_receipt)
        node_tx = await self._rpc("eth_getTransactionByHash", [tx.tx_hash])
        if node_tx is None:
            manager = self._nonces.get(tx.sender.lower())
            if manager is not None:
                manager.invalidate()
            return TxOutcome(TxState.DROPPED, reason="neither mined nor in the node's pool")
        if node_tx.get("blockNumber"):
            return TxOutcome(TxState.PENDING, height=Height(_int(node_tx["blockNumber"])), reason="mined, receipt not yet served")
        age = self._clock() - tx.submitted_at
        account = self._accounts.get(tx.sender.lower())
        if (account is not None and age > GAP_CHECK_AFTER_S
                and _int(await self._rpc("eth_getTransactionCount", [tx.sender, "pending"])) < tx.nonce):
            return await self._fill_nonce_gap(account, tx)
        if age < self._config.gas.stuck_after_s:
            return TxOutcome(TxState.PENDING)
        return await self._replace(tx, node_tx)

    async def _fill_nonce_gap(self, account: LocalAccount, tx: SubmittedTx) -> TxOutcome:
        """Our tx waits behind a nonce the node no longer holds: fill the gap with 0-value self-transfers."""
        fees = fees_for(await self._base_fee(), self._config.gas, chain=self._name)
        filler = _SentTx(account.address, -1, account.address, b"", 0, 21_000, fees)
        filled = await self._nonce_manager(account.address).fill_gap(tx.nonce, self._signer_fn(account, filler), self._broadcast)
        return TxOutcome(TxState.PENDING, reason=f"queued behind a nonce gap; filled {len(filled)} nonce(s)")

    async def _outcome(self, tx: SubmittedTx, receipt: dict[str, Any]) -> TxOutcome:
        height = _int(receipt["blockNumber"])
        latest = _int(await self._rpc("eth_blockNumber", []))
        if latest - height + 1 < self._config.confirmation_depth:
            return TxOutcome(TxState.PENDING, height=Height(height), reason=f"{latest - height + 1} of {self._config.confirmation_depth} confirmations")
        gas_used = _int(receipt.get("gasUsed"))
        fee = gas_used * _int(receipt.get("effectiveGasPrice")) + _int(receipt.get("l1Fee"))
        if _int(receipt.get("status")) == 1:
            ids = tuple(
                MessageId(bytes.fromhex(lg["topics"][1][2:]))
                for lg in receipt.get("logs", [])
                if lg["address"].lower() == self._mailbox and lg["topics"] and lg["topics"][0] == abi.PROCESS_TOPIC
            )
            if _int(receipt.get("to")) == _int(self._mailbox):
                self._clean_since_revert += 1
            return TxOutcome(TxState.CONFIRMED, Height(height), gas_used, fee, ids)
        reason = await self._revert_reason(receipt)
        self._gas_per_byte = None  # a revert may be out of gas: the next delivery is estimated by the node
        self._clean_since_revert = 0
        return TxOutcome(TxState.REVERTED, Height(height), gas_used, fee, reason=reason)

    async def _revert_reason(self, receipt: dict[str, Any]) -> str:
        """Replay a reverted transaction as a call on the state before its block, to read the revert data."""
        tx_hash = receipt["transactionHash"]
        node_tx = await self._rpc("eth_getTransactionByHash", [tx_hash])
        if node_tx is None:
            return "reverted (transaction no longer served)"
        gas = _int(node_tx.get("gas"))
        if gas and _int(receipt.get("gasUsed")) >= gas:
            return "out of gas"
        call = {"from": node_tx["from"], "to": node_tx.get("to"), "data": node_tx.get("input", "0x"),
                "value": node_tx.get("value", "0x0"), "gas": node_tx.get("gas")}
        try:
            await self._rpc("eth_call", [call, hex(max(0, _int(receipt["blockNumber"]) - 1))])
        except TxReverted as exc:
            return exc.reason
        except AdapterError as exc:
            return f"reverted (replay failed: {exc.reason})"
        return "reverted (replay before its block succeeded: state changed within the block)"

    async def _replace(self, tx: SubmittedTx, node_tx: dict[str, Any]) -> TxOutcome:
        account = self._accounts.get(tx.sender.lower())
        if account is None:
            return TxOutcome(TxState.PENDING, reason="stuck, but not sent with a key this adapter holds")
        record = self._sent.get(tx.tx_hash)
        if record is None:  # sent before a restart: rebuild it from what the node holds
            max_fee = _int(node_tx.get("maxFeePerGas") or node_tx.get("gasPrice"))
            tip = _int(node_tx.get("maxPriorityFeePerGas") or node_tx.get("gasPrice"))
            record = _SentTx(account.address, tx.nonce, node_tx["to"], bytes.fromhex(node_tx["input"][2:]),
                             _int(node_tx.get("value")), _int(node_tx["gas"]), Fees(max_fee, tip))
        try:
            new_fees = bumped(record.fees, await self._base_fee(), self._config.gas, chain=self._name)
        except FeeTooHigh as exc:
            log.warning("stuck_tx_not_bumped", chain=self._name, tx=tx.tx_hash, reason=exc.reason)
            return TxOutcome(TxState.PENDING, reason=f"stuck: {exc.reason}")
        replacement = _SentTx(record.sender, tx.nonce, record.to, record.data, record.value, record.gas, new_fees)
        try:
            signed = await self._nonce_manager(account.address).replace(tx.nonce, self._signer_fn(account, replacement), self._broadcast)
        except NonceTooLow:
            return TxOutcome(TxState.PENDING, reason="stuck tx was mined while replacing it")
        except ReplacementUnderpriced as exc:
            return TxOutcome(TxState.PENDING, reason=f"stuck: replacement refused ({exc.reason})")
        self._remember(signed.tx_hash, replacement)
        log.info("stuck_tx_replaced", chain=self._name, tx=tx.tx_hash, replacement=signed.tx_hash,
                 nonce=tx.nonce, max_fee_gwei=new_fees.max_fee_per_gas / GWEI)
        new = SubmittedTx(TxHash(signed.tx_hash), tx.nonce, tx.sender, self._clock(), record.gas, new_fees.max_fee_per_gas)
        return TxOutcome(TxState.PENDING, replacement=new, reason="replaced with higher fees")

    @_boundary
    async def tx_height(self, tx_hash: str) -> Height:
        """Height a transaction was mined at; ``TxNotFound`` while it is not mined."""
        receipt = await self._rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:
            raise TxNotFound(f"transaction {tx_hash} is not mined", chain=self._name)
        return Height(_int(receipt["blockNumber"]))

    # ------------------------------------------------------------------ health
    @_boundary
    async def health(self) -> ChainHealth:
        started = time.perf_counter()
        try:
            latest = await self.latest_height()
        except AdapterError as exc:
            return ChainHealth(False, None, None, time.perf_counter() - started, detail=str(exc)[:300])
        latency = time.perf_counter() - started
        try:
            finalized: Height | None = await self.finalized_height()
            detail = ""
        except AdapterError as exc:
            finalized, detail = None, f"finalized height unavailable: {exc.reason}"
        return ChainHealth(True, latest, finalized, latency, detail=detail)

    @_boundary
    async def chain_stats(self, blocks: int = 20) -> ChainStats:
        """``eth_feeHistory`` over the last ``blocks`` blocks plus their first and last headers."""
        blocks = max(2, min(blocks, 1024))
        history = await self._rpc("eth_feeHistory", [hex(blocks), "latest", []])
        oldest = _int(history["oldestBlock"])
        ratios = [float(r) for r in history.get("gasUsedRatio") or []]
        fees = [_int(f) for f in history.get("baseFeePerGas") or []]
        newest = oldest + len(ratios) - 1
        first, last, pending = await asyncio.gather(
            self._rpc("eth_getBlockByNumber", [hex(oldest), False]),
            self._rpc("eth_getBlockByNumber", [hex(newest), False]),
            self._rpc("eth_getBlockTransactionCountByNumber", ["pending"]),
        )
        span = _int(last["timestamp"]) - _int(first["timestamp"])
        block_time = span / (newest - oldest) if newest > oldest and span > 0 else 0.0
        return ChainStats(
            height=Height(newest), blocks=len(ratios), block_time_s=block_time, gas_limit=_int(last["gasLimit"]),
            gas_used_ratio=sum(ratios) / len(ratios) if ratios else 0.0, base_fee=fees[-1] if fees else 0,
            base_fee_trend=(fees[-1] / fees[0]) if fees and fees[0] else 1.0,
            pending_txs=_int(pending) if pending is not None else None, native_decimals=18,  # wei per ether
        )

    native_decimals = 18  # wei per ether

    @_boundary
    async def wallet_balance(self) -> WalletBalance | None:
        """The relayer signer's balance (``eth_getBalance`` at latest), in wei."""
        if self._signer is None:
            return None
        wei = _int(await self._rpc("eth_getBalance", [self._signer.address, "latest"]))
        return WalletBalance(self._name, self._signer.address, wei, self.native_decimals)

    async def close(self) -> None:
        session, self._session = self._session, None
        try:
            if session is not None and not session.closed:
                await session.close()
            await self._provider.disconnect()
        except Exception as exc:  # noqa: BLE001 - closing must not fail the caller's shutdown
            log.debug("close_failed", chain=self._name, error=type(exc).__name__)

    # ------------------------------------------------------------------ MessageSender
    async def _wait_mined(self, tx_hash: str) -> dict[str, Any]:
        timeout = max(60.0, 3 * self._config.gas.stuck_after_s)
        deadline = time.monotonic() + timeout
        while True:
            receipt = await self._rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise TxNotFound(f"transaction {tx_hash} not mined within {timeout:.0f}s", chain=self._name)
            await asyncio.sleep(min(self._config.poll_interval_s, 0.25))

    async def _transact(self, account: LocalAccount, to: str, data: bytes, what: str) -> dict[str, Any]:
        """Estimate, send, wait for inclusion; the receipt, or ``TxReverted`` with the decoded reason."""
        gas, fees = await self._estimate(account.address, to, data)
        sent = await self._send(account, to, data, gas, fees)
        receipt = await self._wait_mined(sent.tx_hash)
        if _int(receipt.get("status")) != 1:
            reason = await self._revert_reason(receipt)
            raise TxReverted(f"{what} tx {sent.tx_hash} reverted: {reason}", chain=self._name, reason=reason)
        return receipt

    @_boundary
    async def dispatch_messages(
        self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes]
    ) -> tuple[TxHash, list[MessageId]]:
        if not bodies:
            raise MessageFormatError("dispatch_messages needs at least one body")
        account = self._account_for(sender_key)
        data = abi.encode_dispatch_batch(destination, address_to_bytes32(recipient), bodies)
        receipt = await self._transact(account, self._mailbox, data, "dispatchBatch")
        ids = [
            MessageId(bytes.fromhex(lg["topics"][1][2:]))
            for lg in receipt.get("logs", [])
            if lg["address"].lower() == self._mailbox and lg["topics"][0] == abi.DISPATCH_TOPIC
        ]
        return TxHash(receipt["transactionHash"]), ids

    def _token(self, symbol: str) -> str:
        token = self._config.tokens.get(symbol)
        if token is None:
            known = ", ".join(sorted(self._config.tokens)) or "none configured"
            raise UnknownToken(f"no token {symbol!r} on {self._name}; known symbols: {known}", chain=self._name,
                               reason="unknown token")
        return token.address

    @_boundary
    async def send_token(
        self, sender_key: str, symbol: str, amount: int, destination: Domain, recipient: bytes
    ) -> tuple[TxHash, MessageId]:
        token = self._token(symbol)
        bridge = self._config.token_bridge
        if bridge is None:
            raise UnknownToken(f"chains.{self._name}.token_bridge is not set: cannot send tokens", chain=self._name,
                               reason="no token bridge")
        account = self._account_for(sender_key)
        await self._check_route(destination, symbol, amount)
        allowance = _int("0x" + (await self._call(token, abi.encode_allowance(account.address, bridge))).hex())
        if allowance < amount:
            await self._transact(account, token, abi.encode_approve(bridge, amount), "approve")
        data = abi.encode_transfer_remote(to_checksum_address(token), destination, address_to_bytes32(recipient), amount)
        receipt = await self._transact(account, bridge, data, "transferRemote")
        for lg in receipt.get("logs", []):
            if lg["topics"] and lg["topics"][0] == abi.SENT_TRANSFER_REMOTE_TOPIC:
                return TxHash(receipt["transactionHash"]), MessageId(bytes.fromhex(lg["topics"][1][2:]))
        for lg in receipt.get("logs", []):
            if lg["address"].lower() == self._mailbox and lg["topics"][0] == abi.DISPATCH_TOPIC:
                return TxHash(receipt["transactionHash"]), MessageId(bytes.fromhex(lg["topics"][1][2:]))
        raise RpcError(f"transferRemote tx {receipt['transactionHash']} emitted no SentTransferRemote event",
                       chain=self._name, reason="no transfer event")

    async def _check_route(self, destination: int, symbol: str, amount: int) -> None:
        """The TokenBridge's own route check, asked before anything is sent (no approval for a transfer the
        bridge would refuse); the chain enforces it regardless. Reasons read as the contract's custom errors."""
        token = to_checksum_address(self._token(symbol))
        scale, max_amount = await self.bridge_route(destination, symbol)
        if scale == 0:
            reason = f"NoRoute({destination},{token})"
        elif amount % scale:
            reason = f"AmountNotRepresentable({destination},{token},{amount},{scale})"
        elif max_amount != ROUTE_UNBOUNDED and amount > max_amount:
            reason = f"AmountAboveRouteMax({destination},{token},{amount},{max_amount})"
        else:
            return
        raise TxReverted(f"transferRemote would revert: {reason}", chain=self._name, reason=reason)

    @_boundary
    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        """``transfer(to, amount)`` on the token; returns the hash once the node accepted it (not mined yet)."""
        token = self._token(symbol)
        account = self._account_for(sender_key)
        data = abi.encode_transfer(to, amount)
        gas, fees = await self._estimate(account.address, token, data)
        sent = await self._send(account, token, data, gas, fees)
        return sent.tx_hash

    @_boundary
    async def unsigned_transaction(self, sender: str, kind: str, *, to: str, amount: int = 0, symbol: str = "",
                                   data: bytes = b"") -> dict[str, Any]:
        """An EIP-1559 transaction (``type`` 2) for ``sender`` to sign: chainId, to, data, value, gas (estimated,
        with the configured multiplier), maxFeePerGas, maxPriorityFeePerGas; the wallet adds the nonce."""
        if kind == "transfer":
            target, payload = self._token(symbol), abi.encode_transfer(to, amount)
        elif kind == "call":
            target, payload = to.lower(), data
        else:
            raise ValueError(f"no unsigned transaction for kind {kind!r}")
        gas, fees = await self._estimate(sender, target, payload)
        return {"type": "0x2", "chainId": hex(self._config.chain_id), "from": to_checksum_address(sender),
                "to": to_checksum_address(target), "data": "0x" + payload.hex(), "value": "0x0", "gas": hex(gas),
                "maxFeePerGas": hex(fees.max_fee_per_gas), "maxPriorityFeePerGas": hex(fees.priority_fee_per_gas)}

    @_boundary
    async def call_contract(self, sender_key: str, to: str, data: bytes) -> TxHash:
        """A contract call from ``sender_key``'s account; eth_estimateGas refuses one that would revert."""
        account = self._account_for(sender_key)
        target = to.lower()
        gas, fees = await self._estimate(account.address, target, data)
        sent = await self._send(account, target, data, gas, fees)
        return sent.tx_hash

    @_boundary
    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        receipt = await self._rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:
            raise TxNotFound(f"transaction {tx_hash} is not mined", chain=self._name)
        return Height(_int(receipt["blockNumber"])), _int(receipt.get("status")) == 1

    @_boundary
    async def tx_receipt(self, tx_hash: TxHash) -> TxReceipt:
        """``eth_getTransactionReceipt`` (height, status, gas used x effective gas price, from, to) and
        ``eth_getTransactionByHash`` (input, value), in one JSON-RPC batch: everything the router checks before it
        counts an intent."""
        receipt, tx = await self._rpc_many([("eth_getTransactionReceipt", [tx_hash]),
                                            ("eth_getTransactionByHash", [tx_hash])])
        if receipt is None:
            raise TxNotFound(f"transaction {tx_hash} is not mined", chain=self._name)
        if tx is None:  # mined a moment ago and the node's answers disagree: ask again next time
            raise TxNotFound(f"transaction {tx_hash} has a receipt but no body yet", chain=self._name)
        price = _int(receipt.get("effectiveGasPrice") or tx.get("gasPrice"))
        return TxReceipt(
            height=Height(_int(receipt["blockNumber"])), success=_int(receipt.get("status")) == 1,
            fee_paid=_int(receipt.get("gasUsed")) * price, sender=str(receipt.get("from") or "").lower(),
            to=str(receipt.get("to") or "").lower(), input=bytes.fromhex(str(tx.get("input") or "0x")[2:]),
            value=_int(tx.get("value")), native_decimals=self.native_decimals)

    @_boundary
    async def token_balance(self, symbol: str, holder: str) -> int:
        return int.from_bytes(await self._call(self._token(symbol), abi.encode_balance_of(holder)) or b"\0", "big")

    @_boundary
    async def token_supply(self, symbol: str) -> int:
        return int.from_bytes(await self._call(self._token(symbol), abi.TOTAL_SUPPLY) or b"\0", "big")

    # ------------------------------------------------------------------ solvency audit (relayer/daemon/audit.py)
    def _bridge(self) -> str:
        if self._config.token_bridge is None:
            raise UnknownToken(f"chains.{self._name}.token_bridge is not set", chain=self._name, reason="no token bridge")
        return self._config.token_bridge.lower()

    async def _eth_calls(self, calls: Sequence[tuple[str, bytes]]) -> list[bytes]:
        results = await self._rpc_many([("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])
                                        for to, data in calls])
        return [bytes.fromhex(str(r)[2:]) for r in results]

    @_boundary
    async def bridge_home_of(self, symbol: str) -> tuple[int, bytes]:
        """(home domain, home token as bytes32) of the configured token ``symbol``, as this chain's TokenBridge
        records it (``homeOf``): a wrapped token's home, or (this domain, the token's address) for any other."""
        token = self._token(symbol)
        (raw,) = await self._eth_calls([(self._bridge(), abi.encode_home_of(token))])
        domain, home = abi.decode_words(raw, 2)
        if domain == 0 and home == 0:
            return int(self._domain), address_to_bytes32(token)
        return domain, home.to_bytes(32, "big")

    @_boundary
    async def bridge_holding(self, home_domain: int, home_token: bytes) -> BridgeHolding | None:
        """The bridge's position in one token identity, read from the chain: the home token's balance held by
        the bridge when the token is homed here, else the totalSupply of the bridge's wrapped token
        (``wrappedToken(home)``); None when the bridge has no wrapped token for it."""
        bridge = self._bridge()
        if home_domain == int(self._domain):
            token = "0x" + home_token[12:].hex()
            balance, decimals = await self._eth_calls([(token, abi.encode_balance_of(bridge)), (token, abi.DECIMALS)])
            return BridgeHolding(to_checksum_address(token), False, abi.decode_words(balance, 1)[0],
                                 abi.decode_words(decimals, 1)[0])
        (raw,) = await self._eth_calls([(bridge, abi.encode_wrapped_token(home_domain, home_token))])
        address = abi.decode_words(raw, 1)[0]
        if address == 0:
            return None
        token = "0x" + address.to_bytes(20, "big").hex()
        supply, decimals = await self._eth_calls([(token, abi.TOTAL_SUPPLY), (token, abi.DECIMALS)])
        return BridgeHolding(to_checksum_address(token), True, abi.decode_words(supply, 1)[0],
                             abi.decode_words(decimals, 1)[0])

    @_boundary
    async def bridge_route(self, destination: int, symbol: str) -> tuple[int, int]:
        """(scale, maxAmount) of the TokenBridge route for ``symbol`` to ``destination``; (0, 0) when none."""
        (raw,) = await self._eth_calls([(self._bridge(), abi.encode_routes(destination, self._token(symbol)))])
        scale, max_amount = abi.decode_words(raw, 2)
        return scale, max_amount


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
