"""Opening a ledger for writing takes pyarrow's one-time imports off the first append."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_writer_is_ready_to_append_once_open(tmp_path: Path) -> None:
    # a fresh interpreter: this one has imported everything long ago
    code = (
        "import sys, time\n"
        "from core.config import load_config\n"
        "from ledger import Ledger\n"
        f"config = load_config(None, ledger={str(tmp_path / 'l.duckdb')!r})\n"
        "with Ledger.open(config) as led:\n"
        "    print('pandas' in sys.modules or 'pyarrow.pandas_compat' in sys.modules)\n"
    )
    root = Path(__file__).parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr
