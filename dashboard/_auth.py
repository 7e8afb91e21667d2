"""Who is signed in: OIDC (``st.login``), an approver API token, or the configured local user.

Plain functions over plain inputs; the Streamlit side only passes ``st.user`` and the token typed
into the sidebar. An approval still goes through the policy layer, which refuses a self-approval
or one by the agent's instructing human whatever this module decided.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from core.config import Config
    from dashboard._settings import DashboardSettings

__all__ = ["AuthMethod", "User", "auth_method", "token_user", "user_from_oidc"]

logger = logging.getLogger(__name__)

AuthMethod = Literal["oidc", "token", "local", "none"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class User:
    id: str
    """The identity approvals are recorded under (an e-mail, as the approver group names them)."""
    method: AuthMethod
    token: str | None = None
    """The API token the user signed in with (sent to the service with what they submit)."""

    def __repr__(self) -> str:  # never show the token
        return f"User(id={self.id!r}, method={self.method!r})"


def _approver_tokens(config: Config) -> list[Any]:
    try:
        from railbook.service.settings import server_settings
    except ImportError:
        return []
    return [t for t in server_settings(config).tokens if "approver" in t.roles or "admin" in t.roles]


def auth_method(config: Config, settings: DashboardSettings, *, has_oidc_secrets: bool) -> AuthMethod:
    """Which sign-in the dashboard offers (``[dashboard] auth``, resolved when ``auto``)."""
    if settings.auth == "local" and settings.host not in LOOPBACK:
        logger.warning("local-user sign-in refused on non-loopback host=%s; read-only", settings.host)
        return "none"
    if settings.auth != "auto":
        return settings.auth
    if has_oidc_secrets:
        return "oidc"
    if _approver_tokens(config):
        return "token"
    if settings.local_user and settings.host in LOOPBACK:
        return "local"
    return "none"


def user_from_oidc(st_user: Mapping[str, Any] | None) -> User | None:
    """The signed-in OIDC user (``st.user``): the e-mail claim, else the subject."""
    if not st_user or not st_user.get("is_logged_in"):
        return None
    ident = st_user.get("email") or st_user.get("sub")
    return User(str(ident), "oidc") if ident else None


def token_user(config: Config, token: str) -> tuple[User | None, str]:
    """Check an approver token against ``[server] tokens``: ``(user, "")`` or ``(None, why not)``."""
    token = token.strip()
    if not token:
        return None, "enter your approver token"
    from railbook.service.auth import TokenTable

    principal = TokenTable(_approver_tokens(config)).authenticate(token)
    if principal is None:
        return None, "unknown token: its SHA-256 is not an approver or admin token in [server] tokens"
    if not principal.actor:
        return None, (
            f'token {principal.name!r} names no actor; set actor = "you@example.com" on it in '
            "[server] tokens so approvals are recorded under a person"
        )
    return User(principal.actor, "token", token), ""
