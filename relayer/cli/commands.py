"""The ``relayer`` command line: parse, run the command, map its errors to exit codes.

    relayer run -c CONFIG [--role validator|relayer|all]     the daemon (validator and/or relayer + HTTP API)
    relayer send --from CHAIN --to CHAIN (--token SYM --amount N | --body TEXT) [--recipient ADDR] [--wait] [--json]
    relayer messages list|show ID|retry ID                   the pipeline store
    relayer config check CONFIG                              validate a config and say what is wrong, where
    relayer audit [-c CONFIG] [--json]                       bridge balance sheet: locked vs outstanding; exit 1 on a
                                                             shortfall
    relayer devnet up|down|status                            local anvil devnet with contracts deployed
    relayer bench relay --messages N [--json]                end-to-end relay benchmark on the devnet
    relayer bench route --intents N [--json]                 aggregate same-chain throughput: single chains,
                                                             round-robin, router
    relayer bench api --clients N --seconds S [--json]       the routing API under N concurrent clients: req/s, p50/p99
    relayer bench light-clients [--json]                     Tendermint skipping, receipt proofs, sync-committee updates
                                                             per second

One module per command (relayer/cli/run.py, send.py, messages.py, config.py, audit.py, devnet.py, bench.py,
simulate.py), each with its sub-parser next to its handler; parser.py assembles them; common.py holds what they
share. Exit codes: 0 ok, 1 a command's failure (``RelayerError``), 2 a config or usage error, 130 Ctrl-C; a command
may return its own (audit: 1 shortfall, 2 unreadable chain; devnet status: 3 down).
"""

from __future__ import annotations

import sys

from config.errors import ConfigError, RelayerError
from relayer.cli.common import UsageError, pin_recursion_limit
from relayer.cli.parser import build_parser

__all__ = ["build_parser", "main", "pin_recursion_limit"]


def main(argv: list[str] | None = None) -> int:
    pin_recursion_limit()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "send" and args.token and not args.amount:
        parser.error("--token needs --amount")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RelayerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
