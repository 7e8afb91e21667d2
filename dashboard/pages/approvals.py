"""The Approvals page (rendering lives in dashboard._ui_act)."""

from dashboard._ui_act import render_approvals

render_approvals()
