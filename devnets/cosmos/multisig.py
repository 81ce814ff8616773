"""M-of-N ``LegacyAminoPubKey`` multisig accounts: address, LEGACY_AMINO_JSON sign bytes, and a builder
for a bank ``MsgSend`` signed by some of the members (cosmpy cannot build multisig transactions itself).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from cosmpy.crypto.keypairs import PrivateKey
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

SECP256K1_PUBKEY_TYPE_URL = "/cosmos.crypto.secp256k1.PubKey"
MULTISIG_PUBKEY_TYPE_URL = "/cosmos.crypto.multisig.LegacyAminoPubKey"
MSG_SEND_TYPE_URL = "/cosmos.bank.v1beta1.MsgSend"
_AMINO_PREFIX_MULTISIG = bytes.fromhex("22C1F7E2")
_AMINO_PREFIX_SECP256K1 = bytes.fromhex("EB5AE987")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def multisig_pub_key(threshold: int, member_pub_keys: Sequence[bytes]) -> LegacyAminoPubKey:
    """The ``LegacyAminoPubKey`` of compressed secp256k1 keys, in the order given."""
    members = []
    for key in member_pub_keys:
        any_key = ProtoAny()
        any_key.Pack(PubKey(key=key), type_url_prefix="/")
        members.append(any_key)
    return LegacyAminoPubKey(threshold=threshold, public_keys=members)


def multisig_member_keys(pub_key: LegacyAminoPubKey) -> list[bytes]:
    """The compressed secp256k1 keys of a multisig key; ``ValueError`` for any other member type."""
    keys = []
    for member in pub_key.public_keys:
        if member.type_url != SECP256K1_PUBKEY_TYPE_URL:
            raise ValueError(f"unsupported multisig member key {member.type_url}")
        keys.append(bytes(PubKey.FromString(member.value).key))
    return keys


def multisig_address(pub_key: LegacyAminoPubKey) -> bytes:
    """``sha256(amino(PubKeyMultisigThreshold))[:20]``, the SDK's address of a legacy multisig key."""
    encoded = _AMINO_PREFIX_MULTISIG + b"\x08" + _varint(pub_key.threshold)
    for key in multisig_member_keys(pub_key):
        amino_key = _AMINO_PREFIX_SECP256K1 + bytes([len(key)]) + key
        encoded += b"\x12" + _varint(len(amino_key)) + amino_key
    return hashlib.sha256(encoded).digest()[:20]


def compact_bit_array(bits: Sequence[bool]) -> CompactBitArray:
    """The SDK's ``CompactBitArray``: bit ``i`` is the high-order-first bit ``i % 8`` of byte ``i // 8``."""
    elems = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            elems[index // 8] |= 1 << (7 - index % 8)
    return CompactBitArray(extra_bits_stored=len(bits) % 8, elems=bytes(elems))


def bit_array_bits(array: CompactBitArray) -> list[bool]:
    """The bits of a ``CompactBitArray``."""
    size = (
        len(array.elems) * 8
        if array.extra_bits_stored == 0
        else (len(array.elems) - 1) * 8 + (array.extra_bits_stored)
    )
    return [bool(array.elems[i // 8] & (1 << (7 - i % 8))) for i in range(size)]


def _amino_coins(coins: Sequence[Any]) -> list[dict[str, str]]:
    return [{"amount": coin.amount, "denom": coin.denom} for coin in coins]


def amino_json_message(message: ProtoAny) -> dict[str, Any]:
    """The amino JSON of a message this devnet knows (bank ``MsgSend``)."""
    if message.type_url != MSG_SEND_TYPE_URL:
        raise ValueError(f"no amino JSON for {message.type_url}")
    send = MsgSend.FromString(message.value)
    return {
        "type": "cosmos-sdk/MsgSend",
        "value": {
            "amount": _amino_coins(send.amount),
            "from_address": send.from_address,
            "to_address": send.to_address,
        },
    }


def legacy_amino_sign_bytes(
    *, chain_id: str, account_number: int, sequence: int, body: TxBody, fee: Fee
) -> bytes:
    """The ``StdSignDoc`` JSON, keys sorted, no spaces: what SIGN_MODE_LEGACY_AMINO_JSON signs."""
    document: dict[str, Any] = {
        "account_number": str(account_number),
        "chain_id": chain_id,
        "fee": {"amount": _amino_coins(fee.amount), "gas": str(fee.gas_limit)},
        "memo": body.memo,
        "msgs": [amino_json_message(message) for message in body.messages],
        "sequence": str(sequence),
    }
    if body.timeout_height:
        document["timeout_height"] = str(body.timeout_height)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()
    )  # as Go's json


def build_multisig_send_tx(
    *,
    chain_id: str,
    threshold: int,
    member_keys: Sequence[PrivateKey],
    signing_members: Sequence[int],
    account_number: int,
    sequence: int,
    from_address: str,
    to_address: str,
    amount: int,
    denom: str,
    fee_amount: int,
    fee_denom: str,
    gas_limit: int,
    memo: str = "",
) -> bytes:
    """TxRaw bytes of a ``MsgSend`` from the multisig of ``member_keys``, signed (LEGACY_AMINO_JSON) by
    the members at the indexes ``signing_members``: a ``MultiSignature`` with its ``CompactBitArray``.
    """
    pub_key = multisig_pub_key(threshold, [bytes(k.public_key.public_key_bytes) for k in member_keys])
    message = ProtoAny()
    message.Pack(
        MsgSend(
            from_address=from_address, to_address=to_address, amount=[Coin(denom=denom, amount=str(amount))]
        ),
        type_url_prefix="/",
    )
    body = TxBody(messages=[message], memo=memo)
    fee = Fee(amount=[Coin(denom=fee_denom, amount=str(fee_amount))], gas_limit=gas_limit)
    any_pub_key = ProtoAny()
    any_pub_key.Pack(pub_key, type_url_prefix="/")
    single = ModeInfo(single=ModeInfo.Single(mode=SignMode.SIGN_MODE_LEGACY_AMINO_JSON))
    chosen = sorted(set(signing_members))
    mode_info = ModeInfo(
        multi=ModeInfo.Multi(
            bitarray=compact_bit_array([i in chosen for i in range(len(member_keys))]),
            mode_infos=[single for _ in chosen],
        )
    )
    auth_info = AuthInfo(
        signer_infos=[SignerInfo(public_key=any_pub_key, mode_info=mode_info, sequence=sequence)], fee=fee
    )
    sign_bytes = legacy_amino_sign_bytes(
        chain_id=chain_id, account_number=account_number, sequence=sequence, body=body, fee=fee
    )
    signatures = [member_keys[i].sign(sign_bytes) for i in chosen]
    multi_signature = MultiSignature(signatures=signatures)
    raw = TxRaw(
        body_bytes=body.SerializeToString(),
        auth_info_bytes=auth_info.SerializeToString(),
        signatures=[multi_signature.SerializeToString()],
    )
    return bytes(raw.SerializeToString())
