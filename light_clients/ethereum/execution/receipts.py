"""Transaction receipts and logs: consensus encoding, the receipts trie, and inclusion proofs.

A receipt is ``rlp([status_or_post_state, cumulative_gas_used, logs_bloom, logs])`` with each log
``[address, [topics...], data]``. Before Byzantium the first field is the 32-byte post-transaction state
root; after, it is the status (0 or 1). Typed receipts (EIP-2718) put the transaction type byte in front of
the RLP. The receipts trie maps ``rlp(index)`` to those bytes, and its root is the header's ``receipts_root``.

Security check: ``verify_log_inclusion`` proves the receipt at ``tx_index`` under a header's
``receipts_root`` (whose hash the caller has already linked to a trusted header) and then compares the
log at ``log_index_in_receipt`` field by field with the log the caller expects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from light_clients.ethereum.execution import rlp
from light_clients.ethereum.execution.errors import LogMismatch, ProofError, RlpError, RpcDataError
from light_clients.ethereum.execution.header import BlockHeader
from light_clients.ethereum.execution.rlp import RlpItem
from light_clients.ethereum.execution.rpc_json import hex_to_bytes, hex_to_fixed, hex_to_int
from light_clients.ethereum.execution.trie import Trie, verify_proof

LEGACY_TX_TYPE = 0
_MAX_TX_TYPE = 0x7F


@dataclass(frozen=True)
class Log:
    """One log entry as committed to in a receipt."""

    address: bytes
    topics: list[bytes]
    data: bytes

    def rlp_item(self) -> list[Any]:
        """``[address, [topics...], data]``."""
        return [self.address, list(self.topics), self.data]

    @classmethod
    def from_rpc(cls, log: Mapping[str, Any]) -> Log:
        """Parse a log object from ``eth_getLogs``/receipts JSON."""
        return cls(
            address=hex_to_fixed(log["address"], 20, "log.address"),
            topics=[hex_to_fixed(t, 32, "log.topic") for t in log["topics"]],
            data=hex_to_bytes(log["data"], "log.data"),
        )


@dataclass(frozen=True)
class Receipt:
    """A receipt's consensus fields; exactly one of ``status`` / ``post_state`` is set."""

    tx_type: int
    status: int | None
    post_state: bytes | None
    cumulative_gas_used: int
    logs_bloom: bytes
    logs: list[Log] = field(default_factory=list)

    def __post_init__(self) -> None:
        if (self.status is None) == (self.post_state is None):
            raise RlpError("a receipt has exactly one of status and post-state root")
        if self.status is not None and self.status not in (0, 1):
            raise RlpError(f"receipt status must be 0 or 1, got {self.status}")
        if self.post_state is not None and len(self.post_state) != 32:
            raise RlpError(f"receipt post-state root must be 32 bytes, got {len(self.post_state)}")
        if not 0 <= self.tx_type <= _MAX_TX_TYPE:
            raise RlpError(f"transaction type {self.tx_type} out of range")
        if len(self.logs_bloom) != 256:
            raise RlpError(f"logs bloom must be 256 bytes, got {len(self.logs_bloom)}")

    @classmethod
    def from_rpc(cls, receipt: Mapping[str, Any]) -> Receipt:
        """Parse an ``eth_getTransactionReceipt`` / ``eth_getBlockReceipts`` entry."""
        try:
            tx_type = hex_to_int(receipt["type"], "type") if receipt.get("type") is not None else LEGACY_TX_TYPE
            status = hex_to_int(receipt["status"], "status") if receipt.get("status") is not None else None
            root = hex_to_fixed(receipt["root"], 32, "root") if receipt.get("root") is not None else None
            return cls(
                tx_type=tx_type,
                status=status if root is None else None,
                post_state=root,
                cumulative_gas_used=hex_to_int(receipt["cumulativeGasUsed"], "cumulativeGasUsed"),
                logs_bloom=hex_to_fixed(receipt["logsBloom"], 256, "logsBloom"),
                logs=[Log.from_rpc(entry) for entry in receipt["logs"]],
            )
        except KeyError as exc:
            raise RpcDataError(f"RPC receipt lacks field {exc.args[0]}") from exc


def encode_receipt(receipt: Receipt) -> bytes:
    """Consensus encoding: the RLP list, preceded by the type byte for typed receipts."""
    first: bytes | int = receipt.post_state if receipt.post_state is not None else receipt.status or 0
    body = rlp.encode([first, receipt.cumulative_gas_used, receipt.logs_bloom,
                       [log.rlp_item() for log in receipt.logs]])
    if receipt.tx_type == LEGACY_TX_TYPE:
        return body
    return bytes([receipt.tx_type]) + body


def _decode_log(item: RlpItem, index: int) -> Log:
    fields = rlp.as_list(item, f"log {index}")
    if len(fields) != 3:
        raise RlpError(f"log {index}: expected 3 fields, got {len(fields)}")
    topics = rlp.as_list(fields[1], f"log {index} topics")
    return Log(
        address=rlp.as_fixed(fields[0], 20, f"log {index} address"),
        topics=[rlp.as_fixed(t, 32, f"log {index} topic") for t in topics],
        data=rlp.as_bytes(fields[2], f"log {index} data"),
    )


def decode_receipt(data: bytes) -> Receipt:
    """Inverse of ``encode_receipt``; ``RlpError`` on anything malformed."""
    if not data:
        raise RlpError("empty receipt")
    if data[0] >= 0xC0:
        tx_type, body = LEGACY_TX_TYPE, data
    elif data[0] <= _MAX_TX_TYPE:
        tx_type, body = data[0], data[1:]
    else:
        raise RlpError(f"receipt starts with 0x{data[0]:02x}: neither a list nor a type byte")
    fields = rlp.as_list(rlp.decode(body), "receipt")
    if len(fields) != 4:
        raise RlpError(f"receipt: expected 4 fields, got {len(fields)}")
    first = rlp.as_bytes(fields[0], "receipt status")
    if len(first) == 32:
        status, post_state = None, first
    else:
        status, post_state = rlp.as_int(fields[0], "receipt status"), None
    logs = rlp.as_list(fields[3], "receipt logs")
    return Receipt(
        tx_type=tx_type,
        status=status,
        post_state=post_state,
        cumulative_gas_used=rlp.as_int(fields[1], "cumulative_gas_used"),
        logs_bloom=rlp.as_fixed(fields[2], 256, "logs_bloom"),
        logs=[_decode_log(entry, i) for i, entry in enumerate(logs)],
    )


def receipts_trie(receipts: Sequence[Receipt]) -> Trie:
    """The receipts trie of a block: ``rlp(index) -> encode_receipt(receipt)``."""
    return Trie.from_items((rlp.encode(i), encode_receipt(r)) for i, r in enumerate(receipts))


def receipts_root(receipts: Sequence[Receipt]) -> bytes:
    """The ``receipts_root`` a header commits to for these receipts (in transaction order)."""
    return receipts_trie(receipts).root()


def receipt_proof(receipts: Sequence[Receipt], index: int) -> list[bytes]:
    """MPT proof of the receipt at ``index`` in the block's receipts trie."""
    if not 0 <= index < len(receipts):
        raise ProofError(f"receipt index {index} out of range for {len(receipts)} receipts")
    return receipts_trie(receipts).prove(rlp.encode(index))


def verify_receipt_proof(receipts_root: bytes, index: int, proof: Sequence[bytes]) -> Receipt:
    """The receipt ``proof`` proves at ``index`` under ``receipts_root``; ``ProofError`` otherwise."""
    if index < 0:
        raise ProofError(f"negative receipt index {index}")
    value = verify_proof(receipts_root, rlp.encode(index), proof)
    if value is None:
        raise ProofError(f"proof shows no receipt at index {index}")
    try:
        return decode_receipt(value)
    except RlpError as exc:
        raise ProofError(f"proven value at index {index} is not a receipt: {exc}") from exc


def verify_log_inclusion(header: BlockHeader, tx_index: int, log_index_in_receipt: int,
                         proof: Sequence[bytes], expected_log: Log) -> None:
    """Check that the receipt of transaction ``tx_index`` in ``header``'s block holds ``expected_log``.

    Raises ``ProofError`` if the receipt is not proven under ``header.receipts_root``, and
    ``LogMismatch`` if the proven receipt has no such log or a different one (address, topics or data).
    Only the header's trust is assumed: link it to a trusted header first.
    """
    receipt = verify_receipt_proof(header.receipts_root, tx_index, proof)
    if not 0 <= log_index_in_receipt < len(receipt.logs):
        raise LogMismatch(f"block {header.number} tx {tx_index}: receipt has {len(receipt.logs)} logs, "
                          f"no log {log_index_in_receipt}")
    proven = receipt.logs[log_index_in_receipt]
    for name in ("address", "topics", "data"):
        if getattr(proven, name) != getattr(expected_log, name):
            raise LogMismatch(f"block {header.number} tx {tx_index} log {log_index_in_receipt}: {name} differs "
                              f"from the proven receipt")
