"""Command-line redaction on top of ``ingest.redact``: ``mysql -pSECRET``, ``--password X``."""

from __future__ import annotations

import logging
import re

from ingest.redact import redact_text

__all__ = ["redact_command"]

logger = logging.getLogger(__name__)


_MYSQL_PW = re.compile(
    r"""(\b(?:mysql|mariadb|mycli|mysqldump|mysqladmin)\b[^\n|;&]*?\s)-p(?!\s)('[^']*'|"[^"]*"|[^\s'"]+)"""
)
_PASSWORD_FLAG = re.compile(r"""(--password\s+|\bsshpass\s+-p\s*)('[^']*'|"[^"]*"|[^\s'"]+)""")


def redact_command(command: str) -> tuple[str, tuple[str, ...]]:
    """Redact a command line: what ``redact_text`` knows plus ``mysql -pSECRET`` and ``--password X``."""
    text, found = redact_text(command)
    for rx in (_MYSQL_PW, _PASSWORD_FLAG):
        text, n = rx.subn(
            lambda m: (
                m.group(1)
                + ("-p" if m.group(0)[len(m.group(1)) :].startswith("-p") else "")
                + "[REDACTED:password]"
                if not m.group(2).startswith("[REDACTED")
                else m.group(0)
            ),
            text,
        )
        if n and "[REDACTED:password]" in text:
            found.add("secret")
    return text, tuple(sorted(found))
