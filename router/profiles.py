"""Chain profiles for the planner and the simulator: a TOML file of ``[chains.NAME]`` tables (and optional
``[scale_out.NAME]`` tables that copy an existing chain's parameters N times), checked key by key.

A bad file fails naming the key path: ``mainnet_like.toml: chains.base.blok_time_s: unknown key``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import config
from adapters.message import Domain
from config.errors import ConfigError
from config.settings import ChainFamily
from router.capacity import ChainProfile

PROFILE_DIR = Path(config.__file__).resolve().parent / "profiles"
DEFAULT_PROFILE = "mainnet_like"

_FIELDS = {f.name: f for f in dataclasses.fields(ChainProfile)}
_KEYS = set(_FIELDS) - {"name", "scale_out"}
_REQUIRED = {n for n, f in _FIELDS.items()
             if f.default is dataclasses.MISSING and n != "name"}
_SCALE_OUT_KEYS = {"template", "count", "first_domain", "note"}


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    path: Path
    chains: tuple[ChainProfile, ...]

    @property
    def real(self) -> tuple[ChainProfile, ...]:
        return tuple(c for c in self.chains if not c.scale_out)

    @property
    def projected(self) -> tuple[ChainProfile, ...]:
        return tuple(c for c in self.chains if c.scale_out)


def resolve_profile_path(name_or_file: str) -> Path:
    """A path to a TOML file, or the name of one in ``config/profiles/``."""
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError("", f"profile file {name_or_file} not found")
        return path
    found = PROFILE_DIR / f"{name_or_file}.toml"
    if not found.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))) or "none"
        raise ConfigError("", f"no profile named {name_or_file!r} (known: {known}; or give a .toml path)")
    return found


def _number(value: Any, path: str, src: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"expected a number, got {value!r}", source=src)
    return float(value)


def _chain(name: str, table: Any, src: str) -> ChainProfile:
    where = f"chains.{name}"
    if not isinstance(table, dict):
        raise ConfigError(where, "expected a table", source=src)
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"{where}.{key}", "unknown key (see config/profiles/mainnet_like.toml)", source=src)
    for key in sorted(_REQUIRED - set(table)):
        raise ConfigError(f"{where}.{key}", "missing", source=src)
    values: dict[str, Any] = {"name": name}
    for key, value in table.items():
        path = f"{where}.{key}"
        if key in ("family", "source"):
            if not isinstance(value, str):
                raise ConfigError(path, f"expected a string, got {value!r}", source=src)
            values[key] = value
        elif key == "domain":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**32:
                raise ConfigError(path, f"expected an integer domain id (u32), got {value!r}", source=src)
            values[key] = Domain(value)
        else:
            values[key] = _number(value, path, src)
    if values["family"] not in set(ChainFamily):
        raise ConfigError(f"{where}.family", f"expected one of {sorted(ChainFamily)}, got {values['family']!r}",
                          source=src)
    values["family"] = ChainFamily(values["family"])
    for key in ("block_time_s", "gas_limit", "transfer_gas", "native_usd"):
        if values[key] <= 0:
            raise ConfigError(f"{where}.{key}", f"must be > 0, got {values[key]}", source=src)
    for key in ("finality_s", "base_fee", "min_base_fee", "priority_fee", "tx_fee", "base_fee_max_change"):
        if values.get(key, 0.0) < 0:
            raise ConfigError(f"{where}.{key}", f"must be >= 0, got {values[key]}", source=src)
    target = values.get("target_utilisation", 0.5)
    if not 0 < target < 1:
        raise ConfigError(f"{where}.target_utilisation", f"must be in (0, 1), got {target}", source=src)
    if not 0 <= values.get("background_utilisation", 0.0) < target:
        raise ConfigError(f"{where}.background_utilisation", "must be in [0, target_utilisation)", source=src)
    return ChainProfile(**values)


def _scale_out(name: str, table: Any, chains: dict[str, ChainProfile], src: str) -> list[ChainProfile]:
    where = f"scale_out.{name}"
    if not isinstance(table, dict):
        raise ConfigError(where, "expected a table", source=src)
    for key in table:
        if key not in _SCALE_OUT_KEYS:
            raise ConfigError(f"{where}.{key}", f"unknown key (expected {sorted(_SCALE_OUT_KEYS)})", source=src)
    template = table.get("template")
    if template not in chains:
        raise ConfigError(f"{where}.template", f"expected the name of a chain above, got {template!r}", source=src)
    count, first = table.get("count"), table.get("first_domain")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigError(f"{where}.count", f"expected a positive integer, got {count!r}", source=src)
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise ConfigError(f"{where}.first_domain", f"expected an integer domain id, got {first!r}", source=src)
    base = chains[template]
    note = f"scale-out: projected chain with {template}'s parameters. {table.get('note', '')}".strip()
    return [dataclasses.replace(base, name=f"{name}-{k + 1:02d}", domain=Domain(first + k), scale_out=True, source=note)
            for k in range(count)]


def load_profile(name_or_file: str = DEFAULT_PROFILE) -> Profile:
    path = resolve_profile_path(name_or_file)
    src = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}", source=src) from exc
    for key in data:
        if key not in ("chains", "scale_out"):
            raise ConfigError(key, "unknown key (expected [chains.NAME] and [scale_out.NAME] tables)", source=src)
    tables = data.get("chains")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError("chains", "expected at least one [chains.NAME] table", source=src)
    chains = {name: _chain(name, table, src) for name, table in tables.items()}
    out = list(chains.values())
    for name, table in (data.get("scale_out") or {}).items():
        out.extend(_scale_out(name, table, chains, src))
    domains: dict[int, str] = {}
    for c in out:
        if c.domain in domains:
            raise ConfigError(f"chains.{c.name}.domain", f"domain {c.domain} already used by {domains[c.domain]}",
                              source=src)
        domains[c.domain] = c.name
    return Profile(name=path.stem, path=path, chains=tuple(out))
