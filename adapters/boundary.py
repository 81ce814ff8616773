"""What every adapter shares at its boundary: exceptions of the chain's SDK mapped onto the AdapterError family
(each family brings its own mapping), and bytes32 values given as hex or bytes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from adapters.base import AdapterError
from config.errors import RelayerError

P = ParamSpec("P")
T = TypeVar("T")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=_Named)
# (exception, the adapter whose method raised it, the method) -> project error; the adapter gives the mapping
# whatever it needs of its own (its name; EVM: its contracts' error ABIs)
Mapper = Callable[[BaseException, Any, str], AdapterError]


def error_boundary(mapper: Mapper) -> Callable[[Callable[Concatenate[S, P], Coroutine[Any, Any, T]]],
                                               Callable[Concatenate[S, P], Coroutine[Any, Any, T]]]:
    """A decorator for an adapter's public async methods: project errors pass, anything else is mapped."""

    def decorate(method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]]
                 ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
        @functools.wraps(method)
        async def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await method(self, *args, **kwargs)
            except RelayerError:
                raise
            except Exception as exc:
                raise mapper(exc, self, method.__name__) from exc

        return wrapper

    return decorate


def bytes32(value: bytes | str) -> bytes:
    """``value`` (hex, with or without 0x, or bytes) left-padded to 32 bytes; ValueError beyond 32."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) > 32:
        raise ValueError("more than 32 bytes")
    return raw.rjust(32, b"\0")
