"""Structured logs: one JSON object per line, stable keys, for a SIEM to parse.

Every line has ``ts`` (RFC 3339 UTC), ``level``, ``logger`` and ``msg``. Railbook's library code
logs ``key=value`` pairs in its messages (STYLE.md rule 15); they are lifted into top-level keys
(``event_id``, ``tree_size``, …) so nobody has to regex a message. Fields passed with
``extra={"fields": {...}}`` (the access log does) are merged in as well. Exceptions add ``exc``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "configure_json_logging"]

_KV = re.compile(r"(?<![\w.])([a-z_][a-z0-9_]*)=(\"[^\"]*\"|'[^']*'|[^\s,;]+)")
#: keys every line has; a key=value pair may not overwrite them
_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": msg,
        }
        for key, value in _KV.findall(msg):
            if key not in _RESERVED:
                out.setdefault(key, value.strip("\"'"))
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in _RESERVED:
                    out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))


def configure_json_logging(level: int = logging.INFO) -> None:
    """Route the root logger (and uvicorn's) to stderr as JSON lines. Only ``railbook up`` calls this."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    # the access log is ours (one line per request with stable keys); uvicorn's would duplicate it
    logging.getLogger("uvicorn.access").disabled = True
