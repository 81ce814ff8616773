"""Resolve a configured secp256k1 key: env var, encrypted V3 keystore, or inline (devnet test keys only).

The key is returned as a hex string for the adapter or signer that holds it; it is never logged and
errors name the source (variable or file), not the value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

from eth_account import Account

from config.errors import ConfigError
from config.settings import SignerSettings

_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def resolve_private_key(signer: SignerSettings, *, where: str, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if signer.private_key is not None:
        key = signer.private_key.get_secret_value()
        origin = f"{where}.private_key"
    elif signer.private_key_env:
        if signer.private_key_env not in env:
            raise ConfigError(f"{where}.private_key_env", f"environment variable {signer.private_key_env} is not set")
        key = env[signer.private_key_env]
        origin = f"environment variable {signer.private_key_env}"
    else:
        assert signer.keystore and signer.password_env
        path = Path(signer.keystore)
        if signer.password_env not in env:
            raise ConfigError(f"{where}.password_env", f"environment variable {signer.password_env} is not set")
        try:
            keyfile = json.loads(path.read_text())
            key = "0x" + bytes(Account.decrypt(keyfile, env[signer.password_env])).hex()
        except FileNotFoundError:
            raise ConfigError(f"{where}.keystore", f"keystore file {path} does not exist") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{where}.keystore",
                              f"cannot decrypt {path}: {type(exc).__name__} (wrong password or not a V3 "
                              "keystore)") from None
        origin = f"keystore {path}"
    key = key.strip()
    if not _HEX_KEY.match(key):
        raise ConfigError(where, f"the key from {origin} is not 32 bytes of hex")
    return key if key.startswith("0x") else "0x" + key
