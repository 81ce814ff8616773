"""``relayer audit``: the bridge's balance sheet, locked at home vs wrapped / paid out elsewhere."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from relayer.cli.common import add_config_flags, load_config, print_json
from relayer.daemon.logconfig import configure_logging


def add_audit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="bridge balance sheet: locked at home vs wrapped / paid out elsewhere; "
                                     "exit 1 on a shortfall, 2 when a chain could not be read")
    add_config_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object (per-token rows, shortfall total)")
    p.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    """The bridge's balance sheet: 0 when every token is backed, 1 on a shortfall, 2 when a chain could not be read."""
    configure_logging("warning", None)
    settings = load_config(args)
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
        print_json(sheet.to_json())
    else:
        print_sheet(sheet)
    if sheet.errors:
        for e in sheet.errors:
            print(f"error: audit could not read {e.chain}: {e.error}", file=sys.stderr)
        return 2
    return 1 if sheet.shortfall else 0
