"""Account and storage proofs (``eth_getProof``, EIP-1186) against a header's ``state_root``.

The state trie maps ``keccak256(address)`` to ``rlp([nonce, balance, storage_root, code_hash])``; each
account's storage trie maps ``keccak256(pad32(slot))`` to ``rlp(value)`` (a minimal big-endian integer,
zero values absent). A proof of absence is valid too: an absent account reads as the empty account
(nonce 0, balance 0, empty storage, empty code) and an absent slot as 0, so a claim of exactly that is
accepted and any other claim is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.errors import ProofError, RlpError
from light_clients.ethereum.execution.keccak import EMPTY_CODE_HASH, EMPTY_TRIE_ROOT, keccak256
from light_clients.ethereum.execution.rpc_json import hex_to_bytes, hex_to_fixed, hex_to_int
from light_clients.ethereum.execution.trie import verify_proof


@dataclass(frozen=True)
class Account:
    """An account's state-trie record."""

    nonce: int
    balance: int
    storage_root: bytes
    code_hash: bytes

    def rlp(self) -> bytes:
        """``rlp([nonce, balance, storage_root, code_hash])``."""
        return rlp.encode([self.nonce, self.balance, self.storage_root, self.code_hash])

    @classmethod
    def from_rlp(cls, data: bytes) -> Account:
        """Decode the state-trie leaf value (strict)."""
        fields = rlp.as_list(rlp.decode(data), "account")
        if len(fields) != 4:
            raise RlpError(f"account: expected 4 fields, got {len(fields)}")
        return cls(
            nonce=rlp.as_int(fields[0], "nonce"),
            balance=rlp.as_int(fields[1], "balance"),
            storage_root=rlp.as_fixed(fields[2], 32, "storage_root"),
            code_hash=rlp.as_fixed(fields[3], 32, "code_hash"),
        )


EMPTY_ACCOUNT = Account(nonce=0, balance=0, storage_root=EMPTY_TRIE_ROOT, code_hash=EMPTY_CODE_HASH)


def slot_key(slot: int | bytes) -> bytes:
    """A storage slot as the 32-byte big-endian word the storage trie hashes."""
    if isinstance(slot, int):
        if not 0 <= slot < 1 << 256:
            raise ProofError(f"storage slot {slot} out of range")
        return slot.to_bytes(32, "big")
    if len(slot) > 32:
        raise ProofError(f"storage slot of {len(slot)} bytes")
    return bytes(slot).rjust(32, b"\x00")


def verify_account_proof(state_root: bytes, address: bytes, account_proof: Sequence[bytes],
                         claimed: Account) -> None:
    """Check that ``account_proof`` proves ``claimed`` for ``address`` under ``state_root``.

    Raises ``ProofError`` if the proof is broken or proves a different account (an absent account is
    the empty account).
    """
    if len(address) != 20:
        raise ProofError(f"address must be 20 bytes, got {len(address)}")
    value = verify_proof(state_root, keccak256(address), account_proof)
    if value is None:
        proven = EMPTY_ACCOUNT
    else:
        try:
            proven = Account.from_rlp(value)
        except RlpError as exc:
            raise ProofError(f"account 0x{address.hex()}: proven value is not an account: {exc}") from exc
    if proven != claimed:
        differing = [name for name in ("nonce", "balance", "storage_root", "code_hash")
                     if getattr(proven, name) != getattr(claimed, name)]
        raise ProofError(f"account 0x{address.hex()}: claimed {', '.join(differing)} differ from the proven "
                         f"account{' (absent)' if value is None else ''}")


def verify_storage_proof(storage_root: bytes, slot: int | bytes, proof: Sequence[bytes],
                         claimed_value: int) -> None:
    """Check that ``proof`` proves ``claimed_value`` at ``slot`` under ``storage_root`` (absent = 0)."""
    value = verify_proof(storage_root, keccak256(slot_key(slot)), proof)
    if value is None:
        proven = 0
    else:
        try:
            proven = rlp.as_int(rlp.decode(value), "storage value")
        except RlpError as exc:
            raise ProofError(f"storage slot: proven value is not an integer: {exc}") from exc
        if proven == 0:
            raise ProofError("storage slot: a zero value is stored (zero slots must be absent)")
    if proven != claimed_value:
        raise ProofError(f"storage slot 0x{slot_key(slot).hex()}: claimed {claimed_value}, proven {proven}")


@dataclass(frozen=True)
class StorageProof:
    """One ``storageProof`` entry: slot, claimed value and the proof nodes."""

    key: bytes
    value: int
    proof: list[bytes]


@dataclass(frozen=True)
class AccountProof:
    """An ``eth_getProof`` result: the claimed account, its proof, and storage proofs."""

    address: bytes
    account: Account
    account_proof: list[bytes]
    storage_proofs: list[StorageProof]

    @classmethod
    def from_rpc(cls, result: Mapping[str, Any]) -> AccountProof:
        """Parse an ``eth_getProof`` result (hex strings, camelCase)."""
        storage = [
            StorageProof(
                key=slot_key(hex_to_int(entry["key"], "storageProof.key")),
                value=hex_to_int(entry["value"], "storageProof.value"),
                proof=[hex_to_bytes(node, "storageProof.proof") for node in entry["proof"]],
            )
            for entry in result.get("storageProof", [])
        ]
        return cls(
            address=hex_to_fixed(result["address"], 20, "address"),
            account=Account(
                nonce=hex_to_int(result["nonce"], "nonce"),
                balance=hex_to_int(result["balance"], "balance"),
                storage_root=hex_to_fixed(result["storageHash"], 32, "storageHash"),
                code_hash=hex_to_fixed(result["codeHash"], 32, "codeHash"),
            ),
            account_proof=[hex_to_bytes(node, "accountProof") for node in result["accountProof"]],
            storage_proofs=storage,
        )

    def verify(self, state_root: bytes) -> None:
        """Verify the account under ``state_root`` and every storage slot under its storage root."""
        verify_account_proof(state_root, self.address, self.account_proof, self.account)
        for entry in self.storage_proofs:
            verify_storage_proof(self.account.storage_root, entry.key, entry.proof, entry.value)
