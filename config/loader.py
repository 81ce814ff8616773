"""Load settings: a TOML file, then environment overrides, then CLI overrides; validate once, fail clearly.

Environment overrides use ``RELAYER__`` and ``__`` between keys: ``RELAYER__CHAINS__L1__RPC_URL=http://...``
sets ``chains.l1.rpc_url``. ``RELAYER_STORE_URL`` is a shorthand for ``store.url``. Values are read as TOML
scalars when they parse as such (numbers, booleans, quoted strings, arrays), else as plain strings.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.errors import ConfigError
from config.settings import Settings

ENV_PREFIX = "RELAYER__"


def _parse_scalar(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):  # "[[[[..." nested past the parser's depth: a plain string
        return text


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[path[-1]] = value


_ENV_KEY_PART = re.compile(r"^[a-z0-9_]+$")


def env_overrides(env: Mapping[str, str]) -> list[tuple[list[str], Any]]:
    found: list[tuple[list[str], Any]] = []
    for key, value in sorted(env.items()):
        if key.startswith(ENV_PREFIX):
            path = [part.lower() for part in key[len(ENV_PREFIX):].split("__") if part]
            bad = next((p for p in path if not _ENV_KEY_PART.match(p)), None)
            if bad is not None:
                raise ConfigError(key, f"environment variable does not name a config key: {bad!r} is not a key "
                                       "(keys are letters, digits and _, joined by __)")
            if path:
                found.append((path, _parse_scalar(value)))
    if env.get("RELAYER_STORE_URL"):
        found.append((["store", "url"], env["RELAYER_STORE_URL"]))
    return found


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_FAMILIES = ("evm", "solana", "cosmos")  # tags pydantic puts in the location of a `family`-discriminated chain


def _is_union_tag(part: str) -> bool:
    return "[" in part or part.startswith(("function-", "constrained-"))


def _loc_path(loc: tuple[int | str, ...]) -> str:
    """``chains.l1.evm.rpc_url`` -> ``chains.l1.rpc_url``: drop pydantic's union tags, including the chain family
    it inserts after a chain's name."""
    parts = [str(p) for p in loc]
    if len(parts) >= 3 and parts[0] == "chains" and parts[2] in _FAMILIES:
        del parts[2]
    return ".".join(_quoted(p) for p in parts if not _is_union_tag(p))


def _quoted(key: str) -> str:
    """A key as it appears in a dotted path: quoted TOML-style when it is not a bare key (``chains."a.b"``)."""
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _is_secret(path: str) -> bool:
    """A key path whose values are secrets (private keys, API keys, seeds): an error never echoes them."""
    return any(word in path for word in ("key", "secret", "seed", "password"))


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = _loc_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config/examples/devnet.toml)"
        elif err["type"] == "missing":
            msg = "required key is missing"
        given = err.get("input")
        if _is_secret(path):
            msg += " (the value is not shown: it is a secret)"
        elif err["type"] not in ("missing", "extra_forbidden") and not isinstance(given, dict) and "got" not in msg:
            msg += f" (got {given!r})"
        lines.append(f"{path or '<root>'}: {msg}")
    return "; ".join(lines)


def load_settings_dict(raw: Mapping[str, Any], *, source: str = "config") -> Settings:
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = _loc_path(first["loc"])
        raise ConfigError(path, format_validation_error(exc).removeprefix(f"{path or '<root>'}: "),
                          source=source) from None
    try:
        settings.check_operator_exposure()  # operator accounts behind an open API off loopback (names router.api_keys)
    except ConfigError as exc:
        raise ConfigError(exc.path, exc.problem, source=source) from None
    return settings


def load_settings(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read ``path``, apply env then ``overrides`` (dotted keys), validate."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError("", f"config file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError("", f"config file {file} cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{file} is not valid TOML: not UTF-8 at byte {exc.start}") from None
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{file} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError("", f"{file} is not valid TOML: arrays or tables nested too deep") from None
    for keys, value in env_overrides(os.environ if env is None else env):
        _set_path(raw, keys, value)
    for dotted, value in (overrides or {}).items():
        _set_path(raw, dotted.split("."), value)
    return load_settings_dict(raw, source=str(file))
