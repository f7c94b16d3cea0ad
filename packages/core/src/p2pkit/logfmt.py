"""Log output for operators: ``--log-level`` and ``--log-format text|json`` of the CLI.

``json`` writes one JSON object per line (``time`` in UTC ISO 8601 with milliseconds,
``level``, ``logger``, ``message``, then every extra attribute of the record, such as
``peer`` and ``repeated``, and ``exc`` for a traceback), which log shippers parse without
a pattern.  ``text`` writes ``time level logger: message`` with the same extras as
``key=value``.  Both go to stderr through a :class:`~p2pkit.logs.RepeatFilter`, so
repeats of one message template are collapsed.  Loaded only by the CLI (and by
applications that call :func:`configure_logging`), never at ``import p2pkit`` time.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from p2pkit.logs import ROOT, RepeatFilter

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")

#: Attributes every LogRecord has: anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))
) | {"message", "asctime", "taskName"}


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The attributes ``extra=`` put on ``record`` (e.g. ``peer``, ``repeated``)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extras(record).items():
            obj.setdefault(key, value if isinstance(value, int | float | bool) else str(value))
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value...`` on one line (tracebacks follow)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = "".join(f" {k}={v}" for k, v in extras(record).items())
        line = (
            f"{_timestamp(record)} {record.levelname.lower():<7} {record.name}: "
            f"{record.getMessage()}{fields}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(
    level: str = "warning", fmt: str = "text", stream: TextIO | None = None
) -> logging.Handler:
    """Send ``p2pkit`` logs at ``level`` and above (and other libraries' warnings) to
    ``stream`` (stderr) in format ``fmt``; returns the handler it installed on the root
    logger (replacing one installed by an earlier call)."""
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RepeatFilter())
    handler.set_name("p2pkit-cli")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "p2pkit-cli"]:
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = getattr(logging, level.upper())
    root.setLevel(max(numeric, logging.WARNING))
    logging.getLogger(ROOT).setLevel(numeric)
    return handler


__all__ = ["FORMATS", "LEVELS", "JsonFormatter", "TextFormatter", "configure_logging", "extras"]
