"""``relayer messages list|show ID|retry ID|add-gas ID``: the pipeline store, from the command line."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from relayer.cli.common import UsageError, add_config_flags, load_config, print_json
from relayer.daemon.logconfig import configure_logging

if TYPE_CHECKING:
    from relayer.store import Store


def add_messages_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("messages", help="inspect or retry messages in the store, or pay for their delivery",
                       description="list: recent messages; show ID: one message; retry ID: look at it again now; "
                                   "add-gas ID: pay what relayer.gas_payment still asks of it (to its origin's "
                                   "paymaster on EVM, to the relayer's fee account in a top-up on Solana and Cosmos)")
    add_config_flags(p)
    p.add_argument("action", choices=["list", "show", "retry", "add-gas"])
    p.add_argument("id", nargs="?", help="message id (or origin/delivery tx hash for show)")
    p.add_argument("--state", help="filter list by state")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.add_argument("--key-env", help="add-gas: environment variable holding the payer's key (default on a devnet: "
                                     "the origin's first test account)")
    p.set_defaults(func=cmd_messages)


def cmd_messages(args: argparse.Namespace) -> int:
    configure_logging("warning", None)  # stdout holds only the answer (--json)
    settings = load_config(args)
    from relayer.store import Store

    store = Store(settings.store.url)
    names = {c.domain: n for n, c in settings.chains.items()}
    try:
        if args.action == "list":
            return _list(args, store, names)
        if not args.id:
            raise UsageError(f"messages {args.action} needs a message id")
        if args.action == "show":
            return _show(args, store, names)
        if args.action == "add-gas":
            from relayer.cli.add_gas import add_gas

            return add_gas(args, settings, store)
        return _retry(args, store)
    finally:
        store.close()


def _list(args: argparse.Namespace, store: Store, names: dict[int, str]) -> int:
    from relayer.api.server import message_view

    rows = [message_view(r, names) for r in store.recent(state=args.state, limit=args.limit)]
    if args.json:
        print_json(rows)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("id", "status", "route", "nonce", "attempts", "reason")
        for r in rows:
            status = f"{r['status']} ({r['substate']})" if r["substate"] else r["status"]
            table.add_row(r["id"][:18] + "…", status, f"{r['origin']} → {r['destination']}", str(r["nonce"]),
                          str(r["attempts"]), r["last_reason"] or "")
        Console().print(table)
    return 0


def _show(args: argparse.Namespace, store: Store, names: dict[int, str]) -> int:
    from relayer.api.server import message_view

    found = store.find(args.id)
    if not found:
        raise UsageError(f"no message with id or transaction hash {args.id}")
    for rec in found:
        view = message_view(rec, names)
        if args.json:
            print_json(view)
        else:
            for k, v in view.items():
                print(f"{k:>18}: {v}")
    return 0


def _retry(args: argparse.Namespace, store: Store) -> int:
    retried = store.retry_now(args.id)
    if retried is None:
        raise UsageError(f"no message with id {args.id}")
    print(f"{retried.id}: {retried.state}"
          + ("" if retried.state == "DISPATCHED" else " (not retried: already past submission)"))
    return 0
