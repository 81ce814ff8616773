"""Registered integrators (issue 15, "integrator rewards paid promptly, on chain"): a referral code with a payout
address per chain and a share, and the quotes served to each code.

Registration is the operator's, through the admin API (``PUT /admin/v1/integrators/{code}``; the relayer's
``relayer.api.routes.admin``): this module holds the rows and the rules, and imports nothing of ``relayer``.

Decisions:
- **One row per code** (``integrators``), in the daemon's database: it survives restarts and every daemon sharing a
  PostgreSQL reads the same registration. A ``PUT`` replaces the whole registration (addresses and share): what the
  operator sends is what is in force, nothing merged from before.
- **The share** is a decimal in [0, 1] with at most 6 places, stored as its decimal text so that the payout
  arithmetic (``router.payouts``) is exact; ``null`` means ``router.integrator_fee_share``.
- **Payout addresses are read in each chain's own format**, by a checker the daemon builds from its adapters
  (``AddressCheck``): EVM 0x-hex of 20 bytes (an EIP-55 checksum is checked when the address is mixed-case), Solana
  base58, Cosmos bech32; a 0x bytes32 is refused on Solana and Cosmos (a payout goes to an account, not to a message
  recipient). Bad input is ``RegistrationError`` naming the field (``payout_addresses.l1``), the API's 400.
- **Quotes are counted per code and UTC day only for registered codes**: ``POST /v1/quote`` is open to any key
  holder, and a made-up code must leave no row (the README's "Refused input leaves no unbounded trace"). The set of
  registered codes is read at most every ``KNOWN_CODES_TTL_S`` (a registration counts quotes within that).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel, select

from router.schemas import ADDRESS, INTEGRATOR_CODE
from router.sql import dialect_insert

KNOWN_CODES_TTL_S = 2.0
MAX_SHARE_PLACES = 6


class IntegratorRow(SQLModel, table=True):
    """A registered integrator code: its payout address per chain (JSON object) and its share (decimal text)."""

    __tablename__ = "integrators"

    code: str = Field(primary_key=True, max_length=32)
    share: str | None = Field(default=None, max_length=16)  # None: router.integrator_fee_share
    payout_addresses: str = "{}"                             # JSON {chain: address in the chain's own format}
    created_at: float = 0.0
    updated_at: float = 0.0


class QuoteCount(SQLModel, table=True):
    """Quotes served to a registered code on one UTC day."""

    __tablename__ = "integrator_quotes"

    code: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=10)
    quotes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class RegistrationError(ValueError):
    """Bad registration input: ``field`` names it as the API's 400 does."""

    def __init__(self, field: str, error: str) -> None:
        super().__init__(f"{field}: {error}")
        self.field = field
        self.error = error


class AddressCheck(Protocol):
    """Reads a payout address on ``chain`` in that chain's own format: its canonical text, or ``ValueError`` saying
    why not (``KeyError``: no such chain)."""

    def __call__(self, chain: str, address: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Integrator:
    code: str
    share: Decimal | None                # None: the default share
    payout_addresses: Mapping[str, str]  # chain -> address
    created_at: float
    updated_at: float

    def share_or(self, default: Decimal) -> Decimal:
        return self.share if self.share is not None else default

    def view(self, default: Decimal) -> dict[str, Any]:
        return {"code": self.code, "share": str(self.share_or(default)), "share_is_default": self.share is None,
                "payout_addresses": dict(sorted(self.payout_addresses.items())), "created_at": self.created_at,
                "updated_at": self.updated_at}


def parse_share(value: object) -> Decimal | None:
    """A share as an exact decimal in [0, 1] with at most ``MAX_SHARE_PLACES`` places (``None`` stays None):
    a JSON number is read from its shortest text (0.29 is 29/100, never 0.28999...)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RegistrationError("share", "a number between 0 and 1, or null for router.integrator_fee_share")
    try:
        share = Decimal(str(value))
    except InvalidOperation:
        raise RegistrationError("share", f"{value!r} is not a number") from None
    if not share.is_finite() or not Decimal(0) <= share <= Decimal(1):
        raise RegistrationError("share", f"{value!r} is not between 0 and 1")
    if share != share.quantize(Decimal(1).scaleb(-MAX_SHARE_PLACES)):
        raise RegistrationError("share", f"at most {MAX_SHARE_PLACES} decimal places, got {value!r}")
    return share.normalize() if share else Decimal(0)


def check_registration_code(code: str) -> None:
    if not INTEGRATOR_CODE.match(code):
        raise RegistrationError("code", "an integrator code is 1-32 of [a-z0-9_-]")


def check_registration(code: str, body: Mapping[str, Any], chains: Mapping[str, object],
                       check: AddressCheck) -> tuple[Decimal | None, dict[str, str]]:
    """The share and the payout addresses (canonical) of a registration body, or ``RegistrationError`` naming the
    field: ``code`` 1-32 of [a-z0-9_-]; ``payout_addresses`` an object of configured chain -> address (at least
    one); ``share`` optional."""
    check_registration_code(code)
    unknown = sorted(set(body) - {"payout_addresses", "share"})
    if unknown:
        raise RegistrationError(unknown[0], "unknown field (payout_addresses, share)")
    addresses = body.get("payout_addresses")
    if not isinstance(addresses, dict) or not addresses:
        raise RegistrationError("payout_addresses", "an object of chain name -> payout address, at least one")
    out: dict[str, str] = {}
    for chain, address in addresses.items():
        where = f"payout_addresses.{chain}"
        if chain not in chains:
            raise RegistrationError(where, f"{chain!r} is not a configured chain ({', '.join(chains)})")
        if not isinstance(address, str) or not address.strip() or len(address) > 128:
            raise RegistrationError(where, "an address in the chain's own format")
        try:
            out[chain] = check(chain, address.strip())
        except ValueError as exc:
            raise RegistrationError(where, str(exc)) from None
    return parse_share(body.get("share")), out


def _row_to_integrator(row: IntegratorRow) -> Integrator:
    return Integrator(row.code, Decimal(row.share) if row.share is not None else None,
                      json.loads(row.payout_addresses or "{}"), row.created_at, row.updated_at)


def utc_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).date().isoformat()


class IntegratorStore:
    """``integrators`` and ``integrator_quotes`` (short synchronous transactions: callers on an event loop run them on
    the store's threads)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        SQLModel.metadata.create_all(engine, tables=[IntegratorRow.__table__,  # type: ignore[attr-defined]
                                                     QuoteCount.__table__])  # type: ignore[attr-defined]
        self._known: frozenset[str] = frozenset()
        self._known_at = -1e18

    def register(self, code: str, share: Decimal | None, addresses: Mapping[str, str]) -> tuple[Integrator, bool]:
        """Insert or replace ``code``'s registration; (it, whether it is new)."""
        table = IntegratorRow.__table__  # type: ignore[attr-defined]
        now = self._clock()
        values = {"code": code, "share": None if share is None else str(share),
                  "payout_addresses": json.dumps(dict(sorted(addresses.items()))), "created_at": now,
                  "updated_at": now}
        with self.engine.begin() as conn:
            existed = conn.execute(select(table.c.code).where(table.c.code == code)).first() is not None
            stmt = dialect_insert(self.engine, table).values(**values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_={
                "share": stmt.excluded.share, "payout_addresses": stmt.excluded.payout_addresses,
                "updated_at": stmt.excluded.updated_at}))
        self._known_at = -1e18
        found = self.get(code)
        assert found is not None
        return found, not existed

    def get(self, code: str) -> Integrator | None:
        table = IntegratorRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.code == code)).first()
        return None if row is None else _row_to_integrator(IntegratorRow(**row._mapping))

    def all(self) -> list[Integrator]:
        table = IntegratorRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.code)).all()
        return [_row_to_integrator(IntegratorRow(**r._mapping)) for r in rows]

    def is_registered(self, code: str) -> bool:
        """Whether ``code`` is registered, from a set read at most every ``KNOWN_CODES_TTL_S``."""
        now = time.monotonic()
        if now - self._known_at > KNOWN_CODES_TTL_S:
            table = IntegratorRow.__table__  # type: ignore[attr-defined]
            with self.engine.connect() as conn:
                self._known = frozenset(str(r[0]) for r in conn.execute(select(table.c.code)))
            self._known_at = now
        return code in self._known

    def count_quote(self, code: str) -> bool:
        """One quote served to ``code`` today, if it is registered (else nothing is stored); whether it counted."""
        if not self.is_registered(code):
            return False
        table = QuoteCount.__table__  # type: ignore[attr-defined]
        stmt = dialect_insert(self.engine, table).values(code=code, day=utc_day(self._clock()), quotes=1)
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["code", "day"],
                                                    set_={"quotes": table.c.quotes + 1}))
        return True

    def quotes(self, code: str) -> dict[str, int]:
        """Quotes served to ``code`` per UTC day."""
        table = QuoteCount.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.day, table.c.quotes).where(table.c.code == code)
                                .order_by(table.c.day)).all()
        return {str(d): int(q) for d, q in rows}


def evm_address(address: str) -> str:
    """An EVM account: 0x and 40 hex digits, its EIP-55 checksum checked when it is mixed-case; lower-case."""
    from adapters.message import keccak256

    if not ADDRESS.match(address):
        raise ValueError(f"{address!r} is not an EVM address (0x and 40 hex digits)")
    digits = address[2:]
    if digits != digits.lower() and digits != digits.upper():
        hashed = keccak256(digits.lower().encode()).hex()
        expected = "".join(c.upper() if int(h, 16) >= 8 else c for c, h in zip(digits.lower(), hashed, strict=False))
        if digits != expected:
            raise ValueError(f"{address!r} fails its EIP-55 checksum (mixed case must be the checksummed address)")
    return address.lower()


def address_check(adapters: Mapping[str, object]) -> AddressCheck:
    """Payout addresses read by each chain's adapter: where it reads accounts in a format of its own
    (``Bytes32Accounts``: base58 on Solana, bech32 on Cosmos) only in that format, else as an EVM address."""
    from adapters.capabilities import Bytes32Accounts, account_bytes32

    def check(chain: str, address: str) -> str:
        adapter = adapters[chain]
        if isinstance(adapter, Bytes32Accounts):
            if address[:2].lower() == "0x":
                raise ValueError(f"{address!r}: a payout on {chain} goes to an account in the chain's own format "
                                 "(base58 on Solana, bech32 on Cosmos), not 0x-hex")
            account_bytes32(adapter, address)  # ValueError saying why not
            return address
        return evm_address(address)

    return check
