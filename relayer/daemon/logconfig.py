"""structlog set-up: JSON lines when stderr is not a TTY (or when asked), a readable console otherwise.

Every event passes ``cap_fields`` before it is rendered: a string field is cut to ``MAX_FIELD_CHARS`` (a
traceback to ``MAX_EXCEPTION_CHARS``), containers to ``MAX_ITEMS`` items, nested ones too, so a value that came
from a request (a path, a chain name, an error quoting the input) cannot make a log line grow with the input.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

MAX_FIELD_CHARS = 200
MAX_EXCEPTION_CHARS = 8000
MAX_ITEMS = 50
_LONG_FIELDS = {"exception": MAX_EXCEPTION_CHARS, "stack": MAX_EXCEPTION_CHARS}


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more chars]"


def _capped(value: Any, limit: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _cut(value, limit)
    if isinstance(value, bytes | bytearray):
        return _cut(repr(bytes(value[: limit + 1])), limit) if len(value) > limit else value
    if depth >= 3 and isinstance(value, dict | list | tuple | set | frozenset):
        return _cut(repr(value), limit)
    if isinstance(value, dict):
        items = list(value.items())
        out = {_cut(str(k), limit): _capped(v, limit, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more items"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        out_list = [_capped(v, limit, depth + 1) for v in seq[:MAX_ITEMS]]
        if len(seq) > MAX_ITEMS:
            out_list.append(f"...{len(seq) - MAX_ITEMS} more items")
        return out_list
    return value


def cap_fields(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: bound every field (see the module docstring)."""
    for key, value in event_dict.items():
        if isinstance(value, str | bytes | bytearray | dict | list | tuple | set | frozenset):
            event_dict[key] = _capped(value, _LONG_FIELDS.get(key, MAX_FIELD_CHARS))
    return event_dict

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _current_stderr(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)  # looked up per logger, so a replaced sys.stderr is honoured


def configure_logging(level: str = "info", json_output: bool | None = None, stream=None) -> None:
    as_json = (not (stream or sys.stderr).isatty()) if json_output is None else json_output
    renderer = (structlog.processors.JSONRenderer() if as_json
                else structlog.dev.ConsoleRenderer(colors=not as_json and (stream or sys.stderr).isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            cap_fields,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream) if stream is not None else _current_stderr,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=stream or sys.stderr)
    for noisy in ("httpx", "uvicorn.access", "apscheduler", "web3", "urllib3", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
