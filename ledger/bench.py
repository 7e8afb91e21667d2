"""``railbook bench ledger``: issue 4's speed targets, each measured against a reference from the same run.

Targets (issue 4, "Speed"):

- append >= 50% of the raw rate of SHA-256 plus a DuckDB insert of the same rows: ready-made rows,
  every column the ledger stores, into the ledger's own ``entries`` table, one commit per batch,
  measured in the same run on the same kind of connection (``_raw_reference``). Up to
  ``_FIRST_ROWS`` entries it runs before and after the appends and the faster of the two is the
  reference (the stricter comparison); beyond, DuckDB's own insert slows as the table grows, so the
  reference inserts all the rows, into a table growing as the ledger's did. What the ledger
  adds on top — canonical encoding, chain, tree nodes, checkpoints and segments — is what the ratio
  measures. A 3-column insert ``(seq, entry, hash)`` is also reported: it stores far less than
  the issue requires, so it is not the target's reference;
- full verification >= 200k entries/s;
- inclusion and consistency proofs < 5 ms at 10M entries (p99 over random leaves and sizes), also
  reported at the size actually appended;
- memory flat as the ledger grows: the peak RSS sampled while appending the last 80 % must stay
  within 64 MB of the peak over the first 20 % (peak against peak: RSS rises and falls within
  every checkpoint interval as DuckDB's cache fills and empties).

Ten million real appends take longer than a benchmark run should, so the 10M proofs run over a
synthetic tree (``ledger._synthetic``) built with the ledger's own schema and indexes and real
RFC 6962 hashes, read through the same ``ledger._query.fetch_nodes`` and ``ledger.proofs`` code a
``Ledger`` uses; sampled proofs are checked with ``ledger.merkle``. The results say so.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from core.config import Config
from core.event import Actor, CanonicalEvent, Change, Resource
from ledger import _query
from ledger._columns import insert_entries_sql
from ledger._schema import SCHEMA
from ledger._synthetic import build_synthetic_tree, synthetic_entry
from ledger.entry import encode_entry
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.proofs import NodeId, consistency_proof_at, inclusion_proof_at, root_at
from ledger.store import Ledger, configure_connection, open_connection
from ledger.verify import verify_ledger
from policy import Decision, Reason

__all__ = ["TARGETS", "run_ledger_bench"]

logger = logging.getLogger(__name__)

#: name -> (what the issue asks, threshold); see ``_targets``
TARGETS: dict[str, tuple[str, float]] = {
    "append_vs_reference": (">= 0.5 x raw SHA-256 + DuckDB insert of the same rows (same run)", 0.5),
    "verify_per_s": (">= 200,000 entries/s", 200_000),
    "proof_ms_p99_at_10m": ("< 5 ms (inclusion and consistency, p99) at 10M entries", 5.0),
    "memory_flat": ("peak RSS over the last 80% of the appends <= 64 MB above the first 20%'s", 64.0),
}
_PROGRESS = Callable[[str], None]


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


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
        (replace(ev, event_id=_event_id(start + k)), dec)
        for k, (ev, dec) in ((k, tmpl[(start + k) % len(tmpl)]) for k in range(n))
    ]


#: rows of the reference measured before and after the appends (the first rows the ledger appends)
_FIRST_ROWS = 500_000


def _event_id(i: int, prefix: str = "bench") -> str:
    """A random-looking id, as real ones are (CloudTrail event ids and GitHub deliveries are UUIDs):
    ids in order would flatter any index over them."""
    return f"{prefix}:{uuid.UUID(bytes=hashlib.blake2b(i.to_bytes(8, 'little'), digest_size=16).digest())}"


def _entry_rows(entries: list[bytes]) -> pa.Table:
    """The rows the ledger stores for ``entries``, every column, as an Arrow table in the ``entries``
    table's column order: derived once, outside any timing, by the ledger's own SQL (in memory)."""
    con = duckdb.connect()
    try:
        con.execute(SCHEMA[0])
        src = pa.table(
            {
                "seq": pa.array(range(len(entries)), pa.int64()),
                "entry": pa.array(entries, pa.binary()),
                "leaf_hash": pa.array([b"\x00" * 32] * len(entries), pa.binary()),
                "chain_hash": pa.array([b"\x00" * 32] * len(entries), pa.binary()),
            }
        )
        con.register("src", src)
        con.execute(insert_entries_sql("src"))
        return con.sql("SELECT * FROM entries ORDER BY seq").to_arrow_table()
    finally:
        con.close()


def _raw_reference(
    entries: list[bytes], rows: pa.Table | None, n: int, batch: int, path: Path, *, first_seq: int = 0
) -> float:
    """SHA-256 of each entry plus one Arrow batch insert and commit per batch of ``batch``, on a
    connection set up like the ledger's (``configure_connection``).

    ``rows`` given (the target's reference): the ledger's own ``entries`` table (same schema, seq
    index) receives exactly the rows the ledger stores for these entries, made
    beforehand (``_entry_rows``), with fresh event ids and seqs and the hashes computed in the timed
    part — the raw cost of the same hashing and the same insert, without encoding, chain or tree.
    ``rows`` None: a 3-column table ``(seq, entry, hash)`` (narrower than what the issue requires the
    ledger to store; reported for comparison with earlier rounds).
    ``first_seq``: ``path`` is a copy of a ledger holding seqs below it (the same insert into a table
    of that size).
    """
    con = duckdb.connect(str(path))
    configure_connection(con)
    if rows is None:
        con.execute("CREATE TABLE raw (seq BIGINT, entry BLOB, h BLOB)")
        insert = "INSERT INTO raw SELECT * FROM tbl"
    else:
        con.execute(SCHEMA[0])
        con.execute("CREATE INDEX IF NOT EXISTS entries_seq ON entries (seq)")
        insert = "INSERT INTO entries SELECT * FROM tbl"
    sha = hashlib.sha256
    elapsed = 0.0
    for off in range(0, n, batch):
        m = min(batch, n - off)
        chunk = [entries[(off + k) % len(entries)] for k in range(m)]
        if rows is not None:
            made = rows.take(pa.array([(off + k) % len(entries) for k in range(m)], pa.int64()))
            ids = pa.array([_event_id(first_seq + off + k, "ref") for k in range(m)], pa.string())
        t = time.perf_counter()
        hs = pa.array([sha(b"\x00" + e).digest() for e in chunk], pa.binary())
        seqs = pa.array(range(first_seq + off, first_seq + off + m), pa.int64())
        if rows is None:
            tbl = pa.table({"seq": seqs, "entry": pa.array(chunk, pa.binary()), "h": hs})
        else:
            tbl = made
            fresh = {"seq": seqs, "event_id": ids, "leaf_hash": hs, "chain_hash": hs}
            for name, values in fresh.items():
                tbl = tbl.set_column(tbl.schema.get_field_index(name), name, values)
        con.execute("BEGIN")
        con.register("tbl", tbl)
        con.execute(insert)
        con.unregister("tbl")
        con.execute("COMMIT")
        elapsed += time.perf_counter() - t
    con.close()
    return n / elapsed


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)


def _proof_latency(
    size: int,
    fetch: Callable[[Sequence[NodeId]], Sequence[bytes]],
    samples: int,
    rng: random.Random,
) -> dict[str, Any]:
    inc: list[float] = []
    con: list[float] = []
    for _ in range(samples):
        i = rng.randrange(size)
        t = time.perf_counter()
        inclusion_proof_at(i, size, fetch)
        inc.append((time.perf_counter() - t) * 1000)
        m = rng.randrange(1, size)
        t = time.perf_counter()
        consistency_proof_at(m, size, fetch)
        con.append((time.perf_counter() - t) * 1000)
    return {
        "samples": samples,
        "inclusion_ms_p50": round(statistics.median(inc), 3),
        "inclusion_ms_p99": _percentile(inc, 0.99),
        "consistency_ms_p50": round(statistics.median(con), 3),
        "consistency_ms_p99": _percentile(con, 0.99),
    }


def _store_fetcher(
    con: duckdb.DuckDBPyConnection, upper: _query.UpperNodes | None
) -> Callable[[Sequence[NodeId]], list[bytes]]:
    """The fetcher a ``Ledger`` uses: upper levels from memory (``upper``), the rest by one query."""

    def fetch(ids: Sequence[NodeId]) -> list[bytes]:
        got = _query.fetch_nodes(con, ids, upper)
        return [got[n] for n in ids]

    return fetch


def _load_upper(con: duckdb.DuckDBPyConnection) -> tuple[_query.UpperNodes, float]:
    t = time.perf_counter()
    upper = _query.UpperNodes.load(con)
    return upper, round((time.perf_counter() - t) * 1000, 1)


def _synthetic_proofs(base: Path, size: int, samples: int, rng: random.Random) -> dict[str, Any]:
    path = base / "synthetic.duckdb"
    build_seconds = build_synthetic_tree(path, size)
    con = open_connection(path, read_only=True)
    try:
        configure_connection(con, point_reads=True)  # as `railbook prove` has it
        upper, load_ms = _load_upper(con)  # what Ledger.open does
        fetch = _store_fetcher(con, upper)
        out = _proof_latency(size, fetch, samples, rng)
        out["upper_levels"] = {"level_from": _query.CACHE_LEVEL, "nodes": len(upper), "load_ms": load_ms}
        root = root_at(size, fetch)
        checked = 0
        for _ in range(20):  # proofs from the stored tree must verify against leaves hashed here
            i = rng.randrange(size)
            proof = inclusion_proof_at(i, size, fetch)
            m = rng.randrange(1, size)
            cproof = consistency_proof_at(m, size, fetch)
            if not verify_inclusion(leaf_hash(synthetic_entry(i)), i, size, proof, root):
                raise AssertionError(f"synthetic inclusion proof of leaf {i} does not verify")
            if not verify_consistency(m, size, root_at(m, fetch), root, cproof):
                raise AssertionError(f"synthetic consistency proof {m} -> {size} does not verify")
            checked += 2
    finally:
        con.close()
    out.update(
        {
            "source": "synthetic tree: entries/nodes tables with the ledger's schema, indexes and stored "
            "levels (8, 16, …), real RFC 6962 hashes computed set-wise in DuckDB, read via "
            "ledger._query.fetch_nodes with the upper levels in memory as a Ledger holds them "
            "(loaded on open; cold buffer otherwise)",
            "build_seconds": round(build_seconds, 1),
            "proofs_verified": checked,
            "file_mb": round(path.stat().st_size / 1e6, 1),
        }
    )
    path.unlink()
    return out


def run_ledger_bench(
    n: int,
    batch: int,
    workdir: Path | None = None,
    *,
    synthetic_size: int = 10_000_000,
    samples: int = 200,
    progress: _PROGRESS | None = None,
) -> dict[str, Any]:
    """Run the benchmark in a scratch directory (removed afterwards); returns the results document."""
    if workdir is not None:  # a scratch directory named on the command line need not exist yet
        workdir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="railbook-bench-", dir=workdir))
    try:
        return _run(n, batch, base, synthetic_size, samples, progress or (lambda _msg: None))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(n: int, batch: int, base: Path, synthetic_size: int, samples: int, say: _PROGRESS) -> dict[str, Any]:
    if n < 2:
        raise ValueError(f"--entries must be at least 2, got {n}")
    tmpl = _templates()
    res: dict[str, Any] = {
        "entries": n,
        "batch": batch,
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": _loadavg(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    # --- references -----------------------------------------------------------------------------
    say("reference: raw SHA-256, and SHA-256 + DuckDB insert of the ledger's rows for ready-made entries")
    now_s = "2026-03-01T00:00:00.000000Z"
    sample = [encode_entry(i, now_s, ev, d) for i, (ev, d) in enumerate(_records(0, 20_000, tmpl))]
    ref: dict[str, Any] = {"entry_bytes_avg": int(statistics.mean(len(e) for e in sample))}
    t = time.perf_counter()
    for e in sample * 5:
        hashlib.sha256(b"\x00" + e).digest()
    ref["raw_sha256_per_s"] = int(len(sample) * 5 / (time.perf_counter() - t))
    ref_n = min(n, _FIRST_ROWS)
    ref["hash_insert_entries"] = ref_n
    rows = _entry_rows(sample)

    def references() -> tuple[int, int]:
        """(the target's reference: same rows into the ledger's table, the 3-column one)"""
        out = []
        for made in (rows, None):
            out.append(int(_raw_reference(sample, made, ref_n, batch, base / "raw.duckdb")))
            (base / "raw.duckdb").unlink()
        return out[0], out[1]

    before, narrow_before = references()
    res["reference"] = ref
    # --- append ----------------------------------------------------------------------------------
    config = Config.model_validate(
        {
            "ledger": {
                "path": str(base / "ledger.duckdb"),
                "checkpoint_every": max(batch, n // 20),
                "checkpoint_seconds": 3600,
            }
        }
    )
    rss: list[tuple[int, float]] = []
    t_append = 0.0
    # records are built outside the timed calls, a group of batches at a time (>= 10 RSS samples)
    group = batch * max(1, min(20, n // batch // 10))
    done = 0
    with Ledger.open(config) as led:
        for g in range(0, n, group):
            batches = [_records(off, min(batch, n - off), tmpl) for off in range(g, min(g + group, n), batch)]
            t = time.perf_counter()
            done += led.append_many(batches)
            t_append += time.perf_counter() - t
            rss.append((done, _rss_mb()))
            say(f"append {done:,}/{n:,}  {int(done / t_append):,}/s  rss {rss[-1][1]} MB")
        led.checkpoint()
    append: dict[str, Any] = {
        "per_s": int(n / t_append),
        "note": "wall time inside Ledger.append_many (one transaction per batch of "
        f"{batch:,}, as Ledger.append): encoding, hashing, chain, tree nodes, insert, commit, and a signed "
        f"checkpoint + Parquet segment every {config.ledger.checkpoint_every:,} entries; batch k+1 is "
        "encoded while batch k commits on a helper thread (two threads; the reference uses one)",
        "rss_mb_at_size": rss,
        "ledger_file_mb": round((base / "ledger.duckdb").stat().st_size / 1e6, 1),
    }
    # the reference again after the appends: on a shared machine one run of it can land in a load
    # spike; the faster of the two (the stricter comparison) is the one the target uses
    say("reference again, after the appends")
    after, narrow_after = references()
    ref["hash_insert"] = (
        "SHA-256 of each entry + Arrow insert of the rows the ledger stores for it (all columns, the "
        "ledger's own entries table and indexes) + COMMIT per batch; no encoding, chain or tree"
    )
    ref["hash_insert_per_s_before_after"] = [before, after]
    ref["hash_insert_first_rows_per_s"] = max(before, after)
    ref["hash_insert_narrow"] = "the same into a 3-column table (seq, entry, hash): less than is stored"
    ref["hash_insert_narrow_per_s_before_after"] = [narrow_before, narrow_after]
    ref["hash_insert_narrow_per_s"] = max(narrow_before, narrow_after)
    append["vs_first_rows_reference"] = round(append["per_s"] / ref["hash_insert_first_rows_per_s"], 3)
    if n > ref_n:
        # DuckDB's own insert slows as its table grows (measured: 86k/s into a fresh table, 60k/s
        # into a copy of a 10M-entry ledger), so the rows a ledger of n entries appends cost more
        # than its first ref_n. The same rows, n of them, into a table growing from 0 to n exactly
        # as the ledger's does: the raw cost of the same work, and so the target's reference.
        say(f"reference again, all {n:,} rows (the same table growth as the ledger's)")
        ref["hash_insert_all_rows_per_s"] = int(_raw_reference(sample, rows, n, batch, base / "raw.duckdb"))
        (base / "raw.duckdb").unlink()
        ref["hash_insert_per_s"] = ref["hash_insert_all_rows_per_s"]
    else:
        ref["hash_insert_per_s"] = ref["hash_insert_first_rows_per_s"]
    append["vs_reference"] = round(append["per_s"] / ref["hash_insert_per_s"], 3)
    append["vs_narrow_reference"] = round(append["per_s"] / ref["hash_insert_narrow_per_s"], 3)
    res["append"] = append
    # --- verify ----------------------------------------------------------------------------------
    say("verify: the whole ledger")
    t = time.perf_counter()
    report = verify_ledger(config)
    dt = time.perf_counter() - t
    res["verify"] = {
        "ok": report.ok,
        "per_s": int(n / dt),
        "seconds": round(dt, 2),
        "rss_mb_after": _rss_mb(),
    }
    if not report.ok:
        raise AssertionError(f"benchmark ledger does not verify: {report.problems[:3]}")
    # --- proofs ----------------------------------------------------------------------------------
    rng = random.Random(7)
    say(f"proofs at {n:,} (the appended ledger)")
    proofs: dict[str, Any] = {}
    with Ledger.open(config, point_reads=True) as led:  # as `railbook prove` opens it
        led.root_at(n)  # loads the upper levels, as a Ledger's first proof does
        real = _proof_latency(n, led._proof_nodes, samples, rng)
    real["source"] = (
        "the appended ledger, opened as `railbook prove` does (Ledger's own fetcher: upper levels in memory)"
    )
    proofs[str(n)] = real
    if synthetic_size > 0:
        say(f"proofs at {synthetic_size:,}: building a synthetic tree (see ledger/_synthetic.py)")
        proofs[str(synthetic_size)] = _synthetic_proofs(base, synthetic_size, samples, rng)
    res["proofs"] = proofs
    res["loadavg_1m_at_end"] = _loadavg()
    res["targets"] = _targets(res, synthetic_size)
    return res


def _targets(res: dict[str, Any], synthetic_size: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, measured: float | None, ok: bool | None, how: str) -> None:
        want, _ = TARGETS[name]
        status = "NOT MEASURED" if ok is None else ("PASS" if ok else "MISS")
        out.append({"target": name, "wanted": want, "measured": measured, "status": status, "how": how})

    append, ref = res["append"], res["reference"]
    ratio = append["vs_reference"]
    add(
        "append_vs_reference",
        ratio,
        ratio >= TARGETS["append_vs_reference"][1],
        f"{append['per_s']:,}/s vs reference {res['reference']['hash_insert_per_s']:,}/s (same rows; "
        f"{append['vs_narrow_reference']}x of {res['reference']['hash_insert_narrow_per_s']:,}/s "
        "into 3 columns"
        + (
            f"; {append['vs_first_rows_reference']}x of {ref['hash_insert_first_rows_per_s']:,}/s "
            f"for its first {ref['hash_insert_entries']:,} rows only"
            if "hash_insert_all_rows_per_s" in ref
            else ""
        )
        + ")",
    )
    v = res["verify"]["per_s"]
    add("verify_per_s", v, v >= TARGETS["verify_per_s"][1], f"{v / TARGETS['verify_per_s'][1]:.2f} x target")
    big = res["proofs"].get(str(max(synthetic_size, 10_000_000)))
    if big is None and res["entries"] >= 10_000_000:
        big = res["proofs"][str(res["entries"])]
    if big is not None:
        worst = max(big["inclusion_ms_p99"], big["consistency_ms_p99"])
        add(
            "proof_ms_p99_at_10m",
            worst,
            worst < TARGETS["proof_ms_p99_at_10m"][1],
            f"worst p99 of inclusion/consistency; {big['source'].split(':')[0]}",
        )
    else:
        add("proof_ms_p99_at_10m", None, None, "no tree of 10M entries in this run (--synthetic-size)")
    rss = res["append"]["rss_mb_at_size"]
    if len(rss) >= 5:
        # peak against peak: RSS rises and falls within each checkpoint interval (DuckDB's cache
        # fills, and is emptied at the checkpoint), so one sample against a later peak would measure
        # where in that cycle the sample fell, not growth. Samples span >= 4 intervals per 20 %.
        cut = len(rss) // 5
        early, late = max(mb for _, mb in rss[:cut]), max(mb for _, mb in rss[cut:])
        growth = round(late - early, 1)
        low_early, low_late = min(mb for _, mb in rss[:cut]), min(mb for _, mb in rss[cut:])
        add(
            "memory_flat",
            growth,
            growth <= TARGETS["memory_flat"][1],
            f"peak RSS {early} MB up to {rss[cut - 1][0]:,} entries -> {late} MB after "
            f"(lowest {low_early} -> {low_late} MB)",
        )
    else:
        add("memory_flat", None, None, "too few RSS samples (use more entries)")
    return out
