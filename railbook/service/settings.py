"""The ``[server]`` section of railbook.toml, validated strictly (core keeps it opaque).

Environment overrides, for containers: ``RAILBOOK_GITHUB_SECRET`` (the GitHub webhook secret),
``RAILBOOK_PUBLIC_URL`` (where links in alerts point).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.config import section_settings

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["ROLES", "Role", "ServerSettings", "TokenSpec", "server_settings"]

Role = Literal["ingest", "agent", "approver", "admin"]
#: ``admin`` passes every role check; the others are independent.
ROLES: tuple[str, ...] = ("ingest", "agent", "approver", "admin")

GITHUB_SECRET_ENV = "RAILBOOK_GITHUB_SECRET"
PUBLIC_URL_ENV = "RAILBOOK_PUBLIC_URL"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenSpec(_Strict):
    """One API token, stored as the SHA-256 of the token (``railbook up --print-token-hash``)."""

    name: str = Field(min_length=1, max_length=128)
    """Who holds it (shown in logs, never the token)."""
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Lowercase hex SHA-256 of the token text."""
    roles: list[Role] = Field(min_length=1)
    """Which endpoints it may call: ingest (intake), agent (gate), approver (approvals), admin (all)."""
    actor: str | None = Field(default=None, max_length=2048)
    """The principal this token speaks for (e.g. ``pipeline:ci``); recorded beside what it submits."""


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8477, ge=0, le=65535)
    tokens: list[TokenSpec] = Field(default_factory=list)
    """API tokens. Empty: `railbook up` generates one admin token (see README.md, service section)."""
    token_file: str | None = None
    """Where the generated admin token is kept (0600). Default: ``<ledger dir>/service.token``."""
    github_secret: str | None = None
    """GitHub webhook secret (or env RAILBOOK_GITHUB_SECRET). Unset: the GitHub endpoint answers 503."""
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Largest request body accepted (413 above); gzip bodies are also limited after inflation."""
    max_inflated_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest gzip-inflated CloudTrail body."""
    batch_max: int = Field(default=5000, ge=1)
    """Most events the writer appends in one transaction when requests arrive together."""
    linger_ms: float = Field(default=2.0, ge=0)
    """How long an intake batch that already holds two or more submissions waits for more to join;
    a lone submission and gate requests never wait."""
    checkpoint_poll_seconds: float = Field(default=1.0, gt=0)
    """How often the writer asks the ledger whether a time-based checkpoint is due."""
    queue_max: int = Field(default=10000, ge=1)
    """Pending writer jobs before intake answers 503 (back-pressure)."""
    public_url: str | None = None
    """Base URL of the dashboard/service for evidence links in alerts (env RAILBOOK_PUBLIC_URL)."""
    log_format: Literal["json", "text"] = "json"
    """``railbook up`` log lines: one JSON object per line (default) or plain text."""


def server_settings(config: Config) -> ServerSettings:
    """Parse ``[server]`` strictly; errors name the key and the bad value."""
    overrides = {
        "github_secret": os.environ.get(GITHUB_SECRET_ENV),
        "public_url": os.environ.get(PUBLIC_URL_ENV),
    }
    return section_settings(config, "server", ServerSettings, overrides=overrides)
