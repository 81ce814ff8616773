"""``relayer bench relay|route|intents|api|light-clients|rollup-finality|netting``: the benchmarks (the benches
themselves are in relayer/bench/)."""

from __future__ import annotations

import argparse
from pathlib import Path

from relayer.cli.common import DEFAULT_DEVNET, UsageError, print_json
from relayer.daemon.logconfig import configure_logging


def add_bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="benchmarks")
    p.add_argument("what", choices=["relay", "route", "intents", "api", "light-clients", "rollup-finality",
                                    "netting"],
                   help="relay: cross-chain messages end to end; route: same-chain transfers through the routing API, "
                        "each chain alone vs round-robin vs the router's split (its own 4-chain devnet); "
                        "intents: operator-signed transfers one daemon accepts and lands per second, latency, lost and "
                        "duplicated read from the chains (its own devnet); "
                        "api: the routing API under --clients concurrent clients (req/s, p50/p99, errors, "
                        "nothing lost); "
                        "light-clients: verifications per second of each light client (one core, no devnet); "
                        "rollup-finality: latency from dispatch to delivery on one rollup route under each rollup "
                        "finality rule (confirmations, optimistic, posted), one after the other (its own devnet); "
                        "netting: opposite flows through the liquidity pools (netted per epoch) vs the same load "
                        "through lock/mint, symmetric and one-way, on --route A:B (its own devnet)")
    p.add_argument("--seconds", type=float, default=None,
                   help="light-clients: seconds per measurement (default 3); api: seconds of load (default 20)")
    p.add_argument("--clients", type=int, default=200, help="api: concurrent clients")
    p.add_argument("--pairs", default="", help="relay: token transfers on these routes instead of messages, e.g. "
                                              "l1:cosmos,cosmos:l1 (needs the families on the devnet)")
    p.add_argument("--families", default="evm,cosmos,solana", help="relay --pairs: devnet chain families")
    p.add_argument("--token", default="TST", help="relay --pairs: token symbol")
    p.add_argument("--amount", default="1", help="relay --pairs: amount per transfer")
    p.add_argument("--messages", type=int, default=None,
                   help="relay: messages to send (default 5000); rollup-finality: messages per rule (default 10)")
    p.add_argument("--route", default=None, help="rollup-finality: ROLLUP:DESTINATION (default rollup_a:l1); "
                                                 "netting: A:B (default l1:rollup_a)")
    p.add_argument("--transfers", type=int, default=None,
                   help="netting: transfers per direction and scenario (default 20); the route is --route A:B "
                        "(one-way scenarios go A->B)")
    p.add_argument("--intents", type=int, default=None, help="route: transfers per mode (default 2000); intents: "
                                                              "transfers in all (default 20000)")
    p.add_argument("--batch", type=int, default=1000, help="intents: intents per POST /v1/intents")
    p.add_argument("--submitters", type=int, default=4, help="intents: concurrent clients posting batches")
    p.add_argument("--modes", default="single,round_robin,aggregate", help="route: which modes to run")
    p.add_argument("--daemons", type=int, default=1,
                   help="route: daemons sharing one database (more than 1 needs --store-url postgresql://...)")
    p.add_argument("--store-url", default=None,
                   help="route: the database every bench daemon uses (default: the devnet config's SQLite file)")
    p.add_argument("--keep-devnet", action="store_true",
                   help="leave a devnet the bench brought up running afterwards (by default the bench stops the "
                        "devnet and daemon it started, also on Ctrl-C or SIGTERM; one already running is left as is)")
    p.add_argument("--base-port", type=int, default=None,
                   help="first port of the devnet the bench brings up (default 8545; route: 8645)")
    p.add_argument("--api-port", type=int, default=None, help="its daemon's API port (default 8900; route: 8990)")
    p.add_argument("--batch-size", type=int, default=200, help="messages per delivery transaction")
    p.add_argument("--spread", choices=["capacity", "even"], default="capacity",
                   help="messages per route: in proportion to the chains' gas throughput, or evenly")
    p.add_argument("--devnet", "--devnet-dir", default=str(DEFAULT_DEVNET),
                   help="devnet directory (started if needed; route: .devnet-route, rollup-finality: "
                        ".devnet-rollup-finality by default)")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    """Exit 0 when the bench lost and duplicated nothing (api: no errors either), 1 otherwise."""
    from relayer.bench.daemon import sigterm_as_interrupt

    configure_logging("warning", None)
    with sigterm_as_interrupt():  # SIGTERM cleans up like Ctrl-C: the devnet and daemon a bench started stop
        return _bench(args)


def _ports(args: argparse.Namespace) -> dict[str, int]:
    """The devnet ports given on the command line (each bench has its own defaults)."""
    return {k: v for k, v in (("base_port", args.base_port), ("api_port", args.api_port)) if v is not None}


def _bench(args: argparse.Namespace) -> int:
    if args.what == "light-clients":
        return _bench_light_clients(args)
    if args.what == "api":
        return _bench_api(args)
    if args.what == "route":
        return _bench_route(args)
    if args.what == "intents":
        return _bench_intents(args)
    if args.what == "rollup-finality":
        return _bench_rollup_finality(args)
    if args.what == "netting":
        return _bench_netting(args)
    args.messages = 5000 if args.messages is None else args.messages
    if args.pairs:
        return _bench_token_relay(args)
    return _bench_relay(args)


def _bench_light_clients(args: argparse.Namespace) -> int:
    from relayer.bench.light_clients import run_light_client_bench

    figures = run_light_client_bench(seconds=args.seconds or 3.0, json_output=args.json)
    if args.json:
        print_json(figures)
    return 0


def _bench_api(args: argparse.Namespace) -> int:
    from relayer.bench.api import run_api_bench

    seconds = 20.0 if args.seconds is None else args.seconds
    if args.clients <= 0 or seconds <= 0:
        raise UsageError("--clients and --seconds must be positive")
    api = run_api_bench(clients=args.clients, seconds=seconds, devnet_dir=Path(args.devnet), json_output=args.json,
                        keep_devnet=args.keep_devnet, **_ports(args))
    if args.json:
        print_json(api)
    return 0 if api["errors"] == 0 and api["intents"]["lost"] == 0 else 1


def _bench_route(args: argparse.Namespace) -> int:
    from relayer.bench.route import ROUTE_DEVNET_DIR, run_route_bench

    args.intents = 2000 if args.intents is None else args.intents
    if args.intents <= 0:
        raise UsageError("--intents must be positive")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - {"single", "round_robin", "aggregate"}
    if unknown or not modes:
        raise UsageError(f"--modes takes single,round_robin,aggregate; got {args.modes!r}")
    if args.daemons < 1:
        raise UsageError("--daemons must be at least 1")
    if args.daemons > 1 and not (args.store_url or "").startswith("postgresql://"):
        raise UsageError(f"--daemons {args.daemons} share one database: pass --store-url "
                         "postgresql://USER@HOST:PORT/DB (SQLite is one daemon's)")
    devnet_dir = Path(args.devnet) if args.devnet != str(DEFAULT_DEVNET) else ROUTE_DEVNET_DIR
    route = run_route_bench(intents=args.intents, devnet_dir=devnet_dir, json_output=args.json, modes=modes,
                            keep_devnet=args.keep_devnet, daemons=args.daemons, store_url=args.store_url,
                            **_ports(args))
    if args.json:
        print_json(route)
    return 0 if route["lost_all_phases"] == 0 and route["duplicated_all_phases"] == 0 else 1


def _bench_intents(args: argparse.Namespace) -> int:
    from relayer.bench.intents import INTENTS_DEVNET_DIR, run_intents_bench

    n = 20_000 if args.intents is None else args.intents
    if n <= 0 or args.batch <= 0 or args.submitters <= 0:
        raise UsageError("--intents, --batch and --submitters must be positive")
    devnet_dir = Path(args.devnet) if args.devnet != str(DEFAULT_DEVNET) else INTENTS_DEVNET_DIR
    result = run_intents_bench(intents=n, batch=args.batch, submitters=args.submitters, devnet_dir=devnet_dir,
                               json_output=args.json, keep_devnet=args.keep_devnet, **_ports(args))
    if args.json:
        print_json(result)
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


def _bench_token_relay(args: argparse.Namespace) -> int:
    from relayer.bench.token_relay import run_token_relay_bench

    try:
        pairs = [(o.strip(), d.strip()) for o, _, d in (p.partition(":") for p in args.pairs.split(",")) if d]
    except ValueError:
        pairs = []
    if not pairs:
        raise UsageError(f"--pairs takes ORIGIN:DEST[,ORIGIN:DEST...], got {args.pairs!r}")
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    token_result = run_token_relay_bench(pairs=pairs, per_pair=max(1, args.messages // len(pairs)),
                                         devnet_dir=Path(args.devnet), families=families, json_output=args.json,
                                         token=args.token, amount=args.amount,
                                         timeout_s=max(300.0, 15.0 * args.messages), keep_devnet=args.keep_devnet,
                                         **_ports(args))
    if args.json:
        print_json(token_result)
    return 0 if token_result["lost"] == 0 and token_result["duplicated"] == 0 else 1


def _bench_relay(args: argparse.Namespace) -> int:
    from relayer.bench.relay import run_relay_bench

    result = run_relay_bench(messages=args.messages, devnet_dir=Path(args.devnet), json_output=args.json,
                             batch_size=args.batch_size, spread=args.spread, keep_devnet=args.keep_devnet,
                             **_ports(args))
    if args.json:
        print_json(result)
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


def _bench_rollup_finality(args: argparse.Namespace) -> int:
    from relayer.bench.rollup_finality import (
        ROLLUP_FINALITY_API_PORT,
        ROLLUP_FINALITY_BASE_PORT,
        ROLLUP_FINALITY_DEVNET_DIR,
        run_rollup_finality_bench,
    )

    n = 10 if args.messages is None else args.messages
    route = _count_and_route(args, n, "--messages", "rollup_a:l1", "ROLLUP:DESTINATION")
    devnet_dir = Path(args.devnet) if args.devnet != str(DEFAULT_DEVNET) else ROLLUP_FINALITY_DEVNET_DIR
    result = run_rollup_finality_bench(messages=n, route=route, devnet_dir=devnet_dir,
                                       json_output=args.json, keep_devnet=args.keep_devnet,
                                       base_port=args.base_port or ROLLUP_FINALITY_BASE_PORT,
                                       api_port=args.api_port or ROLLUP_FINALITY_API_PORT)
    if args.json:
        print_json(result)
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 and result["send_errors"] == 0 else 1


def _count_and_route(args: argparse.Namespace, n: int, count_flag: str, default: str, shape: str) -> tuple[str, str]:
    """``--route`` (``default`` when not given) as a chain pair; ``UsageError`` unless ``n`` is positive and the
    route names two chains."""
    text = args.route or default
    a, _, b = text.partition(":")
    if n <= 0 or not a.strip() or not b.strip():
        raise UsageError(f"{count_flag} must be positive and --route {shape}; got {n}, {text!r}")
    return a.strip(), b.strip()


def _bench_netting(args: argparse.Namespace) -> int:
    from relayer.bench.netting import (
        DEFAULT_TRANSFERS,
        NETTING_API_PORT,
        NETTING_BASE_PORT,
        NETTING_DEVNET_DIR,
        run_netting_bench,
    )

    n = DEFAULT_TRANSFERS if args.transfers is None else args.transfers
    route = _count_and_route(args, n, "--transfers", "l1:rollup_a", "A:B")
    devnet_dir = Path(args.devnet) if args.devnet != str(DEFAULT_DEVNET) else NETTING_DEVNET_DIR
    result = run_netting_bench(transfers=n, route=route, devnet_dir=devnet_dir,
                               json_output=args.json, keep_devnet=args.keep_devnet,
                               base_port=args.base_port or NETTING_BASE_PORT,
                               api_port=args.api_port or NETTING_API_PORT)
    if args.json:
        print_json(result)
    ok = result["lost"] == 0 and result["duplicated"] == 0 and result["send_errors"] == 0
    return 0 if ok and result["supply_conserved"] and result["finished"] else 1
