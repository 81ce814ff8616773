"""Checkpoint digests and secp256k1 signatures, exactly as ``MultisigIsm`` checks them on chain.

    digest      = keccak256("XCHAIN_CHECKPOINT_V1" | origin u32 | origin_mailbox bytes32 | root bytes32 | index u32)
    signed hash = keccak256("\\x19Ethereum Signed Message:\\n32" | digest)     (EIP-191, so ``ecrecover`` works)
    signature   = r (32) | s (32) | v (1, 27 or 28), s in the lower half of the curve order

Signatures in metadata are concatenated in strictly ascending order of signer address; the ISM rejects
duplicates, unknown signers, unsorted lists and fewer than ``threshold`` signatures.

The same primitive signs other 32-byte digests (``sign_digest`` / ``recover_digest_signer``), each with its own
domain tag so one kind of signed digest can never pass for another: the relayer's signed requests to validators
(``relayer.api.relayer_auth``, tag ``XCHAIN_RELAYER_REQUEST_V1``) use it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import coincurve

from adapters.base import Checkpoint
from adapters.message import Domain, MessageFormatError, keccak256

DOMAIN_TAG = b"XCHAIN_CHECKPOINT_V1"
SIGNATURE_LEN = 65
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignatureError(MessageFormatError):
    """A signature that does not parse or does not recover."""


def checkpoint_digest(cp: Checkpoint) -> bytes:
    if len(cp.origin_mailbox) != 32 or len(cp.root) != 32:
        raise MessageFormatError("checkpoint mailbox and root must be 32 bytes each")
    return keccak256(DOMAIN_TAG + struct.pack(">I", cp.origin) + cp.origin_mailbox + cp.root
                     + struct.pack(">I", cp.index))


def eip191_hash(digest: bytes) -> bytes:
    """The hash an EIP-191 ``personal_sign`` of the 32-byte ``digest`` signs (what ``ecrecover`` checks on chain)."""
    if len(digest) != 32:
        raise MessageFormatError(f"a signed digest is 32 bytes, got {len(digest)}")
    return keccak256(b"\x19Ethereum Signed Message:\n32" + digest)


def signed_hash(cp: Checkpoint) -> bytes:
    return eip191_hash(checkpoint_digest(cp))


def address_of_public_key(public_key: coincurve.PublicKey) -> str:
    return "0x" + keccak256(public_key.format(compressed=False)[1:])[12:].hex()


class CheckpointSigner:
    """Holds one validator key. The key never leaves this object: ``repr`` shows the address only."""

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32:
            raise ValueError("a secp256k1 private key is 32 bytes")
        self._key = coincurve.PrivateKey(private_key)
        self.address = address_of_public_key(self._key.public_key)

    @classmethod
    def from_hex(cls, private_key_hex: str) -> CheckpointSigner:
        text = private_key_hex.strip()
        text = text.removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("validator key is not hex") from None
        return cls(raw)

    def __repr__(self) -> str:
        return f"CheckpointSigner(address={self.address})"

    def sign(self, cp: Checkpoint) -> bytes:
        return self.sign_digest(checkpoint_digest(cp))

    def sign_digest(self, digest: bytes) -> bytes:
        """EIP-191 signature of a domain-tagged 32-byte digest: r | s | v (27/28), s low."""
        sig = self._key.sign_recoverable(eip191_hash(digest), hasher=None)  # r|s|recid, low-s
        return sig[:64] + bytes([sig[64] + 27])


def recover_signer(cp: Checkpoint, signature: bytes) -> str:
    return recover_digest_signer(checkpoint_digest(cp), signature)


def recover_digest_signer(digest: bytes, signature: bytes) -> str:
    """The address whose key made ``signature`` over ``digest`` (EIP-191); ``SignatureError`` when the signature
    is not 65 bytes, has a v other than 27/28, a high s (malleable) or recovers no public key."""
    if len(signature) != SIGNATURE_LEN:
        raise SignatureError(f"a signature is {SIGNATURE_LEN} bytes, got {len(signature)}")
    v = signature[64]
    if v not in (27, 28):
        raise SignatureError(f"signature v is {v}, expected 27 or 28")
    if int.from_bytes(signature[32:64], "big") > _SECP256K1_N // 2:
        raise SignatureError("signature s is in the upper half of the curve order (malleable)")
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature[:64] + bytes([v - 27]),
                                                                    eip191_hash(digest),
                                                                    hasher=None)
    except Exception as exc:  # coincurve raises plain Exception/ValueError on bad points
        raise SignatureError(f"signature does not recover a public key: {exc}") from exc
    return address_of_public_key(public_key)


def sorted_signatures(signatures: Iterable[tuple[str, bytes]]) -> tuple[tuple[str, bytes], ...]:
    """Deduplicated by signer and sorted by address, the order the ISM requires."""
    unique = {addr.lower(): sig for addr, sig in signatures}
    return tuple(sorted(unique.items(), key=lambda item: int(item[0], 16)))


def pack_signatures(signatures: Iterable[tuple[str, bytes]]) -> bytes:
    return b"".join(sig for _, sig in signatures)


def _hex_field(doc: dict[str, Any], key: str, length: int | None) -> bytes:
    value = doc.get(key)
    if not isinstance(value, str) or not value.startswith("0x"):
        raise MessageFormatError(f"checkpoint field {key!r}: expected 0x-prefixed hex, got {value!r:.80}")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise MessageFormatError(f"checkpoint field {key!r}: not hex ({value!r:.80})") from None
    if length is not None and len(raw) != length:
        raise MessageFormatError(f"checkpoint field {key!r}: expected {length} bytes, got {len(raw)}")
    return raw


def checkpoint_index_from_json(doc: object) -> int:
    """The ``index`` of a validator's checkpoint document (``GET .../checkpoints/{origin}/latest``)."""
    if not isinstance(doc, dict):
        raise MessageFormatError(f"a checkpoint document is a JSON object, got {type(doc).__name__}")
    index = doc.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 2**32:
        raise MessageFormatError(f"checkpoint field 'index': expected an integer in [0, 2**32), got {index!r:.80}")
    return index


def checkpoint_from_json(doc: object, *, origin: int) -> tuple[Checkpoint, bytes]:
    """A validator's signed checkpoint document (its HTTP answer) as a ``Checkpoint`` and its 65-byte signature;
    ``MessageFormatError`` naming the field when the document is malformed. The signature is not checked here
    (``recover_signer``)."""
    index = checkpoint_index_from_json(doc)
    assert isinstance(doc, dict)
    cp = Checkpoint(Domain(origin), _hex_field(doc, "origin_mailbox", 32), _hex_field(doc, "root", 32), index)
    return cp, _hex_field(doc, "signature", SIGNATURE_LEN)
