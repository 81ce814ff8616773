"""Cosmos transactions the adapter reads and writes, with cosmpy's protobufs and no network.

* ``DispatchRules.parse``: the dispatch a raw transaction makes (memo.py format), or ``None``. Shared by the
  adapter's origin scan and the validator's inclusion check, so both derive the same message from a tx.
* ``DeliveryPlan``: the multisig ``MsgSend`` transaction that pays out a batch of token messages; its
  LEGACY_AMINO_JSON sign bytes are what the validators co-sign, and ``assemble`` makes the ``TxRaw`` from
  their signatures (a ``MultiSignature`` with its ``CompactBitArray``).
* The legacy amino multisig key and its address (``sha256(amino(PubKeyMultisigThreshold))[:20]``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cosmpy.crypto.address import Address
from cosmpy.protos.cosmos.bank.v1beta1.tx_pb2 import MsgSend
from cosmpy.protos.cosmos.base.v1beta1.coin_pb2 import Coin
from cosmpy.protos.cosmos.crypto.multisig.keys_pb2 import LegacyAminoPubKey
from cosmpy.protos.cosmos.crypto.multisig.v1beta1.multisig_pb2 import (
    CompactBitArray,
    MultiSignature,
)
from cosmpy.protos.cosmos.crypto.secp256k1.keys_pb2 import PubKey
from cosmpy.protos.cosmos.tx.signing.v1beta1.signing_pb2 import SignMode
from cosmpy.protos.cosmos.tx.v1beta1.tx_pb2 import (
    AuthInfo,
    Fee,
    ModeInfo,
    SignerInfo,
    TxBody,
    TxRaw,
)
from google.protobuf.any_pb2 import Any as ProtoAny
from google.protobuf.message import DecodeError

from adapters.bridge_memo import GasMemo, MemoFormatError, decode_gas_memo
from adapters.cosmos.memo import (
    TokenBody,
    decode_dispatch_memo,
    decode_token_body,
    encode_delivery_memo,
    native_home_token,
)
from adapters.message import MESSAGE_VERSION, Domain, Message, MessageId

MSG_SEND_TYPE_URL = "/cosmos.bank.v1beta1.MsgSend"
_AMINO_MULTISIG_PREFIX = bytes.fromhex("22C1F7E2")
_AMINO_SECP256K1_PREFIX = bytes.fromhex("EB5AE987")
DELIVERY_BASE_GAS = 100_000
DELIVERY_GAS_PER_MESSAGE = 30_000


class DeliveryRefused(ValueError):
    """A message this chain cannot pay out (not a token message, unknown token, bad recipient...)."""


def bech32(raw: bytes, prefix: str) -> str:
    return str(Address(raw, prefix=prefix))


def bech32_bytes(address: str) -> bytes:
    """The raw bytes of a bech32 address; ``ValueError`` if it is not one."""
    try:
        return bytes(Address(address))
    except Exception as exc:  # cosmpy raises RuntimeError / ValueError variants
        raise ValueError(f"not a bech32 address: {address!r}") from exc


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def multisig_key(threshold: int, pub_keys: Sequence[bytes]) -> LegacyAminoPubKey:
    members = []
    for key in pub_keys:
        packed = ProtoAny()
        packed.Pack(PubKey(key=key), type_url_prefix="/")
        members.append(packed)
    return LegacyAminoPubKey(threshold=threshold, public_keys=members)


def multisig_key_address(threshold: int, pub_keys: Sequence[bytes]) -> bytes:
    """The SDK address of a legacy amino threshold key over compressed secp256k1 ``pub_keys``."""
    encoded = _AMINO_MULTISIG_PREFIX + b"\x08" + _uvarint(threshold)
    for key in pub_keys:
        member = _AMINO_SECP256K1_PREFIX + _uvarint(len(key)) + key
        encoded += b"\x12" + _uvarint(len(member)) + member
    return hashlib.sha256(encoded).digest()[:20]


def pack_send(from_address: str, to_address: str, coins: Sequence[tuple[str, int]]) -> ProtoAny:
    packed = ProtoAny()
    packed.Pack(
        MsgSend(from_address=from_address, to_address=to_address,
                amount=[Coin(denom=denom, amount=str(amount)) for denom, amount in coins]),
        type_url_prefix="/",
    )
    return packed


def _amino_coins(coins: Sequence[Any]) -> list[dict[str, str]]:
    return [{"amount": str(c.amount), "denom": str(c.denom)} for c in coins]


def amino_json_sign_bytes(*, chain_id: str, account_number: int, sequence: int, body: TxBody, fee: Fee) -> bytes:
    """The ``StdSignDoc`` SIGN_MODE_LEGACY_AMINO_JSON signs: sorted keys, no spaces, ``<>&`` escaped like Go;
    the body's ``timeout_height`` is in it (``omitempty``: only when set), so a signature covers the expiry."""
    msgs = []
    for packed in body.messages:
        if packed.type_url != MSG_SEND_TYPE_URL:
            raise DeliveryRefused(f"no amino JSON for {packed.type_url}")
        send = MsgSend.FromString(packed.value)
        msgs.append({"type": "cosmos-sdk/MsgSend", "value": {
            "amount": _amino_coins(send.amount), "from_address": send.from_address, "to_address": send.to_address}})
    doc: dict[str, Any] = {
        "account_number": str(account_number), "chain_id": chain_id,
        "fee": {"amount": _amino_coins(fee.amount), "gas": str(fee.gas_limit)},
        "memo": body.memo, "msgs": msgs, "sequence": str(sequence),
    }
    if body.timeout_height:
        doc["timeout_height"] = str(body.timeout_height)
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


@dataclass(frozen=True, slots=True)
class TokenRule:
    """A token this chain bridges: its denom here and its identity (home domain, home token)."""

    symbol: str
    denom: str
    home_domain: int
    home_token: bytes
    wrapped: bool
    scale: int = 1  # home units per unit here: 10 ** (home_decimals - decimals) for a wrapped token

    def to_home(self, local_amount: int) -> int:
        return local_amount * self.scale

    def to_local(self, home_amount: int) -> int | None:
        """The amount here, or None when the home amount has more precision than this chain's denom."""
        return home_amount // self.scale if home_amount % self.scale == 0 else None


@dataclass(frozen=True, slots=True)
class ParsedDispatch:
    sender: bytes  # bytes32
    destination: Domain
    recipient: bytes
    body: bytes
    token: TokenRule | None

    def message(self, nonce: int, origin: Domain) -> Message:
        return Message(MESSAGE_VERSION, nonce, origin, self.sender, self.destination, self.recipient, self.body)


def decode_tx_body(raw_tx: bytes) -> TxBody:
    """``DecodeError`` if ``raw_tx`` is not a ``TxRaw`` with a ``TxBody``."""
    return TxBody.FromString(TxRaw.FromString(raw_tx).body_bytes)


@dataclass(frozen=True)
class DispatchRules:
    """How this chain's dispatches are recognised and what canonical message each one makes.

    A valid dispatch is a tx whose memo parses and whose messages are bank ``MsgSend``s, exactly one of them to the
    vault (the others, to other accounts, are not the dispatch's: e.g. its gas payment to the relayer's fee
    account, ``fee_paid``). It is a token lock when the body is a TokenBridge body naming a configured token; then
    the ``MsgSend`` to the vault must pay exactly ``amount`` of that token's denom and nothing else (else the dispatch
    is invalid), and the message's
    sender is the vault (the remote TokenBridge accepts only its enrolled bridge). Any other body is a plain
    message whose sender is the ``MsgSend``'s ``from_address`` (the signer)."""

    domain: Domain
    vault: str
    tokens: tuple[TokenRule, ...]

    @property
    def vault32(self) -> bytes:
        return bech32_bytes(self.vault).rjust(32, b"\0")

    def token_for(self, home_domain: int, home_token: bytes) -> TokenRule | None:
        return next((t for t in self.tokens if (t.home_domain, t.home_token) == (home_domain, home_token)), None)

    def token_by_symbol(self, symbol: str) -> TokenRule | None:
        return next((t for t in self.tokens if t.symbol == symbol), None)

    def parse(self, raw_tx: bytes) -> ParsedDispatch | None:
        try:
            body = decode_tx_body(raw_tx)
        except DecodeError:
            return None
        memo = decode_dispatch_memo(body.memo)
        sends = _sends(body)
        if memo is None or sends is None:
            return None
        to_vault = [s for s in sends if s.to_address == self.vault]
        if len(to_vault) != 1:
            return None
        send = to_vault[0]
        try:
            sender = bech32_bytes(send.from_address)
        except ValueError:
            return None
        if send.from_address == self.vault:
            return None
        token_body = decode_token_body(memo.body)
        token = self.token_for(token_body.home_domain, token_body.home_token) if token_body else None
        if token is None:
            return ParsedDispatch(sender.rjust(32, b"\0"), memo.destination, memo.recipient, memo.body, None)
        assert token_body is not None
        coins = [(c.denom, c.amount) for c in send.amount]
        local = token.to_local(token_body.amount)
        if local is None or coins != [(token.denom, str(local))]:
            return None
        return ParsedDispatch(self.vault32, memo.destination, memo.recipient, memo.body, token)


def _sends(body: TxBody) -> list[MsgSend] | None:
    """The body's messages, if every one is a bank ``MsgSend`` (None otherwise)."""
    sends = []
    for packed in body.messages:
        if packed.type_url != MSG_SEND_TYPE_URL:
            return None
        try:
            sends.append(MsgSend.FromString(packed.value))
        except DecodeError:
            return None
    return sends or None


def fee_paid(raw_tx: bytes, fee_account: str, denom: str) -> int:
    """What a transaction's bank sends move to ``fee_account`` in ``denom`` from any other account
    (``adapters.fee_account``: the gas payment of the message it dispatches)."""
    try:
        sends = _sends(decode_tx_body(raw_tx)) or []
    except DecodeError:
        return 0
    return sum(int(c.amount) for s in sends if s.to_address == fee_account and s.from_address != fee_account
               for c in s.amount if c.denom == denom and c.amount.isdigit())


def gas_top_up(raw_tx: bytes, vault: str) -> GasMemo | None:
    """The gas memo of a top-up (``adapters.fee_account``): a transaction of bank sends only, none to the vault,
    whose memo is a well-formed gas memo; ``None`` for any other transaction."""
    try:
        body = decode_tx_body(raw_tx)
    except DecodeError:
        return None
    sends = _sends(body)
    if sends is None or any(s.to_address == vault for s in sends):
        return None
    try:
        return decode_gas_memo(body.memo)
    except MemoFormatError:
        return None


def tokens_from_config(domain: int, tokens: Mapping[str, Any]) -> tuple[TokenRule, ...]:
    """``TokenRule``s from ``CosmosChainConfig.tokens`` (native: home here, ``sha256(denom)``)."""
    rules = []
    for symbol, token in tokens.items():
        if token.wrapped:
            if token.home_domain is None or token.home_token is None:
                raise ValueError(f"tokens.{symbol}: a wrapped token needs home_domain and home_token")
            home_token = bytes.fromhex(str(token.home_token).removeprefix("0x")).rjust(32, b"\0")
            home_decimals = token.home_decimals if token.home_decimals is not None else token.decimals
            if home_decimals < token.decimals:
                raise ValueError(f"tokens.{symbol}: home_decimals below decimals is not supported")
            rules.append(TokenRule(symbol, token.denom, int(token.home_domain), home_token, True,
                                   10 ** (home_decimals - token.decimals)))
        else:
            rules.append(TokenRule(symbol, token.denom, domain, native_home_token(token.denom), False))
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class Payout:
    id: MessageId
    to_address: str
    denom: str
    amount: int


@dataclass(frozen=True)
class DeliveryPlan:
    """The multisig transaction paying out ``payouts``: one ``MsgSend`` per message, ids in the memo, and a
    ``timeout_height``: the chain refuses it in any block above that height, so a co-signature stops counting
    there (0: none; validators refuse to co-sign such a plan)."""

    chain_id: str
    vault: str
    payouts: tuple[Payout, ...]
    account_number: int
    sequence: int
    gas: int
    fee: tuple[str, int]  # (denom, amount)
    timeout_height: int = 0

    def body(self) -> TxBody:
        return TxBody(
            messages=[pack_send(self.vault, p.to_address, [(p.denom, p.amount)]) for p in self.payouts],
            memo=encode_delivery_memo([p.id for p in self.payouts]),
            timeout_height=self.timeout_height,
        )

    def fee_proto(self) -> Fee:
        return Fee(amount=[Coin(denom=self.fee[0], amount=str(self.fee[1]))], gas_limit=self.gas)

    def sign_bytes(self) -> bytes:
        return amino_json_sign_bytes(chain_id=self.chain_id, account_number=self.account_number,
                                     sequence=self.sequence, body=self.body(), fee=self.fee_proto())

    def context(self) -> dict[str, str]:
        return {"account_number": str(self.account_number), "sequence": str(self.sequence),
                "gas": str(self.gas), "fee_denom": self.fee[0], "fee_amount": str(self.fee[1]),
                "timeout_height": str(self.timeout_height), "sign_mode": "LEGACY_AMINO_JSON"}

    def assemble(self, threshold: int, members: Sequence[bytes], signatures: Mapping[int, bytes]) -> bytes:
        """``TxRaw`` bytes signed by ``signatures`` (member index -> 64-byte signature)."""
        chosen = sorted(signatures)
        packed_key = ProtoAny()
        packed_key.Pack(multisig_key(threshold, members), type_url_prefix="/")
        elems = bytearray((len(members) + 7) // 8)
        for index in chosen:
            elems[index // 8] |= 1 << (7 - index % 8)
        single = ModeInfo(single=ModeInfo.Single(mode=SignMode.SIGN_MODE_LEGACY_AMINO_JSON))
        mode_info = ModeInfo(multi=ModeInfo.Multi(
            bitarray=CompactBitArray(extra_bits_stored=len(members) % 8, elems=bytes(elems)),
            mode_infos=[single for _ in chosen]))
        auth_info = AuthInfo(signer_infos=[SignerInfo(public_key=packed_key, mode_info=mode_info,
                                                      sequence=self.sequence)], fee=self.fee_proto())
        multi = MultiSignature(signatures=[signatures[i] for i in chosen])
        raw = TxRaw(body_bytes=self.body().SerializeToString(), auth_info_bytes=auth_info.SerializeToString(),
                    signatures=[multi.SerializeToString()])
        return bytes(raw.SerializeToString())


def delivery_gas(messages: int) -> int:
    return DELIVERY_BASE_GAS + DELIVERY_GAS_PER_MESSAGE * messages


def fee_for(gas: int, gas_price: float) -> int:
    return max(1, math.ceil(gas * gas_price))


def payout_of(message: Message, rules: DispatchRules, remote_bridges: Mapping[int, bytes], prefix: str) -> Payout:
    """What a message delivered here pays, or ``DeliveryRefused``: only token messages from the enrolled
    TokenBridge of their origin, addressed to the vault, for a configured token, to a 20-byte account."""
    if message.destination != rules.domain:
        raise DeliveryRefused(f"message is for domain {message.destination}, not {rules.domain}")
    token_body: TokenBody | None = decode_token_body(message.body)
    if token_body is None:
        raise DeliveryRefused("cosmos destinations take token transfers only")
    bridge = remote_bridges.get(int(message.origin))
    if bridge is None or message.sender != bridge:
        raise DeliveryRefused(f"sender is not the enrolled token bridge of domain {message.origin}")
    if message.recipient != rules.vault32:
        raise DeliveryRefused("message recipient is not the vault")
    token = rules.token_for(token_body.home_domain, token_body.home_token)
    if token is None:
        raise DeliveryRefused(f"unknown token ({token_body.home_domain}, 0x{token_body.home_token.hex()})")
    if any(token_body.recipient[:12]):
        raise DeliveryRefused("token recipient is not a 20-byte account")
    local = token.to_local(token_body.amount)
    if token_body.amount <= 0 or not local:
        raise DeliveryRefused(f"token amount {token_body.amount} is zero or finer than {token.denom} can hold")
    return Payout(message.id, bech32(token_body.recipient[12:], prefix), token.denom, local)
