"""The ``relayer`` command line.

    relayer run -c CONFIG [--role validator|relayer|all]     the daemon (validator and/or relayer + HTTP API)
    relayer send --from CHAIN --to CHAIN (--token SYM --amount N | --body TEXT) [--recipient ADDR] [--wait] [--json]
    relayer messages list|show ID|retry ID                   the pipeline store
    relayer config check CONFIG                              validate a config and say what is wrong, where
    relayer audit [-c CONFIG] [--json]                       bridge balance sheet: locked vs outstanding; exit 1 on a shortfall
    relayer devnet up|down|status                            local anvil devnet with contracts deployed
    relayer bench relay --messages N [--json]                end-to-end relay benchmark on the devnet
    relayer bench route --intents N [--json]                 aggregate same-chain throughput: single chains, round-robin, router
    relayer bench api --clients N --seconds S [--json]       the routing API under N concurrent clients: req/s, p50/p99
    relayer bench light-clients [--json]                     Tendermint skipping, receipt proofs, sync-committee updates per second
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from config.errors import ConfigError, RelayerError
from config.loader import load_settings
from config.settings import Settings
from relayer.daemon.logconfig import configure_logging

DEFAULT_DEVNET = Path(".devnet")
DEFAULT_FAMILIES = "evm,cosmos,solana"
DEFAULT_RECURSION_LIMIT = 1000  # CPython's own default


def pin_recursion_limit() -> None:
    """Run with CPython's default recursion limit, whatever the libraries imported.

    ``py_ecc`` (imported by ``eth_keyfile``, so by every daemon through ``eth_account``) raises the limit to 100,000
    when imported; C code that recurses once per level of its input (the JSON parser) then overran the C stack
    well before Python's check, and a 200 KB request killed the process with a segfault. Imported here first (its
    side effect spent), then the default restored; no other dependency changes the limit (``relayer_python_
    recursion_limit`` in ``/metrics`` shows the live value; tests/unit/test_recursion_limit.py checks both)."""
    import importlib.util

    if importlib.util.find_spec("py_ecc") is not None:
        import py_ecc  # noqa: F401 - for its import-time side effect, before the limit is restored
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)


class UsageError(RelayerError):
    """A command-line value that cannot be used; says which flag and why."""


def _default_config(args: argparse.Namespace) -> Path:
    return Path(args.config) if getattr(args, "config", None) else Path(args.devnet) / "relayer.toml"


def _load(args: argparse.Namespace) -> Settings:
    return load_settings(_default_config(args))


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, default=str))


# ---------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    started_devnet = None
    configure_logging("warning", None)
    if args.start_devnet:
        from devnets.devnet import Devnet
        from relayer.cli.progress import step_progress

        devnet = Devnet(Path(args.devnet))
        if not devnet.status()["up"]:
            with step_progress("devnet up", total=5) as step:
                devnet.up(progress=step)
            started_devnet = devnet
    try:
        return _run_daemon(args)
    finally:
        if started_devnet is not None:
            stopped = started_devnet.down()
            print(f"devnet stopped: {', '.join(stopped)}", file=sys.stderr)


def _run_daemon(args: argparse.Namespace) -> int:
    settings = _load(args)
    show_status = sys.stdout.isatty() and not args.no_status
    if show_status and not args.log_file:
        args.log_file = str(Path(args.devnet) / "relayer.log")
    log_stream = open(args.log_file, "a") if args.log_file else None  # noqa: SIM115
    configure_logging(settings.log.level, settings.log.json_output if log_stream is None else True,
                      stream=log_stream or sys.stderr)
    from relayer.daemon.daemon import build_daemon

    daemon = build_daemon(settings, args.role, instance=args.instance)
    pin_recursion_limit()  # again, after everything the daemon imports

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        view = None
        if show_status:
            from relayer.cli.statusview import StatusView

            view = StatusView(daemon, log_file=args.log_file)
        try:
            if view is not None:
                await asyncio.gather(daemon.run(stop), view.run(stop))
            else:
                await daemon.run(stop)
        finally:
            await daemon.close()

    asyncio.run(main())
    return 0


# ---------------------------------------------------------------- send
def _parse_amount(text: str, decimals: int) -> int:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"--amount {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"--amount must be a positive number, got {text}")
    units = value * (Decimal(10) ** decimals)
    if units != units.to_integral_value():
        raise UsageError(f"--amount {text} has more than {decimals} decimal places")
    return int(units)


def _route_refusal(reason: str, args: argparse.Namespace, decimals: int) -> str | None:
    """The origin TokenBridge's route refusal (its custom error) in words, or None for any other revert."""
    name, _, rest = reason.partition("(")
    values = rest.rstrip(")").split(",")
    what = f"{args.amount} {args.token} from {args.origin} to {args.destination}"
    nothing = f"nothing was sent ({reason})"
    if name == "NoRoute":
        return (f"{args.origin}'s token bridge has no route for {args.token} to {args.destination}: "
                f"{args.destination} does not carry it; {nothing}")
    if name == "AmountNotRepresentable" and len(values) == 4:
        step = _format_units(int(values[3]), decimals)
        return (f"cannot send {what}: {args.destination} holds {args.token} in steps of {step} "
                f"(fewer decimals); send a multiple of {step}; {nothing}")
    if name == "AmountAboveRouteMax" and len(values) == 4:
        return (f"cannot send {what}: at most {_format_units(int(values[3]), decimals)} {args.token} fits "
                f"{args.destination}'s amounts; {nothing}")
    return None


def _format_units(units: int, decimals: int) -> str:
    text = format(Decimal(units).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def cmd_send(args: argparse.Namespace) -> int:
    configure_logging("warning", None)
    from devnets.devnet import Devnet

    manifest = Devnet(Path(args.devnet)).manifest()
    settings = _load(args)
    chains = manifest["chains"]
    for flag, name in (("--from", args.origin), ("--to", args.destination)):
        if name not in settings.chains:
            raise UsageError(f"{flag} {name!r} is not a configured chain; known chains: {', '.join(settings.chains)}")
    if args.origin == args.destination:
        raise UsageError("--from and --to name the same chain")
    origin_cfg, dest_cfg = settings.chains[args.origin], settings.chains[args.destination]
    sender_key = chains[args.origin]["accounts"][0]["private_key"]  # devnet test key
    from adapters.base import TxReverted
    from adapters.capabilities import Bytes32Accounts
    from adapters.message import address_to_bytes32
    from relayer.daemon.daemon import build_adapters

    def recipient_for(dest: Any) -> bytes:
        """--recipient (or the destination's first devnet account / TestRecipient) as bytes32, in the destination
        chain's own address format (0x..., bech32, base58)."""
        to_bytes32 = dest.account_bytes32 if isinstance(dest, Bytes32Accounts) else None
        family = dest_cfg.family
        if args.recipient:
            try:
                if callable(to_bytes32):
                    return bytes(to_bytes32(args.recipient))
                if len(bytes.fromhex(args.recipient.removeprefix("0x"))) != 20:
                    raise ValueError
                return address_to_bytes32(args.recipient)
            except (ValueError, RelayerError):
                raise UsageError(f"--recipient {args.recipient!r} is not an address on {args.destination} ({family})") from None
        if args.token:
            address = chains[args.destination]["accounts"][0]["address"]
            return bytes(to_bytes32(address)) if callable(to_bytes32) else address_to_bytes32(address)
        if family != "evm":
            raise UsageError(f"{args.destination} ({family}) takes token transfers only: pass --token and --amount")
        return address_to_bytes32(chains[args.destination]["contracts"]["test_recipient"])  # implements handle()

    async def main() -> dict[str, Any]:
        adapters = build_adapters(settings, with_signers=False)
        origin, dest = adapters[args.origin], adapters[args.destination]
        recipient = recipient_for(dest)
        try:
            started = time.time()
            if args.token:
                token = origin_cfg.tokens.get(args.token)
                if token is None:
                    raise UsageError(f"--token {args.token!r} is not known on {args.origin}; known: {', '.join(origin_cfg.tokens) or 'none'}")
                amount = _parse_amount(args.amount, token.decimals)
                try:
                    tx, mid = await origin.send_token(sender_key, args.token, amount, dest_cfg.domain, recipient)  # type: ignore[attr-defined]
                except TxReverted as exc:
                    refusal = _route_refusal(exc.reason, args, token.decimals)
                    if refusal is None:
                        raise
                    raise RelayerError(refusal) from exc
            else:
                tx, ids = await origin.dispatch_messages(sender_key, dest_cfg.domain, recipient, [args.body.encode()])  # type: ignore[attr-defined]
                mid = ids[0]
            result: dict[str, Any] = {"id": "0x" + mid.hex(), "origin_tx": tx, "from": args.origin, "to": args.destination,
                                      "recipient": "0x" + recipient.hex(), "delivered": False}
            if args.wait:
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline:
                    if (await dest.delivered([mid]))[0]:
                        result["delivered"] = True
                        result["seconds"] = round(time.time() - started, 2)
                        break
                    await asyncio.sleep(0.2)
                else:
                    raise RelayerError(f"message {result['id']} not delivered on {args.destination} within {args.timeout}s "
                                       f"(is `relayer run` up? see `relayer messages show {result['id']}`)")
            return result
        finally:
            for a in adapters.values():
                await a.close()

    result = asyncio.run(main())
    if args.json:
        _print_json(result)
    else:
        print(f"dispatched {result['id']} from {args.origin} to {args.destination} in {result['origin_tx']}")
        if result["delivered"]:
            print(f"delivered on {args.destination} after {result['seconds']}s")
    return 0


# ---------------------------------------------------------------- messages
def cmd_messages(args: argparse.Namespace) -> int:
    settings = _load(args)
    from relayer.api.server import message_view
    from relayer.store import Store

    store = Store(settings.store.url)
    names = {c.domain: n for n, c in settings.chains.items()}
    try:
        if args.action == "list":
            rows = [message_view(r, names) for r in store.recent(state=args.state, limit=args.limit)]
            if args.json:
                _print_json(rows)
            else:
                from rich.console import Console
                from rich.table import Table

                table = Table("id", "state", "route", "nonce", "attempts", "reason")
                for r in rows:
                    table.add_row(r["id"][:18] + "…", r["state"], f"{r['origin']} → {r['destination']}", str(r["nonce"]),
                                  str(r["attempts"]), r["last_reason"] or "")
                Console().print(table)
            return 0
        if not args.id:
            raise UsageError(f"messages {args.action} needs a message id")
        if args.action == "show":
            found = store.find(args.id)
            if not found:
                raise UsageError(f"no message with id or transaction hash {args.id}")
            for rec in found:
                view = message_view(rec, names)
                if args.json:
                    _print_json(view)
                else:
                    for k, v in view.items():
                        print(f"{k:>18}: {v}")
            return 0
        retried = store.retry_now(args.id)
        if retried is None:
            raise UsageError(f"no message with id {args.id}")
        print(f"{retried.id}: {retried.state}" + ("" if retried.state == "DISPATCHED" else " (not retried: already past submission)"))
        return 0
    finally:
        store.close()


# ---------------------------------------------------------------- config
def cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    from adapters.keys import resolve_private_key

    for name, chain in settings.chains.items():
        if chain.signer:
            resolve_private_key(chain.signer, where=f"chains.{name}.signer")
    for i, key in enumerate(settings.validator.keys):
        resolve_private_key(key, where=f"validator.keys[{i}]")
    print(f"{args.file}: ok — {len(settings.chains)} chains ({', '.join(settings.chains)}), "
          f"{len(settings.security.validators)} validators, threshold {settings.security.threshold}, store {settings.store.url.split('@')[-1]}")
    return 0


# ---------------------------------------------------------------- audit
def cmd_audit(args: argparse.Namespace) -> int:
    """The bridge's balance sheet: 0 when every token is backed, 1 on a shortfall, 2 when a chain could not be read."""
    configure_logging("warning", None)
    settings = _load(args)
    from relayer.daemon.audit import audit, print_sheet
    from relayer.daemon.daemon import build_adapters

    async def main() -> Any:
        adapters = build_adapters(settings, with_signers=False)
        try:
            return await audit(settings, adapters)
        finally:
            for a in adapters.values():
                await a.close()

    sheet = asyncio.run(main())
    if args.json:
        _print_json(sheet.to_json())
    else:
        print_sheet(sheet)
    if sheet.errors:
        for e in sheet.errors:
            print(f"error: audit could not read {e.chain}: {e.error}", file=sys.stderr)
        return 2
    return 1 if sheet.shortfall else 0


# ---------------------------------------------------------------- devnet
def cmd_devnet(args: argparse.Namespace) -> int:
    configure_logging("warning", None)
    from devnets.devnet import Devnet

    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    devnet = Devnet(Path(args.devnet), base_port=args.base_port, api_port=args.api_port, families=families)
    if args.action == "up":
        from relayer.cli.progress import step_progress

        with step_progress("devnet up", total=5 + len(families) - 1, enabled=not args.json) as step:
            manifest = devnet.up(progress=step)
        if args.json:
            _print_json({"manifest": str(devnet.manifest_path), "config": str(devnet.config_path)})
        else:
            print(f"devnet up: {', '.join(manifest['chains'])}; manifest {devnet.manifest_path}; config {devnet.config_path}")
        return 0
    if args.action == "down":
        stopped = devnet.down()
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    status = devnet.status()
    if args.json:
        _print_json(status)
    else:
        print(f"devnet {'up' if status['up'] else 'down'} ({status['dir']})")
        for name, c in status["chains"].items():
            print(f"  {name:<10} pid {c['pid']:<8} {'alive' if c['alive'] else 'dead':<6} {c['rpc_url']}  height {c['height']}")
    return 0 if status["up"] else 3


# ---------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    from relayer.bench.relay import run_relay_bench

    configure_logging("warning", None)
    if args.what == "light-clients":
        from relayer.bench.relay import run_light_client_bench

        figures = run_light_client_bench(seconds=args.seconds or 3.0, json_output=args.json)
        if args.json:
            _print_json(figures)
        return 0
    if args.what == "api":
        from relayer.bench.api import run_api_bench

        seconds = 20.0 if args.seconds is None else args.seconds
        if args.clients <= 0 or seconds <= 0:
            raise UsageError("--clients and --seconds must be positive")
        api = run_api_bench(clients=args.clients, seconds=seconds, devnet_dir=Path(args.devnet), json_output=args.json)
        if args.json:
            _print_json(api)
        return 0 if api["errors"] == 0 and api["intents"]["lost"] == 0 else 1
    if args.what == "route":
        from relayer.bench.route import ROUTE_DEVNET_DIR, run_route_bench

        if args.intents <= 0:
            raise UsageError("--intents must be positive")
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = set(modes) - {"single", "round_robin", "aggregate"}
        if unknown or not modes:
            raise UsageError(f"--modes takes single,round_robin,aggregate; got {args.modes!r}")
        devnet_dir = Path(args.devnet) if args.devnet != str(DEFAULT_DEVNET) else ROUTE_DEVNET_DIR
        route = run_route_bench(intents=args.intents, devnet_dir=devnet_dir, json_output=args.json, modes=modes,
                                keep_devnet=args.keep_devnet)
        if args.json:
            _print_json(route)
        return 0 if route["lost_all_phases"] == 0 and route["duplicated_all_phases"] == 0 else 1
    if args.pairs:
        from relayer.bench.relay import run_token_relay_bench

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
                                             timeout_s=max(300.0, 15.0 * args.messages))
        if args.json:
            _print_json(token_result)
        return 0 if token_result["lost"] == 0 and token_result["duplicated"] == 0 else 1
    result = run_relay_bench(messages=args.messages, devnet_dir=Path(args.devnet), json_output=args.json,
                             batch_size=args.batch_size, spread=args.spread)
    if args.json:
        _print_json(result)
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


# ---------------------------------------------------------------- simulate
def cmd_simulate(args: argparse.Namespace) -> int:
    from router.simulator import run_cli_simulation

    if args.offered_tps <= 0 or args.seconds <= 0:
        raise UsageError("--offered-tps and --seconds must be positive")
    summary = run_cli_simulation(args.profile, offered_tps=args.offered_tps, seconds=args.seconds, seed=args.seed,
                                 plot_path=args.plot, out=None if args.json else sys.stdout)
    if args.json:
        _print_json(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relayer", description="Cross-chain relayer, validator and devnet tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", help="daemon config (TOML); default: DEVNET/relayer.toml")
        p.add_argument("--devnet", default=str(DEFAULT_DEVNET), help="devnet directory (default .devnet)")

    p = sub.add_parser("run", help="run the daemon until Ctrl-C / SIGTERM")
    with_config(p)
    p.add_argument("--role", choices=["validator", "relayer", "all"], default="all")
    p.add_argument("--instance", help="name of this instance for work leases (default: host name)")
    p.add_argument("--no-status", action="store_true", help="no live status view even on a terminal")
    p.add_argument("--log-file", help="write logs here (default with the status view: DEVNET/relayer.log)")
    p.add_argument("--start-devnet", action="store_true",
                   help="bring the devnet up first if it is down, and stop it again on exit (what `make run` does)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("send", help="dispatch a message or bridge a token on the devnet")
    with_config(p)
    p.add_argument("--from", dest="origin", required=True, help="origin chain name")
    p.add_argument("--to", dest="destination", required=True, help="destination chain name")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--token", help="token symbol to bridge (needs --amount)")
    what.add_argument("--body", help="message body (UTF-8 text)")
    p.add_argument("--amount", help="amount in whole tokens (decimals allowed)")
    p.add_argument("--recipient", help="0x address on the destination (default: first funded devnet account; "
                                        "for --body, the destination's TestRecipient contract)")
    p.add_argument("--wait", action="store_true", help="wait until delivered on the destination")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait with --wait")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("messages", help="inspect or retry messages in the store")
    with_config(p)
    p.add_argument("action", choices=["list", "show", "retry"])
    p.add_argument("id", nargs="?", help="message id (or origin/delivery tx hash for show)")
    p.add_argument("--state", help="filter list by state")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_messages)

    p = sub.add_parser("config", help="validate a config file")
    p.add_argument("action", choices=["check"])
    p.add_argument("file")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("audit", help="bridge balance sheet: locked at home vs wrapped / paid out elsewhere; "
                                     "exit 1 on a shortfall, 2 when a chain could not be read")
    with_config(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (per-token rows, shortfall total)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("devnet", help="start, stop or inspect the local devnet")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--devnet", default=str(DEFAULT_DEVNET), help="devnet directory (default .devnet)")
    p.add_argument("--base-port", type=int, default=8545, help="first anvil port (three are used)")
    p.add_argument("--api-port", type=int, default=8900, help="port the daemon's API will use")
    p.add_argument("--families", default=DEFAULT_FAMILIES,
                   help="chain families to start: evm (three anvils) plus cosmos and/or solana "
                        "(ports base+10/+11 and base+20)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_devnet)

    p = sub.add_parser("bench", help="benchmarks")
    p.add_argument("what", choices=["relay", "route", "api", "light-clients"],
                   help="relay: cross-chain messages end to end; route: same-chain transfers through the routing API, "
                        "each chain alone vs round-robin vs the router's split (its own 4-chain devnet); "
                        "api: the routing API under --clients concurrent clients (req/s, p50/p99, errors, nothing lost); "
                        "light-clients: verifications per second of each light client (one core, no devnet)")
    p.add_argument("--seconds", type=float, default=None,
                   help="light-clients: seconds per measurement (default 3); api: seconds of load (default 20)")
    p.add_argument("--clients", type=int, default=200, help="api: concurrent clients")
    p.add_argument("--pairs", default="", help="relay: token transfers on these routes instead of messages, e.g. "
                                              "l1:cosmos,cosmos:l1 (needs the families on the devnet)")
    p.add_argument("--families", default="evm,cosmos,solana", help="relay --pairs: devnet chain families")
    p.add_argument("--token", default="TST", help="relay --pairs: token symbol")
    p.add_argument("--amount", default="1", help="relay --pairs: amount per transfer")
    p.add_argument("--messages", type=int, default=5000, help="relay: messages to send")
    p.add_argument("--intents", type=int, default=2000, help="route: transfers per mode")
    p.add_argument("--modes", default="single,round_robin,aggregate", help="route: which modes to run")
    p.add_argument("--keep-devnet", action="store_true", help="route: leave the route devnet running afterwards")
    p.add_argument("--batch-size", type=int, default=200, help="messages per delivery transaction")
    p.add_argument("--spread", choices=["capacity", "even"], default="capacity",
                   help="messages per route: in proportion to the chains' gas throughput, or evenly")
    p.add_argument("--devnet", default=str(DEFAULT_DEVNET),
                   help="devnet directory (started if needed; route: .devnet-route by default)")
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("simulate", help="run the router's planner against simulated chains (issue 3)")
    p.add_argument("--profile", default="mainnet_like", help="profile name in config/profiles/ or a .toml path")
    p.add_argument("--offered-tps", type=float, required=True, help="offered intents per second")
    p.add_argument("--seconds", type=float, required=True, help="simulated seconds of offered load")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--plot", help="write throughput, utilisation and fees over time to this PNG")
    p.set_defaults(func=cmd_simulate)
    return parser


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
