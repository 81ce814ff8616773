"""``python -m devnets.solana --port PORT --state-dir DIR [--slot-ms 400] [--faucet-lamports N]
[--allow-snapshots]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from devnets.snapshots import ALLOW_FLAG
from devnets.solana.ledger import LedgerParams
from devnets.solana.server import DevnetConfig, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devnets.solana", description=__doc__)
    parser.add_argument("--port", type=int, default=8899)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-dir", type=Path, required=True, help="ledger directory; reloaded if present")
    parser.add_argument("--slot-ms", type=int, default=400, help="slot duration in milliseconds")
    parser.add_argument(
        "--faucet-lamports",
        type=int,
        default=LedgerParams.genesis_lamports,
        help="genesis balance of the faucet and of each devnet_keypair(i) account",
    )
    parser.add_argument("--blockhash-valid-slots", type=int, default=LedgerParams.blockhash_valid_slots)
    parser.add_argument("--finalized-lag", type=int, default=LedgerParams.finalized_lag)
    parser.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="serve xchain_snapshot / xchain_revert (devnet-only, for a test session's own devnet); refused without",
    )
    args = parser.parse_args(argv)
    ledger = LedgerParams(
        genesis_lamports=args.faucet_lamports,
        blockhash_valid_slots=args.blockhash_valid_slots,
        finalized_lag=args.finalized_lag,
    )
    serve(
        DevnetConfig(
            state_dir=args.state_dir,
            host=args.host,
            port=args.port,
            slot_ms=args.slot_ms,
            ledger=ledger,
            allow_snapshots=args.allow_snapshots,
        )
    )


if __name__ == "__main__":
    main()
