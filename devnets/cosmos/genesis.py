"""The devnet's genesis: chain id, denoms, funded PUBLIC DEVNET TEST accounts and ed25519 validators.

The accounts hold the fee denom only. The token denom (``uxtst``: TST wrapped from its home chain) exists at
genesis in one account alone, the bridge's escrow (``escrow_address``: the validators' multisig vault), so
every unit in circulation was paid out of the escrow for a lock on the home chain: the escrow backs exactly
what was locked. A user who needs ``uxtst`` bridges TST in first.

Everything is derived from the settings, so a manifest (``genesis_manifest``) can be written without
starting the chain and a restarted node finds the same validator keys.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from devnets.cosmos.accounts import DevnetAccountKey, address_bytes, devnet_account_key
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
    escrow_address: str = ""  # bech32; the only holder of ``token_denom`` at genesis ("": nobody holds it)
    escrow_balance: int = 0
    min_gas_price: Decimal = field(default=Decimal("0.0025"))

    def __post_init__(self) -> None:
        if self.escrow_balance < 0 or (self.escrow_balance and not self.escrow_address):
            raise ValueError("an escrow balance needs an escrow address (and is not negative)")
        if self.escrow_address:
            address_bytes(self.escrow_address)  # ValueError if it is not bech32

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "prefix": self.prefix,
            "fee_denom": self.fee_denom,
            "token_denom": self.token_denom,
            "validator_count": self.validator_count,
            "account_count": self.account_count,
            "fee_balance": self.fee_balance,
            "escrow_address": self.escrow_address,
            "escrow_balance": self.escrow_balance,
            "min_gas_price": str(self.min_gas_price),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenesisSettings:
        """Settings as stored by a node (keys of older versions, such as a per-account ``token_balance``, are
        ignored: the chain's state already holds what its genesis gave)."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, "min_gas_price": Decimal(data["min_gas_price"])})


def genesis_accounts(settings: GenesisSettings = GenesisSettings()) -> list[DevnetAccountKey]:
    """The funded accounts, ``devnet-0`` .. ``devnet-{n-1}``: PUBLIC DEVNET TEST KEYS."""
    return [devnet_account_key(f"devnet-{i}", settings.prefix) for i in range(settings.account_count)]


def genesis_balances(settings: GenesisSettings = GenesisSettings()) -> dict[str, dict[str, int]]:
    """bech32 address -> denom -> amount at genesis: the fee denom for every account, the token denom for the
    escrow alone."""
    balances = {key.address: {settings.fee_denom: settings.fee_balance} for key in genesis_accounts(settings)}
    if settings.escrow_address:
        coins = balances.setdefault(settings.escrow_address, {})
        if settings.escrow_balance:
            coins[settings.token_denom] = coins.get(settings.token_denom, 0) + settings.escrow_balance
    return balances


def validator_committee(count: int) -> Committee:
    """``count`` deterministic ed25519 validators of equal power."""
    return Committee.equal_power(validator_keys(count, prefix=VALIDATOR_SEED_PREFIX), power=VALIDATOR_POWER)


def genesis_manifest(settings: GenesisSettings = GenesisSettings()) -> dict[str, Any]:
    """Accounts (bech32 address, hex private key, balances) and validators, for a devnet manifest."""
    committee = validator_committee(settings.validator_count)
    balances = genesis_balances(settings)
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
                "balances": balances[key.address],
            }
            for key in genesis_accounts(settings)
        ],
        "escrow": {"address": settings.escrow_address, "balances": balances.get(settings.escrow_address, {})},
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
