"""Account keys and addresses of the Cosmos devnet: secp256k1 keys, bech32 addresses, signature checks.

Every private key here is a PUBLIC DEVNET TEST KEY derived from a fixed label: anyone can spend what it
holds, so it must never hold anything of value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import coincurve
from cosmpy.crypto.address import Address
from cosmpy.crypto.keypairs import PrivateKey

ACCOUNT_KEY_LABEL = b"xchain-relayer/cosmos-devnet-account/"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def bech32_address(raw: bytes, prefix: str) -> str:
    """The bech32 form of a 20-byte account address."""
    return str(Address(raw, prefix=prefix))


def address_bytes(bech32: str) -> bytes:
    """The 20 raw bytes of a bech32 address; ``ValueError`` if it is not one."""
    try:
        return bytes(Address(bech32))
    except Exception as exc:  # cosmpy raises bare RuntimeError / ValueError variants
        raise ValueError(f"not a bech32 address: {bech32!r}") from exc


def secp256k1_address(compressed_pub_key: bytes) -> bytes:
    """``ripemd160(sha256(pubkey))``: the SDK's address of a secp256k1 key."""
    return hashlib.new("ripemd160", hashlib.sha256(compressed_pub_key).digest()).digest()


def module_address(name: str) -> bytes:
    """A module account's address (``fee_collector``): the first 20 bytes of ``sha256(name)``."""
    return hashlib.sha256(name.encode()).digest()[:20]


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(33, "big").lstrip(b"\x00")
    if not body or body[0] & 0x80:
        body = b"\x00" + body
    return b"\x02" + bytes([len(body)]) + body


def verify_secp256k1(compressed_pub_key: bytes, message: bytes, signature: bytes) -> bool:
    """The SDK's check: a 64-byte ``r || s`` signature with low ``s`` over ``sha256(message)``."""
    if len(signature) != 64:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < SECP256K1_ORDER and 0 < s <= SECP256K1_ORDER // 2):
        return False
    der = b"\x30" + bytes([len(_der_integer(r) + _der_integer(s))]) + _der_integer(r) + _der_integer(s)
    try:
        return bool(coincurve.PublicKey(compressed_pub_key).verify(der, message))
    except ValueError:
        return False


@dataclass(frozen=True)
class DevnetAccountKey:
    """A PUBLIC DEVNET TEST KEY (secp256k1) and its bech32 address."""

    name: str
    private_key_hex: str
    prefix: str

    @property
    def private_key(self) -> PrivateKey:
        return PrivateKey(bytes.fromhex(self.private_key_hex))

    @property
    def pub_key(self) -> bytes:
        return bytes(self.private_key.public_key.public_key_bytes)

    @property
    def address_bytes(self) -> bytes:
        return secp256k1_address(self.pub_key)

    @property
    def address(self) -> str:
        return bech32_address(self.address_bytes, self.prefix)


def devnet_account_key(name: str, prefix: str = "cosmos") -> DevnetAccountKey:
    """The deterministic test key called ``name``: ``sha256(label || name)``."""
    secret = hashlib.sha256(ACCOUNT_KEY_LABEL + name.encode()).digest()
    return DevnetAccountKey(name=name, private_key_hex=secret.hex(), prefix=prefix)
