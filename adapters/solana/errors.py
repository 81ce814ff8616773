"""Mapping solana-py / solders / httpx exceptions onto the ``AdapterError`` family (the adapter's boundary).

- transport failures and timeouts (``SolanaRpcException`` around an httpx error)  -> ``RpcUnavailable``
- HTTP 5xx, and 429/5xx from the last endpoint tried (``EndpointStatus``) -> ``RpcUnavailable``; other HTTP
  statuses -> ``RpcError``
- a JSON-RPC error answer (``RPCException``) -> ``RpcError`` with the server's message, except:
  - preflight failure (-32002) -> ``TxReverted``, reason = the last program log line (or the error)
  - blockhash not found -> ``RpcError`` reason ``blockhash expired`` (rebuild and resubmit)
  - insufficient lamports for the fee or rent -> ``InsufficientFunds``
  - System program "account already in use" (SystemError 0): ``TxReverted`` reason ``ALREADY_DELIVERED``, as it
    is a replay guard that exists (adapters.solana.bridge)
- malformed answers (``ValueError``, ``KeyError`` ...) -> ``RpcError`` reason ``bad answer``
"""

from __future__ import annotations

from typing import Any

import httpx
import httpx2
from solana.exceptions import SolanaRpcException
from solana.rpc.core import RPCException, RPCNoResultException

from adapters.base import AdapterError, InsufficientFunds, RpcError, RpcUnavailable, TxReverted
from adapters.endpoints import EndpointStatus

BLOCKHASH_EXPIRED = "blockhash expired"
ALREADY_DELIVERED = "already delivered: a replay guard account is already in use"
_SYSTEM_ALREADY_IN_USE = "Program 11111111111111111111111111111111 failed: custom program error: 0x0"
_INSUFFICIENT = ("InsufficientFundsForFee", "InsufficientFundsForRent", "insufficient lamports",
                 "AccountNotFound", "Attempt to debit an account but found no record of a prior credit")


def _transport(cause: BaseException | None) -> bool:
    return isinstance(cause, (httpx2.TransportError, httpx2.TimeoutException, httpx.TransportError,
                              httpx.TimeoutException, OSError, TimeoutError))


def _status_error(cause: BaseException | None) -> int | None:
    if isinstance(cause, (httpx2.HTTPStatusError, httpx.HTTPStatusError)):
        return int(cause.response.status_code)
    return None


def rpc_error_of(error: Any, *, chain: str, context: str) -> AdapterError:
    """The ``AdapterError`` for a solders JSON-RPC error object (``RPCException.args[0]``)."""
    message = str(getattr(error, "message", "") or error)
    data = getattr(error, "data", None)
    err = getattr(data, "err", None) if data is not None else None
    logs = [str(line) for line in (getattr(data, "logs", None) or [])] if data is not None else []
    text = f"{context}: {message}"
    everything = " ".join([message, repr(err), *logs])
    if "BlockhashNotFound" in everything or "Blockhash not found" in everything:
        return RpcError(text, chain=chain, reason=BLOCKHASH_EXPIRED)
    if any(marker in everything for marker in _INSUFFICIENT):
        return InsufficientFunds(text, chain=chain, reason="insufficient funds")
    if _SYSTEM_ALREADY_IN_USE in everything or "already in use" in everything:
        return TxReverted(f"{text}; {ALREADY_DELIVERED}", chain=chain, reason=ALREADY_DELIVERED)
    if "simulation failed" in message.lower() or data is not None and err is not None:
        reason = logs[-1] if logs else (repr(err) if err is not None else message)
        return TxReverted(f"{text}; {reason}", chain=chain, reason=reason)
    return RpcError(text, chain=chain, reason=message)


def map_exception(exc: BaseException, *, chain: str, context: str) -> AdapterError:
    """The ``AdapterError`` for an exception raised below the adapter's boundary."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, EndpointStatus):  # every endpoint failed, the last with HTTP 429/5xx (adapters.solana.transport)
        return RpcUnavailable(f"{context}: {exc}", chain=chain, reason="http status")
    if isinstance(exc, SolanaRpcException):
        cause = exc.__cause__
        status = _status_error(cause)
        if status is not None:
            kind = RpcUnavailable if status >= 500 else RpcError
            return kind(f"{context}: HTTP {status}", chain=chain, reason="http status")
        if _transport(cause):
            return RpcUnavailable(f"{context}: {type(cause).__name__}: {cause}", chain=chain, reason="unavailable")
        return RpcError(f"{context}: {exc}", chain=chain, reason="rpc error")
    if _transport(exc):
        return RpcUnavailable(f"{context}: {type(exc).__name__}: {exc}", chain=chain, reason="unavailable")
    status = _status_error(exc)
    if status is not None:
        kind = RpcUnavailable if status >= 500 else RpcError
        return kind(f"{context}: HTTP {status}", chain=chain, reason="http status")
    if isinstance(exc, RPCException):
        return rpc_error_of(exc.args[0] if exc.args else exc, chain=chain, context=context)
    if isinstance(exc, RPCNoResultException):
        return RpcError(f"{context}: {exc}", chain=chain, reason=str(exc) or "no result")
    if isinstance(exc, (ValueError, KeyError, TypeError, IndexError)):
        return RpcError(f"{context}: unexpected answer: {type(exc).__name__}: {exc}", chain=chain,
                        reason="bad answer")
    return RpcError(f"{context}: {type(exc).__name__}: {exc}", chain=chain, reason="unexpected error")
