"""EVM token-bridge queue: inbound transfers ``TokenBridge`` queued for want of rate-limit room, the room of a
bucket, and ``releaseQueued`` from the relayer's wallet (``adapters.capabilities.BridgeQueue``); the buckets
themselves, both directions per remote domain and token, in one JSON-RPC batch (``BridgeRateLimits``); and whether
the bridge would refuse an outbound transfer for its route or its bucket (``BridgeRefusals``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from adapters.capabilities import BridgeRateLimit, QueuedTransfer, RateLimitBucket
from adapters.evm import abi
from adapters.evm.chain import evm_boundary
from adapters.evm.errors import SigningError
from adapters.evm.sender import EvmSender, route_problem
from adapters.message import Domain

_QUEUED_COUNT = abi.selector("queuedCount()")
_QUEUED = abi.selector("queued(uint256)")
_ROOM = abi.selector("rateLimitRoom(uint32,address,bool)")
_RELEASE = abi.selector("releaseQueued(uint256)")
UNLIMITED = 2**256 - 1
READ_BATCH = 200  # queued entries read in one JSON-RPC batch


class EvmBridgeQueue(EvmSender):
    """The chain's ``TokenBridge`` queue (``chains.<name>.token_bridge``), paid out from the relayer's wallet."""

    def can_release(self) -> bool:
        return self._config.token_bridge is not None and self._signer is not None

    @evm_boundary
    async def queued_transfers(self, from_id: int) -> list[QueuedTransfer]:
        bridge = self._bridge()
        (raw,) = await self._eth_calls([(bridge, _QUEUED_COUNT)])
        count = abi_decode(["uint256"], raw)[0]
        found: list[QueuedTransfer] = []
        for start in range(max(1, from_id), count + 1, READ_BATCH):
            ids = range(start, min(count, start + READ_BATCH - 1) + 1)
            words = await self._eth_calls([(bridge, _QUEUED + abi_encode(["uint256"], [i])) for i in ids])
            for queue_id, word in zip(ids, words, strict=True):
                origin, token, recipient, amount = abi_decode(["uint32", "address", "address", "uint256"], word)
                if amount:
                    found.append(QueuedTransfer(queue_id, origin, token.lower(), recipient.lower(), amount))
        return found

    @evm_boundary
    async def inbound_room(self, origin: int, token: str) -> tuple[int, int]:
        (raw,) = await self._eth_calls([(self._bridge(), _ROOM + abi_encode(["uint32", "address", "bool"],
                                                                             [origin, token, True]))])
        available, capacity, _rate = abi_decode(["uint256", "uint256", "uint256"], raw)
        return (UNLIMITED, 0) if capacity == 0 else (available, capacity)

    def bridge_tokens(self) -> list[str]:
        if self._config.token_bridge is None:
            return []
        return sorted(s for s, t in self._config.tokens.items() if t.bridged)

    @evm_boundary
    async def bridge_rate_limits(self, remote_domains: Sequence[int], symbols: Sequence[str]) -> list[BridgeRateLimit]:
        bridge = self._bridge()
        pairs = [(d, s, self._token(s)) for d in remote_domains for s in symbols]
        calls = [(bridge, _ROOM + abi_encode(["uint32", "address", "bool"], [d, token, inbound]))
                 for d, _s, token in pairs for inbound in (False, True)]
        words = await self._eth_calls(calls) if calls else []
        buckets = [_bucket(w) for w in words]
        return [BridgeRateLimit(d, s, token.lower(), buckets[2 * i], buckets[2 * i + 1])
                for i, (d, s, token) in enumerate(pairs)]

    @evm_boundary
    async def bridge_refusal(self, symbol: str, amount: int, destination: Domain) -> str | None:
        """The route's check (``bridge_route``), then the outbound bucket's room: the custom error ``transferRemote``
        would revert with, with its arguments as the contract gives them; ``RateLimited``'s last is the seconds until
        the bucket has room for ``amount`` (2**256 - 1: it does not refill)."""
        token = to_checksum_address(self._token(symbol))
        problem = route_problem(destination, token, amount, *await self.bridge_route(destination, symbol))
        if problem is not None:
            return problem
        (limits,) = await self.bridge_rate_limits([destination], [symbol])
        out = limits.outbound
        if out.limited and amount > out.capacity:
            return f"AmountAboveCapacity({destination},{token},{amount},{out.capacity})"
        if out.limited and amount > out.room:
            wait = math.ceil((amount - out.room) / out.rate_per_s) if out.rate_per_s else 2**256 - 1
            return f"RateLimited({destination},{token},{amount},{out.room},{wait})"
        return None

    @evm_boundary
    async def release_queued(self, queue_id: int) -> str:
        if self._signer is None:
            raise SigningError("releasing a queued transfer needs chains.<name>.signer", chain=self._name,
                               reason="no signer")
        receipt = await self._transact(self._signer, self._bridge(),
                                       _RELEASE + abi_encode(["uint256"], [queue_id]), "TokenBridge.releaseQueued")
        return str(receipt["transactionHash"])


def _bucket(word: bytes) -> RateLimitBucket:
    """``rateLimitRoom``'s answer: (available, capacity, ratePerSecond); capacity 0: no limit."""
    available, capacity, rate = abi_decode(["uint256", "uint256", "uint256"], word)
    return RateLimitBucket(capacity, rate, 0 if capacity == 0 else available)
