"""The application state of the devnet: auth accounts (number, sequence, public key) and bank balances.

``app_hash`` is sha256 of the state's canonical JSON: deterministic, though not the SDK's IAVL root.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class AccountRecord:
    """An auth ``BaseAccount``; ``pub_key_type_url`` / ``pub_key`` are the proto ``Any`` once it is known."""

    number: int
    sequence: int = 0
    pub_key_type_url: str = ""
    pub_key: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "sequence": self.sequence,
            "pub_key_type_url": self.pub_key_type_url,
            "pub_key": self.pub_key.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccountRecord:
        return cls(data["number"], data["sequence"], data["pub_key_type_url"], bytes.fromhex(data["pub_key"]))


class InsufficientFunds(Exception):
    """A transfer larger than the spendable balance; the message is the bank module's wording."""


@dataclass
class LedgerState:
    """Accounts and balances keyed by the 20 raw address bytes."""

    accounts: dict[bytes, AccountRecord] = field(default_factory=dict)
    balances: dict[bytes, dict[str, int]] = field(default_factory=dict)
    next_account_number: int = 0

    def copy(self) -> LedgerState:
        return copy.deepcopy(self)

    def account(self, address: bytes) -> AccountRecord | None:
        return self.accounts.get(address)

    def ensure_account(self, address: bytes) -> AccountRecord:
        """The account at ``address``, created (next account number) if it is new, as the bank module does."""
        record = self.accounts.get(address)
        if record is None:
            record = AccountRecord(self.next_account_number)
            self.next_account_number += 1
            self.accounts[address] = record
        return record

    def balance(self, address: bytes, denom: str) -> int:
        return self.balances.get(address, {}).get(denom, 0)

    def transfer(self, sender: bytes, recipient: bytes, coins: list[tuple[int, str]]) -> None:
        """Move ``coins`` (amount, denom); ``InsufficientFunds`` leaves the state unchanged."""
        for amount, denom in coins:
            have = self.balance(sender, denom)
            if have < amount:
                raise InsufficientFunds(f"spendable balance {have}{denom} is smaller than {amount}{denom}")
        self.ensure_account(recipient)
        for amount, denom in coins:
            self.balances.setdefault(sender, {})[denom] = self.balance(sender, denom) - amount
            self.balances.setdefault(recipient, {})[denom] = self.balance(recipient, denom) + amount

    def to_json(self) -> dict[str, Any]:
        return {
            "accounts": {addr.hex(): rec.to_json() for addr, rec in sorted(self.accounts.items())},
            "balances": {
                addr.hex(): dict(sorted(coins.items())) for addr, coins in sorted(self.balances.items())
            },
            "next_account_number": self.next_account_number,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LedgerState:
        return cls(
            accounts={bytes.fromhex(a): AccountRecord.from_json(r) for a, r in data["accounts"].items()},
            balances={bytes.fromhex(a): dict(c) for a, c in data["balances"].items()},
            next_account_number=data["next_account_number"],
        )

    def app_hash(self) -> bytes:
        return hashlib.sha256(
            json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()
        ).digest()
