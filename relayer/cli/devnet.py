"""``relayer devnet up|down|status``: the local devnet (anvils with the contracts deployed, Cosmos, Solana)."""

from __future__ import annotations

import argparse
from pathlib import Path

from relayer.cli.common import DEFAULT_DEVNET, DEFAULT_FAMILIES, print_json
from relayer.daemon.logconfig import configure_logging


def add_devnet_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("devnet", help="start, stop or inspect the local devnet")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--devnet", default=str(DEFAULT_DEVNET), help="devnet directory (default .devnet)")
    p.add_argument("--base-port", type=int, default=8545, help="first anvil port (three are used)")
    p.add_argument("--api-port", type=int, default=8900, help="port the daemon's API will use")
    p.add_argument("--families", default=DEFAULT_FAMILIES,
                   help="chain families to start: evm (three anvils) plus cosmos and/or solana "
                        "(ports base+10/+11 and base+20)")
    p.add_argument("--rollup-finality", choices=["confirmations", "optimistic", "posted"], default="confirmations",
                   help="up: the rule the written config gives the rollups' origins: their own confirmations (default, "
                        "fastest), or final by the output roots the devnet proposer posts on the L1: after the "
                        "challenge window (optimistic, OP Stack) or once posted (posted, a validity-proved rollup)")
    p.add_argument("--keep-state", action="store_true",
                   help="down: keep every chain's state (anvils, beacon, Cosmos, Solana) and the relayer's store, so "
                        "the next `up` resumes this devnet; without it `down` drops them and `up` starts a new devnet")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devnet)


def cmd_devnet(args: argparse.Namespace) -> int:
    configure_logging("warning", None)
    from devnets.devnet import Devnet

    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    devnet = Devnet(Path(args.devnet), base_port=args.base_port, api_port=args.api_port, families=families,
                    rollup_finality=args.rollup_finality)
    if args.action == "up":
        from relayer.cli.progress import step_progress

        with step_progress("devnet up", total=6 + len(families) - 1, enabled=not args.json) as step:
            manifest = devnet.up(progress=step)
        if args.json:
            print_json({"manifest": str(devnet.manifest_path), "config": str(devnet.config_path)})
        else:
            print(f"devnet up: {', '.join(manifest['chains'])}; manifest {devnet.manifest_path}; "
                  f"config {devnet.config_path}")
        return 0
    if args.action == "down":
        stopped = devnet.down(keep_state=args.keep_state)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}"
              + (f"; state kept in {devnet.dir}: the next `relayer devnet up` resumes it" if args.keep_state else ""))
        return 0
    status = devnet.status()
    if args.json:
        print_json(status)
    else:
        print(f"devnet {'up' if status['up'] else 'down'} ({status['dir']})")
        for name, c in status["chains"].items():
            print(f"  {name:<10} pid {c['pid']:<8} {'alive' if c['alive'] else 'dead':<6} {c['rpc_url']}  height "
                  f"{c['height']}")
    return 0 if status["up"] else 3
