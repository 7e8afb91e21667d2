"""Streamlit glue shared by the pages: the backend, sign-in, and small widgets. Rendering only."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import streamlit as st

from core.config import load_config
from dashboard._auth import User, auth_method, token_user, user_from_oidc
from dashboard._backend import Backend, open_backend

__all__ = ["BACKEND_KEY", "backend", "current_user", "day_range", "flash", "header", "show_flash", "sidebar"]

logger = logging.getLogger(__name__)

#: tests (AppTest) put a ready Backend here; the real app builds one from the environment
BACKEND_KEY = "railbook.backend"
USER_KEY = "railbook.user"
FLASH_KEY = "railbook.flash"


@st.cache_resource(show_spinner=False)
def _shared_backend() -> Backend:
    # RAILBOOK_CONFIG / RAILBOOK_LEDGER come from `railbook dashboard`
    return open_backend(load_config())


def backend() -> Backend:
    b = st.session_state.get(BACKEND_KEY)
    if isinstance(b, Backend):
        return b
    return _shared_backend()


def _has_oidc() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def current_user(b: Backend) -> User | None:
    """The signed-in person, or ``None`` (read-only)."""
    method = auth_method(b.config, b.settings, has_oidc_secrets=_has_oidc())
    if method == "oidc":
        return user_from_oidc(dict(st.user.to_dict()) if hasattr(st.user, "to_dict") else dict(st.user))
    if method == "local":
        return User(b.settings.local_user or "", "local") if b.settings.local_user else None
    if method == "token":
        u = st.session_state.get(USER_KEY)
        return u if isinstance(u, User) else None
    return None


def _token_login(b: Backend) -> None:
    tok = st.session_state.get("railbook.token_input", "")
    user, why = token_user(b.config, tok)
    st.session_state[USER_KEY] = user
    st.session_state["railbook.login_error"] = why
    st.session_state["railbook.token_input"] = ""


def sidebar(b: Backend) -> User | None:
    """Sign-in box and data-source facts in the sidebar; returns the signed-in user."""
    method = auth_method(b.config, b.settings, has_oidc_secrets=_has_oidc())
    user = current_user(b)
    with st.sidebar:
        st.markdown("**Railbook** · the book of record")
        if user is not None:
            st.success(f"Signed in as **{user.id}** ({user.method})")
            if method == "oidc" and st.button("Sign out"):
                st.logout()
            elif method == "token" and st.button("Sign out"):
                st.session_state[USER_KEY] = None
                st.rerun()
        elif method == "oidc":
            if st.button("Sign in"):
                st.login(b.settings.oidc_provider) if b.settings.oidc_provider else st.login()
        elif method == "token":
            st.text_input(
                "Approver token",
                type="password",
                key="railbook.token_input",
                on_change=_token_login,
                args=(b,),
            )
            err = st.session_state.get("railbook.login_error")
            if err:
                st.error(err)
        else:
            st.info("Read-only: no sign-in configured (see [dashboard] auth).")
        mode = "live service · data as of the last signed checkpoint" if b.live else "offline ledger copy"
        st.caption(f"Ledger: `{b.config.ledger_path}` · {mode}")
    return user


def header(title: str, caption: str) -> None:
    st.title(title)
    st.caption(caption)


def flash(kind: str, text: str) -> None:
    """A message shown once at the top of the next run (results of button callbacks)."""
    st.session_state[FLASH_KEY] = (kind, text)


def show_flash() -> None:
    msg = st.session_state.pop(FLASH_KEY, None)
    if msg:
        kind, text = msg
        getattr(st, kind if kind in ("success", "error", "warning", "info") else "info")(text)


def day_range(key: str, *, default_days: int | None = None) -> tuple[datetime | None, datetime | None]:
    """A from/to date pair (UTC days, inclusive) as ``since``/``until`` datetimes."""
    c1, c2 = st.columns(2)
    default_from: date | None = (
        (datetime.now(UTC) - timedelta(days=default_days)).date() if default_days is not None else None
    )
    d_from = c1.date_input("From (UTC)", value=default_from, key=f"{key}.from")
    d_to = c2.date_input("To (UTC)", value=None, key=f"{key}.to")
    since = datetime.combine(d_from, time.min, tzinfo=UTC) if isinstance(d_from, date) else None
    until = (
        datetime.combine(d_to, time.min, tzinfo=UTC) + timedelta(days=1) if isinstance(d_to, date) else None
    )
    return since, until


def any_choice(label: str, options: list[str], key: str) -> Any:
    v = st.selectbox(label, ["any", *options], key=key)
    return None if v == "any" else v
