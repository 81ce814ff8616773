"""``WriteAheadSender`` on EVM chains: the router's operator transactions priced, signed at a nonce the caller
owns (coincurve: ``adapters.evm.rawtx``), and broadcast in JSON-RPC batches once the caller has stored them.

``prepare`` prices a whole list at once. Gas: a token transfer's limit is estimated once per token (to a fresh
address, the dearest case: a new balance slot) and reused with the configured multiplier; a call is estimated each
time (the node refuses one that would revert, before any nonce is spent). Fees: ``adapters.evm.fees.fees_for`` on
the latest base fee, read once per list (a thousand concurrent reads of an empty cache would each go to the node),
which keeps a transaction includable through five full blocks.

``xchain`` specs are ``transferRemote`` calls on the token bridge: their route is read once per (destination, token)
and checked for each (a transfer the bridge would refuse fails before any nonce is spent), and each is estimated (the
node refuses one that would revert), with ``XCHAIN_GAS_HEADROOM`` for the Merkle insert of a later message index. A
home token's transfers spend a standing approval of the bridge (the maximum, which the devnet's and OpenZeppelin's
ERC-20 never decrement): ``prerequisites`` names that approval while it is missing, and the caller has it mined
before it prepares the transfers (``router.lanes``). A token with a liquidity pool here (``tokens.<symbol>.pool``)
goes the fast route instead: a ``deposit`` into the pool (its standing approval is the pool's), paid out of the
destination's pool (``adapters.evm.pool``).
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from typing import Any

from eth_utils import to_checksum_address

from adapters.base import AdapterError, Height, TxReceipt
from adapters.capabilities import Broadcast, PreparedTx, PresignedTx, TxSpec
from adapters.evm import abi
from adapters.evm.chain import BATCH_LIMIT, EvmChain, evm_boundary, hex_int
from adapters.evm.errors import (
    NonceTooLow,
    SigningError,
    TxAlreadyKnown,
    TxReverted,
    map_exception,
    map_rpc_error,
)
from adapters.evm.fees import Fees, bumped, fees_for
from adapters.evm.pool import DEPOSITED_TOPIC, encode_deposit
from adapters.evm.rawtx import RawTxSigner, decode_type2
from adapters.evm.sender import DISPATCH_GAS_HEADROOM, route_problem
from adapters.message import address_to_bytes32

STANDING_APPROVAL = 2**256 - 1  # what the bridge may spend of an operator's home token: never decremented
_STANDING_AT_LEAST = 2**255  # an allowance this large is standing (a token that decrements it has spent < half)
XCHAIN_GAS_HEADROOM = DISPATCH_GAS_HEADROOM  # a list's transfers are all estimated against one state


def _mapped(chain: EvmChain, exc: BaseException, context: str) -> Exception:
    """An SDK or transport error as the adapter's typed error (one already typed stays as it is)."""
    if isinstance(exc, AdapterError):
        return exc
    return map_exception(exc, chain=chain.name, errors=chain._errors, context=context)


class EvmWriteAhead(EvmChain):
    """Prepare, sign and broadcast as three separate steps (``adapters.capabilities.WriteAheadSender``)."""

    _transfer_gas_limits: dict[str, int]
    _raw_signers: dict[str, RawTxSigner]

    async def _transfer_gas(self, sender: str, token: str) -> int:
        """A transfer's gas limit for ``token``: estimated once (to a fresh address, the dearest case: a new
        balance slot) with the configured multiplier, then reused."""
        cache = self.__dict__.setdefault("_transfer_gas_limits", {})
        if token not in cache:
            fresh = "0x" + os.urandom(20).hex()
            probe = abi.encode_transfer(fresh, 1)
            estimate = hex_int(await self._rpc("eth_estimateGas", [{"from": sender, "to": token,
                                                                     "data": "0x" + probe.hex()}]))
            cache[token] = math.ceil(estimate * self._config.gas.gas_limit_multiplier)
        return int(cache[token])

    async def _call_gas(self, sender: str, target: str, data: bytes) -> int:
        estimate = hex_int(await self._rpc("eth_estimateGas", [{"from": sender, "to": target,
                                                                 "data": "0x" + data.hex()}]))
        return math.ceil(estimate * self._config.gas.gas_limit_multiplier)

    async def prerequisites(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx]:
        """The standing approval of the token bridge, for each token of an ``xchain`` spec whose allowance is not
        standing yet (a wrapped token is burned, not spent, and gets one too: harmless, and once)."""
        symbols = sorted({s.symbol for s in specs if s.kind == "xchain"})
        if not symbols:
            return []
        spenders = {sym: self._xchain_target(sym) for sym in symbols}
        allowances = await self._eth_calls([(self._token(sym), abi.encode_allowance(sender, spenders[sym]))
                                            for sym in symbols])
        missing = [sym for sym, raw in zip(symbols, allowances, strict=True)
                   if int.from_bytes(raw[:32] or b"\0", "big") < _STANDING_AT_LEAST]
        if not missing:
            return []
        fees = fees_for(await self._base_fee(), self._config.gas, chain=self._name)
        out = []
        for sym in missing:
            token, data = self._token(sym), abi.encode_approve(spenders[sym], STANDING_APPROVAL)
            gas = await self._call_gas(sender, token, data)
            out.append(PreparedTx(TxSpec("approve", spenders[sym], symbol=sym), token, data, gas,
                                  fees.max_fee_per_gas, fees.priority_fee_per_gas))
        return out

    async def prepare(self, sender: str, specs: Sequence[TxSpec]) -> list[PreparedTx | Exception]:
        """One base-fee read and one gas estimate per token serve every transfer of ``specs``; each call is
        estimated (the node refuses one that would revert). A spec that fails gets its typed error, in place."""
        try:
            fees = fees_for(await self._base_fee(), self._config.gas, chain=self._name)
        except Exception as exc:  # noqa: BLE001 - mapped here, for every spec alike
            return [_mapped(self, exc, "eth_getBlockByNumber")] * len(specs)
        gas_of_token: dict[str, int | Exception] = {}
        for symbol in {s.symbol for s in specs if s.kind == "transfer"}:
            try:
                gas_of_token[symbol] = await self._transfer_gas(sender, self._token(symbol))
            except Exception as exc:  # noqa: BLE001 - mapped, then given to each transfer of that token
                gas_of_token[symbol] = _mapped(self, exc, "eth_estimateGas")
        calls = [s for s in specs if s.kind in ("call", "native")]  # a native transfer: a data-less call of ``to``
        call_gas = await asyncio.gather(*(self._call_gas(sender, s.to.lower(), s.data) for s in calls),
                                        return_exceptions=True)
        gas_of_call: dict[int, Any] = {id(s): g for s, g in zip(calls, call_gas, strict=True)}
        gas_of_call.update(await self._xchain_gas(sender, [s for s in specs if s.kind == "xchain"]))
        return [self._prepared(spec, gas_of_token, gas_of_call, fees) for spec in specs]

    async def _xchain_gas(self, sender: str, specs: Sequence[TxSpec]) -> dict[int, int | Exception]:
        """Per ``xchain`` spec (by id): its gas limit, or why the bridge would refuse it (its route, read once per
        destination and token, then the node's estimate)."""
        if not specs:
            return {}
        pooled = [s for s in specs if self._pool_of(s.symbol) is not None]
        out = await self._deposit_gas(sender, pooled)
        specs = [s for s in specs if self._pool_of(s.symbol) is None]
        pairs = sorted({(s.destination, s.symbol) for s in specs})
        routes: dict[tuple[int, str], tuple[int, int] | Exception] = {}
        for pair, route in zip(pairs, await asyncio.gather(*(self._route(*p) for p in pairs),
                                                           return_exceptions=True), strict=True):
            routes[pair] = route if isinstance(route, (tuple, Exception)) else Exception(str(route))
        to_estimate = []
        for spec in specs:
            route = routes[(spec.destination, spec.symbol)]
            if isinstance(route, Exception):
                out[id(spec)] = route
                continue
            problem = route_problem(spec.destination, self._checksum_token(spec.symbol), spec.amount, *route)
            if problem is not None:
                out[id(spec)] = TxReverted(f"transferRemote would revert: {problem}", chain=self._name,
                                           reason=problem)
            else:
                to_estimate.append(spec)
        gas = await asyncio.gather(*(self._call_gas(sender, self._bridge(), self._transfer_remote(s))
                                     for s in to_estimate), return_exceptions=True)
        out.update({id(s): g if isinstance(g, BaseException) else g + XCHAIN_GAS_HEADROOM  # type: ignore[misc]
                    for s, g in zip(to_estimate, gas, strict=True)})
        return out

    async def _deposit_gas(self, sender: str, specs: Sequence[TxSpec]) -> dict[int, int | Exception]:
        """Per pooled ``xchain`` spec (by id): the gas of its pool deposit, or why the node refuses it."""
        gas = await asyncio.gather(*(self._call_gas(sender, self._xchain_target(s.symbol), self._xchain_data(s))
                                     for s in specs), return_exceptions=True)
        return {id(s): g if isinstance(g, BaseException) else g + XCHAIN_GAS_HEADROOM  # type: ignore[misc]
                for s, g in zip(specs, gas, strict=True)}

    def _pool_of(self, symbol: str) -> str | None:
        token = self._config.tokens.get(symbol)
        return None if token is None else token.pool

    def _xchain_target(self, symbol: str) -> str:
        """Where a cross-chain transfer of ``symbol`` goes: its liquidity pool here, else the token bridge."""
        return self._pool_of(symbol) or self._bridge()

    def _xchain_data(self, spec: TxSpec) -> bytes:
        """A pooled token's ``deposit`` into its pool, else the bridge's ``transferRemote``."""
        if self._pool_of(spec.symbol) is None:
            return self._transfer_remote(spec)
        recipient = address_to_bytes32(bytes.fromhex(spec.to.removeprefix("0x")))
        return encode_deposit(spec.destination, recipient, spec.amount)

    async def _route(self, destination: int, symbol: str) -> tuple[int, int]:
        (raw,) = await self._eth_calls([(self._bridge(), abi.encode_routes(destination, self._token(symbol)))])
        scale, max_amount = abi.decode_words(raw, 2)
        return scale, max_amount

    def _checksum_token(self, symbol: str) -> str:
        return to_checksum_address(self._token(symbol))

    def _transfer_remote(self, spec: TxSpec) -> bytes:
        return abi.encode_transfer_remote(self._checksum_token(spec.symbol), spec.destination,
                                          address_to_bytes32(bytes.fromhex(spec.to.removeprefix("0x"))), spec.amount)

    def _prepared(self, spec: TxSpec, gas_of_token: dict[str, int | Exception], gas_of_call: dict[int, Any],
                  fees: Fees) -> PreparedTx | Exception:
        if spec.kind == "transfer":
            target, data, gas = self._token(spec.symbol), abi.encode_transfer(spec.to, spec.amount), \
                gas_of_token[spec.symbol]
        elif spec.kind == "call":
            target, data, gas = spec.to.lower(), spec.data, gas_of_call[id(spec)]
        elif spec.kind == "xchain":
            target, data, gas = self._xchain_target(spec.symbol), self._xchain_data(spec), gas_of_call[id(spec)]
        elif spec.kind == "native":  # ``amount`` of the chain's own coin (integrator payouts, router/payouts.py)
            target, data, gas = spec.to.lower(), b"", gas_of_call[id(spec)]
        else:
            return ValueError(f"no operator transaction of kind {spec.kind!r}")
        if isinstance(gas, BaseException):
            return _mapped(self, gas, "eth_estimateGas")
        return PreparedTx(spec, target, data, int(gas), fees.max_fee_per_gas, fees.priority_fee_per_gas)

    def _raw_signer(self, key: str) -> RawTxSigner:
        signers = self.__dict__.setdefault("_raw_signers", {})
        signer = signers.get(key)
        if signer is None:
            account = self._account_for(key)
            signer = signers[key] = RawTxSigner(bytes(account.key), account.address, self._config.chain_id)
        return signer

    def sign(self, key: str, prepared: PreparedTx, nonce: int) -> PresignedTx:
        signer = self._raw_signer(key)  # raises SigningError for a bad key, without the key
        try:
            raw = signer.sign(nonce=nonce, to=prepared.target, data=prepared.data, gas=prepared.gas,
                              max_fee=prepared.max_fee, tip=prepared.tip,
                              value=prepared.spec.amount if prepared.spec.kind == "native" else 0)
        except Exception:  # noqa: BLE001 - keep key material out of the error
            raise SigningError("cannot sign the transaction", chain=self._name, reason="signing failed") from None
        return PresignedTx(raw.raw, raw.tx_hash, raw.nonce)

    @evm_boundary
    async def broadcast(self, raws: Sequence[bytes]) -> list[tuple[Broadcast, str]]:
        """``eth_sendRawTransaction`` for each, in JSON-RPC batches; per transaction what the node said."""
        chunks = [raws[i:i + BATCH_LIMIT] for i in range(0, len(raws), BATCH_LIMIT)]
        answers = await asyncio.gather(*(self._batch([("eth_sendRawTransaction", ["0x" + r.hex()]) for r in c])
                                         for c in chunks))
        out: list[tuple[Broadcast, str]] = []
        for chunk, answer in zip(chunks, answers, strict=True):
            items: list[Any] = answer if isinstance(answer, list) else [answer] * len(chunk)
            for item in items:
                out.append(self._broadcast_outcome(item))
        return out

    def _broadcast_outcome(self, item: Any) -> tuple[Broadcast, str]:
        error = item.get("error") if isinstance(item, dict) else {"message": "no answer"}
        if error is None:
            return Broadcast.ACCEPTED, ""
        mapped = map_rpc_error(error, chain=self._name, errors=self._errors, context="eth_sendRawTransaction")
        if isinstance(mapped, TxAlreadyKnown):
            return Broadcast.ACCEPTED, "already known"
        if isinstance(mapped, NonceTooLow):
            return Broadcast.NONCE_USED, str(mapped)[:300]
        return Broadcast.REFUSED, str(mapped)[:300]

    async def replacements(self, key: str, raws: Sequence[bytes]) -> list[PresignedTx | None]:
        """A same-nonce copy of each transaction whose max fee is below the latest base fee (it cannot be included
        until the base fee falls), re-priced with ``adapters.evm.fees.bumped`` (at least ``gas.bump_percent`` more
        on both fees, as nodes require of a replacement); None for the others. ``FeeTooHigh``, with nothing signed,
        while the base fee is above ``gas.max_fee_gwei`` or the bump would pass it."""
        try:
            base_fee = await self._base_fee()
        except Exception as exc:  # noqa: BLE001 - mapped at the boundary
            raise _mapped(self, exc, "eth_getBlockByNumber") from None
        fees_for(base_fee, self._config.gas, chain=self._name)  # FeeTooHigh over the cap: no copy could be included
        out: list[PresignedTx | None] = []
        for raw in raws:
            tx = decode_type2(raw)
            if tx.max_fee >= base_fee:  # still includable
                out.append(None)
                continue
            fees = bumped(Fees(tx.max_fee, tx.tip), base_fee, self._config.gas, chain=self._name)
            spec = TxSpec("native", tx.to, amount=tx.value) if tx.value else TxSpec("replacement", tx.to)
            prepared = PreparedTx(spec, tx.to, tx.data, tx.gas, fees.max_fee_per_gas, fees.priority_fee_per_gas)
            out.append(self.sign(key, prepared, tx.nonce))
        return out

    def lane_kinds(self) -> frozenset[str]:
        return frozenset({"transfer", "call", "xchain", "native"})

    async def decided(self, account: str, txs: Sequence[PresignedTx]) -> list[bool]:
        """Decided once its nonce is mined (by it or by another transaction at that nonce): one read."""
        if not txs:
            return []
        (mined,) = await self.mined_nonces([account])
        return [tx.nonce < mined for tx in txs]

    @evm_boundary
    async def mined_nonces(self, accounts: Sequence[str]) -> list[int]:
        answers = await self._rpc_many([("eth_getTransactionCount", [a, "latest"]) for a in accounts])
        return [hex_int(a) for a in answers]

    @evm_boundary
    async def pending_nonce(self, account: str) -> int:
        return hex_int(await self._rpc("eth_getTransactionCount", [account, "pending"]))

    @evm_boundary
    async def receipts(self, tx_hashes: Sequence[str]) -> list[TxReceipt | None]:
        answers = await self._rpc_many([("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        return [None if r is None else self._lean_receipt(r) for r in answers]

    def _lean_receipt(self, r: dict[str, Any]) -> TxReceipt:
        """From the receipt alone (no transaction body: operator transactions need no claim check); with the id of
        the message a ``transferRemote`` dispatched."""
        return TxReceipt(height=Height(hex_int(r["blockNumber"])), success=hex_int(r.get("status")) == 1,
                         fee_paid=hex_int(r.get("gasUsed")) * hex_int(r.get("effectiveGasPrice")),
                         sender=str(r.get("from") or "").lower(), to=str(r.get("to") or "").lower(),
                         native_decimals=self.native_decimals, message_id=_sent_transfer_id(r))


def _sent_transfer_id(receipt: dict[str, Any]) -> bytes | None:
    """The message id a ``transferRemote`` or a pool ``deposit`` dispatched (both index it first)."""
    for lg in receipt.get("logs") or []:
        topics = lg.get("topics") or []
        if len(topics) > 1 and topics[0] in (abi.SENT_TRANSFER_REMOTE_TOPIC, DEPOSITED_TOPIC):
            return bytes.fromhex(topics[1][2:])
    return None

