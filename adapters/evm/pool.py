"""EVM liquidity pools (contracts/src/LiquidityPool.sol; ``chains.<name>.tokens.<symbol>.pool``): the fast route of a
token issued natively on several chains. A deposit here is paid out of the destination's pool once the validators
attest it (a Mailbox message to that pool); per epoch and direction one settlement message carries the epoch's total,
and each pool then burns or mints its net (``adapters.capabilities.LiquidityPools``)."""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from adapters.base import RpcError, TxHash
from adapters.capabilities import DeferredPayout, PoolEpoch, PoolState
from adapters.evm import abi
from adapters.evm.chain import evm_boundary
from adapters.evm.errors import SigningError
from adapters.evm.sender import EvmSender
from adapters.message import Domain, MessageId, address_to_bytes32
from adapters.tokens import UnknownToken

_DEPOSIT = abi.selector("deposit(uint32,bytes32,uint256)")
_SETTLE = abi.selector("settle(uint32,uint64)")
_COMPLETE = abi.selector("completeSettlement(uint32,uint64)")
_RELEASE = abi.selector("releaseDeferred(uint256)")
_CURRENT_EPOCH = abi.selector("currentEpoch()")
_EPOCH_SECONDS = abi.selector("epochSeconds()")
_FREE = abi.selector("freeLiquidity()")
_DEFERRED_TOTAL = abi.selector("deferredTotal()")
_DEFERRED_COUNT = abi.selector("deferredCount()")
_DEFERRED = abi.selector("deferred(uint256)")
_PER_EPOCH = {name: abi.selector(f"{name}(uint32,uint64)")
              for name in ("sent", "sentCount", "received", "receivedCount", "settledOut")}
_SETTLEMENT_IN = abi.selector("settlementIn(uint32,uint64)")
DEPOSITED_TOPIC = abi.topic("Deposited(bytes32,uint32,uint64,bytes32,uint256)")
SETTLEMENT_STATUS = ("none", "pending", "done")
READ_BATCH = 200


def encode_deposit(destination: int, recipient: bytes, amount: int) -> bytes:
    """Calldata of ``LiquidityPool.deposit(destination, recipient, amount)`` (``recipient``: 32 bytes)."""
    return _DEPOSIT + abi_encode(["uint32", "bytes32", "uint256"], [destination, recipient, amount])


class EvmLiquidityPool(EvmSender):
    """The chain's liquidity pools, one per pooled token (``tokens.<symbol>.pool``)."""

    def pooled_tokens(self) -> list[str]:
        return sorted(s for s, t in self._config.tokens.items() if t.pool is not None)

    def _pool(self, symbol: str) -> str:
        token = self._config.tokens.get(symbol)
        if token is None or token.pool is None:
            raise UnknownToken(f"{symbol} has no liquidity pool on {self._name} (chains.{self._name}.tokens."
                               f"{symbol}.pool)", chain=self._name, reason="no pool")
        return token.pool

    @evm_boundary
    async def pool_deposit(self, sender_key: str, symbol: str, amount: int, destination: Domain,
                           recipient: bytes) -> tuple[TxHash, MessageId]:
        """Deposit ``amount`` into the pool for ``recipient`` on ``destination`` (approving the pool first when
        needed); the transaction and the message id of the payout instruction."""
        pool, token = self._pool(symbol), self._token(symbol)
        account = self._account_for(sender_key)
        allowance = int.from_bytes(await self._call(token, abi.encode_allowance(account.address, pool)), "big")
        if allowance < amount:
            await self._transact(account, token, abi.encode_approve(pool, amount), "approve")
        data = encode_deposit(destination, address_to_bytes32(recipient), amount)
        receipt = await self._transact(account, pool, data, "LiquidityPool.deposit", dispatches=True)
        for lg in receipt.get("logs", []):
            if lg["address"].lower() == pool.lower() and lg["topics"] and lg["topics"][0] == DEPOSITED_TOPIC:
                return TxHash(receipt["transactionHash"]), MessageId(bytes.fromhex(lg["topics"][1][2:]))
        raise RpcError(f"deposit tx {receipt['transactionHash']} emitted no Deposited event", chain=self._name,
                       reason="no deposit event")

    @evm_boundary
    async def pool_state(self, symbol: str) -> PoolState:
        pool = self._pool(symbol)
        words = await self._eth_calls([(pool, s) for s in (_CURRENT_EPOCH, _EPOCH_SECONDS, _FREE, _DEFERRED_TOTAL,
                                                             _DEFERRED_COUNT)])
        epoch, seconds, free, owed, count = (abi_decode(["uint256"], w)[0] for w in words)
        (balance,) = await self._eth_calls([(self._token(symbol), abi.encode_balance_of(pool))])
        return PoolState(symbol, pool.lower(), int(epoch), int(seconds), int.from_bytes(balance, "big"), int(free),
                         int(owed), int(count))

    @evm_boundary
    async def pool_epochs(self, symbol: str, remote: int, epochs: Sequence[int]) -> list[PoolEpoch]:
        """What the pool holds about each of ``epochs`` with the pool of domain ``remote``."""
        pool = self._pool(symbol)
        found: list[PoolEpoch] = []
        for start in range(0, len(epochs), READ_BATCH // 6):
            chunk = epochs[start:start + READ_BATCH // 6]
            calls = [(pool, selector + abi_encode(["uint32", "uint64"], [remote, e]))
                     for e in chunk for selector in (*_PER_EPOCH.values(), _SETTLEMENT_IN)]
            words = await self._eth_calls(calls)
            for i, e in enumerate(chunk):
                found.append(_epoch(remote, e, words[6 * i:6 * i + 6]))
        return found

    @evm_boundary
    async def deferred_payouts(self, symbol: str, from_id: int = 1) -> list[DeferredPayout]:
        pool = self._pool(symbol)
        (raw,) = await self._eth_calls([(pool, _DEFERRED_COUNT)])
        count = abi_decode(["uint256"], raw)[0]
        found: list[DeferredPayout] = []
        for start in range(max(1, from_id), count + 1, READ_BATCH):
            ids = range(start, min(count, start + READ_BATCH - 1) + 1)
            words = await self._eth_calls([(pool, _DEFERRED + abi_encode(["uint256"], [i])) for i in ids])
            for payout_id, word in zip(ids, words, strict=True):
                recipient, origin, amount = abi_decode(["address", "uint32", "uint256"], word)
                if amount:
                    found.append(DeferredPayout(payout_id, int(origin), recipient.lower(), int(amount)))
        return found

    @evm_boundary
    async def pool_settle(self, symbol: str, remote: int, epoch: int) -> TxHash:
        return await self._pool_call(symbol, _SETTLE + abi_encode(["uint32", "uint64"], [remote, epoch]),
                                     "LiquidityPool.settle", dispatches=True)

    @evm_boundary
    async def pool_complete(self, symbol: str, remote: int, epoch: int) -> TxHash:
        return await self._pool_call(symbol, _COMPLETE + abi_encode(["uint32", "uint64"], [remote, epoch]),
                                     "LiquidityPool.completeSettlement")

    @evm_boundary
    async def pool_release(self, symbol: str, payout_id: int) -> TxHash:
        return await self._pool_call(symbol, _RELEASE + abi_encode(["uint256"], [payout_id]),
                                     "LiquidityPool.releaseDeferred")

    async def _pool_call(self, symbol: str, data: bytes, what: str, *, dispatches: bool = False) -> TxHash:
        """A permissionless pool call from the relayer's wallet."""
        if self._signer is None:
            raise SigningError(f"{what} needs chains.<name>.signer", chain=self._name, reason="no signer")
        receipt = await self._transact(self._signer, self._pool(symbol), data, what, dispatches=dispatches)
        return TxHash(receipt["transactionHash"])


def _epoch(remote: int, epoch: int, words: Sequence[bytes]) -> PoolEpoch:
    sent, sent_count, received, received_count, settled_out = (abi_decode(["uint256"], w)[0] for w in words[:5])
    status, remote_sent, remote_count, adjusted = abi_decode(["uint8", "uint256", "uint256", "int256"], words[5])
    return PoolEpoch(remote, epoch, int(sent), int(sent_count), int(received), int(received_count), bool(settled_out),
                     SETTLEMENT_STATUS[int(status)], int(remote_sent), int(remote_count), int(adjusted))
