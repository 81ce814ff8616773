"""``relayer messages add-gas ID``: pay what a message still owes its origin's paymaster (``relayer.gas_payment``),
so that a message waiting for payment is delivered. The payer is ``--key-env``'s key, or on the devnet its first
funded account of the origin (a devnet test key). Anyone may pay for any message: paying only moves the payer's
money to the paymaster (the quote is kept, the excess refunded in the same transaction)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayer.cli.common import UsageError, print_json

if TYPE_CHECKING:
    from config.settings import Settings
    from relayer.store import MessageRecord, Store

QUOTE_CUSHION = 1.1  # the oracle may be rewritten between the quote and the payment; the excess comes back


def add_gas(args: argparse.Namespace, settings: Settings, store: Store) -> int:
    found = [r for r in store.find(args.id) if r.id == args.id.lower()]
    if not found:
        raise UsageError(f"no message with id {args.id} (give the full 0x id)")
    rec = found[0]
    names = {c.domain: n for n, c in settings.chains.items()}
    result = asyncio.run(_add_gas(args, settings, store, rec, names))
    if args.json:
        print_json(result)
    elif result.get("tx"):
        print(f"paid {result['value']} (smallest units of {result['origin']}'s native token) for {args.id} in "
              f"{result['tx']}; it owed {result['shortfall']}")
    else:
        print(f"{args.id} owes nothing: {result['why']}")
    return 0


async def _add_gas(args: argparse.Namespace, settings: Settings, store: Store, rec: MessageRecord,
                   names: dict[int, str]) -> dict[str, Any]:
    from adapters.capabilities import FeeAccountPayments, GasPaymaster
    from adapters.message import MessageId
    from relayer.daemon.daemon import build_adapters
    from relayer.pipeline.gas_policy import GasPolicy, compile_payment_rules, pays_in_dispatch, top_up

    origin = names.get(rec.origin)
    adapters = build_adapters(settings, with_signers=False)
    try:
        paymaster = adapters.get(origin) if origin else None
        if isinstance(paymaster, FeeAccountPayments) and paymaster.gas_fee_account:
            raise UsageError(f"cannot top up {args.id}: " + pays_in_dispatch(origin or "", paymaster.gas_fee_account))
        if not isinstance(paymaster, GasPaymaster) or not paymaster.has_paymaster():
            raise UsageError(f"the message's origin {origin or rec.origin} has no gas_paymaster to pay")
        policy = GasPolicy(compile_payment_rules(settings, adapters), {rec.origin: paymaster})
        mid = MessageId(bytes.fromhex(rec.id[2:]))
        owed = await top_up(policy, rec.raw, store.paid_for([mid]).get(mid))
        view: dict[str, Any] = {"id": rec.id, "origin": origin, **owed.view()}
        if owed.required is None:
            return {**view, "why": "its origin's gas oracle has no price for the destination yet: try again shortly"}
        if owed.shortfall == 0:
            return {**view, "why": f"paid {owed.paid}, required {owed.required} ({owed.rule or 'no rule'})"}
        key = _payer_key(args, origin or "")
        value = int(owed.value * QUOTE_CUSHION)
        tx = await paymaster.pay_for_gas(key, bytes(mid), rec.destination, owed.gas_limit, value)
        return {**view, "tx": tx, "sent_value": str(value)}
    finally:
        for a in adapters.values():
            await a.close()


def _payer_key(args: argparse.Namespace, origin: str) -> str:
    if args.key_env:
        key = os.environ.get(args.key_env)
        if not key:
            raise UsageError(f"--key-env {args.key_env}: that environment variable is not set")
        return key
    from devnets.devnet import Devnet

    try:
        manifest = Devnet(Path(args.devnet)).manifest()
    except (OSError, ValueError, KeyError):
        raise UsageError(f"no payer: pass --key-env VAR (no devnet at {args.devnet} to take a test account from)"
                         ) from None
    return str(manifest["chains"][origin]["accounts"][0]["private_key"])  # devnet test key
