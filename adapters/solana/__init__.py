"""Solana: ``SolanaAdapter`` (origin, destination, sender, capacity), the bridge's rules, memo format, errors."""

from adapters.solana.adapter import SolanaAdapter, keypair_from_hex
from adapters.solana.bridge import (
    GUARD_OWNER,
    GUARD_SPACE,
    BridgeRules,
    guard_address,
    guard_instructions,
    guard_seed,
    is_guard,
)
from adapters.solana.memo import DELIVERY_PREFIX, DISPATCH_PREFIX, TokenBody, encode_dispatch_memo

__all__ = [
    "DELIVERY_PREFIX",
    "DISPATCH_PREFIX",
    "GUARD_OWNER",
    "GUARD_SPACE",
    "BridgeRules",
    "SolanaAdapter",
    "TokenBody",
    "encode_dispatch_memo",
    "guard_address",
    "guard_instructions",
    "guard_seed",
    "is_guard",
    "keypair_from_hex",
]
