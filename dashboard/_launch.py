"""How to start the Streamlit server for the dashboard (``railbook dashboard``, ``railbook up``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP_PATH", "streamlit_command", "streamlit_env"]

#: the Streamlit entry script
APP_PATH = Path(__file__).resolve().parent / "app.py"


def streamlit_command(*, host: str = "127.0.0.1", port: int = 8501, python: str | None = None) -> list[str]:
    """The argv that serves the dashboard headless on ``host:port`` (no telemetry, no browser)."""
    return [
        python or sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


def streamlit_env(
    *,
    config_path: str | None = None,
    ledger_path: str | None = None,
    service_url: str | None = None,
    user: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for the Streamlit process: where the config and ledger are, which service to
    submit to. The repository root goes on PYTHONPATH so the pages import ``dashboard`` even when
    Railbook is not installed."""
    env = dict(os.environ if base is None else base)
    root = str(APP_PATH.parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for key, value in (
        ("RAILBOOK_CONFIG", config_path),
        ("RAILBOOK_LEDGER", ledger_path),
        ("RAILBOOK_SERVICE_URL", service_url),
        ("RAILBOOK_DASHBOARD_USER", user),
    ):
        if value:
            env[key] = str(Path(value).resolve()) if key in ("RAILBOOK_CONFIG", "RAILBOOK_LEDGER") else value
    return env
