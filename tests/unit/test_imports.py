"""Each package imports on its own, first, in a fresh interpreter (no hidden import cycles), and
imports follow the data flow: ingest → policy → ledger → dashboard; only railbook/ imports everything."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["core", "ingest", "policy", "ledger", "alerts", "dashboard", "railbook", "railbook.cli"]

#: what each top-level package may import from the others (data flows one way)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "ingest": {"core"},
    "policy": {"core", "ingest"},
    "ledger": {"core", "ingest", "policy"},
    "alerts": {"core", "policy", "ledger"},
    "dashboard": {"core", "policy", "ledger", "railbook"},
}
OURS = {"core", "ingest", "policy", "ledger", "alerts", "dashboard", "railbook"}


@pytest.mark.parametrize("package", [p for p in PACKAGES if (ROOT / p.replace(".", "/")).is_dir()])
def test_package_imports_first_in_fresh_interpreter(package: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {package}"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_follow_the_data_flow(package: str) -> None:
    pkg = ROOT / package
    if not pkg.is_dir():
        pytest.skip(f"{package}/ not present")
    bad = []
    for path in sorted(pkg.rglob("*.py")):
        if "tests" in path.parts[len(ROOT.parts) : -1] and package != "policy":
            continue
        extra = _imports(path) - ALLOWED[package] - {package}
        if extra:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(extra)}")
    assert not bad, "imports against the data flow:\n" + "\n".join(bad)
