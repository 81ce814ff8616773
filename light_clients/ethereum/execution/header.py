"""Execution-layer block headers through Prague: RLP, hash, RPC parsing, and chain linking.

The hash of a header is ``keccak256(rlp(fields))``. Fork fields are appended in order and present only
from their fork on: ``base_fee_per_gas`` (London), ``withdrawals_root`` (Shanghai), ``blob_gas_used``,
``excess_blob_gas``, ``parent_beacon_block_root`` (Cancun), ``requests_hash`` (Prague). A later fork
field without every earlier one is not a valid header.

Security checks: ``header_from_rpc_checked`` recomputes the hash from the fields an RPC returned and
rejects the header when it differs from the RPC's own ``hash`` (so every field used later is the one the
hash commits to). ``verify_header_chain`` links each header to the previous one by ``parent_hash`` and
consecutive numbers, starting from a trusted header or hash.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.errors import HeaderChainError, HeaderError, RlpError, RpcDataError
from light_clients.ethereum.execution.keccak import keccak256
from light_clients.ethereum.execution.rlp import RlpItem
from light_clients.ethereum.execution.rpc_json import hex_to_bytes, hex_to_fixed, hex_to_int

_BASE_FIELDS = 15
_OPTIONAL_FIELDS = (
    "base_fee_per_gas", "withdrawals_root", "blob_gas_used", "excess_blob_gas",
    "parent_beacon_block_root", "requests_hash",
)


@dataclass(frozen=True)
class BlockHeader:
    """An execution-layer block header; fork fields are ``None`` before their fork."""

    parent_hash: bytes
    ommers_hash: bytes
    beneficiary: bytes
    state_root: bytes
    transactions_root: bytes
    receipts_root: bytes
    logs_bloom: bytes
    difficulty: int
    number: int
    gas_limit: int
    gas_used: int
    timestamp: int
    extra_data: bytes
    mix_hash: bytes
    nonce: bytes
    base_fee_per_gas: int | None = None
    withdrawals_root: bytes | None = None
    blob_gas_used: int | None = None
    excess_blob_gas: int | None = None
    parent_beacon_block_root: bytes | None = None
    requests_hash: bytes | None = None

    def __post_init__(self) -> None:
        sizes = {"parent_hash": 32, "ommers_hash": 32, "beneficiary": 20, "state_root": 32,
                 "transactions_root": 32, "receipts_root": 32, "logs_bloom": 256, "mix_hash": 32, "nonce": 8,
                 "withdrawals_root": 32, "parent_beacon_block_root": 32, "requests_hash": 32}
        for name, size in sizes.items():
            value = getattr(self, name)
            if value is not None and len(value) != size:
                raise HeaderError(f"{name}: expected {size} bytes, got {len(value)}")
        present = [getattr(self, name) is not None for name in _OPTIONAL_FIELDS]
        if any(later and not earlier for earlier, later in itertools.pairwise(present)):
            missing = [n for n, p in zip(_OPTIONAL_FIELDS, present) if not p]
            raise HeaderError(f"fork fields out of order: a later fork field is set but {missing[0]} is not")

    def fields(self) -> list[bytes | int]:
        """The RLP field list in canonical order (fork fields only when present)."""
        out: list[bytes | int] = [
            self.parent_hash, self.ommers_hash, self.beneficiary, self.state_root, self.transactions_root,
            self.receipts_root, self.logs_bloom, self.difficulty, self.number, self.gas_limit, self.gas_used,
            self.timestamp, self.extra_data, self.mix_hash, self.nonce,
        ]
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out.append(value)
        return out

    def rlp(self) -> bytes:
        """The header's canonical RLP encoding."""
        return rlp.encode(self.fields())

    def hash(self) -> bytes:
        """The block hash: keccak256 of the header's RLP."""
        return keccak256(self.rlp())

    @classmethod
    def from_rlp(cls, data: bytes) -> BlockHeader:
        """Decode a header from its RLP (strict); ``HeaderError`` if malformed."""
        try:
            return cls.from_rlp_item(rlp.decode(data))
        except RlpError as exc:
            raise HeaderError(f"header RLP: {exc}") from exc

    @classmethod
    def from_rlp_item(cls, item: RlpItem) -> BlockHeader:
        """Build a header from an already-decoded RLP list."""
        try:
            fields = rlp.as_list(item, "header")
            if not _BASE_FIELDS <= len(fields) <= _BASE_FIELDS + len(_OPTIONAL_FIELDS):
                raise HeaderError(f"header has {len(fields)} fields, expected 15 to 21")
            extra = fields[_BASE_FIELDS:]
            optional: dict[str, Any] = {}
            for name, value in zip(_OPTIONAL_FIELDS, extra):
                if name in ("withdrawals_root", "parent_beacon_block_root", "requests_hash"):
                    optional[name] = rlp.as_fixed(value, 32, name)
                else:
                    optional[name] = rlp.as_int(value, name)
            return cls(
                parent_hash=rlp.as_fixed(fields[0], 32, "parent_hash"),
                ommers_hash=rlp.as_fixed(fields[1], 32, "ommers_hash"),
                beneficiary=rlp.as_fixed(fields[2], 20, "beneficiary"),
                state_root=rlp.as_fixed(fields[3], 32, "state_root"),
                transactions_root=rlp.as_fixed(fields[4], 32, "transactions_root"),
                receipts_root=rlp.as_fixed(fields[5], 32, "receipts_root"),
                logs_bloom=rlp.as_fixed(fields[6], 256, "logs_bloom"),
                difficulty=rlp.as_int(fields[7], "difficulty"),
                number=rlp.as_int(fields[8], "number"),
                gas_limit=rlp.as_int(fields[9], "gas_limit"),
                gas_used=rlp.as_int(fields[10], "gas_used"),
                timestamp=rlp.as_int(fields[11], "timestamp"),
                extra_data=rlp.as_bytes(fields[12], "extra_data"),
                mix_hash=rlp.as_fixed(fields[13], 32, "mix_hash"),
                nonce=rlp.as_fixed(fields[14], 8, "nonce"),
                **optional,
            )
        except RlpError as exc:
            raise HeaderError(f"header: {exc}") from exc

    @classmethod
    def from_rpc(cls, block: Mapping[str, Any]) -> BlockHeader:
        """Parse the header fields of an ``eth_getBlockByNumber``/``ByHash`` result (camelCase, hex)."""
        try:
            def optional_int(key: str) -> int | None:
                return hex_to_int(block[key], key) if block.get(key) is not None else None

            def optional_hash(key: str) -> bytes | None:
                return hex_to_fixed(block[key], 32, key) if block.get(key) is not None else None

            return cls(
                parent_hash=hex_to_fixed(block["parentHash"], 32, "parentHash"),
                ommers_hash=hex_to_fixed(block["sha3Uncles"], 32, "sha3Uncles"),
                beneficiary=hex_to_fixed(block["miner"], 20, "miner"),
                state_root=hex_to_fixed(block["stateRoot"], 32, "stateRoot"),
                transactions_root=hex_to_fixed(block["transactionsRoot"], 32, "transactionsRoot"),
                receipts_root=hex_to_fixed(block["receiptsRoot"], 32, "receiptsRoot"),
                logs_bloom=hex_to_fixed(block["logsBloom"], 256, "logsBloom"),
                difficulty=hex_to_int(block["difficulty"], "difficulty"),
                number=hex_to_int(block["number"], "number"),
                gas_limit=hex_to_int(block["gasLimit"], "gasLimit"),
                gas_used=hex_to_int(block["gasUsed"], "gasUsed"),
                timestamp=hex_to_int(block["timestamp"], "timestamp"),
                extra_data=hex_to_bytes(block["extraData"], "extraData"),
                mix_hash=hex_to_fixed(block["mixHash"], 32, "mixHash"),
                nonce=hex_to_fixed(block["nonce"], 8, "nonce"),
                base_fee_per_gas=optional_int("baseFeePerGas"),
                withdrawals_root=optional_hash("withdrawalsRoot"),
                blob_gas_used=optional_int("blobGasUsed"),
                excess_blob_gas=optional_int("excessBlobGas"),
                parent_beacon_block_root=optional_hash("parentBeaconBlockRoot"),
                requests_hash=optional_hash("requestsHash"),
            )
        except KeyError as exc:
            raise RpcDataError(f"RPC block lacks field {exc.args[0]}") from exc


def header_from_rpc_checked(block: Mapping[str, Any]) -> BlockHeader:
    """Parse an RPC block's header and check that its recomputed hash equals the RPC's ``hash``.

    Raises ``HeaderError`` when the RPC's hash is missing or differs: the RPC returned fields that are
    not those of the block it named.
    """
    header = BlockHeader.from_rpc(block)
    if block.get("hash") is None:
        raise HeaderError(f"RPC block {header.number} has no hash to check against")
    claimed = hex_to_fixed(block["hash"], 32, "hash")
    computed = header.hash()
    if computed != claimed:
        raise HeaderError(
            f"block {header.number}: RPC says hash 0x{claimed.hex()}, its fields hash to 0x{computed.hex()}")
    return header


def verify_header_chain(trusted: BlockHeader | bytes, headers: Sequence[BlockHeader]) -> None:
    """Check that ``headers`` extend ``trusted`` (a header, or a trusted block hash) one by one.

    Each header's ``parent_hash`` must be the hash of the one before it and, where the previous number
    is known (always, except for the first header after a bare trusted hash), its number must be the
    next one. Raises ``HeaderChainError`` naming the height, what differs, and expected vs got.
    """
    if isinstance(trusted, BlockHeader):
        previous_hash, previous_number = trusted.hash(), trusted.number
    else:
        if len(trusted) != 32:
            raise HeaderChainError(-1, "trusted hash length", "32 bytes", f"{len(trusted)} bytes")
        previous_hash, previous_number = bytes(trusted), None
    for header in headers:
        if previous_number is not None and header.number != previous_number + 1:
            raise HeaderChainError(header.number, "number", str(previous_number + 1), str(header.number))
        if header.parent_hash != previous_hash:
            raise HeaderChainError(
                header.number, "parent_hash", "0x" + previous_hash.hex(), "0x" + header.parent_hash.hex())
        previous_hash, previous_number = header.hash(), header.number
