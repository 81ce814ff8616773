"""keccak256 (the pre-standard SHA-3 padding Ethereum uses), via pycryptodome."""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    """The 32-byte keccak256 digest of ``data``."""
    return _keccak.new(data=data, digest_bits=256).digest()


EMPTY_TRIE_ROOT = keccak256(b"\x80")
"""Root of the empty Merkle-Patricia trie: keccak256(rlp(b''))."""

EMPTY_CODE_HASH = keccak256(b"")
"""Code hash of an account without code."""

EMPTY_LIST_HASH = keccak256(b"\xc0")
"""keccak256(rlp([])): the uncles hash of a block without uncles."""
