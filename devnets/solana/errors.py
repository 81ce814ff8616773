"""JSON-RPC errors of the Solana devnet, with the codes and messages a real cluster answers.

SolanaRpcError (code, message, data)
├── InternalError                    -32603
├── ParseError                       -32700
├── InvalidRequest                   -32600
├── MethodNotFound                   -32601
├── InvalidParams                    -32602
├── PreflightFailure                 -32002  "Transaction simulation failed: ..."
├── SignatureVerificationFailure     -32003
├── BlockNotAvailable                -32004
├── UnsupportedTransactionVersion    -32015
└── SnapshotsRefused                 -32000  xchain_snapshot / xchain_revert on a devnet without --allow-snapshots
"""

from __future__ import annotations

from typing import Any


class SolanaRpcError(Exception):
    """An error answer; ``to_json`` is the JSON-RPC ``error`` object."""

    code = -32603

    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            body["data"] = self.data
        return body


class InternalError(SolanaRpcError):
    code = -32603


class ParseError(SolanaRpcError):
    code = -32700


class InvalidRequest(SolanaRpcError):
    code = -32600


class MethodNotFound(SolanaRpcError):
    code = -32601


class InvalidParams(SolanaRpcError):
    code = -32602


class PreflightFailure(SolanaRpcError):
    code = -32002


class SignatureVerificationFailure(SolanaRpcError):
    code = -32003

    def __init__(self) -> None:
        super().__init__("Transaction signature verification failure")


class BlockNotAvailable(SolanaRpcError):
    code = -32004

    def __init__(self, slot: int) -> None:
        super().__init__(f"Block not available for slot {slot}")


class UnsupportedTransactionVersion(SolanaRpcError):
    code = -32015


class SnapshotsRefused(SolanaRpcError):
    """``xchain_snapshot`` / ``xchain_revert`` on a devnet started without ``--allow-snapshots``."""

    code = -32000  # devnets.snapshots.REFUSED_CODE
