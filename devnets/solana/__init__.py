"""A Solana devnet: ``solders.litesvm.LiteSVM`` behind a JSON-RPC server that solana-py talks to unmodified.

Slots advance on a timer; commitment levels lag the tip as on a real cluster (confirmed by 1 slot,
finalized by 32); blockhashes expire after 150 slots; accounts and history survive restarts (SQLite in
the state directory, written before a transaction is acknowledged). SPL Token (with native multisig),
Associated Token Account and Memo (v1, v2) are LiteSVM's default programs.

    python -m devnets.solana --port 8899 --state-dir .devnet/solana
"""

from devnets.solana.keys import DEVNET_ACCOUNT_COUNT, devnet_keypair, faucet_keypair
from devnets.solana.process import (
    DevnetNotReady,
    devnet_url,
    start_solana_devnet,
    stop,
    stop_solana_devnet,
    wait_until_ready,
)

__all__ = [
    "DEVNET_ACCOUNT_COUNT",
    "DevnetNotReady",
    "devnet_keypair",
    "devnet_url",
    "faucet_keypair",
    "start_solana_devnet",
    "stop",
    "stop_solana_devnet",
    "wait_until_ready",
]
