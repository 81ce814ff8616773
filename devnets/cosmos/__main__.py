"""``python -m devnets.cosmos --rpc-port P --rest-port Q --state-dir DIR [--block-ms 500] [--validators 4]
[--escrow-address BECH32 --escrow-balance N] [--allow-snapshots]``."""

from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal
from pathlib import Path

from devnets.cosmos.genesis import DEFAULT_CHAIN_ID, GenesisSettings
from devnets.cosmos.node import NodeSettings, run_node
from devnets.snapshots import ALLOW_FLAG


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devnets.cosmos", description="The project's Cosmos devnet"
    )
    parser.add_argument("--rpc-port", type=int, required=True)
    parser.add_argument("--rest-port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--block-ms", type=int, default=500)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--signers", type=int, default=None, help="how many validators sign each commit")
    parser.add_argument("--chain-id", default=DEFAULT_CHAIN_ID)
    parser.add_argument("--accounts", type=int, default=5)
    parser.add_argument("--min-gas-price", type=Decimal, default=Decimal("0.0025"))
    parser.add_argument("--escrow-address", default="", help="the only holder of the token denom at genesis")
    parser.add_argument("--escrow-balance", type=int, default=0, help="token denom the escrow holds at genesis")
    parser.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="serve xchain_snapshot / xchain_revert (devnet-only, for a test session's own devnet); refused without",
    )
    args = parser.parse_args(argv)
    try:
        genesis = GenesisSettings(
            chain_id=args.chain_id,
            validator_count=args.validators,
            account_count=args.accounts,
            min_gas_price=args.min_gas_price,
            escrow_address=args.escrow_address,
            escrow_balance=args.escrow_balance,
        )
    except ValueError as exc:
        parser.error(f"--escrow-address/--escrow-balance: {exc}")
    node = NodeSettings(
        args.rpc_port,
        args.rest_port,
        args.state_dir,
        args.block_ms,
        signer_count=args.signers,
        allow_snapshots=args.allow_snapshots,
    )
    asyncio.run(run_node(node, genesis))


if __name__ == "__main__":
    main()
