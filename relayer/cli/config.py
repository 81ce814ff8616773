"""``relayer config check FILE``: validate a config and say what is wrong, where."""

from __future__ import annotations

import argparse

from config.loader import load_settings


def add_config_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="validate a config file")
    p.add_argument("action", choices=["check"])
    p.add_argument("file")
    p.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.file)
    from adapters.keys import resolve_private_key

    for name, chain in settings.chains.items():
        if chain.signer:
            resolve_private_key(chain.signer, where=f"chains.{name}.signer")
    for i, key in enumerate(settings.validator.keys):
        resolve_private_key(key, where=f"validator.keys[{i}]")
    print(f"{args.file}: ok — {len(settings.chains)} chains ({', '.join(settings.chains)}), "
          f"{len(settings.security.validators)} validators, threshold {settings.security.threshold}, "
          f"store {settings.store.url.split('@')[-1]}")
    return 0
