"""CometBFT JSON to and from the ``blocks`` types.

Reads both shapes in use: the RPC's (``/commit``, ``/validators``, ``/block``, ``/blockchain``,
``/genesis``; ``parts`` and ``power``) and the light-block JSON of tendermint-rs test vectors
(``part_set_header``, ``voting_power``). Writes the RPC shapes. Every malformed value raises
``LightBlockParseError`` naming the dotted path of the field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from light_clients.tendermint.blocks import (
    ADDRESS_LENGTH,
    ED25519_PUBKEY_LENGTH,
    ED25519_SIGNATURE_LENGTH,
    BlockId,
    BlockIdFlag,
    Commit,
    CommitSig,
    ConsensusVersion,
    Header,
    LightBlock,
    PartSetHeader,
    SignedHeader,
    Validator,
    ValidatorSet,
    address_of,
)
from light_clients.tendermint.errors import LightBlockParseError
from light_clients.tendermint.timestamps import TimestampFormatError, UnixNanos, format_rfc3339, parse_rfc3339

ED25519_KEY_TYPE = "tendermint/PubKeyEd25519"
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_T = TypeVar("_T")
Json = dict[str, Any]


class _Fields:
    """A JSON object with the path it was found at, so that every error names its field."""

    def __init__(self, value: object, path: str) -> None:
        if not isinstance(value, Mapping):
            raise LightBlockParseError(path, f"expected an object, got {type(value).__name__}")
        self.value = value
        self.path = path

    def at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str, *, required: bool = True) -> Any:
        if name not in self.value:
            if required:
                raise LightBlockParseError(self.at(name), "missing")
            return None
        return self.value[name]

    def first_of(self, *names: str) -> str:
        """The name, among alternatives (``parts`` / ``part_set_header``), that this object uses."""
        for name in names:
            if name in self.value:
                return name
        raise LightBlockParseError(self.at(names[0]), "missing")

    def obj(self, name: str) -> _Fields:
        return _Fields(self.raw(name), self.at(name))

    def integer(self, name: str) -> int:
        value = self.raw(name)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise LightBlockParseError(self.at(name), f"expected an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError as exc:
            raise LightBlockParseError(self.at(name), f"expected an integer, got {value!r}") from exc
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise LightBlockParseError(self.at(name), f"{number} does not fit in int64")
        return number

    def text(self, name: str) -> str:
        value = self.raw(name)
        if not isinstance(value, str):
            raise LightBlockParseError(self.at(name), f"expected a string, got {value!r}")
        return value

    def hex(self, name: str, *, length: int | None = None, required: bool = True) -> bytes:
        """Hex bytes; ``""``, ``null`` and ``[]`` (tendermint-rs writes empty hashes so) mean empty."""
        value = self.raw(name, required=required)
        if value is None or value == "" or value == []:
            return b""
        if not isinstance(value, str):
            raise LightBlockParseError(self.at(name), f"expected a hex string, got {value!r}")
        try:
            data = bytes.fromhex(value)
        except ValueError as exc:
            raise LightBlockParseError(self.at(name), f"not hex: {value!r}") from exc
        if length is not None and len(data) != length:
            raise LightBlockParseError(self.at(name), f"expected {length} bytes, got {len(data)}")
        return data

    def base64(self, name: str, *, length: int) -> bytes:
        value = self.raw(name)
        if not isinstance(value, str):
            raise LightBlockParseError(self.at(name), f"expected base64, got {value!r}")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise LightBlockParseError(self.at(name), f"not base64: {value!r}") from exc
        if len(data) != length:
            raise LightBlockParseError(self.at(name), f"expected {length} bytes, got {len(data)}")
        return data

    def timestamp(self, name: str) -> UnixNanos:
        text = self.text(name)
        try:
            return parse_rfc3339(text)
        except TimestampFormatError as exc:
            raise LightBlockParseError(self.at(name), str(exc)) from exc

    def items(self, name: str, parse: Callable[[object, str], _T]) -> tuple[_T, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise LightBlockParseError(self.at(name), f"expected a list, got {type(value).__name__}")
        return tuple(parse(item, f"{self.at(name)}[{i}]") for i, item in enumerate(value))


def _unwrap_rpc(document: object) -> object:
    """Accept a whole JSON-RPC response (``{"jsonrpc", "id", "result"}``) or just its result."""
    if isinstance(document, Mapping) and "jsonrpc" in document and "result" in document:
        return document["result"]
    return document


# ---- reading -------------------------------------------------------------------------------------


def parse_block_id(value: object, path: str = "block_id") -> BlockId:
    """A block id; ``null`` is the zero block id (the genesis block's ``last_block_id``)."""
    if value is None:
        return BlockId()
    fields = _Fields(value, path)
    parts_name = fields.first_of("part_set_header", "parts")
    raw_parts = fields.raw(parts_name)
    if raw_parts is None:
        parts = PartSetHeader()
    else:
        parts_fields = fields.obj(parts_name)
        parts = PartSetHeader(parts_fields.integer("total"), parts_fields.hex("hash"))
    return BlockId(fields.hex("hash"), parts)


def parse_header(value: object, path: str = "header") -> Header:
    fields = _Fields(value, path)
    version = fields.obj("version")
    return Header(
        version=ConsensusVersion(
            version.integer("block"), version.integer("app") if "app" in version.value else 0
        ),
        chain_id=fields.text("chain_id"),
        height=fields.integer("height"),
        time=fields.timestamp("time"),
        last_block_id=parse_block_id(fields.raw("last_block_id", required=False), fields.at("last_block_id")),
        last_commit_hash=fields.hex("last_commit_hash"),
        data_hash=fields.hex("data_hash"),
        validators_hash=fields.hex("validators_hash"),
        next_validators_hash=fields.hex("next_validators_hash"),
        consensus_hash=fields.hex("consensus_hash"),
        app_hash=fields.hex("app_hash"),
        last_results_hash=fields.hex("last_results_hash"),
        evidence_hash=fields.hex("evidence_hash"),
        proposer_address=fields.hex("proposer_address"),
    )


def parse_commit_sig(value: object, path: str) -> CommitSig:
    fields = _Fields(value, path)
    raw_flag = fields.integer("block_id_flag")
    try:
        flag = BlockIdFlag(raw_flag)
    except ValueError as exc:
        raise LightBlockParseError(fields.at("block_id_flag"), f"unknown flag {raw_flag}") from exc
    if flag == BlockIdFlag.ABSENT:
        timestamp = fields.timestamp("timestamp") if fields.raw("timestamp", required=False) else UnixNanos(0)
        return CommitSig(flag, fields.hex("validator_address", required=False), timestamp, b"")
    return CommitSig(
        block_id_flag=flag,
        validator_address=fields.hex("validator_address", length=ADDRESS_LENGTH),
        timestamp=fields.timestamp("timestamp"),
        signature=fields.base64("signature", length=ED25519_SIGNATURE_LENGTH),
    )


def parse_commit(value: object, path: str = "commit") -> Commit:
    fields = _Fields(value, path)
    return Commit(
        height=fields.integer("height"),
        round=fields.integer("round"),
        block_id=parse_block_id(fields.raw("block_id"), fields.at("block_id")),
        signatures=fields.items("signatures", parse_commit_sig),
    )


def parse_signed_header(value: object, path: str = "signed_header") -> SignedHeader:
    fields = _Fields(value, path)
    return SignedHeader(
        parse_header(fields.raw("header"), fields.at("header")),
        parse_commit(fields.raw("commit"), fields.at("commit")),
    )


def parse_validator(value: object, path: str) -> Validator:
    fields = _Fields(value, path)
    pub_key = fields.obj("pub_key")
    key_type = pub_key.text("type")
    if key_type != ED25519_KEY_TYPE:
        raise LightBlockParseError(pub_key.at("type"), f"unsupported key type {key_type!r}")
    key = pub_key.base64("value", length=ED25519_PUBKEY_LENGTH)
    power = fields.integer(fields.first_of("voting_power", "power"))
    if power < 0:
        raise LightBlockParseError(fields.at("voting_power"), f"negative voting power {power}")
    address = fields.hex("address", length=ADDRESS_LENGTH, required=False) or address_of(key)
    if address != address_of(key):
        raise LightBlockParseError(fields.at("address"), "does not match the public key")
    priority = fields.integer("proposer_priority") if "proposer_priority" in fields.value else 0
    return Validator(address, key, power, priority)


def parse_validator_set(value: object, path: str = "validator_set") -> ValidatorSet:
    fields = _Fields(value, path)
    raw_proposer = fields.raw("proposer", required=False)
    proposer = parse_validator(raw_proposer, fields.at("proposer")) if raw_proposer else None
    return ValidatorSet(fields.items("validators", parse_validator), proposer)


def parse_light_block(value: object, path: str = "") -> LightBlock:
    """tendermint-rs light-block JSON (``signed_header``, ``validator_set``, ``next_validator_set``)."""
    fields = _Fields(value, path)
    return LightBlock(
        parse_signed_header(fields.raw("signed_header"), fields.at("signed_header")),
        parse_validator_set(fields.raw("validator_set"), fields.at("validator_set")),
        parse_validator_set(fields.raw("next_validator_set"), fields.at("next_validator_set")),
    )


def parse_commit_response(document: object) -> SignedHeader:
    """The ``/commit`` RPC result (or the whole JSON-RPC response)."""
    fields = _Fields(_unwrap_rpc(document), "result")
    return parse_signed_header(fields.raw("signed_header"), fields.at("signed_header"))


def parse_validators_response(document: object) -> ValidatorSet:
    """The ``/validators`` RPC result (one page holding every validator)."""
    fields = _Fields(_unwrap_rpc(document), "result")
    validators = fields.items("validators", parse_validator)
    if "total" in fields.value and fields.integer("total") != len(validators):
        raise LightBlockParseError(fields.at("total"), "paged result: fetch every page first")
    return ValidatorSet(validators)


def parse_genesis_validators(document: object) -> ValidatorSet:
    """``genesis.validators`` of the ``/genesis`` RPC result (or of a genesis file)."""
    fields = _Fields(_unwrap_rpc(document), "result")
    genesis = fields.obj("genesis") if "genesis" in fields.value else fields
    return ValidatorSet(genesis.items("validators", parse_validator))


def parse_block_response(document: object) -> tuple[BlockId, Header]:
    """``block_id`` and ``block.header`` of the ``/block`` RPC result."""
    fields = _Fields(_unwrap_rpc(document), "result")
    block = fields.obj("block")
    return parse_block_id(fields.raw("block_id"), fields.at("block_id")), parse_header(
        block.raw("header"), block.at("header")
    )


def parse_blockchain_response(document: object) -> tuple[tuple[BlockId, Header], ...]:
    """``(block_id, header)`` of each of ``block_metas`` in the ``/blockchain`` RPC result."""
    fields = _Fields(_unwrap_rpc(document), "result")

    def meta(value: object, path: str) -> tuple[BlockId, Header]:
        item = _Fields(value, path)
        return parse_block_id(item.raw("block_id"), item.at("block_id")), parse_header(
            item.raw("header"), item.at("header")
        )

    return fields.items("block_metas", meta)


# ---- writing -------------------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return data.hex().upper()


def block_id_to_json(block_id: BlockId) -> Json:
    return {
        "hash": _hex(block_id.hash),
        "parts": {"total": block_id.part_set_header.total, "hash": _hex(block_id.part_set_header.hash)},
    }


def header_to_json(header: Header) -> Json:
    return {
        "version": {"block": str(header.version.block), "app": str(header.version.app)},
        "chain_id": header.chain_id,
        "height": str(header.height),
        "time": format_rfc3339(header.time),
        "last_block_id": block_id_to_json(header.last_block_id),
        "last_commit_hash": _hex(header.last_commit_hash),
        "data_hash": _hex(header.data_hash),
        "validators_hash": _hex(header.validators_hash),
        "next_validators_hash": _hex(header.next_validators_hash),
        "consensus_hash": _hex(header.consensus_hash),
        "app_hash": _hex(header.app_hash),
        "last_results_hash": _hex(header.last_results_hash),
        "evidence_hash": _hex(header.evidence_hash),
        "proposer_address": _hex(header.proposer_address),
    }


def commit_sig_to_json(sig: CommitSig) -> Json:
    return {
        "block_id_flag": int(sig.block_id_flag),
        "validator_address": _hex(sig.validator_address),
        "timestamp": format_rfc3339(sig.timestamp),
        "signature": base64.b64encode(sig.signature).decode() if sig.signature else None,
    }


def commit_to_json(commit: Commit) -> Json:
    return {
        "height": str(commit.height),
        "round": commit.round,
        "block_id": block_id_to_json(commit.block_id),
        "signatures": [commit_sig_to_json(sig) for sig in commit.signatures],
    }


def validator_to_json(validator: Validator) -> Json:
    return {
        "address": _hex(validator.address),
        "pub_key": {"type": ED25519_KEY_TYPE, "value": base64.b64encode(validator.pub_key).decode()},
        "voting_power": str(validator.voting_power),
        "proposer_priority": str(validator.proposer_priority),
    }


def commit_response_json(signed_header: SignedHeader, *, canonical: bool = True) -> Json:
    """The ``result`` of CometBFT's ``/commit?height=H``."""
    return {
        "signed_header": {
            "header": header_to_json(signed_header.header),
            "commit": commit_to_json(signed_header.commit),
        },
        "canonical": canonical,
    }


def validators_response_json(validator_set: ValidatorSet, height: int) -> Json:
    """The ``result`` of CometBFT's ``/validators?height=H`` as a single page."""
    count = str(len(validator_set.validators))
    return {
        "block_height": str(height),
        "validators": [validator_to_json(v) for v in validator_set.validators],
        "count": count,
        "total": count,
    }


def validator_set_to_json(validator_set: ValidatorSet) -> Json:
    """The light-block JSON shape (``validators``, ``proposer``, ``total_voting_power``)."""
    proposer = validator_set.proposer
    return {
        "validators": [validator_to_json(v) for v in validator_set.validators],
        "proposer": validator_to_json(proposer) if proposer else None,
        "total_voting_power": str(validator_set.total_voting_power()),
    }


def light_block_to_json(block: LightBlock) -> Json:
    """The light-block JSON shape that ``parse_light_block`` reads."""
    return {
        "signed_header": {
            "header": header_to_json(block.header),
            "commit": commit_to_json(block.commit),
        },
        "validator_set": validator_set_to_json(block.validators),
        "next_validator_set": validator_set_to_json(block.next_validators),
    }
