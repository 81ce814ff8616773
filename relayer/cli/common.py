"""What every command shares: the devnet defaults, the config flags, the usage error, JSON output, the recursion pin."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from config.errors import RelayerError
from config.loader import load_settings
from config.settings import Settings

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


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """``-c/--config`` and ``--devnet``: the commands that read the daemon's config."""
    p.add_argument("-c", "--config", help="daemon config (TOML); default: DEVNET/relayer.toml")
    p.add_argument("--devnet", default=str(DEFAULT_DEVNET), help="devnet directory (default .devnet)")


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if getattr(args, "config", None) else Path(args.devnet) / "relayer.toml"


def load_config(args: argparse.Namespace) -> Settings:
    return load_settings(config_path(args))


def print_json(obj: Any) -> None:
    print(json.dumps(obj, default=str))
