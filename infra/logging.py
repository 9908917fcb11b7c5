"""structlog set-up: configured once per process, every line names its component."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

_configured = False


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written, not when logging was set up: a
    process that swaps its stderr (a test harness, a daemoniser) keeps its log."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "INFO"
) -> None:
    """JSON lines for services, readable console output on a terminal."""
    global _configured
    if _configured:
        return
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(component: str, **bound: Any) -> Any:
    """A logger whose every line carries ``component``."""
    return structlog.get_logger().bind(component=component, **bound)
