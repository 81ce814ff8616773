"""``python -m devnets.solana --port PORT --state-dir DIR [--slot-ms 400] [--faucet-lamports N]``."""

from __future__ import annotations

import argparse
from pathlib import Path

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
    args = parser.parse_args(argv)
    ledger = LedgerParams(
        genesis_lamports=args.faucet_lamports,
        blockhash_valid_slots=args.blockhash_valid_slots,
        finalized_lag=args.finalized_lag,
    )
    serve(
        DevnetConfig(
            state_dir=args.state_dir, host=args.host, port=args.port, slot_ms=args.slot_ms, ledger=ledger
        )
    )


if __name__ == "__main__":
    main()
