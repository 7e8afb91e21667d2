"""The Integrity page (rendering lives in dashboard._ui_act)."""

from dashboard._ui_act import render_integrity

render_integrity()
