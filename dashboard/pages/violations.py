"""The Violations page (rendering lives in dashboard._ui_browse)."""

from dashboard._ui_browse import render_violations

render_violations()
