"""Logging for every command: one line per event on stdout, for journald.

python-escpos announces each network connection at INFO on the root logger;
with a status check before every job that is noise, so it is kept to warnings.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

FORMAT = "%(name)s %(levelname)s %(message)s"


class _QuietLibraries(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "/escpos/" not in record.pathname


def setup(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Log to `stream` (standard output as it is now, by default) from here on."""
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_QuietLibraries())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
