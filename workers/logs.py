"""structlog set-up: JSON lines (orjson, written as bytes: the fast path), or pretty
ones on a terminal.

Bound loggers carry ``execution_id`` and ``attempt`` so one grep follows an
execution through every process.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog


def configure(level: str = "INFO", json: bool | None = None) -> None:
    """Configure structlog once per process; ``json=None`` picks by whether stderr is a TTY."""
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=orjson.dumps)
        if as_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=(
            structlog.BytesLoggerFactory(file=sys.stderr.buffer)
            if as_json
            else structlog.PrintLoggerFactory(file=sys.stderr)
        ),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger for ``name``. Until someone configures structlog (the CLI does, and an
    application may), Ricochet's lines go to stderr, never to stdout: a program that
    uses the ``Client`` keeps its standard output to itself."""
    if not structlog.is_configured():
        configure()
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
