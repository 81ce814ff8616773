"""The attacker: a process of its own that holds no validator key (issue 12's attacker model).

It is started by the adversarial tests as ``python -m tests.adversarial.attacker --world WORLD.json
MODULE.FUNCTION [--arg NAME=JSON ...]`` and prints one JSON object: what the attack observed. ``WORLD.json``
holds only what anyone can know (RPC URLs, contract and account addresses, the daemon's API URL, the public
settings with every key removed) plus the attacker's own keys; the tests check that no validator, relayer or
operator key is in it before starting the process.

The attacker can call every HTTP endpoint, send any transaction on any chain (with its own funded accounts),
pre-fund or create any account, read every message id as soon as it is dispatched, and replay or alter any
request it has seen. Attacks live in ``tests/adversarial/attacks/<topic>.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from config.settings import Settings


@dataclass
class AttackerContext:
    """What the attacker holds: public knowledge and its own keys (never a validator's)."""

    world: dict[str, Any]
    settings: Settings = field(init=False)
    http: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings.model_validate(self.world["settings"])
        self.http = httpx.AsyncClient(timeout=30.0)
        self._adapters: dict[str, Any] | None = None

    @property
    def api_url(self) -> str:
        return str(self.world["api_url"])

    @property
    def keys(self) -> dict[str, str]:
        """The attacker's own keys by chain family: ``evm`` (hex), ``cosmos`` (hex), ``solana`` (hex ed25519 seed)."""
        return dict(self.world["attacker_keys"])

    @property
    def addresses(self) -> dict[str, str]:
        """The attacker's own address on each chain (by chain name)."""
        return dict(self.world["attacker_addresses"])

    @property
    def chains(self) -> dict[str, Any]:
        """The public devnet manifest's chains (RPC URLs, contracts, tokens, accounts' addresses)."""
        return dict(self.world["chains"])

    @property
    def relayer_auth(self) -> httpx.Auth:
        """Signs requests to validators as a relayer whose identity is the attacker's own EVM key: accepted only by
        a validator that allow-listed it (a malicious relayer: relayers are untrusted)."""
        from relayer.api.relayer_auth import RelayerAuth, RelayerRequestSigner

        return RelayerAuth(RelayerRequestSigner(self.keys["evm"]))

    def adapters(self) -> dict[str, Any]:
        """Read/send adapters for every chain, without any signer (the attacker passes its own key per call)."""
        if self._adapters is None:
            from relayer.daemon.daemon import build_adapters

            self._adapters = dict(build_adapters(self.settings, with_signers=False))
        return self._adapters

    async def close(self) -> None:
        await self.http.aclose()
        for adapter in (self._adapters or {}).values():
            await adapter.close()


def _arguments(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--arg {pair!r}: expected NAME=JSON")
        out[name] = json.loads(value)
    return out


async def _run(world: dict[str, Any], target: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    module_name, _, function_name = target.rpartition(".")
    if not module_name:
        raise SystemExit(f"{target!r}: expected MODULE.FUNCTION")
    attack = getattr(importlib.import_module(f"tests.adversarial.attacks.{module_name}"), function_name)
    ctx = AttackerContext(world)
    try:
        result = attack(ctx, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return dict(result)
    finally:
        await ctx.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.adversarial.attacker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", required=True, type=Path, help="public world JSON written by the tests")
    parser.add_argument("target", help="MODULE.FUNCTION under tests/adversarial/attacks/")
    parser.add_argument("--arg", action="append", default=[], help="NAME=JSON keyword argument of the attack")
    args = parser.parse_args(argv)
    world = json.loads(args.world.read_text())
    result = asyncio.run(_run(world, args.target, _arguments(args.arg)))
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
