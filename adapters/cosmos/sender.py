"""Cosmos sender roles: dispatches and token sends as bank sends to the vault with a memo (then waits
for the origin role to index them), transfers, unsigned transactions, lookups, balances and supplies."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence
from typing import Any

from cosmpy.crypto.keypairs import PrivateKey
from cosmpy.protos.cosmos.bank.v1beta1.tx_pb2 import MsgSend
from cosmpy.protos.cosmos.base.v1beta1.coin_pb2 import Coin
from cosmpy.protos.cosmos.crypto.secp256k1.keys_pb2 import PubKey
from cosmpy.protos.cosmos.tx.signing.v1beta1.signing_pb2 import SignMode
from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import (
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
    Height,
    InsufficientFunds,
    SequenceMismatch,
    TxHash,
    TxNotFound,
    TxReceipt,
    TxReverted,
)
from adapters.boundary import bytes32
from adapters.bridge_memo import encode_gas_memo
from adapters.cosmos.chain import (
    SEND_GAS,
    TX_WAIT_S,
    address_of,
    cosmos_boundary,
    log,
)
from adapters.cosmos.memo import TokenBody, encode_dispatch_memo
from adapters.cosmos.origin import CosmosOrigin
from adapters.cosmos.transactions import (
    fee_for,
    pack_send,
)
from adapters.message import Domain, MessageId
from adapters.tokens import UnknownToken


class CosmosSender(CosmosOrigin):
    """Cosmos sender roles: dispatches and token sends as bank sends to the vault with a memo (then waits"""

    async def _send(self, key: PrivateKey, messages: Sequence[ProtoAny], memo: str, *,
                    sequence: int | None = None, gas: int = SEND_GAS) -> tuple[str, int]:
        """Sign (SIGN_MODE_DIRECT) and broadcast; (tx hash, sequence used)."""
        sender = address_of(key, self._prefix)
        account = await self._account(sender)
        if account is None:
            raise InsufficientFunds(f"account {sender} does not exist (never funded)", chain=self._name,
                                    reason="no account")
        number = account[0]
        if sequence is None:
            sequence = max(account[1], self._next_sequence.get(sender, 0))
        try:
            tx_hash = await self._sign_and_broadcast(key, number, sequence, messages, memo, gas)
        except SequenceMismatch as exc:  # resent once at the sequence the chain wants (MessageSender's contract)
            if exc.expected is None:
                raise
            sequence = exc.expected
            log.info("cosmos_sequence_resync", chain=self._name, sender=sender, sequence=sequence)
            tx_hash = await self._sign_and_broadcast(key, number, sequence, messages, memo, gas)
        self._next_sequence[sender] = sequence + 1
        return tx_hash, sequence

    async def _sign_and_broadcast(self, key: PrivateKey, number: int, sequence: int, messages: Sequence[ProtoAny],
                                  memo: str, gas: int) -> str:
        return await self._http.broadcast(self._signed_raw(key, number, sequence, messages, memo, gas))

    def _signed_raw(self, key: PrivateKey, number: int, sequence: int, messages: Sequence[ProtoAny], memo: str,
                    gas: int) -> bytes:
        """A transaction signed (SIGN_MODE_DIRECT) at ``sequence``, paying the configured price for ``gas``."""
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
        return bytes(TxRaw(body_bytes=body_bytes, auth_info_bytes=auth_bytes,
                           signatures=[key.sign(sign_doc.SerializeToString())]).SerializeToString())

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

    @cosmos_boundary
    async def send_token(
        self, sender_key: str, symbol: str, amount: int, destination: Domain, recipient: bytes
    ) -> tuple[TxHash, MessageId]:
        key = self._key(sender_key)
        send, memo = self._token_dispatch(address_of(key, self._prefix), symbol, amount, int(destination), recipient)
        async with self._lock("send:" + address_of(key, self._prefix)):
            tx_hash, _ = await self._send(key, [send], memo)
            found = await self._wait_tx(tx_hash)
        self._check_included(found)
        return TxHash(tx_hash), await self._dispatch_id(tx_hash, int(found["height"]))

    def _token_dispatch(self, sender: str, symbol: str, amount: int, destination: int, recipient: bytes
                        ) -> tuple[ProtoAny, str]:
        """A token dispatch by ``sender``: the bank send of ``amount`` to the vault, and its dispatch memo."""
        token = self._rules.token_by_symbol(symbol)
        if token is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        bridge = self._bridges.get(destination)
        if bridge is None:
            raise TxReverted(f"no remote bridge for domain {destination}", chain=self._name,
                             reason="no remote bridge")
        if amount <= 0:
            raise TxReverted(f"amount {amount} is not positive", chain=self._name, reason="bad amount")
        body = TokenBody(token.home_domain, token.home_token, bytes32(recipient), token.to_home(amount)).encode()
        return pack_send(sender, self._vault, [(token.denom, amount)]), encode_dispatch_memo(destination, bridge, body)

    def _check_included(self, found: dict[str, Any]) -> None:
        result = found["tx_result"]
        if int(result.get("code") or 0) != 0:
            raise TxReverted(f"tx {found['hash']} failed: code {result.get('code')}: {result.get('log')}",
                             chain=self._name, reason=f"code {result.get('code')}: {result.get('log')}")

    @cosmos_boundary
    async def dispatch_messages(
        self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes]
    ) -> tuple[TxHash, list[MessageId]]:
        """One tx per body (a memo holds one message), each paying the vault 1 unit of the fee denom;
        returns the last tx's hash and every message id, after inclusion."""
        return await self._dispatch(sender_key, destination, recipient, bodies, 0)

    @property
    def gas_fee_account(self) -> str | None:
        return self._fee_account

    @cosmos_boundary
    async def dispatch_paying(self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes],
                              payment: int) -> tuple[TxHash, list[MessageId]]:
        """As ``dispatch_messages``, each tx also sending ``payment`` of the fee denom to the fee account (its
        message's gas payment, ``adapters.fee_account``)."""
        self._fee_account_or_refuse()
        if payment <= 0:
            raise TxReverted(f"payment {payment} is not positive", chain=self._name, reason="bad amount")
        return await self._dispatch(sender_key, destination, recipient, bodies, payment)

    @cosmos_boundary
    async def top_up_gas(self, payer_key: str, message_id: bytes, destination: int, amount: int) -> TxHash:
        """One transaction: a bank send of ``amount`` of the fee denom to the fee account, with the gas memo
        (``adapters.fee_account``); its hash once included."""
        fee_account = self._fee_account_or_refuse()
        if amount <= 0:
            raise TxReverted(f"top-up {amount} is not positive", chain=self._name, reason="bad amount")
        key = self._key(payer_key)
        sender = address_of(key, self._prefix)
        async with self._lock("send:" + sender):
            tx_hash, _ = await self._send(key, [pack_send(sender, fee_account, [(self._config.fee_denom, amount)])],
                                          encode_gas_memo(destination, message_id))
            found = await self._wait_tx(tx_hash)
        self._check_included(found)
        log.info("gas_topped_up", chain=self._name, tx=tx_hash, message_id="0x" + message_id.hex(), amount=amount)
        return TxHash(tx_hash)

    def top_up_call(self, message_id: bytes, destination: int, amount: int) -> dict[str, str]:
        fee_account = self._fee_account_or_refuse()
        return {"to": fee_account, "value": str(amount), "denom": self._config.fee_denom,
                "memo": encode_gas_memo(destination, message_id),
                "how": "one transaction of bank MsgSends only (none to the vault): `value` `denom` to `to`, with "
                       "`memo` as the transaction's memo"}

    def _fee_account_or_refuse(self) -> str:
        if self._fee_account is None:
            raise TxReverted(f"chains.{self._name}.gas_fee_account is not set: nobody to pay", chain=self._name,
                             reason="no fee account")
        return self._fee_account

    async def _dispatch(self, sender_key: str, destination: Domain, recipient: bytes, bodies: Sequence[bytes],
                        payment: int) -> tuple[TxHash, list[MessageId]]:
        key = self._key(sender_key)
        sender = address_of(key, self._prefix)
        sends = [pack_send(sender, self._vault, [(self._config.fee_denom, 1)])]
        if payment and self._fee_account is not None:
            sends.append(pack_send(sender, self._fee_account, [(self._config.fee_denom, payment)]))
        hashes: list[str] = []
        async with self._lock("send:" + sender):
            sequence: int | None = None
            for body in bodies:
                memo = encode_dispatch_memo(destination, bytes32(recipient), body)
                tx_hash, used = await self._send(key, sends, memo, sequence=sequence,
                                                 gas=SEND_GAS * len(sends))
                hashes.append(tx_hash)
                sequence = used + 1
            found = [await self._wait_tx(h) for h in hashes]
        for tx in found:
            self._check_included(tx)
        ids = [await self._dispatch_id(h, int(tx["height"])) for h, tx in zip(hashes, found, strict=True)]
        return TxHash(hashes[-1] if hashes else ""), ids

    @cosmos_boundary
    async def transfer_token(self, sender_key: str, symbol: str, to: str, amount: int) -> TxHash:
        token = self._rules.token_by_symbol(symbol)
        denom = token.denom if token else (self._config.fee_denom if symbol == self._config.fee_denom else None)
        if denom is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        key = self._key(sender_key)
        sender = address_of(key, self._prefix)
        async with self._lock("send:" + sender):
            tx_hash, _ = await self._send(key, [pack_send(sender, to, [(denom, amount)])], "")
        return TxHash(tx_hash)

    @cosmos_boundary
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

    @cosmos_boundary
    async def tx_result(self, tx_hash: TxHash) -> tuple[Height, bool]:
        found = await self._find_tx(tx_hash)
        if found is None:
            raise TxNotFound(f"tx {tx_hash} not found", chain=self._name, reason="not found")
        return Height(int(found["height"])), int(found["tx_result"].get("code") or 0) == 0

    @cosmos_boundary
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

    @cosmos_boundary
    async def token_balance(self, symbol: str, holder: str) -> int:
        token = self._rules.token_by_symbol(symbol)
        denom = token.denom if token else (self._config.fee_denom if symbol == self._config.fee_denom else None)
        if denom is None:
            raise UnknownToken(f"no token {symbol!r} on {self._name}", chain=self._name, reason="unknown token")
        return await self._balance(holder, denom)

    @cosmos_boundary
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
