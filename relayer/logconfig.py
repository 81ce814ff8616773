"""structlog set-up: JSON lines when stderr is not a TTY (or when asked), a readable console otherwise."""

from __future__ import annotations

import logging
import sys

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _current_stderr(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)  # looked up per logger, so a replaced sys.stderr is honoured


def configure_logging(level: str = "info", json_output: bool | None = None, stream=None) -> None:  # type: ignore[no-untyped-def]
    as_json = (not (stream or sys.stderr).isatty()) if json_output is None else json_output
    renderer = structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=not as_json and (stream or sys.stderr).isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=stream) if stream is not None else _current_stderr,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=stream or sys.stderr)
    for noisy in ("httpx", "uvicorn.access", "apscheduler", "web3", "urllib3", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
