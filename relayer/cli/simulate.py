"""``relayer simulate``: the router's planner against simulated chains."""

from __future__ import annotations

import argparse
import sys

from relayer.cli.common import UsageError, print_json


def add_simulate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("simulate", help="run the router's planner against simulated chains (issue 3)")
    p.add_argument("--profile", default="mainnet_like", help="profile name in config/profiles/ or a .toml path")
    p.add_argument("--offered-tps", type=float, required=True, help="offered intents per second")
    p.add_argument("--seconds", type=float, required=True, help="simulated seconds of offered load")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--plot", help="write throughput, utilisation and fees over time to this PNG")
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from router.simulator import run_cli_simulation

    if args.offered_tps <= 0 or args.seconds <= 0:
        raise UsageError("--offered-tps and --seconds must be positive")
    summary = run_cli_simulation(args.profile, offered_tps=args.offered_tps, seconds=args.seconds, seed=args.seed,
                                 plot_path=args.plot, out=None if args.json else sys.stdout)
    if args.json:
        print_json(summary)
    return 0
