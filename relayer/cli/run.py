"""``relayer run``: the daemon (validator and/or relayer + HTTP API) until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import ConfigError
from relayer.cli.common import add_config_flags, load_config, pin_recursion_limit
from relayer.daemon.logconfig import configure_logging

if TYPE_CHECKING:
    from relayer.daemon.daemon import RelayerDaemon


def add_run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the daemon until Ctrl-C / SIGTERM")
    add_config_flags(p)
    p.add_argument("--role", choices=["validator", "relayer", "all"], default="all")
    p.add_argument("--instance", help="name of this instance for work leases (default: host name)")
    p.add_argument("--no-status", action="store_true", help="no live status view even on a terminal")
    p.add_argument("--log-file", help="write logs here (default with the status view: DEVNET/relayer.log)")
    p.add_argument("--start-devnet", action="store_true",
                   help="bring the devnet up first if it is down, and stop it again on exit (what `make run` does)")
    p.set_defaults(func=cmd_run)


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


async def _reload_on_sighup(daemon: RelayerDaemon) -> None:
    """SIGHUP: reload relayer.allow / relayer.deny (a bad file is logged and keeps the old lists)."""
    with contextlib.suppress(ConfigError):
        await daemon.reload_filters("SIGHUP")


def _run_daemon(args: argparse.Namespace) -> int:
    settings = load_config(args)
    show_status = sys.stdout.isatty() and not args.no_status
    if show_status and not args.log_file:
        args.log_file = str(Path(args.devnet) / "relayer.log")
    log_stream = open(args.log_file, "a") if args.log_file else None  # noqa: SIM115
    configure_logging(settings.log.level, settings.log.json_output if log_stream is None else True,
                      stream=log_stream or sys.stderr)
    from relayer.daemon.daemon import build_daemon

    daemon = build_daemon(settings, args.role, instance=args.instance)
    daemon.settings_source = lambda: load_config(args)  # SIGHUP / the admin API reload relayer.allow and .deny
    pin_recursion_limit()  # again, after everything the daemon imports

    reloads: list[asyncio.Task[None]] = []  # (held until done: a task nobody references may be collected)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if sys.stdout.isatty():  # on a terminal a hangup means it closed: stop, with everything this command started
            loop.add_signal_handler(signal.SIGHUP, stop.set)
        else:  # a service (systemd, a container, a log file): SIGHUP reloads relayer.allow / relayer.deny
            loop.add_signal_handler(signal.SIGHUP,
                                    lambda: reloads.append(asyncio.create_task(_reload_on_sighup(daemon))))
        view = None
        if show_status:
            from relayer.cli.statusview import StatusView, send_hint

            hint = send_hint(settings, devnet=args.devnet, config=args.config, role=args.role)
            view = StatusView(daemon, log_file=args.log_file, send_hint=hint)
        try:
            if view is not None:
                await asyncio.gather(daemon.run(stop), view.run(stop))
            else:
                await daemon.run(stop)
        finally:
            await daemon.close()

    asyncio.run(main())
    return 0
