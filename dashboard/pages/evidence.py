"""The Evidence page (rendering lives in dashboard._ui_act)."""

from dashboard._ui_act import render_evidence

render_evidence()
