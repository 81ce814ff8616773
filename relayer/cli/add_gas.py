"""``relayer messages add-gas ID``: pay what a message still owes (``relayer.gas_payment``), so that a message waiting
for payment is delivered: on EVM to its origin's paymaster (the quote is kept, the excess refunded in the same
transaction); on Solana and Cosmos to the relayer's fee account, in a top-up transaction naming the message
(``adapters.fee_account``). The payer is ``--key-env``'s key, or on the devnet its first funded account of the
origin (a devnet test key). Anyone may pay for any message: paying only moves the payer's money to the relayer."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relayer.cli.common import UsageError, print_json

if TYPE_CHECKING:
    from adapters.base import ChainAdapter
    from config.settings import Settings
    from relayer.pipeline.gas_policy import TopUp
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
        print(f"paid {result['sent_value']} (smallest units of {result['origin']}'s native token) for {args.id} in "
              f"{result['tx']}; it owed {result['shortfall']}")
    else:
        print(f"{args.id} owes nothing: {result['why']}")
    return 0


async def _add_gas(args: argparse.Namespace, settings: Settings, store: Store, rec: MessageRecord,
                   names: dict[int, str]) -> dict[str, Any]:
    from relayer.daemon.daemon import build_adapters

    origin = names.get(rec.origin)
    adapters = build_adapters(settings, with_signers=False)
    try:
        owed, view = await _owed(settings, store, rec, origin, adapters)
        if owed.required is None:
            return {**view, "why": "no price for the route yet (its gas oracle or the destination's fees): try again "
                                   "shortly"}
        if owed.shortfall == 0:
            return {**view, "why": f"paid {owed.paid}, required {owed.required} ({owed.rule or 'no rule'})"}
        return {**view, **await _pay(args, adapters[origin or ""], rec, owed)}
    finally:
        for a in adapters.values():
            await a.close()


async def _owed(settings: Settings, store: Store, rec: MessageRecord, origin: str | None,
                adapters: Mapping[str, ChainAdapter]) -> tuple[TopUp, dict[str, Any]]:
    """What the message still owes under ``relayer.gas_payment``, with the quotes the daemon uses."""
    from adapters.capabilities import GasPaymentSource
    from adapters.message import MessageId
    from relayer.daemon.gas_oracle import quote_sources
    from relayer.pipeline.gas_policy import GasPolicy, compile_payment_rules, top_up

    payee = adapters.get(origin) if origin else None
    if not isinstance(payee, GasPaymentSource) or not payee.has_paymaster():
        raise UsageError(f"the message's origin {origin or rec.origin} takes no gas payment (no gas_paymaster, "
                         "no gas_fee_account)")
    policy = GasPolicy(compile_payment_rules(settings, adapters), quote_sources(settings, adapters))
    mid = MessageId(bytes.fromhex(rec.id[2:]))
    owed = await top_up(policy, rec.raw, store.paid_for([mid]).get(mid), rec.gas_needed)
    return owed, {"id": rec.id, "origin": origin, **owed.view()}


async def _pay(args: argparse.Namespace, payee: ChainAdapter, rec: MessageRecord, owed: TopUp) -> dict[str, Any]:
    """Pay the shortfall, with ``QUOTE_CUSHION``: the paymaster's quote for ``owed.gas_limit`` on EVM, the amount
    itself to the fee account on Solana and Cosmos (the relayer's quote follows live fees)."""
    from adapters.capabilities import FeeAccountPayments, GasPaymaster

    key = _payer_key(args, payee.name)
    mid = bytes.fromhex(rec.id[2:])
    if isinstance(payee, FeeAccountPayments) and payee.gas_fee_account:
        value = math.ceil(owed.shortfall * QUOTE_CUSHION)
        return {"tx": await payee.top_up_gas(key, mid, rec.destination, value), "sent_value": str(value)}
    if not isinstance(payee, GasPaymaster):
        raise UsageError(f"the message's origin {payee.name} has no gas_paymaster to pay")
    value = int(owed.value * QUOTE_CUSHION)
    return {"tx": await payee.pay_for_gas(key, mid, rec.destination, owed.gas_limit, value), "sent_value": str(value)}


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
