"""The Overview page (rendering lives in dashboard._ui_browse)."""

from dashboard._ui_browse import render_overview

render_overview()
