"""Errors of the Ethereum execution-layer light client.

```
LightClientError                 root of everything this package raises
 +-- RlpError                    bytes are not strict, canonical RLP, or an item has the wrong shape
 +-- ProofError                  a Merkle-Patricia proof does not prove what is claimed
 |    +-- LogMismatch            the receipt is proven, but the log in it differs from the expected one
 +-- RpcDataError                a JSON-RPC object lacks a field or holds a malformed hex value
 +-- HeaderError                 a header is malformed, or its hash differs from what the RPC claimed
 +-- HeaderChainError            headers do not link by parent hash, or their numbers are not consecutive
 +-- InvalidBlock                a block's body does not match its header (reason says which check)
```

Every one of these means the data is wrong, not that the network is slow: retrying the same bytes cannot help.
A caller may fetch again from another RPC.
"""

from __future__ import annotations

import enum

from light_clients.base import LightClientError as BaseLightClientError


class LightClientError(BaseLightClientError):
    """Root of the errors raised by the execution-layer light client."""


class RlpError(LightClientError, ValueError):
    """Input is not canonical RLP, or a decoded item does not have the expected shape."""


class ProofError(LightClientError):
    """A Merkle-Patricia proof is broken or proves something other than the claim."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LogMismatch(ProofError):
    """The receipt is proven, but it does not hold the expected log at the given position."""


class RpcDataError(LightClientError, ValueError):
    """A JSON-RPC result lacks a required field, or a field is not well-formed hex of the right size."""


class HeaderError(LightClientError):
    """A header is malformed, or its recomputed hash differs from the one the source claimed."""


class HeaderChainError(LightClientError):
    """A header does not link to its predecessor (parent hash) or its number is not the next one."""

    def __init__(self, height: int, what: str, expected: str, got: str) -> None:
        super().__init__(f"header {height}: {what}: expected {expected}, got {got}")
        self.height = height
        self.what = what
        self.expected = expected
        self.got = got


class InvalidBlockReason(enum.Enum):
    """Why a block was rejected; the value doubles as a log field."""

    MALFORMED = "malformed"
    HEADER_HASH = "header_hash"
    UNKNOWN_PARENT = "unknown_parent"
    TRANSACTIONS_ROOT = "transactions_root"
    UNCLES_HASH = "uncles_hash"
    UNCLES_AFTER_MERGE = "uncles_after_merge"
    WITHDRAWALS_ROOT = "withdrawals_root"


class InvalidBlock(LightClientError):
    """A block (header plus body) failed a check that needs no EVM execution."""

    def __init__(self, reason: InvalidBlockReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail
