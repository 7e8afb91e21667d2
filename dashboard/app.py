"""The Railbook dashboard: ``streamlit run dashboard/app.py`` (``railbook dashboard`` does this).

Reads the ledger through ``dashboard._backend.open_backend`` (config from ``RAILBOOK_CONFIG`` /
``RAILBOOK_LEDGER``); every page is a thin renderer over plain functions in ``dashboard._*``.
"""

from pathlib import Path

import streamlit as st

_PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="Railbook", page_icon=":material/menu_book:", layout="wide")
nav = st.navigation(
    [
        st.Page(_PAGES / "overview.py", title="Overview", icon=":material/monitoring:", default=True),
        st.Page(_PAGES / "events.py", title="Events", icon=":material/list_alt:"),
        st.Page(_PAGES / "violations.py", title="Violations", icon=":material/report:"),
        st.Page(_PAGES / "approvals.py", title="Approvals", icon=":material/approval:"),
        st.Page(_PAGES / "evidence.py", title="Evidence", icon=":material/policy:"),
        st.Page(_PAGES / "integrity.py", title="Integrity", icon=":material/verified:"),
    ]
)
nav.run()
