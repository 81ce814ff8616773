"""The devnet's genesis: chain id, denoms, funded PUBLIC DEVNET TEST accounts and ed25519 validators.

Everything is derived from the settings, so a manifest (``genesis_manifest``) can be written without
starting the chain and a restarted node finds the same validator keys.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from devnets.cosmos.accounts import DevnetAccountKey, devnet_account_key
from light_clients.tendermint.builder import Committee, validator_keys
from light_clients.tendermint.hashing import validator_set_hash

DEFAULT_CHAIN_ID = "xchain-devnet-1"
DEFAULT_PREFIX = "cosmos"
DEFAULT_FEE_DENOM = "ustake"
DEFAULT_TOKEN_DENOM = "uxtst"
VALIDATOR_SEED_PREFIX = "xchain-cosmos-devnet-validator"
VALIDATOR_POWER = 10


@dataclass(frozen=True)
class GenesisSettings:
    """What a devnet is started with; all other genesis data follows from it."""

    chain_id: str = DEFAULT_CHAIN_ID
    prefix: str = DEFAULT_PREFIX
    fee_denom: str = DEFAULT_FEE_DENOM
    token_denom: str = DEFAULT_TOKEN_DENOM
    validator_count: int = 4
    account_count: int = 5
    fee_balance: int = 10_000_000_000
    token_balance: int = 1_000_000_000_000
    min_gas_price: Decimal = field(default=Decimal("0.0025"))

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "prefix": self.prefix,
            "fee_denom": self.fee_denom,
            "token_denom": self.token_denom,
            "validator_count": self.validator_count,
            "account_count": self.account_count,
            "fee_balance": self.fee_balance,
            "token_balance": self.token_balance,
            "min_gas_price": str(self.min_gas_price),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenesisSettings:
        return cls(**{**data, "min_gas_price": Decimal(data["min_gas_price"])})


def genesis_accounts(settings: GenesisSettings = GenesisSettings()) -> list[DevnetAccountKey]:
    """The funded accounts, ``devnet-0`` .. ``devnet-{n-1}``: PUBLIC DEVNET TEST KEYS."""
    return [devnet_account_key(f"devnet-{i}", settings.prefix) for i in range(settings.account_count)]


def validator_committee(count: int) -> Committee:
    """``count`` deterministic ed25519 validators of equal power."""
    return Committee.equal_power(validator_keys(count, prefix=VALIDATOR_SEED_PREFIX), power=VALIDATOR_POWER)


def genesis_manifest(settings: GenesisSettings = GenesisSettings()) -> dict[str, Any]:
    """Accounts (bech32 address, hex private key, balances) and validators, for a devnet manifest."""
    committee = validator_committee(settings.validator_count)
    return {
        "chain_id": settings.chain_id,
        "bech32_prefix": settings.prefix,
        "fee_denom": settings.fee_denom,
        "token_denom": settings.token_denom,
        "min_gas_price": str(settings.min_gas_price),
        "warning": "PUBLIC DEVNET TEST KEYS: derived from fixed labels, never use them for anything of value",
        "accounts": [
            {
                "name": key.name,
                "address": key.address,
                "private_key_hex": key.private_key_hex,
                "pub_key_base64": base64.b64encode(key.pub_key).decode(),
                "balances": {
                    settings.fee_denom: settings.fee_balance,
                    settings.token_denom: settings.token_balance,
                },
            }
            for key in genesis_accounts(settings)
        ],
        "validators": [
            {
                "address": validator.address.hex().upper(),
                "pub_key_base64": base64.b64encode(validator.pub_key).decode(),
                "voting_power": validator.voting_power,
            }
            for validator in committee.validator_set.validators
        ],
        "validators_hash": validator_set_hash(committee.validator_set).hex().upper(),
    }
