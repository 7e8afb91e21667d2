"""``railbook bench ledger``: append, verify and proof numbers, with raw references from the same run."""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from core.canonical import canonical_json
from core.config import Config
from core.event import Actor, CanonicalEvent, Change, Resource
from ledger.store import Ledger
from ledger.verify import verify_ledger
from policy import Decision, Reason

__all__ = ["run_ledger_bench"]

logger = logging.getLogger(__name__)


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _templates() -> list[tuple[CanonicalEvent, Decision]]:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    out = []
    deny = Decision(
        "deny", (Reason("rail1-agent-in-prod", 1, "high", "Agent acted on production"),), "a" * 64
    )
    allow = Decision("allow", (), "a" * 64)
    for i in range(256):
        ev = CanonicalEvent(
            event_id=f"bench:{i}",
            occurred_at=t0 + timedelta(seconds=i),
            source="agent",
            actor=Actor(f"agent:coder-{i % 7}", "agent", "alice@example.com", f"sess-{i % 13}"),
            action=("sql:AlterTable", "shell:Exec", "git:Push", "s3:GetObject")[i % 4],
            resource=Resource(
                f"db://prod-db-{i % 5}/payments", "database", ("prod", "dev")[i % 2], "123456789012"
            ),
            change=Change(
                task="fix the flaky migration in payments", diff_sha256="b" * 64, commit=f"{i:040x}"
            ),
            attributes={"tool": "Bash", "user_agent": "claude-code/2.0"},
        )
        out.append((ev, deny if i % 10 == 0 else allow))
    return out


def _records(
    start: int, n: int, tmpl: list[tuple[CanonicalEvent, Decision]]
) -> list[tuple[CanonicalEvent, Decision]]:
    return [
        (replace(ev, event_id=f"bench:{start + k}"), dec)
        for k, (ev, dec) in ((k, tmpl[(start + k) % len(tmpl)]) for k in range(n))
    ]


def _raw_reference(entries: list[bytes], batch: int, path: Path) -> float:
    """SHA-256 of each entry plus an Arrow batch insert of (seq, entry, hash), commit per batch."""
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE raw (seq BIGINT, entry BLOB, h BLOB)")
    t = time.perf_counter()
    for off in range(0, len(entries), batch):
        chunk = entries[off : off + batch]
        hs = [hashlib.sha256(b"\x00" + e).digest() for e in chunk]
        tbl = pa.table(
            {
                "seq": pa.array(range(off, off + len(chunk)), pa.int64()),  # noqa: F841
                "entry": pa.array(chunk, pa.binary()),
                "h": pa.array(hs, pa.binary()),
            }
        )
        con.execute("BEGIN")
        con.register("tbl", tbl)
        con.execute("INSERT INTO raw SELECT * FROM tbl")
        con.unregister("tbl")
        con.execute("COMMIT")
    dt = time.perf_counter() - t
    con.close()
    return len(entries) / dt


def run_ledger_bench(
    n: int, batch: int, workdir: Path | None = None, *, progress: bool = False
) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="railbook-bench-", dir=workdir))
    try:
        return _run(n, batch, base, progress)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(n: int, batch: int, base: Path, progress: bool) -> dict[str, Any]:
    tmpl = _templates()
    res: dict[str, Any] = {"entries": n, "batch": batch}
    # raw SHA-256 rate on typical entry bytes
    sample = [
        canonical_json({"v": 1, "seq": i, "event": ev.to_dict(), "decision": d.to_dict()})
        for i, (ev, d) in enumerate(_records(0, 20_000, tmpl))
    ]
    res["entry_bytes_avg"] = int(statistics.mean(len(e) for e in sample))
    t = time.perf_counter()
    for e in sample * 5:
        hashlib.sha256(b"\x00" + e).digest()
    res["raw_sha256_per_s"] = int(len(sample) * 5 / (time.perf_counter() - t))
    # references: hashing + DuckDB insert of pre-serialised entries; and with canonical JSON too
    ref_n = min(n, 200_000)
    ref_entries = [sample[i % len(sample)] for i in range(ref_n)]
    res["ref_hash_insert_per_s"] = int(_raw_reference(ref_entries, batch, base / "raw.duckdb"))
    recs = _records(0, min(ref_n, 50_000), tmpl)
    t = time.perf_counter()
    js = [
        canonical_json({"v": 1, "seq": i, "event": ev.to_dict(), "decision": d.to_dict()})
        for i, (ev, d) in enumerate(recs)
    ]
    json_s = (time.perf_counter() - t) / len(recs)
    res["ref_json_hash_insert_per_s"] = int(1 / (json_s + 1 / res["ref_hash_insert_per_s"]))
    del js, ref_entries
    # the ledger
    config = Config.model_validate(
        {
            "ledger": {
                "path": str(base / "ledger.duckdb"),
                "checkpoint_every": max(batch, n // 20),
                "checkpoint_seconds": 3600,
            }
        }
    )
    rss: list[float] = []
    t_append = 0.0
    with Ledger.open(config) as led:
        for off in range(0, n, batch):
            recs = _records(off, min(batch, n - off), tmpl)
            t = time.perf_counter()
            led.append(recs)
            t_append += time.perf_counter() - t
            if off // batch % max(1, n // batch // 10) == 0:
                rss.append(_rss_mb())
                if progress:
                    logger.warning("bench append %d/%d rss=%sMB", off + len(recs), n, rss[-1])
        led.checkpoint()
    res["append_per_s"] = int(n / t_append)
    res["append_vs_ref_hash_insert"] = round(res["append_per_s"] / res["ref_hash_insert_per_s"], 3)
    res["append_vs_ref_json_hash_insert"] = round(res["append_per_s"] / res["ref_json_hash_insert_per_s"], 3)
    res["rss_mb_during_append"] = rss
    res["ledger_file_mb"] = round((base / "ledger.duckdb").stat().st_size / 1e6, 1)
    # verify
    t = time.perf_counter()
    report = verify_ledger(config)
    dt = time.perf_counter() - t
    res["verify_ok"] = report.ok
    res["verify_per_s"] = int(n / dt)
    res["rss_mb_after_verify"] = _rss_mb()
    # proofs
    rng = random.Random(7)
    with Ledger.open(config, read_only=True) as led:
        lat_inc, lat_con = [], []
        for _ in range(200):
            i = rng.randrange(n)
            t = time.perf_counter()
            led.inclusion_proof(i, n)
            lat_inc.append((time.perf_counter() - t) * 1000)
            m = rng.randrange(1, n)
            t = time.perf_counter()
            led.consistency_proof(m, n)
            lat_con.append((time.perf_counter() - t) * 1000)
    res["inclusion_proof_ms_p50"] = round(statistics.median(lat_inc), 3)
    res["inclusion_proof_ms_p99"] = round(sorted(lat_inc)[int(len(lat_inc) * 0.99) - 1], 3)
    res["consistency_proof_ms_p50"] = round(statistics.median(lat_con), 3)
    res["consistency_proof_ms_p99"] = round(sorted(lat_con)[int(len(lat_con) * 0.99) - 1], 3)
    return res
