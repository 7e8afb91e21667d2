"""API tokens and roles for the HTTP service.

Tokens are configured hashed (``[server] tokens = [{name, sha256, roles, actor}]``); a presented
``Authorization: Bearer <token>`` is hashed and compared with every configured hash in constant
time (``hmac.compare_digest``, no early exit), so neither timing nor a leaked config reveals a
token. Roles: ``ingest`` (intake endpoints), ``agent`` (the gate), ``approver`` (approvals),
``admin`` (everything). Missing or unknown token → 401; known token without the role → 403.

With no tokens configured, ``railbook up`` mints one admin token and keeps it in a 0600 file
beside the ledger (``ensure_local_token``); nothing is ever open without a token.

Use in a route::

    @router.post("/v1/gate")
    def gate(principal: Principal = Depends(require("agent"))) -> ...
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import stat
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from core.errors import ConfigError
from railbook.service.problems import ApiError
from railbook.service.settings import ROLES, TokenSpec

__all__ = [
    "Principal",
    "TokenTable",
    "ensure_local_token",
    "hash_token",
    "install_auth",
    "new_token",
    "require",
]

logger = logging.getLogger(__name__)

#: a prefix secret scanners can recognise
TOKEN_PREFIX = "rbk_"


def hash_token(token: str) -> str:
    """Lowercase hex SHA-256 of ``token`` — what goes into ``[server] tokens``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random API token (256 bits, URL-safe)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who called: the token's name, its roles, and the actor it speaks for."""

    name: str
    """The token's configured name (safe to log)."""
    roles: frozenset[str]
    """Its roles (``ingest``, ``agent``, ``approver``, ``admin``)."""
    actor: str | None = None
    """The principal the token speaks for (``pipeline:ci``, ``agent:claude-1``), if configured."""

    def has(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles


class TokenTable:
    """The configured tokens; ``authenticate`` is constant-time over the whole table."""

    def __init__(self, tokens: Sequence[TokenSpec]) -> None:
        names = [t.name for t in tokens]
        if len(set(names)) != len(names):
            raise ConfigError(f"[server] tokens: names must be unique, got {names}")
        self._entries = [
            (bytes.fromhex(t.sha256), Principal(t.name, frozenset(t.roles), t.actor)) for t in tokens
        ]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str) -> Principal | None:
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found: Principal | None = None
        for stored, principal in self._entries:
            # no early exit: every entry is compared whether or not one matched
            if hmac.compare_digest(stored, digest) and found is None:
                found = principal
        return found

    @classmethod
    def with_admin(cls, token: str, tokens: Sequence[TokenSpec] = ()) -> TokenTable:
        """The configured ``tokens`` plus one admin token (the generated local one)."""
        spec = TokenSpec(name="local-admin", sha256=hash_token(token), roles=["admin"], actor=None)
        return cls([*tokens, spec])


def ensure_local_token(path: Path) -> tuple[str, bool]:
    """The admin token kept at ``path`` (0600), creating it if missing. Returns (token, created)."""
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"token file {str(path)!r} has mode {oct(mode)}; expected 0600 (only you may read it); "
                f"fix: chmod 600 {path}"
            )
        token = path.read_text(encoding="utf-8").strip()
        if not token:
            raise ConfigError(f"token file {str(path)!r} is empty; delete it to mint a new token")
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    logger.info("minted local admin token path=%s", path)
    return token, True


def install_auth(app: Any, table: TokenTable) -> None:
    """Attach the token table to a FastAPI app (``require`` reads ``app.state.auth``)."""
    app.state.auth = table


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="railbook"'}


def require(role: str, *more: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller's ``Principal`` if its token has ``role`` (or any of ``more``,
    or admin); else 401 (no/unknown token) or 403 (wrong role).

    ``async`` only so that FastAPI runs it on the event loop (one SHA-256 and a few constant-time
    compares) instead of handing it to a worker thread and back, which costs more than the check."""
    wanted = (role, *more)
    unknown = [r for r in wanted if r not in ROLES]
    if unknown:
        raise ValueError(f"require(): unknown role(s) {unknown}; expected one of {list(ROLES)}")

    async def dependency(request: Request) -> Principal:
        table: TokenTable | None = getattr(request.app.state, "auth", None)
        if table is None:
            raise ApiError(503, "auth-not-configured", "the service has no token table installed")
        token = _bearer(request)
        if token is None:
            raise ApiError(
                401,
                "unauthorized",
                "missing API token: send 'Authorization: Bearer <token>' "
                "(a token from [server] tokens, or the generated one in service.token)",
                headers=_CHALLENGE,
            )
        principal = table.authenticate(token)
        if principal is None:
            raise ApiError(
                401,
                "unauthorized",
                "unknown API token: its SHA-256 is not in [server] tokens "
                "(mint one with `railbook up --print-token-hash TOKEN`)",
                headers=_CHALLENGE,
            )
        if not any(principal.has(r) for r in wanted):
            raise ApiError(
                403,
                "forbidden",
                f"token {principal.name!r} has roles {sorted(principal.roles)}; "
                f"this endpoint needs {' or '.join(repr(r) for r in wanted)} (or 'admin')",
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{'_or_'.join(wanted)}"
    return dependency
