"""``StoreError``: every database error leaves the store as this one type, naming the operation, never the
credentials; ``reason`` says whether later will do (``store_unavailable``, ``store_conflict``) or not
(``store_rejected``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)

from config.errors import RelayerError


class StoreError(RelayerError):
    """The database failed a statement (unreachable, restarting, a conflict); ``reason`` says which (only
    ``store_rejected`` will not pass by itself)."""

    def __init__(self, message: str, *, reason: str = "store_unavailable") -> None:
        super().__init__(message)
        self.reason = reason


def safe_url(url: str) -> str:
    """``url`` without its credentials (for logs and errors)."""
    before, sep, tail = url.partition("@")
    scheme = before.partition("://")[0]
    return f"{scheme}://<credentials>@{tail}" if sep else url


def store_error(exc: SQLAlchemyError, url: str, operation: str) -> StoreError:
    detail = (str(getattr(exc, "orig", None) or exc).strip().split("\n") or [""])[0][:300]
    if isinstance(exc, OperationalError | InterfaceError | DisconnectionError):
        reason = "store_unavailable"  # down, restarting, connection lost: later will do
    elif isinstance(exc, IntegrityError):
        reason = "store_conflict"  # another instance wrote the same row first
    else:
        reason = "store_rejected"  # a statement the database refuses (a bug, or a schema from elsewhere)
    error = StoreError(f"store {safe_url(url)}: {operation} failed: {exc.__class__.__name__}: {detail}", reason=reason)
    return error


F = TypeVar("F", bound=Callable[..., Any])


def _mapped(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise store_error(exc, self.url, method.__name__) from exc

    return wrapper  # type: ignore[return-value]


C = TypeVar("C", bound=type)


def map_store_errors(cls: C) -> C:
    """Wrap every public method ``cls`` has (its own and its table families') so database errors leave as
    ``StoreError``."""
    names = {name for klass in cls.__mro__[:-1] for name, attr in vars(klass).items()
             if callable(attr) and not name.startswith("_") and name != "close" and not isinstance(attr, type)}
    for name in names:
        setattr(cls, name, _mapped(getattr(cls, name)))
    return cls
