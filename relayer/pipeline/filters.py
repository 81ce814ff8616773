"""Which messages this relayer delivers: ``relayer.allow`` and ``relayer.deny`` (Hyperlane's whitelist and
blacklist), matched on a message's origin, sender, destination and recipient.

- A message matching any ``deny`` rule is never delivered.
- With ``allow`` rules, a message matching none of them is not delivered either.
- Either way it is never submitted and ends ``DROPPED(denied)``, with the rule in its last error (the processor's
  prepare stage asks ``MessageFilter.denial`` of every message it claims, before anything is submitted; one the
  destination shows delivered by another relayer ends DELIVERED).

Rules are compiled once: chain names to domains, addresses to the bytes32 a message carries. Each address is read
in the format of the chains its rule names (or of every configured chain for ``"*"``) by
``adapters.capabilities.account_bytes32``, so no chain-specific code lives here.

``MessageFilter`` holds the rules in force. A reload (SIGHUP, ``POST /admin/v1/filters/reload``;
``relayer.daemon.daemon.RelayerDaemon.reload_filters``) compiles the new lists first and swaps them in whole, so a
bad file keeps the old lists, and a reader on any thread sees the old rules or the new ones, never a mix.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.base import ChainAdapter
from adapters.capabilities import account_bytes32
from adapters.message import Message, MessageFormatError
from config.errors import ConfigError
from config.settings import MessageRule, Settings


@dataclass(frozen=True)
class CompiledRule:
    """One rule as domains and bytes32 accounts; None: any."""

    origins: frozenset[int] | None
    senders: frozenset[bytes] | None
    destinations: frozenset[int] | None
    recipients: frozenset[bytes] | None
    where: str  # "relayer.deny[0]"
    config: dict[str, Any]  # the rule as configured (shown by the admin API)

    def matches(self, m: Message) -> bool:
        return ((self.origins is None or m.origin in self.origins)
                and (self.senders is None or bytes(m.sender) in self.senders)
                and (self.destinations is None or m.destination in self.destinations)
                and (self.recipients is None or bytes(m.recipient) in self.recipients))


@dataclass(frozen=True)
class FilterRules:
    allow: tuple[CompiledRule, ...] = ()
    deny: tuple[CompiledRule, ...] = ()

    def denial(self, m: Message) -> str | None:
        """Why ``m`` may not be delivered (the rule it matches, or that it matches no allow rule); None: it may."""
        for rule in self.deny:
            if rule.matches(m):
                return f"denied: matches {rule.where} {rule.config}"
        if self.allow and not any(rule.matches(m) for rule in self.allow):
            return "denied: matches no rule of relayer.allow"
        return None

    def view(self) -> dict[str, list[dict[str, Any]]]:
        return {"allow": [r.config for r in self.allow], "deny": [r.config for r in self.deny]}


@dataclass
class MessageFilter:
    """The rules in force (replaced whole by ``replace``), and what the admin API shows of them."""

    rules: FilterRules = field(default_factory=FilterRules)
    loaded_at: float = field(default_factory=time.time)
    reloads: int = 0

    def denial(self, raw: bytes) -> str | None:
        """Why the message ``raw`` may not be delivered, None if it may (a malformed one is left to the pipeline)."""
        rules = self.rules  # one read: a reload on another thread swaps the whole object
        if not rules.allow and not rules.deny:
            return None
        try:
            return rules.denial(Message.decode(raw))
        except MessageFormatError:
            return None

    def replace(self, rules: FilterRules) -> None:
        self.rules, self.loaded_at, self.reloads = rules, time.time(), self.reloads + 1


def compile_rules(settings: Settings, adapters: Mapping[str, ChainAdapter]) -> FilterRules:
    """``relayer.allow`` / ``relayer.deny`` of ``settings``, compiled; ``ConfigError`` naming the rule's field for a
    chain that is not configured or an address no chain it names can read."""
    def compiled(kind: str, rules: list[MessageRule]) -> tuple[CompiledRule, ...]:
        return tuple(compile_rule(r, f"relayer.{kind}[{i}]", settings, adapters) for i, r in enumerate(rules))

    return FilterRules(allow=compiled("allow", settings.relayer.allow), deny=compiled("deny", settings.relayer.deny))


def compile_rule(rule: MessageRule, where: str, settings: Settings, adapters: Mapping[str, ChainAdapter]
                 ) -> CompiledRule:
    origins, destinations = rule.values("origin"), rule.values("destination")
    return CompiledRule(
        origins=_domains(origins, f"{where}.origin", settings),
        senders=_accounts(rule.values("sender"), origins, f"{where}.sender", adapters),
        destinations=_domains(destinations, f"{where}.destination", settings),
        recipients=_accounts(rule.values("recipient"), destinations, f"{where}.recipient", adapters),
        where=where, config=rule.model_dump())


def _domains(names: Sequence[str] | None, where: str, settings: Settings) -> frozenset[int] | None:
    if names is None:
        return None
    unknown = [n for n in names if n not in settings.chains]
    if unknown:
        raise ConfigError(where, f"names {unknown[0]!r}, which is not under [chains]")
    return frozenset(settings.chains[n].domain for n in names)


def _accounts(addresses: Sequence[str] | None, chains: Sequence[str] | None, where: str,
              adapters: Mapping[str, ChainAdapter]) -> frozenset[bytes] | None:
    if addresses is None:
        return None
    readers = [adapters[c] for c in (chains or adapters) if c in adapters]
    return frozenset(_bytes32(a, readers, where) for a in addresses)


def _bytes32(address: str, readers: Sequence[ChainAdapter], where: str) -> bytes:
    """``address`` as the bytes32 a message carries, read by the first chain of ``readers`` whose format it is."""
    for adapter in readers:
        with contextlib.suppress(ValueError):  # not this chain's format: the next may read it
            return account_bytes32(adapter, address)
    names = ", ".join(a.name for a in readers) or "no configured chain"
    raise ConfigError(where, f"{address!r} is not an account address on {names} (0x-hex of 20 or 32 bytes, or the "
                             "chain's own format: base58 on Solana, bech32 on Cosmos)")
