"""Logging to stderr only: text by default, one JSON object per line on request.

stdout belongs to the protocol in stdio mode, so nothing here ever touches
it. ``KERNEL_LOG`` sets the level (``debug``, ``info``, ``warning``...),
``LOG_FORMAT=json`` switches to JSON lines with ``ts``, ``level``,
``logger``, ``message`` and, for failures, ``exc`` (the traceback).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import IO

import orjson

__all__ = ["JsonFormatter", "setup_logging"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(
    level: str | None = None,
    fmt: str | None = None,
    stream: IO[str] | None = None,
    default: str = "info",
) -> None:
    """Configure the root logger for the kernel process (idempotent).

    ``level``, else ``$KERNEL_LOG``, else ``default`` (one-shot commands
    use ``warning``, so only problems reach the terminal).
    """
    level_name = (level or os.environ.get("KERNEL_LOG") or default).upper()
    numeric = logging.getLevelName(level_name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    handler = logging.StreamHandler(stream or sys.stderr)
    if (fmt or os.environ.get("LOG_FORMAT", "")).lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
