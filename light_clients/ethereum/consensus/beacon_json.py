"""The Beacon API's JSON form of the light-client containers (``/eth/v1/beacon/light_client/*``), both ways.

Shapes as the beacon-APIs spec gives them (``types/deneb/light_client.yaml``, ``types/electra/light_client.yaml``):
integers are decimal strings, byte vectors and bitvectors ``0x``-hex, branches arrays of ``0x``-hex roots, and each
object comes in an envelope ``{"version": "<fork>", "data": {...}}`` (``updates`` answers a list of them).

Decoding is strict: a missing or extra field, a hex string of the wrong length, a number out of range or a branch
of the wrong depth raises ``MalformedJson`` naming the field's path. Nothing decoded here is trusted: the store
checks every branch and signature (``store.py``, ``sync.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from light_clients.ethereum.consensus.containers import (
    BLS_PUBKEY_SIZE,
    BLS_SIGNATURE_SIZE,
    EXECUTION_BRANCH_DEPTH,
    MAX_EXTRA_DATA_BYTES,
    BeaconBlockHeader,
    ExecutionPayloadHeader,
    LightClientBootstrap,
    LightClientFinalityUpdate,
    LightClientHeader,
    LightClientOptimisticUpdate,
    LightClientUpdate,
    SyncAggregate,
    SyncCommittee,
)
from light_clients.ethereum.consensus.errors import LightClientError
from light_clients.ethereum.consensus.preset import LightClientFork, Preset


class MalformedJson(LightClientError, ValueError):
    """A Beacon API answer that does not have the container's JSON shape; the message names the field."""


Json = dict[str, Any]
_HEADER_FIELDS = ("slot", "proposer_index", "parent_root", "state_root", "body_root")
_EXECUTION_HEX = {"parent_hash": 32, "fee_recipient": 20, "state_root": 32, "receipts_root": 32, "logs_bloom": 256,
                  "prev_randao": 32, "block_hash": 32, "transactions_root": 32, "withdrawals_root": 32}
_EXECUTION_UINT = {"block_number": 64, "gas_limit": 64, "gas_used": 64, "timestamp": 64, "base_fee_per_gas": 256,
                   "blob_gas_used": 64, "excess_blob_gas": 64}
_EXECUTION_FIELDS = ("parent_hash", "fee_recipient", "state_root", "receipts_root", "logs_bloom", "prev_randao",
                     "block_number", "gas_limit", "gas_used", "timestamp", "extra_data", "base_fee_per_gas",
                     "block_hash", "transactions_root", "withdrawals_root", "blob_gas_used", "excess_blob_gas")


# ---------------------------------------------------------------------------------------------- encoding
def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _branch_json(branch: tuple[bytes, ...]) -> list[str]:
    return [_hex(node) for node in branch]


def beacon_header_json(header: BeaconBlockHeader) -> Json:
    return {"slot": str(header.slot), "proposer_index": str(header.proposer_index),
            "parent_root": _hex(header.parent_root), "state_root": _hex(header.state_root),
            "body_root": _hex(header.body_root)}


def execution_header_json(header: ExecutionPayloadHeader) -> Json:
    out: Json = {}
    for name in _EXECUTION_FIELDS:
        value = getattr(header, name)
        out[name] = str(value) if isinstance(value, int) else _hex(value)
    return out


def light_client_header_json(header: LightClientHeader) -> Json:
    return {"beacon": beacon_header_json(header.beacon), "execution": execution_header_json(header.execution),
            "execution_branch": _branch_json(header.execution_branch)}


def sync_committee_json(committee: SyncCommittee) -> Json:
    return {"pubkeys": [_hex(key) for key in committee.pubkeys], "aggregate_pubkey": _hex(committee.aggregate_pubkey)}


def sync_aggregate_json(aggregate: SyncAggregate) -> Json:
    return {"sync_committee_bits": _hex(aggregate.sync_committee_bits),
            "sync_committee_signature": _hex(aggregate.sync_committee_signature)}


def bootstrap_json(bootstrap: LightClientBootstrap) -> Json:
    return {"header": light_client_header_json(bootstrap.header),
            "current_sync_committee": sync_committee_json(bootstrap.current_sync_committee),
            "current_sync_committee_branch": _branch_json(bootstrap.current_sync_committee_branch)}


def update_json(update: LightClientUpdate) -> Json:
    return {"attested_header": light_client_header_json(update.attested_header),
            "next_sync_committee": sync_committee_json(update.next_sync_committee),
            "next_sync_committee_branch": _branch_json(update.next_sync_committee_branch),
            "finalized_header": light_client_header_json(update.finalized_header),
            "finality_branch": _branch_json(update.finality_branch),
            "sync_aggregate": sync_aggregate_json(update.sync_aggregate),
            "signature_slot": str(update.signature_slot)}


def finality_update_json(update: LightClientFinalityUpdate) -> Json:
    return {"attested_header": light_client_header_json(update.attested_header),
            "finalized_header": light_client_header_json(update.finalized_header),
            "finality_branch": _branch_json(update.finality_branch),
            "sync_aggregate": sync_aggregate_json(update.sync_aggregate),
            "signature_slot": str(update.signature_slot)}


def optimistic_update_json(update: LightClientOptimisticUpdate) -> Json:
    return {"attested_header": light_client_header_json(update.attested_header),
            "sync_aggregate": sync_aggregate_json(update.sync_aggregate),
            "signature_slot": str(update.signature_slot)}


def envelope(fork: LightClientFork, data: Json) -> Json:
    return {"version": fork.value, "data": data}


# ---------------------------------------------------------------------------------------------- decoding
def _object(value: Any, path: str, fields: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedJson(f"{path}: expected an object, got {type(value).__name__}")
    missing = [f for f in fields if f not in value]
    extra = [f for f in value if f not in fields]
    if missing or extra:
        raise MalformedJson(f"{path}: missing {missing}, unexpected {extra}" if extra else f"{path}: missing {missing}")
    return value


def _bytes(value: Any, path: str, size: int | None = None, max_size: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise MalformedJson(f"{path}: expected 0x-prefixed hex, got {str(value)[:40]!r}")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError:
        raise MalformedJson(f"{path}: not hex") from None
    if size is not None and len(data) != size:
        raise MalformedJson(f"{path}: {len(data)} bytes, expected {size}")
    if max_size is not None and len(data) > max_size:
        raise MalformedJson(f"{path}: {len(data)} bytes, at most {max_size}")
    return data


def _uint(value: Any, path: str, bits: int = 64) -> int:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 80:
        raise MalformedJson(f"{path}: expected a decimal string, got {str(value)[:40]!r}")
    number = int(value)
    if number >= 1 << bits:
        raise MalformedJson(f"{path}: {number} does not fit uint{bits}")
    return number


def _branch(value: Any, path: str, depth: int) -> tuple[bytes, ...]:
    if not isinstance(value, list) or len(value) != depth:
        length = len(value) if isinstance(value, list) else type(value).__name__
        raise MalformedJson(f"{path}: expected {depth} roots, got {length}")
    return tuple(_bytes(node, f"{path}[{i}]", 32) for i, node in enumerate(value))


def decode_beacon_header(value: Any, path: str) -> BeaconBlockHeader:
    doc = _object(value, path, _HEADER_FIELDS)
    return BeaconBlockHeader(_uint(doc["slot"], f"{path}.slot"), _uint(doc["proposer_index"], f"{path}.proposer_index"),
                             _bytes(doc["parent_root"], f"{path}.parent_root", 32),
                             _bytes(doc["state_root"], f"{path}.state_root", 32),
                             _bytes(doc["body_root"], f"{path}.body_root", 32))


def decode_execution_header(value: Any, path: str) -> ExecutionPayloadHeader:
    doc = _object(value, path, _EXECUTION_FIELDS)
    fields: dict[str, Any] = {name: _bytes(doc[name], f"{path}.{name}", size) for name, size in _EXECUTION_HEX.items()}
    fields |= {name: _uint(doc[name], f"{path}.{name}", bits) for name, bits in _EXECUTION_UINT.items()}
    fields["extra_data"] = _bytes(doc["extra_data"], f"{path}.extra_data", max_size=MAX_EXTRA_DATA_BYTES)
    return ExecutionPayloadHeader(**fields)


def decode_light_client_header(value: Any, path: str) -> LightClientHeader:
    doc = _object(value, path, ("beacon", "execution", "execution_branch"))
    return LightClientHeader(decode_beacon_header(doc["beacon"], f"{path}.beacon"),
                             decode_execution_header(doc["execution"], f"{path}.execution"),
                             _branch(doc["execution_branch"], f"{path}.execution_branch", EXECUTION_BRANCH_DEPTH))


def decode_sync_committee(value: Any, path: str, preset: Preset) -> SyncCommittee:
    doc = _object(value, path, ("pubkeys", "aggregate_pubkey"))
    keys = doc["pubkeys"]
    if not isinstance(keys, list) or len(keys) != preset.sync_committee_size:
        length = len(keys) if isinstance(keys, list) else type(keys).__name__
        raise MalformedJson(f"{path}.pubkeys: expected {preset.sync_committee_size} keys, got {length}")
    return SyncCommittee(tuple(_bytes(k, f"{path}.pubkeys[{i}]", BLS_PUBKEY_SIZE) for i, k in enumerate(keys)),
                         _bytes(doc["aggregate_pubkey"], f"{path}.aggregate_pubkey", BLS_PUBKEY_SIZE))


def decode_sync_aggregate(value: Any, path: str, preset: Preset) -> SyncAggregate:
    doc = _object(value, path, ("sync_committee_bits", "sync_committee_signature"))
    return SyncAggregate(_bytes(doc["sync_committee_bits"], f"{path}.sync_committee_bits",
                                preset.sync_committee_size // 8),
                         _bytes(doc["sync_committee_signature"], f"{path}.sync_committee_signature",
                                BLS_SIGNATURE_SIZE))


def unwrap(value: Any, fork: LightClientFork, path: str = "answer") -> Any:
    """The ``data`` of a ``{"version", "data"}`` envelope whose version is ``fork`` (another layout is refused)."""
    doc = _object(value, path, ("version", "data"))
    if doc["version"] != fork.value:
        raise MalformedJson(f"{path}.version: {str(doc['version'])[:20]!r}, this client reads {fork.value!r} objects")
    return doc["data"]


def decode_bootstrap(value: Any, preset: Preset, fork: LightClientFork, path: str = "data") -> LightClientBootstrap:
    doc = _object(value, path, ("header", "current_sync_committee", "current_sync_committee_branch"))
    return LightClientBootstrap(
        decode_light_client_header(doc["header"], f"{path}.header"),
        decode_sync_committee(doc["current_sync_committee"], f"{path}.current_sync_committee", preset),
        _branch(doc["current_sync_committee_branch"], f"{path}.current_sync_committee_branch",
                fork.current_sync_committee_gindex.depth))


def decode_update(value: Any, preset: Preset, fork: LightClientFork, path: str = "data") -> LightClientUpdate:
    doc = _object(value, path, ("attested_header", "next_sync_committee", "next_sync_committee_branch",
                                "finalized_header", "finality_branch", "sync_aggregate", "signature_slot"))
    return LightClientUpdate(
        attested_header=decode_light_client_header(doc["attested_header"], f"{path}.attested_header"),
        next_sync_committee=decode_sync_committee(doc["next_sync_committee"], f"{path}.next_sync_committee", preset),
        next_sync_committee_branch=_branch(doc["next_sync_committee_branch"], f"{path}.next_sync_committee_branch",
                                           fork.next_sync_committee_gindex.depth),
        finalized_header=decode_light_client_header(doc["finalized_header"], f"{path}.finalized_header"),
        finality_branch=_branch(doc["finality_branch"], f"{path}.finality_branch", fork.finalized_root_gindex.depth),
        sync_aggregate=decode_sync_aggregate(doc["sync_aggregate"], f"{path}.sync_aggregate", preset),
        signature_slot=_uint(doc["signature_slot"], f"{path}.signature_slot"),
    )


def decode_finality_update(value: Any, preset: Preset, fork: LightClientFork,
                           path: str = "data") -> LightClientFinalityUpdate:
    doc = _object(value, path, ("attested_header", "finalized_header", "finality_branch", "sync_aggregate",
                                "signature_slot"))
    return LightClientFinalityUpdate(
        decode_light_client_header(doc["attested_header"], f"{path}.attested_header"),
        decode_light_client_header(doc["finalized_header"], f"{path}.finalized_header"),
        _branch(doc["finality_branch"], f"{path}.finality_branch", fork.finalized_root_gindex.depth),
        decode_sync_aggregate(doc["sync_aggregate"], f"{path}.sync_aggregate", preset),
        _uint(doc["signature_slot"], f"{path}.signature_slot"),
    )


def decode_optimistic_update(value: Any, preset: Preset, path: str = "data") -> LightClientOptimisticUpdate:
    doc = _object(value, path, ("attested_header", "sync_aggregate", "signature_slot"))
    return LightClientOptimisticUpdate(
        decode_light_client_header(doc["attested_header"], f"{path}.attested_header"),
        decode_sync_aggregate(doc["sync_aggregate"], f"{path}.sync_aggregate", preset),
        _uint(doc["signature_slot"], f"{path}.signature_slot"),
    )


def decode_updates(value: Any, preset: Preset, fork: LightClientFork, max_count: int) -> list[LightClientUpdate]:
    """The answer of ``updates?start_period=&count=``: a list of enveloped updates, at most ``max_count``."""
    if not isinstance(value, list):
        raise MalformedJson(f"updates: expected a list, got {type(value).__name__}")
    if len(value) > max_count:
        raise MalformedJson(f"updates: {len(value)} items, asked for at most {max_count}")
    return [decode_update(unwrap(item, fork, f"updates[{i}]"), preset, fork, f"updates[{i}].data")
            for i, item in enumerate(value)]
