"""The Railbook dashboard: Streamlit pages over the ledger's read API (see docs/design/dashboard.md).

Public surface: ``APP_PATH`` (the Streamlit entry script), ``open_backend`` (the wiring a page
uses), ``streamlit_command`` (the argv ``railbook dashboard`` runs), and the settings model.
Everything else is internal: page logic lives in plain functions in ``dashboard._*`` modules.
"""

from dashboard._backend import Backend, open_backend
from dashboard._launch import APP_PATH, streamlit_command, streamlit_env
from dashboard._settings import DashboardSettings, dashboard_settings

__all__ = [
    "APP_PATH",
    "Backend",
    "DashboardSettings",
    "dashboard_settings",
    "open_backend",
    "streamlit_command",
    "streamlit_env",
]
