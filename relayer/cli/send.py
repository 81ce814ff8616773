"""``relayer send``: dispatch a message or bridge a token on the devnet, optionally waiting for its delivery.

Sends from the first account of the origin in the devnet's manifest. What a user can get wrong is said in words,
before anything is sent (exit 1): a token the origin does not carry (and the chains that do), an amount finer than the
origin's or the destination's decimals, a route the token bridge refuses or has no room on, a sender that holds too
little of the token (with the command that bridges some in from the token's home, or where the devnet's funded
accounts are) or too little of the chain's coin for the fees (with how to fund it on the devnet). Balances are read
from the chain, never inferred from a revert; a send that fails anyway (the chain moved meanwhile) is explained from
fresh reads the same way, saying what did go out.

The reads and estimates are the origin adapter's answers (``adapters.base.SendCosts``: the coin, the sender's balance,
what the send needs; ``adapters.capabilities.BridgeRefusals``: a route or rate limit that refuses the transfer) and
the funding call the devnet's node takes (``devnets.funding``); this module asks and words them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from config.errors import RelayerError
from relayer.cli.common import DEFAULT_DEVNET, UsageError, add_config_flags, config_path, load_config, print_json
from relayer.daemon.logconfig import configure_logging

if TYPE_CHECKING:
    from adapters.base import ChainAdapter, NativeCoin, SendCosts, SendPlan, TokenSender
    from adapters.capabilities import FeeAccountPayments
    from adapters.message import MessageId
    from config.settings import ChainConfig, Settings

_T = TypeVar("_T")
NOTHING_SENT = "nothing was sent"


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


def _parse_amount(args: argparse.Namespace, decimals: int) -> int:
    """``--amount`` in the origin token's smallest units; a number finer than its decimals is refused in words (the
    same words as a destination's coarser decimals, ``AmountNotRepresentable``)."""
    text = args.amount
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise UsageError(f"--amount {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"--amount must be a positive number, got {text}")
    units = value * (Decimal(10) ** decimals)
    if units != units.to_integral_value():
        step = _format_units(1, decimals)
        raise RelayerError(f"cannot send {text} {args.token} from {args.origin} to {args.destination}: {args.origin} "
                           f"holds {args.token} in steps of {step} ({decimals} decimals); send a multiple of {step}; "
                           f"{NOTHING_SENT}")
    return int(units)


def _route_refusal(reason: str, args: argparse.Namespace, decimals: int, went_out: str = NOTHING_SENT) -> str | None:
    """The origin TokenBridge's refusal (its custom error) in words, or None for any other revert."""
    name, _, rest = reason.partition("(")
    values = rest.rstrip(")").split(",")
    what = f"{args.amount} {args.token} from {args.origin} to {args.destination}"
    nothing = f"{went_out} ({reason})"
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
    if name == "AmountAboveCapacity" and len(values) == 4:
        return (f"cannot send {what}: {args.origin}'s token bridge lets at most "
                f"{_format_units(int(values[3]), decimals)} {args.token} out to {args.destination} at once (its rate "
                f"limit); send less; {nothing}")
    if name == "RateLimited" and len(values) == 5:
        wait = int(values[4])
        when = f"room for this amount in {wait}s" if wait < 2**64 else "it does not refill"
        return (f"cannot send {what} now: {args.origin}'s token bridge has room for "
                f"{_format_units(int(values[3]), decimals)} {args.token} to {args.destination} (its rate limit); "
                f"{when}; {nothing}")
    return None


def _format_units(units: int, decimals: int) -> str:
    text = format(Decimal(units).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _rounded_up(units: int, digits: int = 2) -> int:
    """``units`` rounded up to ``digits`` significant digits (an "about" figure that is never below the real one)."""
    step = 10 ** max(len(str(units)) - digits, 0)
    return -(-units // step) * step


def relayer_program(argv0: str | None = None) -> str:
    """How the user runs this relayer from their shell, for a command we suggest: ``relayer`` when that name on
    PATH is this program (or it was started otherwise, as ``python -m relayer.cli``), else the path it was started by
    (``.venv/bin/relayer`` under ``make run`` without an activated venv)."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    if Path(argv0).name != "relayer":
        return "relayer"
    found = shutil.which("relayer")
    if found and os.path.realpath(found) == os.path.realpath(argv0):
        return "relayer"
    return shlex.quote(argv0)


def config_flags(devnet: str, config: str | None) -> list[str]:
    """``--devnet`` / ``-c`` as this command was given them (the defaults left out): what a suggested command needs
    to reach the same devnet and config."""
    flags = [] if Path(devnet) == DEFAULT_DEVNET else ["--devnet", devnet]
    if config and Path(config) != Path(devnet) / "relayer.toml":
        flags += ["-c", config]
    return flags


def send_command(origin: str, destination: str, what: Sequence[str], flags: Sequence[str],
                 program: str | None = None) -> str:
    """A ``relayer send`` command line, quoted for a POSIX shell."""
    words = ["send", "--from", origin, "--to", destination, *what, *flags]
    return f"{program or relayer_program()} {shlex.join(words)}"


def cmd_send(args: argparse.Namespace) -> int:
    configure_logging("warning", None)
    from devnets.devnet import Devnet

    devnet = Devnet(Path(args.devnet))
    manifest = devnet.manifest()
    settings = load_config(args)
    for flag, name in (("--from", args.origin), ("--to", args.destination)):
        if name not in settings.chains:
            raise UsageError(f"{flag} {name!r} is not a configured chain; known chains: {', '.join(settings.chains)}")
    if args.origin == args.destination:
        raise UsageError("--from and --to name the same chain")
    if args.pay_gas and (args.token or args.pay_gas < 0):
        raise UsageError("--pay-gas takes a positive number of smallest units, with --body (not --token)")
    account = manifest["chains"][args.origin]["accounts"][0]  # a devnet test key
    result = asyncio.run(_send(args, settings, manifest["chains"], account, devnet.manifest_path))
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


@dataclass
class _Sending:
    """One ``relayer send``: from where, by whom, to whom, and what it takes from the sender (filled in by the
    checks: ``amount`` and ``decimals`` of ``--token``, the fee its transactions may cost)."""

    args: argparse.Namespace
    settings: Settings
    chains: dict[str, Any]  # the devnet manifest's
    manifest_path: Path
    origin: ChainAdapter
    origin_cfg: ChainConfig
    dest_cfg: ChainConfig
    sender_key: str
    sender: str  # the sender's address on the origin
    recipient: bytes
    amount: int = 0
    decimals: int = 0
    fee: int | None = None  # smallest native units
    fee_what: str = "the dispatch"

    def tokens(self) -> TokenSender:
        from adapters.base import TokenSender

        assert isinstance(self.origin, TokenSender)
        return self.origin

    def flags(self) -> list[str]:
        return config_flags(self.args.devnet, self.args.config)


async def _send(args: argparse.Namespace, settings: Settings, chains: dict[str, Any], account: dict[str, str],
                manifest_path: Path) -> dict[str, Any]:
    """Check, then dispatch the message or token transfer from ``--from``; with ``--wait``, wait for its delivery on
    ``--to``."""
    from relayer.daemon.daemon import build_adapters

    origin_cfg, dest_cfg = settings.chains[args.origin], settings.chains[args.destination]
    adapters = build_adapters(settings, with_signers=False)
    origin, dest = adapters[args.origin], adapters[args.destination]
    try:
        s = _Sending(args, settings, chains, manifest_path, origin, origin_cfg, dest_cfg, account["private_key"],
                     account["address"], _recipient_for(args, dest, dest_cfg, chains))
        started = time.time()
        if args.token:
            await _check_token_send(s)
            tx, mid = await _attempt(s, lambda: _send_token(s))
        else:
            if args.pay_gas:
                _fee_account_of(s)
            problem = await _fee_shortfall(s, NOTHING_SENT)
            if problem is not None:
                raise RelayerError(problem)
            tx, ids = await _attempt(s, lambda: _dispatch(s))
            mid = ids[0]
        result: dict[str, Any] = {"id": "0x" + mid.hex(), "origin_tx": tx, "from": args.origin, "to": args.destination,
                                  "recipient": "0x" + s.recipient.hex(), "delivered": False}
        if args.wait:
            await _wait_delivered(args, dest, mid, result, started)
        return result
    finally:
        for a in adapters.values():
            await a.close()


async def _attempt(s: _Sending, send: Callable[[], Awaitable[_T]]) -> _T:
    """Run the send; a refusal the checks could not foresee (the chain moved meanwhile) is explained from fresh reads,
    saying what did go out (an approval before the transfer)."""
    from adapters.base import InsufficientFunds, TxReverted

    costs = _costs_of(s)
    before = await costs.transactions_sent(s.sender) if costs is not None else None
    try:
        return await send()
    except (TxReverted, InsufficientFunds) as exc:
        went_out = NOTHING_SENT
        after = await costs.transactions_sent(s.sender) if costs is not None and before is not None else None
        if before is not None and after is not None and (moved := after - before) > 0:
            went_out = f"the approval went out ({moved} transaction{'s' if moved > 1 else ''}), the rest did not"
        problem = _route_refusal(exc.reason, s.args, s.decimals, went_out) if s.args.token else None
        if problem is None and s.args.token:
            problem = await _token_shortfall(s, went_out)
        if problem is None:
            problem = await _fee_shortfall(s, went_out, refused=isinstance(exc, InsufficientFunds))
        if problem is None:
            raise
        raise RelayerError(problem) from exc


async def _dispatch(s: _Sending) -> tuple[str, list[MessageId]]:
    """``--body``, with ``--pay-gas`` paid to the origin's fee account in the same transaction."""
    from adapters.base import MessageDispatcher
    from adapters.message import Domain

    body, destination = s.args.body.encode(), Domain(s.dest_cfg.domain)
    if s.args.pay_gas:
        return await _fee_account_of(s).dispatch_paying(s.sender_key, destination, s.recipient, [body],
                                                        s.args.pay_gas)
    assert isinstance(s.origin, MessageDispatcher)
    return await s.origin.dispatch_messages(s.sender_key, destination, s.recipient, [body])


def _fee_account_of(s: _Sending) -> FeeAccountPayments:
    from adapters.capabilities import FeeAccountPayments

    if not isinstance(s.origin, FeeAccountPayments) or not s.origin.gas_fee_account:
        raise UsageError(f"--pay-gas: {s.args.origin} takes no payment in the dispatch transaction (no "
                         f"chains.{s.args.origin}.gas_fee_account; an EVM origin is paid with relayer messages "
                         f"add-gas)")
    return s.origin


async def _check_token_send(s: _Sending) -> None:
    """Everything about ``--token`` that would make the send fail, refused in words before anything is sent: a token
    the origin does not carry, an amount finer than its decimals, a route the bridge refuses or has no room on, too
    little of the token, too little for the fees."""
    args = s.args
    token = s.origin_cfg.tokens.get(args.token)
    if token is None:
        raise RelayerError(_unknown_token(args, s.settings))
    s.decimals = token.decimals
    s.amount = _parse_amount(args, token.decimals)
    refusal = await _bridge_refusal(s)
    if refusal is not None:
        raise RelayerError(refusal)
    problem = await _token_shortfall(s, NOTHING_SENT) or await _fee_shortfall(s, NOTHING_SENT)
    if problem is not None:
        raise RelayerError(problem)


def _unknown_token(args: argparse.Namespace, settings: Settings) -> str:
    here = ", ".join(settings.chains[args.origin].tokens) or "no tokens"
    carriers = [name for name, chain in settings.chains.items() if args.token in chain.tokens]
    elsewhere = (f"{args.token} is on {', '.join(carriers)}" if carriers
                 else f"no chain in {config_path(args)} carries {args.token}")
    return f"--token {args.token} is not known on {args.origin}, which carries {here}; {elsewhere}; {NOTHING_SENT}"


async def _bridge_refusal(s: _Sending) -> str | None:
    """The origin token bridge's refusal of the transfer (its route, its outbound rate limit), asked before anything
    is sent (``send_token`` would approve the bridge before its transfer is refused); None for a pool deposit, or an
    origin whose bridge refuses nothing ahead (``BridgeRefusals``)."""
    from adapters.capabilities import BridgeRefusals
    from adapters.message import Domain

    if _pooled(s.args.token, s.origin_cfg, s.dest_cfg) or not isinstance(s.origin, BridgeRefusals):
        return None
    problem = await s.origin.bridge_refusal(s.args.token, s.amount, Domain(s.dest_cfg.domain))
    if problem is None:
        return None
    return _route_refusal(problem, s.args, s.decimals) or f"{s.args.origin}'s token bridge refuses it: {problem}"


async def _send_token(s: _Sending) -> tuple[str, MessageId]:
    """``--amount`` of ``--token`` to the recipient: into the origin's liquidity pool when both chains pool it, else
    over the token bridge."""
    from adapters.capabilities import LiquidityPools
    from adapters.message import Domain

    if _pooled(s.args.token, s.origin_cfg, s.dest_cfg):  # the fast route: paid out of the destination's pool
        assert isinstance(s.origin, LiquidityPools)
        return await s.origin.pool_deposit(s.sender_key, s.args.token, s.amount, Domain(s.dest_cfg.domain),
                                           s.recipient)
    return await s.tokens().send_token(s.sender_key, s.args.token, s.amount, Domain(s.dest_cfg.domain), s.recipient)


async def _token_shortfall(s: _Sending, went_out: str) -> str | None:
    """What the sender holds of ``--token`` (read from the origin), in words when it is less than ``--amount``: with
    the command that bridges the missing amount in from the token's home, or, on the home chain (or for a token issued
    on every chain), where the devnet's funded accounts are and what they hold."""
    symbol, origin = s.args.token, s.args.origin
    held = await s.tokens().token_balance(symbol, s.sender)
    if held >= s.amount:
        return None
    head = (f"the sender {s.sender} holds {_format_units(held, s.decimals)} {symbol} on {origin} (needs "
            f"{_format_units(s.amount, s.decimals)}); {went_out}.")
    home = _home_of(s)
    if home is not None and home != origin:
        if home not in s.settings.chains:
            return f"{head} {symbol}'s home is {home}, which {config_path(s.args)} does not configure"
        command = send_command(home, origin, ["--token", symbol, "--amount", _in_home_units(s, home, s.amount - held),
                                              "--wait"], s.flags())
        return f"{head} {symbol}'s home is {home}: bridge some to {origin} first:\n  {command}"
    accounts = [a["address"] for a in s.chains.get(origin, {}).get("accounts", [])]
    holdings = await asyncio.gather(*(s.tokens().token_balance(symbol, a) for a in accounts))
    listed = "; ".join(f"{a}{' (the sender)' if a == s.sender else ''} holds {_format_units(h, s.decimals)}"
                       for a, h in zip(accounts, holdings, strict=True))
    where = (f"{origin} is {symbol}'s home, so nothing can be bridged in" if home == origin
             else f"{symbol} is issued on {origin} itself, not bridged in")
    return (f"{head} {where}; the devnet funded its accounts on {origin} with {symbol} (chains.{origin}.accounts in "
            f"{s.manifest_path}; relayer send sends from the first): {listed} {symbol}. Send less, or move some "
            f"to the sender from another account")


def _home_of(s: _Sending) -> str | None:
    """The chain ``--token`` is issued on (the manifest's ``home``, else a foreign chain's ``home_domain``); None for
    a token issued on every chain (USDC)."""
    symbol = s.args.token
    home = s.chains.get(s.args.origin, {}).get("tokens", {}).get(symbol, {}).get("home")
    if isinstance(home, str):
        return home
    domain = getattr(s.origin_cfg.tokens[symbol], "home_domain", None)
    return next((name for name, chain in s.settings.chains.items() if chain.domain == domain), None)


def _in_home_units(s: _Sending, home: str, units: int) -> str:
    """``units`` of ``--token`` on the origin as an amount on its home chain (rounded up to the home's decimals)."""
    decimals = int(s.chains.get(home, {}).get("tokens", {}).get(s.args.token, {}).get("decimals", s.decimals))
    shift = decimals - s.decimals
    scaled = units * 10**shift if shift >= 0 else -(-units // 10**-shift)
    return _format_units(scaled, decimals)


async def _fee_shortfall(s: _Sending, went_out: str, *, refused: bool = False) -> str | None:
    """What the sender holds of the origin's coin (read from the chain), in words when it is less than the send's
    transactions may cost in fees (``refused``: the chain said so already), with how to fund it on the devnet. An
    origin that cannot say what a send costs (no ``SendCosts``) is not checked."""
    costs = _costs_of(s)
    if costs is None:
        return None
    if s.fee is None:
        need = await costs.send_fee_need(_plan(s))
        what = ("the dispatch" if not s.args.token
                else "the deposit" if _pooled(s.args.token, s.origin_cfg, s.dest_cfg) else "the transfer")
        s.fee, s.fee_what = need.units, f"the approval and {what}" if need.approval else what
    balance = await costs.native_balance(s.sender)
    if balance >= s.fee and not refused:
        return None
    coin = costs.native_coin
    need_words = (f"about {_coin(coin, _rounded_up(s.fee))}" if balance < s.fee
                  else f"more than {_coin(coin, balance)}")
    verb = "need" if " and " in s.fee_what else "needs"
    return (f"the sender {s.sender} has {_coin(coin, balance)} on {s.args.origin} for fees; {s.fee_what} {verb} "
            f"{need_words}; {went_out}. {_funding(s, coin)}")


def _costs_of(s: _Sending) -> SendCosts | None:
    from adapters.base import SendCosts

    return s.origin if isinstance(s.origin, SendCosts) else None


def _plan(s: _Sending) -> SendPlan:
    """The send as the origin's ``SendCosts`` prices it."""
    from adapters.base import SendPlan
    from adapters.message import Domain

    destination = Domain(s.dest_cfg.domain)
    if s.args.token:
        return SendPlan(s.sender, destination, s.recipient, symbol=s.args.token, amount=s.amount,
                        pooled=_pooled(s.args.token, s.origin_cfg, s.dest_cfg))
    return SendPlan(s.sender, destination, s.recipient, bodies=(s.args.body.encode(),), payment=s.args.pay_gas or 0)


def _coin(coin: NativeCoin, units: int) -> str:
    if coin.denom_notation:
        return f"{units}{coin.symbol}"
    return f"{_format_units(units, coin.decimals)} {coin.symbol}"


def _funding(s: _Sending, coin: NativeCoin) -> str:
    """How to fund the sender on the devnet: the node's own faucet call (anvil_setBalance, requestAirdrop), else a
    transfer from another funded devnet account."""
    from devnets.funding import funding_call

    accounts = f"chains.{s.args.origin}.accounts in {s.manifest_path}"
    call = funding_call(s.chains.get(s.args.origin, {}), s.sender)
    if call is None:
        return f"Fund it: send it {coin.symbol} from another of the devnet's funded accounts ({accounts})"
    request = json.dumps(call.request(), separators=(",", ":"))
    return (f"Fund it on the devnet ({call.method} gives it {_coin(coin, call.units)}; or send it some from another "
            f"of the devnet's funded accounts, {accounts}):\n  curl -s -H 'content-type: application/json' -d "
            f"{shlex.quote(request)} {shlex.quote(call.rpc_url)}")


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
