"""Root of the project's exception tree.

    RelayerError                      (every error we raise)
    +-- ConfigError (ValueError)      bad config file, key or value; names the key path
    +-- AdapterError                  defined in adapters.base: chain I/O
    |   +-- RpcUnavailable, RpcError, TxReverted, NonceTooLow, ReplacementUnderpriced,
    |       InsufficientFunds, TxNotFound
    +-- MessageFormatError (ValueError)  malformed message / metadata bytes (adapters.message)
    +-- LightClientError              defined in light_clients.base
    +-- StoreError                    defined in relayer.store
"""

from __future__ import annotations


class RelayerError(Exception):
    """Base of every error the project raises. What is retried is decided by the error's class (for chain I/O:
    ``relayer.pipeline.outcome.reason_of``), not by a flag on it."""


class ConfigError(RelayerError, ValueError):
    """A config value is missing or wrong. ``path`` is the dotted key path (``chains.l1.rpc_url``)."""

    def __init__(self, path: str, problem: str, *, source: str = "") -> None:
        self.path = path
        self.problem = problem
        text = f"{path}: {problem}" if path else problem
        super().__init__(f"{source}: {text}" if source else text)
