"""The ``[dashboard]`` section of railbook.toml, validated strictly (core keeps it opaque).

Environment overrides (what ``railbook dashboard`` / ``railbook up`` set for the Streamlit
process): ``RAILBOOK_SERVICE_URL`` (where approvals and acknowledgements go),
``RAILBOOK_DASHBOARD_USER`` (the local user, for the embedded default on loopback).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.config import section_settings

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["DashboardSettings", "dashboard_settings"]

SERVICE_URL_ENV = "RAILBOOK_SERVICE_URL"
USER_ENV = "RAILBOOK_DASHBOARD_USER"
TOKEN_ENV = "RAILBOOK_DASHBOARD_TOKEN"


class DashboardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Where ``railbook dashboard`` listens."""
    port: int = Field(default=8501, ge=0, le=65535)
    auth: Literal["auto", "oidc", "token", "local", "none"] = "auto"
    """How approvers sign in: ``oidc`` (Streamlit's ``st.login``; configure ``[auth]`` in
    ``.streamlit/secrets.toml``), ``token`` (an approver API token from ``[server] tokens``),
    ``local`` (the configured ``local_user``; loopback only), ``none`` (read-only). ``auto``: oidc
    when Streamlit has an ``[auth]`` secret, else token when approver tokens are configured, else
    local when ``local_user`` is set, else read-only."""
    oidc_provider: str | None = None
    """The provider name under ``[auth.<name>]`` in secrets.toml, when there are several."""
    local_user: str | None = None
    """The identity of the person at this machine (embedded default; also ``RAILBOOK_DASHBOARD_USER``)."""
    service_url: str | None = None
    """The running service (``railbook up``), e.g. ``http://127.0.0.1:8477``. Unset: no service — the
    dashboard reads the ledger file and submits approvals in-process (an offline copy)."""
    service_token_file: str | None = None
    """Token used for acknowledgements and local-user approvals. Default: ``<ledger dir>/service.token``."""
    page_size: int = Field(default=50, ge=1, le=500)
    overview_days: int = Field(default=30, ge=1, le=3650)


def dashboard_settings(config: Config) -> DashboardSettings:
    """Parse ``[dashboard]`` (plus the environment overrides); errors name the key and value."""
    overrides = {"service_url": os.environ.get(SERVICE_URL_ENV), "local_user": os.environ.get(USER_ENV)}
    return section_settings(config, "dashboard", DashboardSettings, overrides=overrides)
