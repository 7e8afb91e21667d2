"""The HTTP service behind ``railbook up``: intake, the gate's home, health and metrics.

Public surface: the auth dependency (``require``, ``Principal``, ``hash_token``), the single
``Writer`` that owns the ledger, and ``create_app``. Everything else is internal.
"""

from railbook.service.auth import Principal, TokenTable, ensure_local_token, hash_token, new_token, require
from railbook.service.settings import ServerSettings, server_settings
from railbook.service.writer import Writer, WriterClosedError, WriterOverloadedError

__all__ = [
    "Principal",
    "ServerSettings",
    "TokenTable",
    "Writer",
    "WriterClosedError",
    "WriterOverloadedError",
    "ensure_local_token",
    "hash_token",
    "new_token",
    "require",
    "server_settings",
]
