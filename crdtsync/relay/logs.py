"""Structured logs: one JSON object per line on stderr, through stdlib ``logging``.

Call :func:`configure_logging` once at start (``crdtsync relay`` does). Pass structured fields
with ``log.info("msg", extra={"fields": {...}})``, or use :func:`event`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

log = logging.getLogger("crdtsync.relay")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for the ``crdtsync`` loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("crdtsync")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    logging.Formatter.converter = time.gmtime


def event(msg: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``msg`` with structured ``fields`` on the relay logger."""
    log.log(level, msg, extra={"fields": fields})
