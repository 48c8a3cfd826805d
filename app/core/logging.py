"""Structured logging: JSON lines in prod, readable lines in dev, each with a correlation id."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from app.core.context import get_correlation_id
from app.core.settings import AppSettings

_READABLE = "%(asctime)s %(levelname)-7s %(name)s [%(correlation_id)s] %(message)s"


class CorrelationIdFilter(logging.Filter):
    """Stamp every record with the correlation id of the current context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            record.correlation_id = get_correlation_id() or "-"
        return True


def configure_logging(settings: AppSettings) -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CorrelationIdFilter())
    formatter: logging.Formatter
    if settings.json_logs:
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(correlation_id)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
        )
    else:
        formatter = logging.Formatter(_READABLE)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_workflow_hub", False):
            root.removeHandler(existing)
    handler._workflow_hub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
