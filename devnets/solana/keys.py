"""Deterministic devnet keypairs.

PUBLIC DEVNET TEST KEYS: the seeds below are published in this repository, so anyone can sign for these
accounts. They are funded only on the local Solana devnet and must never hold anything of value.
"""

from __future__ import annotations

import hashlib

from solders.keypair import Keypair

DEVNET_ACCOUNT_COUNT = 4
"""How many ``devnet_keypair(i)`` accounts are funded at genesis."""

_SEED_DOMAIN = b"xchain-relayer solana devnet PUBLIC TEST KEY v1"


def _seed(label: str) -> bytes:
    return hashlib.sha256(_SEED_DOMAIN + b"|" + label.encode()).digest()


def devnet_keypair(index: int) -> Keypair:
    """The ``index``-th public devnet test keypair (0 <= index < ``DEVNET_ACCOUNT_COUNT`` are funded)."""
    if index < 0:
        raise ValueError(f"devnet keypair index must be >= 0, got {index}")
    return Keypair.from_seed(_seed(f"account/{index}"))


def faucet_keypair() -> Keypair:
    """The devnet faucet that pays ``requestAirdrop`` (a public test key like the others)."""
    return Keypair.from_seed(_seed("faucet"))
