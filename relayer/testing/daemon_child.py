"""``python -m relayer.testing.daemon_child -c CONFIG [--instance NAME] [--warm FILE]``: a fork server of daemons.

The process imports the daemon's code once and then, for each line ``fork`` (or ``fork record``) on stdin, forks a
child and prints ``pid N``. The child does what ``relayer run -c CONFIG --role all --no-status`` does (see
``relayer.cli.run``), split in two. Ahead of time: the config and ``build_daemon`` (keys, adapters, light-client
verifiers, the store opened, the HTTP API built; nothing read from a chain or the store yet; its log lines kept in
memory); then it
prints ``warm N`` and waits for SIGUSR1. On SIGUSR1 it writes those lines to stderr and runs the daemon, logging JSON
lines to stderr, until SIGTERM or SIGINT, as ``relayer run``.

So a daemon start costs the daemon's own start only: no interpreter start-up, no imports (the fork shares them),
no build. The store a child opened early may be rewritten before it runs (a reset puts the snapshot back into the
same file with SQLite's backup API: its open connections read the new content).

``--warm FILE``: before each fork, import every module FILE names (what an earlier daemon had loaded), so children
inherit them. ``fork record``: that child writes FILE (the names of every module loaded) when it stops. The server
exits at the end of its input (its parent gone); a child exits when its parent (the server) is gone. Each child
leads a process group of its own (its pid): it is stopped with ``killpg``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import io
import os
import random
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

if TYPE_CHECKING:
    from relayer.daemon.daemon import RelayerDaemon

GO = signal.SIGUSR1


def warm(listing: Path | None) -> None:
    """Import what the daemon needs: its modules, and every module ``listing`` names (if it exists yet)."""
    import relayer.daemon.daemon  # noqa: F401 - and what it imports at load time

    if listing is None or not listing.exists():
        return
    for name in listing.read_text().split():
        if name in sys.modules or name.startswith("__"):
            continue
        with contextlib.suppress(Exception):  # a module importable only from its package's own code: skipped
            importlib.import_module(name)


def build(config: Path, instance: str, log: TextIO) -> RelayerDaemon:
    """``relayer run``'s daemon of role ``all`` for ``config``, logging JSON lines to ``log``."""
    from config.loader import load_settings
    from relayer.cli.common import pin_recursion_limit
    from relayer.daemon.daemon import build_daemon
    from relayer.daemon.logconfig import configure_logging

    settings = load_settings(config)
    configure_logging(settings.log.level, True, stream=log)
    daemon = build_daemon(settings, "all", instance=instance)
    daemon.settings_source = lambda: load_settings(config)  # the admin API's reload of relayer.allow / .deny
    pin_recursion_limit()
    return daemon


async def run(daemon: RelayerDaemon, stop: asyncio.Event) -> None:
    """Until SIGTERM or SIGINT (``stop``), then closed (as ``relayer run``)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await daemon.run(stop)
    finally:
        await daemon.close()


def _log_to_stderr(earlier: str, level: str) -> None:
    from relayer.daemon.logconfig import configure_logging

    sys.stderr.write(earlier)
    configure_logging(level, True, stream=sys.stderr)


def _exit_with_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def child(config: Path, instance: str, record: Path | None, server: int) -> NoReturn:
    """A forked daemon: build, say ``warm``, wait for SIGUSR1, run; never returns. It exits when ``server`` (its
    parent) is gone."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_BLOCK, {GO})
        random.seed()  # not the server's sequence
        _exit_with_parent(server)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        early = io.StringIO()  # the build's log lines, written when this daemon starts (not amid the running one's)
        daemon = build(config, instance, early)
        stop = asyncio.Event()  # bound to the loop that first waits on it: run's
        daemon.prepare_api(stop)
        os.write(1, f"warm {os.getpid()}\n".encode())
        os.dup2(2, 1)  # from now on stdout is the log: the server's pipe is its own
        signal.sigwait({GO})
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {GO})
        _log_to_stderr(early.getvalue(), daemon.settings.log.level)
        asyncio.run(run(daemon, stop))
        if record is not None:
            record.write_text("\n".join(sorted(sys.modules)) + "\n")
        code = 0
    except BaseException:  # noqa: BLE001 - a forked child must never return into the server's loop
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(config: Path, instance: str, listing: Path | None) -> int:
    """The fork server's loop (see the module docstring)."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel: no zombies
    warm(listing)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] != "fork":
            continue
        warm(listing)
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            child(config, instance, listing if "record" in words[1:] else None, server)
        print(f"pid {pid}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m relayer.testing.daemon_child")
    parser.add_argument("-c", "--config", type=Path, required=True, help="the daemon config (TOML)")
    parser.add_argument("--instance", default="xchain", help="the daemon's instance name (work leases)")
    parser.add_argument("--warm", type=Path, help="the modules a daemon loads (one name a line): read before each "
                                                 "fork, written by a child forked with `fork record`")
    args = parser.parse_args()
    return serve(args.config, args.instance, args.warm)


if __name__ == "__main__":
    sys.exit(main())
