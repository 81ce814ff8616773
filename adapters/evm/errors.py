"""Map everything web3 / aiohttp / httpx / eth_account / a JSON-RPC node can throw at us onto ``AdapterError``.

``map_exception`` is the one boundary function: every public method of ``EvmAdapter`` catches whatever
an SDK raised and re-raises ``map_exception(exc, chain=...)`` ``from exc``. ``map_rpc_error`` classifies
a JSON-RPC ``error`` object (the node answered, but with an error).

    AdapterError
    +-- RpcUnavailable          connection refused/reset, timeouts, HTTP 5xx/429, rate limiting
    +-- RpcError                any other answer we did not expect
    |   +-- TxAlreadyKnown      the node already holds this exact transaction (treat as sent)
    |   +-- NonceTooHigh        a gap below our nonce (resync the local counter)
    |   +-- LogQueryTooLarge    eth_getLogs range / result count over the node's limit (halve and retry)
    +-- TxReverted              "execution reverted"; ``reason`` is the decoded custom error
    |   +-- OutboundRateLimited the TokenBridge's ``RateLimited``: no outbound room yet (``wait_s``)
    +-- NonceTooLow, ReplacementUnderpriced, InsufficientFunds, TxNotFound
    +-- SigningError            the local key could not sign (never carries key material)

Matching is on the node's message text (lower-cased), since geth, anvil, erigon, nethermind and hosted
providers agree on phrases far more than on error codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from adapters.base import (
    AdapterError,
    InsufficientFunds,
    NonceTooLow,
    OutboundRateLimited,
    ReplacementUnderpriced,
    RpcError,
    RpcUnavailable,
    TxNotFound,
    TxReverted,
)
from adapters.evm.abi import ErrorTable

_DEFAULT_TABLE = ErrorTable()
_MAX_TEXT = 300


class TxAlreadyKnown(RpcError):
    """The node already has this transaction in its pool: it was sent."""


class NonceTooHigh(RpcError):
    """The node refused a nonce above its next one: our counter ran ahead of a gap."""


class LogQueryTooLarge(RpcError):
    """The node refused an eth_getLogs query as too wide or returning too many logs."""


class SigningError(AdapterError):
    """The local key could not sign the transaction."""


_RATE_LIMITED = ("rate limit", "too many requests", "request limit", "capacity exceeded", "exceeded the quota")
_UNAVAILABLE = ("timeout", "timed out", "connection refused", "connection reset", "service unavailable", "bad gateway",
                "upstream", "syncing", "header not found", "gateway timeout")
_NONCE_LOW = ("nonce too low", "nonce is too low", "noncetoolow", "oldnonce", "nonce has already been used",
              "invalid transaction nonce", "tx nonce is lower")
_NONCE_HIGH = ("nonce too high", "noncetoohigh", "nonce gap")
_UNDERPRICED = ("replacement transaction underpriced", "replacement fee too low", "replacementunderpriced",
                "replacement underpriced", "underpriced replacement")
_KNOWN = ("already known", "known transaction", "alreadyknown", "already imported", "transaction already exists",
          "tx already in mempool")
_FUNDS = ("insufficient funds", "insufficient balance", "insufficientfunds", "lack of funds")
_LOG_LIMIT = ("query returned more than", "block range", "range too large", "range is too large", "too many logs",
              "too many results", "exceeds the limit", "limit exceeded", "response size", "max results",
              "logs matched by query exceeds", "query timeout exceeded", "range exceeds", "blocks range")
_REVERT = ("execution reverted", "reverted", "revert", "vm execution error")


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    return any(p in text for p in phrases)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def revert_data(error: Mapping[str, Any]) -> bytes | None:
    """The revert bytes of a JSON-RPC error object, wherever this node puts them."""
    data: Any = error.get("data")
    for _ in range(3):  # {"data": {"data": "0x.."}} and {"data": {"originalError": {"data": ..}}}
        if isinstance(data, Mapping):
            data = data.get("data", data.get("originalError"))
        else:
            break
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def map_rpc_error(error: Mapping[str, Any], *, chain: str, errors: ErrorTable | None = None,
                  context: str = "") -> AdapterError:
    """Classify a JSON-RPC ``error`` object (``{"code", "message", "data"}``)."""
    message = str(error.get("message", error))
    code = error.get("code")
    text = message.lower()
    where = f"{context}: " if context else ""
    data = revert_data(error)
    if code == 3 or (_has(text, _REVERT) and not _has(text, _FUNDS)):
        reason = (errors or _DEFAULT_TABLE).decode(data) if data is not None else _revert_reason_from_text(message)
        wait_s = _rate_limit_wait(reason)
        if wait_s is not None:
            return OutboundRateLimited(f"{where}execution reverted: {reason}", chain=chain, reason=reason,
                                       wait_s=wait_s)
        return TxReverted(f"{where}execution reverted: {reason}", chain=chain, reason=reason)
    if _has(text, _NONCE_LOW):
        return NonceTooLow(f"{where}{_short(message)}", chain=chain, reason="nonce too low")
    if _has(text, _NONCE_HIGH):
        return NonceTooHigh(f"{where}{_short(message)}", chain=chain, reason="nonce too high")
    if _has(text, _UNDERPRICED):
        return ReplacementUnderpriced(f"{where}{_short(message)}", chain=chain, reason="replacement underpriced")
    if _has(text, _KNOWN):
        return TxAlreadyKnown(f"{where}{_short(message)}", chain=chain, reason="already known")
    if _has(text, _FUNDS):
        return InsufficientFunds(f"{where}{_short(message)}", chain=chain, reason="insufficient funds")
    if _has(text, _RATE_LIMITED) or code == 429:
        return RpcUnavailable(f"{where}rate limited: {_short(message)}", chain=chain, reason="rate limited")
    if _has(text, _LOG_LIMIT):
        return LogQueryTooLarge(f"{where}{_short(message)}", chain=chain, reason="log query too large")
    if _has(text, _UNAVAILABLE):
        return RpcUnavailable(f"{where}{_short(message)}", chain=chain, reason="node unavailable")
    return RpcError(f"{where}RPC error {code}: {_short(message)}", chain=chain, reason=_short(message))


def _rate_limit_wait(reason: str) -> float | None:
    """``waitSeconds`` of a decoded ``RateLimited(domain, token, amount, available, waitSeconds)``, else None."""
    name, _, rest = reason.partition("(")
    values = rest.rstrip(")").split(",")
    if name != "RateLimited" or len(values) != 5 or not values[4].strip().isdigit():
        return None
    return float(values[4].strip())


def _revert_reason_from_text(message: str) -> str:
    # "execution reverted: Foo" / "execution reverted" without data
    head, sep, tail = message.partition(":")
    return tail.strip() if sep and "revert" in head.lower() and tail.strip() else "reverted without data"


def _rpc_error_of(exc: BaseException) -> Mapping[str, Any] | None:
    """The JSON-RPC error object carried by a web3 exception, or by a ``ValueError({...})`` of older stacks."""
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, Mapping) and isinstance(response.get("error"), Mapping):
        return response["error"]
    if exc.args and isinstance(exc.args[0], Mapping) and ("message" in exc.args[0] or "code" in exc.args[0]):
        return exc.args[0]
    if exc.args and isinstance(exc.args[0], str) and exc.args[0].startswith("{"):
        try:
            parsed = json.loads(exc.args[0].replace("'", '"'))
        except ValueError:
            return None
        if isinstance(parsed, Mapping) and "message" in parsed:
            return parsed
    return None


def map_exception(exc: BaseException, *, chain: str, errors: ErrorTable | None = None,
                  context: str = "") -> AdapterError:
    """The ``AdapterError`` for any exception raised below the adapter boundary. Already-mapped errors pass through."""
    if isinstance(exc, AdapterError):
        return exc
    where = f"{context}: " if context else ""
    kind = type(exc).__name__
    text = _short(str(exc))

    import aiohttp  # web3's async transport
    import httpx
    from web3 import exceptions as w3x

    # --- transport: nothing (useful) came back
    if isinstance(exc,
                  (asyncio.TimeoutError, TimeoutError, httpx.TimeoutException, w3x.RequestTimedOut, w3x.TimeExhausted)):
        return RpcUnavailable(f"{where}request timed out ({kind})", chain=chain, reason="timeout")
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status == 429 or exc.status >= 500:
            return RpcUnavailable(f"{where}HTTP {exc.status} {exc.message}", chain=chain, reason=f"http {exc.status}")
        return RpcError(f"{where}HTTP {exc.status} {exc.message}", chain=chain, reason=f"http {exc.status}")
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        cls = RpcUnavailable if status == 429 or status >= 500 else RpcError
        return cls(f"{where}HTTP {status}", chain=chain, reason=f"http {status}")
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, httpx.TransportError,
                        w3x.ProviderConnectionError, w3x.TooManyRequests, ConnectionError)):
        return RpcUnavailable(f"{where}cannot reach the node: {kind}: {text}", chain=chain, reason="connection failed")
    if isinstance(exc, OSError):
        return RpcUnavailable(f"{where}cannot reach the node: {kind}: {text}", chain=chain, reason="connection failed")
    if isinstance(exc, aiohttp.ClientError):
        return RpcUnavailable(f"{where}{kind}: {text}", chain=chain, reason="client error")

    # --- the node answered with an error object
    if isinstance(exc, w3x.ContractLogicError):
        data = exc.data if isinstance(exc.data, str) else None
        raw = bytes.fromhex(data[2:]) if data and data.startswith("0x") else None
        reason = ((errors or _DEFAULT_TABLE).decode(raw) if raw is not None
                  else _revert_reason_from_text(str(exc.message or exc)))
        return TxReverted(f"{where}execution reverted: {reason}", chain=chain, reason=reason)
    if isinstance(exc, w3x.TransactionNotFound):
        return TxNotFound(f"{where}{text}", chain=chain, reason="transaction not found")
    rpc_error = _rpc_error_of(exc)
    if rpc_error is not None:
        return map_rpc_error(rpc_error, chain=chain, errors=errors, context=context)
    if isinstance(exc, w3x.Web3RPCError):
        return map_rpc_error({"message": exc.message}, chain=chain, errors=errors, context=context)

    # --- everything else: a response we could not parse, or a local signing failure
    if isinstance(exc, (json.JSONDecodeError, w3x.BadResponseFormat, w3x.BadFunctionCallOutput, w3x.InsufficientData)):
        return RpcError(f"{where}malformed answer from the node ({kind}: {text})", chain=chain,
                        reason="malformed response")
    if isinstance(exc, (ValueError, TypeError)) and _is_signing_error(exc):
        # eth_account / eth_keys messages never contain the key, but keep them out regardless
        return SigningError(f"{where}cannot sign the transaction ({kind})", chain=chain, reason="signing failed")
    if isinstance(exc, ValueError):
        return map_rpc_error({"message": str(exc)}, chain=chain, errors=errors, context=context)
    return RpcError(f"{where}{kind}: {text}", chain=chain, reason=kind)


def _is_signing_error(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("eth_account", "eth_keys", "coincurve", "rlp")):
            return True
        tb = tb.tb_next
    return False
