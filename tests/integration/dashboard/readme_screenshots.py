"""Take the README screenshots (Overview and Evidence of the demo ledger) in headless Chromium.

    .venv/bin/python -m tests.integration.dashboard.readme_screenshots [--out docs/images]

Runs ``railbook demo`` in a scratch directory, serves ``railbook dashboard`` on a free loopback
port, and saves ``overview.png`` and ``evidence.png``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.integration.dashboard._cdp import Browser, find_chromium
from tests.integration.dashboard.test_browser import _free_port

INCIDENT = "claude-code:sess-7f3a:toolu_01ProdAlterTable"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/images")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    exe = find_chromium()
    if exe is None:
        print("chromium not found; run scripts/install-chromium.sh", file=sys.stderr)
        return 2
    railbook = str(Path(sys.executable).with_name("railbook"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([railbook, "demo"], cwd=work, check=True, stdout=subprocess.DEVNULL)
        cfg = work / "railbook-data" / "demo" / "railbook.toml"
        port = _free_port()
        proc = subprocess.Popen(
            [railbook, "--config", str(cfg), "dashboard", "--port", str(port)],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if urllib.request.urlopen(url + "/_stcore/health", timeout=2).read().strip() == b"ok":
                        break
                except OSError:
                    time.sleep(0.3)
            b = Browser(exe, work / "profile")
            try:
                b.open(
                    url + "/",
                    expect=["Overview", "Latest signed checkpoint", "Violations by rail"],
                    height=1000,
                )
                print(b.screenshot(out / "overview.png"))
                b.open(
                    f"{url}/evidence?event_id={INCIDENT}", expect=["Attribution chain", "record"], height=1500
                )
                print(b.screenshot(out / "evidence.png"))
            finally:
                b.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
