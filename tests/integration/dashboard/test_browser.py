"""The dashboard served on loopback by ``streamlit run``, loaded page by page in headless Chromium.

Seeds a real on-disk ledger (DuckDB, signed checkpoint, published segments), serves the app the
way ``railbook dashboard`` does, and asserts what a person would see. Screenshots go to
``$RAILBOOK_SCREENSHOTS`` (default: the test's tmp dir). Skips only when Chromium is missing and
``scripts/install-chromium.sh`` cannot install it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Config
from dashboard import streamlit_command, streamlit_env
from dashboard._seed import seed_ledger, story, synthetic
from tests.integration.dashboard._cdp import Browser, find_chromium

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _chromium() -> str:
    exe = find_chromium()
    if exe is None:
        subprocess.run(["bash", str(ROOT / "scripts" / "install-chromium.sh")], check=False, timeout=900)
        exe = find_chromium()
    if exe is None:
        pytest.skip(
            "Chromium is not installed and scripts/install-chromium.sh could not install it "
            "(needs root and apt-get); the real-browser dashboard test did not run"
        )
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("dash")
    ledger = root / "ledger.duckdb"
    config = Config.model_validate({"ledger": {"path": str(ledger)}})
    seed_ledger(config, [*story(), *synthetic(200)])
    port = _free_port()
    cfg_file = root / "railbook.toml"
    cfg_file.write_text(
        '[dashboard]\nlocal_user = "alice@example.com"\n[identities]\n'
        'approvers = ["alice@example.com", "carol@example.com"]\n'
    )
    log = open(root / "streamlit.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        streamlit_command(port=port),
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=streamlit_env(config_path=str(cfg_file), ledger_path=str(ledger)),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            raise AssertionError(
                "streamlit did not come up:\n" + (root / "streamlit.log").read_text()[-4000:]
            )
        time.sleep(0.3)
    try:
        yield url, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(_chromium(), tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


def _shots(tmp: Path) -> Path:
    return Path(os.environ.get("RAILBOOK_SCREENSHOTS") or tmp)


PAGES = [
    (
        "",
        "overview",
        [
            "Overview",
            "Open violations",
            "Latest signed checkpoint: tree size 229",
            "Violations by rail",
            "Violations by severity",
            "Events by decision",
            "Active agents",
        ],
    ),
    # (table cells are drawn on a canvas, so assertions name text outside the grids)
    ("events", "events", ["Events", "Filters", "Page 1 · rows 1–50", "Canonical event", "Ledger record"]),
    (
        "violations",
        "violations",
        [
            "Violations",
            "Open only",
            "Acknowledge",
            "Comment (what was done",
            "Signed in as alice@example.com",
        ],
    ),
    (
        "approvals",
        "approvals",
        [
            "Approvals",
            "Pending (1)",
            "req-drop-tmp",
            "DROP TABLE tmp_balances",
            "History",
            "on behalf of bob@example.com",
        ],
    ),
    (
        "evidence?event_id=agent:sess-81:alter",
        "evidence",
        [
            "Attribution chain",
            "bob@example.com",
            "JIRA-412 fix the flaky balances migration",
            "VIOLATION",
            "rail1-agent-in-prod",
            "Prepare evidence pack",
        ],
    ),
    (
        "integrity",
        "integrity",
        ["Integrity", "Run verification", "Signed checkpoints", "Latest signed note", "Inclusion proof"],
    ),
]


@pytest.mark.parametrize(("path", "name", "expect"), PAGES, ids=[p[1] for p in PAGES])
def test_page_renders_in_chromium(
    served: tuple[str, Path], browser: Browser, tmp_path: Path, path: str, name: str, expect: list[str]
) -> None:
    url, _ = served
    text = browser.open(f"{url}/{path}", expect=expect, height=1100)
    assert "Traceback" not in text
    shot = browser.screenshot(_shots(tmp_path) / f"{name}.png")
    assert shot.stat().st_size > 10_000
