"""``relayer send``: dispatch a message or bridge a token on the devnet, optionally waiting for its delivery."""

from __future__ import annotations

import argparse
import asyncio
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.errors import RelayerError
from relayer.cli.common import UsageError, add_config_flags, load_config, print_json
from relayer.daemon.logconfig import configure_logging

if TYPE_CHECKING:
    from adapters.base import ChainAdapter
    from adapters.message import MessageId
    from config.settings import ChainConfig, Settings


def add_send_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("send", help="dispatch a message or bridge a token on the devnet")
    add_config_flags(p)
    p.add_argument("--from", dest="origin", required=True, help="origin chain name")
    p.add_argument("--to", dest="destination", required=True, help="destination chain name")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--token", help="token symbol to bridge (needs --amount)")
    what.add_argument("--body", help="message body (UTF-8 text)")
    p.add_argument("--amount", help="amount in whole tokens (decimals allowed)")
    p.add_argument("--recipient", help="0x address on the destination (default: first funded devnet account; "
                                        "for --body, the destination's TestRecipient contract)")
    p.add_argument("--pay-gas", dest="pay_gas", type=int, default=0, metavar="UNITS",
                   help="with --body from a Solana or Cosmos origin: pay UNITS (lamports, or the fee denom's smallest "
                        "units) for the message's delivery to the relayer's gas_fee_account, in the dispatch "
                        "transaction (EVM origins pay afterwards: relayer messages add-gas)")
    p.add_argument("--wait", action="store_true", help="wait until delivered on the destination")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait with --wait")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_send)


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
    settings = load_config(args)
    for flag, name in (("--from", args.origin), ("--to", args.destination)):
        if name not in settings.chains:
            raise UsageError(f"{flag} {name!r} is not a configured chain; known chains: {', '.join(settings.chains)}")
    if args.origin == args.destination:
        raise UsageError("--from and --to name the same chain")
    if args.pay_gas and (args.token or args.pay_gas < 0):
        raise UsageError("--pay-gas takes a positive number of smallest units, with --body (not --token)")
    sender_key = manifest["chains"][args.origin]["accounts"][0]["private_key"]  # devnet test key
    result = asyncio.run(_send(args, settings, manifest["chains"], sender_key))
    if args.json:
        print_json(result)
    else:
        print(f"dispatched {result['id']} from {args.origin} to {args.destination} in {result['origin_tx']}")
        if result["delivered"]:
            print(f"delivered on {args.destination} after {result['seconds']}s")
    return 0


def _recipient_for(args: argparse.Namespace, dest: ChainAdapter, dest_cfg: ChainConfig,
                   chains: dict[str, Any]) -> bytes:
    """--recipient (or the destination's first devnet account / TestRecipient) as bytes32, in the destination
    chain's own address format (0x..., bech32, base58)."""
    from adapters.capabilities import Bytes32Accounts
    from adapters.message import address_to_bytes32

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
            raise UsageError(f"--recipient {args.recipient!r} is not an address on {args.destination} "
                             f"({family})") from None
    if args.token:
        address = chains[args.destination]["accounts"][0]["address"]
        return bytes(to_bytes32(address)) if callable(to_bytes32) else address_to_bytes32(address)
    if family != "evm":
        raise UsageError(f"{args.destination} ({family}) takes token transfers only: pass --token and --amount")
    return address_to_bytes32(chains[args.destination]["contracts"]["test_recipient"])  # implements handle()


async def _send(args: argparse.Namespace, settings: Settings, chains: dict[str, Any],
                sender_key: str) -> dict[str, Any]:
    """Dispatch the message or token transfer from ``--from``; with ``--wait``, wait for its delivery on ``--to``."""
    from relayer.daemon.daemon import build_adapters

    origin_cfg, dest_cfg = settings.chains[args.origin], settings.chains[args.destination]
    adapters = build_adapters(settings, with_signers=False)
    origin, dest = adapters[args.origin], adapters[args.destination]
    recipient = _recipient_for(args, dest, dest_cfg, chains)
    try:
        started = time.time()
        if args.token:
            tx, mid = await _send_token(args, origin, origin_cfg, dest_cfg, sender_key, recipient)
        elif args.pay_gas:
            tx, ids = await _dispatch_paying(args, origin, dest_cfg.domain, sender_key, recipient)
            mid = ids[0]
        else:
            tx, ids = await origin.dispatch_messages(sender_key, dest_cfg.domain, recipient, [args.body.encode()])  # type: ignore[attr-defined]
            mid = ids[0]
        result: dict[str, Any] = {"id": "0x" + mid.hex(), "origin_tx": tx, "from": args.origin, "to": args.destination,
                                  "recipient": "0x" + recipient.hex(), "delivered": False}
        if args.wait:
            await _wait_delivered(args, dest, mid, result, started)
        return result
    finally:
        for a in adapters.values():
            await a.close()


async def _dispatch_paying(args: argparse.Namespace, origin: ChainAdapter, destination: int, sender_key: str,
                           recipient: bytes) -> tuple[str, list[MessageId]]:
    """``--body`` dispatched with ``--pay-gas`` paid to the origin's fee account in the same transaction."""
    from adapters.capabilities import FeeAccountPayments
    from adapters.message import Domain

    if not isinstance(origin, FeeAccountPayments) or not origin.gas_fee_account:
        raise UsageError(f"--pay-gas: {args.origin} takes no payment in the dispatch transaction (no "
                         f"chains.{args.origin}.gas_fee_account; an EVM origin is paid with relayer messages add-gas)")
    return await origin.dispatch_paying(sender_key, Domain(destination), recipient, [args.body.encode()],
                                        args.pay_gas)


async def _send_token(args: argparse.Namespace, origin: ChainAdapter, origin_cfg: ChainConfig, dest_cfg: ChainConfig,
                      sender_key: str, recipient: bytes) -> tuple[str, MessageId]:
    """``--amount`` of ``--token`` to ``recipient``; a route the origin's token bridge refuses is said in words."""
    from adapters.base import TxReverted
    from adapters.capabilities import LiquidityPools
    from adapters.message import Domain

    token = origin_cfg.tokens.get(args.token)
    if token is None:
        raise UsageError(f"--token {args.token!r} is not known on {args.origin}; known: "
                         f"{', '.join(origin_cfg.tokens) or 'none'}")
    amount = _parse_amount(args.amount, token.decimals)
    if _pooled(args.token, origin_cfg, dest_cfg):  # the fast route: paid out of the destination's pool
        assert isinstance(origin, LiquidityPools)
        return await origin.pool_deposit(sender_key, args.token, amount, Domain(dest_cfg.domain), recipient)
    try:
        tx, mid = await origin.send_token(sender_key, args.token, amount, dest_cfg.domain, recipient)  # type: ignore[attr-defined]
    except TxReverted as exc:
        refusal = _route_refusal(exc.reason, args, token.decimals)
        if refusal is None:
            raise
        raise RelayerError(refusal) from exc
    return tx, mid


def _pooled(symbol: str, origin_cfg: ChainConfig, dest_cfg: ChainConfig) -> bool:
    """Both chains hold a liquidity pool of ``symbol``."""
    from config.settings import TokenConfig

    here, there = origin_cfg.tokens.get(symbol), dest_cfg.tokens.get(symbol)
    return (isinstance(here, TokenConfig) and isinstance(there, TokenConfig) and here.pool is not None
            and there.pool is not None)


async def _wait_delivered(args: argparse.Namespace, dest: ChainAdapter, mid: MessageId, result: dict[str, Any],
                          started: float) -> None:
    """Poll the destination until the message is delivered (sets ``delivered`` and ``seconds`` in ``result``)."""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if (await dest.delivered([mid]))[0]:
            result["delivered"] = True
            result["seconds"] = round(time.time() - started, 2)
            return
        await asyncio.sleep(0.2)
    raise RelayerError(f"message {result['id']} not delivered on {args.destination} within {args.timeout}s "
                       f"(is `relayer run` up? see `relayer messages show {result['id']}`)")
