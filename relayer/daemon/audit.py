"""The bridge's balance sheet (``relayer audit`` and the daemon's periodic audit): for every bridged token, what
is locked on its home chain against what is out on every other chain. Outstanding above locked is a shortfall:
wrapped tokens that nothing backs.

A token's identity is (home domain, home token), as in the TokenBridge's message body. Where each figure comes
from (the chain wherever it knows, config only where no contract of ours can say):

- which tokens: ``chains.<name>.tokens``. For an EVM token the chain's TokenBridge says what it is (``homeOf``: a
  wrapped token's home, else a token homed there); config only names it (its symbol). ``bridged = false``
  tokens (native per chain, like USDC) are not bridged and not audited. Solana and Cosmos tokens take their home
  from config (``wrapped``, ``home_domain``, ``home_token``; a native token's identity is its mint, or
  ``sha256(denom)``), as their adapters do when they deliver.
- locked, on the home chain: EVM, the TokenBridge's balance of the token; Solana, the vault's balance (the
  multisig's token account); Cosmos, the vault's balance.
- queued, on any EVM chain: inbound transfers its TokenBridge delivered but queued for want of rate-limit room
  (``queued(id)``), owed to their recipients and not yet paid out: counted as outstanding, since what backs them
  is still locked (or, at home, not yet unlocked).
- outstanding, on every other chain: EVM, the ``totalSupply`` of the bridge's ``wrappedToken(home)``, asked of
  every EVM bridge for every identity (a wrapped token missing from config is still counted); Solana, the mint's
  supply; Cosmos, the escrow paid out (configured ``escrow`` minus what the vault still holds). Converted to
  home units (x ``10**(home_decimals - decimals)``; EVM wrapped supplies already are: the bridge mints message
  amounts unscaled). A Cosmos vault holding more than its escrow (tokens sent to it from outside the bridge)
  counts 0, with a note: a donation on one chain never hides what is unbacked on another.

All positions are read concurrently. A transfer is counted out before it is counted in (lock before mint, burn
before unlock) and a delivery needs the origin's finality, so a reading shorter than a relay shows in-flight
transfers as surplus, never as shortfall; a shortfall is still read a second time before it is reported, and the
smaller of the two readings stands (a read stalled past a whole relay cannot raise a false alarm).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

import structlog

from adapters.capabilities import BridgeQueue, LiquidityPools, NativeTokenIds
from config.errors import RelayerError
from config.settings import CosmosChainConfig, EvmChainConfig, Settings, SolanaChainConfig
from relayer.daemon.metrics import Metrics

log = structlog.get_logger("relayer.daemon.audit")

PositionKind = Literal["locked", "wrapped_supply", "escrow_paid_out", "queued"]


@dataclass(frozen=True, order=True)
class TokenId:
    home_domain: int
    home_token: bytes  # 32 bytes

    def __str__(self) -> str:
        return f"{self.home_domain}/0x{self.home_token.hex()}"


@dataclass(frozen=True)
class Position:
    """One chain's holding of one token: locked at home, or out elsewhere."""

    chain: str
    kind: PositionKind
    token: str  # the token there: 0x address, mint or denom
    amount: int  # the chain's own smallest units
    decimals: int
    home_units: int  # amount converted to the home token's smallest units (clamped at 0)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "token": self.token, "amount": self.amount,
                               "decimals": self.decimals, "home_units": self.home_units}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class TokenLine:
    """The balance sheet of one token: locked at home, outstanding everywhere else, in home smallest units."""

    token_id: TokenId
    symbol: str
    home_chain: str
    home_decimals: int
    positions: list[Position]
    shortfall: int = 0  # set by the audit: outstanding - locked when positive (confirmed by a second reading)

    @property
    def locked(self) -> int:
        return sum(p.home_units for p in self.positions if p.kind == "locked")

    @property
    def outstanding(self) -> int:
        return sum(p.home_units for p in self.positions if p.kind != "locked")

    @property
    def raw_shortfall(self) -> int:
        return max(0, self.outstanding - self.locked)

    @property
    def surplus(self) -> int:
        """Locked beyond what is out: transfers in flight, or tokens sent to the bridge outside a transfer."""
        return max(0, self.locked - self.outstanding)

    def whole(self, units: int) -> str:
        return _whole(units, self.home_decimals)

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.symbol, "home_chain": self.home_chain, "home_domain": self.token_id.home_domain,
            "home_token": "0x" + self.token_id.home_token.hex(), "home_decimals": self.home_decimals,
            "locked": self.locked, "outstanding": self.outstanding, "shortfall": self.shortfall,
            "surplus": self.surplus,
            "chains": {p.chain: p.to_json() for p in self.positions if p.kind != "queued"},
            "queued": {p.chain: p.to_json() for p in self.positions if p.kind == "queued"},
        }


@dataclass
class AuditProblem:
    """A chain that could not be read (or a token whose home is not a configured chain)."""

    chain: str
    error: str


@dataclass(frozen=True)
class PoolLine:
    """A pooled token on one chain (``tokens.<symbol>.pool``): its pool's balance and what it owes in deferred
    payouts, and the token's supply there, in the chain's smallest units. A pool owing more than it holds is not
    insolvent: those payouts wait for the epoch's settlement to mint the pool's share back."""

    symbol: str
    chain: str
    decimals: int
    pooled: int
    owed: int
    supply: int

    def to_json(self) -> dict[str, Any]:
        return {"token": self.symbol, "chain": self.chain, "decimals": self.decimals, "pooled": self.pooled,
                "owed": self.owed, "supply": self.supply}


@dataclass
class BalanceSheet:
    tokens: list[TokenLine]
    errors: list[AuditProblem] = field(default_factory=list)
    read_s: float = 0.0  # wall time of the reading(s)
    readings: int = 1
    pools: list[PoolLine] = field(default_factory=list)

    @property
    def shortfall(self) -> int:
        """Sum of the tokens' shortfalls, each in its own home smallest units: read it as zero or not zero; the
        per-token figures are the exact ones."""
        return sum(t.shortfall for t in self.tokens)

    @property
    def ok(self) -> bool:
        return not self.errors and self.shortfall == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "shortfall": self.shortfall,
            "tokens_short": [t.symbol for t in self.tokens if t.shortfall],
            "tokens": [t.to_json() for t in self.tokens],
            "errors": [{"chain": e.chain, "error": e.error} for e in self.errors],
            "readings": self.readings, "read_s": round(self.read_s, 3),
            "pools": [p.to_json() for p in self.pools],
        }


class AuditError(RelayerError):
    """A chain could not be read; the message names every one."""


def _whole(units: int, decimals: int) -> str:
    text = format(Decimal(units).scaleb(-decimals), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# ---------------------------------------------------------------- what the audit asks of the adapters
class _Holding(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def wrapped(self) -> bool: ...
    @property
    def amount(self) -> int: ...
    @property
    def decimals(self) -> int: ...


@runtime_checkable
class _EvmBridgeReads(Protocol):
    async def bridge_home_of(self, symbol: str) -> tuple[int, bytes]: ...
    async def bridge_holding(self, home_domain: int, home_token: bytes) -> _Holding | None: ...


@runtime_checkable
class _SupplyReads(Protocol):
    async def token_supply(self, symbol: str) -> int: ...


@runtime_checkable
class _VaultReads(Protocol):
    async def vault_balance(self, symbol: str) -> int: ...


@dataclass(frozen=True)
class _Known:
    """A token as one chain's config (and bridge) knows it."""

    chain: str
    token_id: TokenId
    symbol: str
    home_decimals: int | None  # when this chain can say (its home, or a wrapped token's configured home_decimals)


class _ChainBook(Protocol):
    chain: str

    async def tokens(self) -> list[_Known]: ...

    async def position(self, token: TokenId, home_chain: str) -> Position | None: ...

    async def queued(self, token: TokenId) -> Position | None: ...


def _id(home_domain: int, home_token_hex: str) -> TokenId:
    return TokenId(home_domain, bytes.fromhex(home_token_hex.removeprefix("0x")).rjust(32, b"\0"))


class _EvmBook:
    def __init__(self, chain: str, config: EvmChainConfig, adapter: Any) -> None:
        if not isinstance(adapter, _EvmBridgeReads):
            raise AuditError(f"{chain}: its adapter cannot read the TokenBridge")
        self.chain, self.config, self.adapter = chain, config, adapter

    async def tokens(self) -> list[_Known]:
        if self.config.token_bridge is None:
            return []
        out = []
        for symbol, token in self.config.tokens.items():
            if not token.bridged:
                continue
            domain, home = await self.adapter.bridge_home_of(symbol)
            here = domain == self.config.domain
            out.append(_Known(self.chain, TokenId(domain, home), symbol, token.decimals if here else None))
        return out

    async def position(self, token: TokenId, home_chain: str) -> Position | None:
        if self.config.token_bridge is None:
            return None
        holding = await self.adapter.bridge_holding(token.home_domain, token.home_token)
        if holding is None:
            return None
        if token.home_domain == self.config.domain:
            return Position(self.chain, "locked", holding.token, holding.amount, holding.decimals, holding.amount)
        # the bridge mints and burns message amounts (home units) unscaled
        return Position(self.chain, "wrapped_supply", holding.token, holding.amount, holding.decimals, holding.amount)

    async def queued(self, token: TokenId) -> Position | None:
        """The inbound transfers of ``token`` the bridge queued and has not paid out (home units, as it pays them)."""
        if self.config.token_bridge is None or not isinstance(self.adapter, BridgeQueue):
            return None
        holding = await self.adapter.bridge_holding(token.home_domain, token.home_token)
        if holding is None:
            return None
        owed = sum(q.amount for q in await self.adapter.queued_transfers(1) if q.token == holding.token.lower())
        if not owed:
            return None
        return Position(self.chain, "queued", holding.token, owed, holding.decimals, owed,
                        "delivered, queued by the bridge's inbound rate limit, not yet paid out")


def _token_ids(chain: str, domain: int, tokens: Mapping[str, Any], adapter: NativeTokenIds
               ) -> tuple[dict[TokenId, tuple[str, int]], list[_Known]]:
    """The identities of a Solana or Cosmos chain's configured tokens: a wrapped one's configured home, a native
    one's as its adapter names it; with each one's scale from home units (id -> (symbol, scale))."""
    ids: dict[TokenId, tuple[str, int]] = {}
    known: list[_Known] = []
    for symbol, t in tokens.items():
        if t.wrapped:
            if t.home_domain is None or t.home_token is None:
                raise AuditError(f"chains.{chain}.tokens.{symbol}: a wrapped token needs home_domain and home_token")
            home_decimals = t.decimals if t.home_decimals is None else t.home_decimals
            token_id, scale = _id(t.home_domain, t.home_token), 10 ** (home_decimals - t.decimals)
            known.append(_Known(chain, token_id, symbol, home_decimals))
        else:
            token_id, scale = TokenId(domain, bytes(adapter.native_token_id(symbol))), 1
            known.append(_Known(chain, token_id, symbol, t.decimals))
        ids[token_id] = (symbol, scale)
    return ids, known


class _SolanaBook:
    def __init__(self, chain: str, config: SolanaChainConfig, adapter: Any) -> None:
        if not isinstance(adapter, _SupplyReads) or not isinstance(adapter, _VaultReads):
            raise AuditError(f"{chain}: its adapter cannot read mint supplies and the vault")
        if not isinstance(adapter, NativeTokenIds):
            raise AuditError(f"{chain}: its adapter cannot name its mints")
        self.chain, self.config, self.adapter = chain, config, adapter
        self._ids, self._known = _token_ids(chain, config.domain, config.tokens, adapter)

    async def tokens(self) -> list[_Known]:
        return list(self._known)

    async def position(self, token: TokenId, home_chain: str) -> Position | None:
        found = self._ids.get(token)
        if found is None:
            return None
        symbol, scale = found
        t = self.config.tokens[symbol]
        if token.home_domain == self.config.domain:
            held = await self.adapter.vault_balance(symbol)
            return Position(self.chain, "locked", t.mint, held, t.decimals, held)
        supply = await self.adapter.token_supply(symbol)
        return Position(self.chain, "wrapped_supply", t.mint, supply, t.decimals, supply * scale)

    async def queued(self, token: TokenId) -> Position | None:
        return None  # payout limits live in the validators: nothing is delivered and held


class _CosmosBook:
    def __init__(self, chain: str, config: CosmosChainConfig, adapter: Any) -> None:
        if not isinstance(adapter, _SupplyReads) or not isinstance(adapter, NativeTokenIds):
            raise AuditError(f"{chain}: its adapter cannot read the vault")
        self.chain, self.config, self.adapter = chain, config, adapter
        self._ids, self._known = _token_ids(chain, config.domain, config.tokens, adapter)

    async def tokens(self) -> list[_Known]:
        return list(self._known)

    async def position(self, token: TokenId, home_chain: str) -> Position | None:
        found = self._ids.get(token)
        if found is None:
            return None
        symbol, scale = found
        t = self.config.tokens[symbol]
        # the adapter's token_supply: a native token's vault balance; a wrapped token's escrow paid out
        amount = await self.adapter.token_supply(symbol)
        if token.home_domain == self.config.domain:
            return Position(self.chain, "locked", t.denom, amount, t.decimals, amount)
        note = ""
        if amount < 0:
            note = (f"the vault holds {-amount} {t.denom} more than its escrow (sent from outside the bridge); "
                    "counted as 0")
        return Position(self.chain, "escrow_paid_out", t.denom, amount, t.decimals, max(0, amount) * scale, note)

    async def queued(self, token: TokenId) -> Position | None:
        return None  # payout limits live in the validators: nothing is delivered and held


def _books(settings: Settings, adapters: Mapping[str, Any]) -> list[_ChainBook]:
    books: list[_ChainBook] = []
    for name, chain in settings.chains.items():
        adapter = adapters[name]
        if isinstance(chain, EvmChainConfig):
            books.append(_EvmBook(name, chain, adapter))
        elif isinstance(chain, SolanaChainConfig):
            books.append(_SolanaBook(name, chain, adapter))
        elif isinstance(chain, CosmosChainConfig):
            books.append(_CosmosBook(name, chain, adapter))
    return books


async def _guarded(chain: str, coro: Any, errors: list[AuditProblem]) -> Any:
    try:
        return await coro
    except RelayerError as exc:  # AdapterError family, ConfigError
        errors.append(AuditProblem(chain, str(exc)[:300]))
        return None


# ---------------------------------------------------------------- the audit
class Auditor:
    """Reads the balance sheet of every bridged token from the chains (see the module docstring)."""

    def __init__(self, settings: Settings, adapters: Mapping[str, Any]) -> None:
        self.settings = settings
        self.adapters = adapters
        self.books = _books(settings, adapters)
        self.domains = {c.domain: n for n, c in settings.chains.items()}

    async def discover(self, errors: list[AuditProblem]) -> dict[TokenId, list[_Known]]:
        """Every bridged token identity any chain knows, with what each chain says about it."""
        found: dict[TokenId, list[_Known]] = {}
        answers = await asyncio.gather(*(_guarded(b.chain, b.tokens(), errors) for b in self.books))
        for known in answers:
            for k in known or []:
                found.setdefault(k.token_id, []).append(k)
        return found

    async def read(self, tokens: Mapping[TokenId, Sequence[_Known]]) -> BalanceSheet:
        errors: list[AuditProblem] = []
        plan: list[tuple[TokenId, _ChainBook]] = []
        for token_id in sorted(tokens):
            home_chain = self.domains.get(token_id.home_domain)
            if home_chain is None:
                symbol = tokens[token_id][0].symbol
                errors.append(AuditProblem(f"domain {token_id.home_domain}", (
                    f"the home chain of {symbol} (domain {token_id.home_domain}) is not configured: "
                    "its locked balance cannot be read")))
                continue
            plan += [(token_id, book) for book in self.books]
        started = time.monotonic()
        positions, queued = await asyncio.gather(
            asyncio.gather(*(_guarded(book.chain, book.position(token_id, self.domains[token_id.home_domain]), errors)
                             for token_id, book in plan)),
            asyncio.gather(*(_guarded(book.chain, book.queued(token_id), errors) for token_id, book in plan)))
        read_s = time.monotonic() - started
        by_token: dict[TokenId, list[Position]] = {}
        for (token_id, _), position, owed in zip(plan, positions, queued, strict=True):
            for found in (position, owed):
                if found is not None:
                    by_token.setdefault(token_id, []).append(found)
        lines = []
        for token_id in sorted(by_token):
            known = tokens[token_id]
            home_chain = self.domains[token_id.home_domain]
            home = [p for p in by_token[token_id] if p.kind == "locked"]
            decimals = home[0].decimals if home else next((k.home_decimals for k in known
                                                           if k.home_decimals is not None), 0)
            symbol = next((k.symbol for k in known if k.chain == home_chain), known[0].symbol)
            line = TokenLine(token_id, symbol, home_chain, decimals, by_token[token_id])
            line.shortfall = line.raw_shortfall
            lines.append(line)
        return BalanceSheet(lines, _unique(errors), read_s)

    async def pools(self, errors: list[AuditProblem]) -> list[PoolLine]:
        """Every pooled token's pool and supply, per chain (``relayer audit``'s pools section)."""
        reads = [(name, symbol, adapter) for name, adapter in self.adapters.items()
                 if isinstance(adapter, LiquidityPools) for symbol in adapter.pooled_tokens()]

        async def one(name: str, symbol: str, adapter: Any) -> PoolLine:
            state, supply = await asyncio.gather(adapter.pool_state(symbol), adapter.token_supply(symbol))
            decimals = self.settings.chains[name].tokens[symbol].decimals
            return PoolLine(symbol, name, decimals, state.balance, state.owed, int(supply))

        found = await asyncio.gather(*(_guarded(n, one(n, s, a), errors) for n, s, a in reads))
        return [line for line in found if line is not None]

    async def audit(self, *, confirm: bool = True) -> BalanceSheet:
        """One reading; when it shows a shortfall, a second one, and each token's smaller shortfall stands."""
        sheet = await self._bridged(confirm=confirm)
        errors: list[AuditProblem] = []
        sheet.pools = await self.pools(errors)
        sheet.errors = _unique([*sheet.errors, *errors])
        return sheet

    async def _bridged(self, *, confirm: bool) -> BalanceSheet:
        errors: list[AuditProblem] = []
        tokens = await self.discover(errors)
        if errors:
            return BalanceSheet([], _unique(errors))
        first = await self.read(tokens)
        if not confirm or first.errors or first.shortfall == 0:
            return first
        second = await self.read(tokens)
        if second.errors:
            return second
        before = {t.token_id: t.shortfall for t in first.tokens}
        for line in second.tokens:
            line.shortfall = min(line.shortfall, before.get(line.token_id, 0))
        second.readings, second.read_s = 2, first.read_s + second.read_s
        return second


def _unique(errors: list[AuditProblem]) -> list[AuditProblem]:
    seen: dict[str, AuditProblem] = {}
    for e in errors:
        seen.setdefault(e.chain, e)
    return [seen[k] for k in sorted(seen)]


async def audit(settings: Settings, adapters: Mapping[str, Any], *, confirm: bool = True) -> BalanceSheet:
    return await Auditor(settings, adapters).audit(confirm=confirm)


# ---------------------------------------------------------------- output
_KIND_TEXT = {"locked": "locked", "wrapped_supply": "wrapped", "escrow_paid_out": "paid out", "queued": "queued (owed)"}


def print_sheet(sheet: BalanceSheet, console: Any = None) -> None:
    """The balance sheet as a table: each token's positions, then its locked, outstanding and shortfall."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table("token", "chain", "holds", "amount there", "home tokens", title="bridge balance sheet")
    for line in sheet.tokens:
        for p in line.positions:
            table.add_row(line.symbol, p.chain, _KIND_TEXT[p.kind], _whole(p.amount, p.decimals),
                          line.whole(p.home_units) + (" *" if p.note else ""))
        status = f"[bold red]SHORT {line.whole(line.shortfall)}[/]" if line.shortfall else "[green]backed[/]"
        table.add_row(f"[bold]{line.symbol}[/]", f"home {line.home_chain}", "locked", line.whole(line.locked), "")
        table.add_row("", "", "outstanding", line.whole(line.outstanding), status, end_section=True)
    console.print(table)
    for line in sheet.tokens:
        for p in line.positions:
            if p.note:
                console.print(f"* {line.symbol} on {p.chain}: {p.note}")
    if sheet.pools:
        pools = Table("token", "chain", "pooled", "owed (deferred payouts)", "supply there", title="liquidity pools")
        for pool in sheet.pools:
            pools.add_row(pool.symbol, pool.chain, _whole(pool.pooled, pool.decimals), _whole(pool.owed, pool.decimals),
                          _whole(pool.supply, pool.decimals))
        console.print(pools)
    for e in sheet.errors:
        console.print(f"[bold red]could not read {e.chain}[/]: {e.error}")
    if sheet.errors:
        console.print("[bold red]audit incomplete[/]")
    elif sheet.shortfall:
        short = ", ".join(f"{t.symbol} {t.whole(t.shortfall)}" for t in sheet.tokens if t.shortfall)
        console.print(f"[bold red]shortfall[/]: {short} (confirmed by {sheet.readings} readings)")
    else:
        console.print(f"[green]every bridged token is backed[/] ({len(sheet.tokens)} tokens, "
                      f"read in {sheet.read_s:.2f}s)")


# ---------------------------------------------------------------- the daemon's periodic job
class AuditJob:
    """The daemon's periodic audit: gauges per token (home smallest units), ``audit_shortfall`` logged at error
    level when a token's shortfall changes to or between non-zero values (``audit_shortfall_cleared`` when it is
    gone), ``audit_failed`` when a chain could not be read (``relayer_audit_up`` 0; token gauges keep their last
    complete reading)."""

    def __init__(self, settings: Settings, adapters: Mapping[str, Any], metrics: Metrics) -> None:
        self.settings, self.adapters = settings, adapters
        self.auditor: Auditor | None = None
        self.metrics = metrics
        self.reported: dict[tuple[str, str], int] = {}  # (token, home) -> shortfall last logged
        self.last: BalanceSheet | None = None

    async def run_once(self) -> BalanceSheet:
        try:
            self.auditor = self.auditor or Auditor(self.settings, self.adapters)
            sheet = await self.auditor.audit()
        except RelayerError as exc:
            sheet = BalanceSheet([], [AuditProblem("?", str(exc)[:300])])
        self.last = sheet
        result = "failed" if sheet.errors else ("shortfall" if sheet.shortfall else "backed")
        self.metrics.inc("relayer_audit_runs_total", result=result)
        if sheet.errors:
            self.metrics.set("relayer_audit_up", 0.0)
            log.warning("audit_failed", chains=[e.chain for e in sheet.errors], error=sheet.errors[0].error)
            return sheet
        self.metrics.set("relayer_audit_up", 1.0)
        for line in sheet.tokens:
            labels = {"token": line.symbol, "home": line.home_chain}
            self.metrics.set("relayer_audit_locked", float(line.locked), **labels)
            self.metrics.set("relayer_audit_outstanding", float(line.outstanding), **labels)
            self.metrics.set("relayer_audit_shortfall", float(line.shortfall), **labels)
            key = (line.symbol, line.home_chain)
            previous = self.reported.get(key, 0)
            if line.shortfall and line.shortfall != previous:
                log.error("audit_shortfall", token=line.symbol, home=line.home_chain, shortfall=str(line.shortfall),
                          locked=str(line.locked), outstanding=str(line.outstanding), home_decimals=line.home_decimals,
                          chains={p.chain: str(p.home_units) for p in line.positions})
            elif not line.shortfall and previous:
                log.info("audit_shortfall_cleared", token=line.symbol, home=line.home_chain, locked=str(line.locked),
                         outstanding=str(line.outstanding))
            self.reported[key] = line.shortfall
        return sheet
