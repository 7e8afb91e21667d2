"""``SegmentReader``: the read API over published Parquet segments, never the live DuckDB file.

DuckDB admits one process per file, so the writer publishes, at every checkpoint, the entries since
the previous one as an immutable Parquet file (``entries-<start>-<end>-<root>.parquet``). Readers —
the dashboard, an auditor's notebook — open those in an in-memory DuckDB, query them with the same
methods as the ``Ledger``, and can re-verify them against the signed checkpoints file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from core.errors import LedgerError, ProofError
from ledger import _query
from ledger._reads import EntryReads
from ledger._schema import SCHEMA, SEGMENT_GLOB
from ledger.checkpoint import Checkpoint, read_checkpoints_file
from ledger.merkle import root_from_leaf_hashes
from ledger.note import Verifier
from ledger.proofs import NodeId, inclusion_proof_at

__all__ = ["SegmentReader"]

logger = logging.getLogger(__name__)


class SegmentReader(EntryReads):
    """Read-only queries over ``segments_dir`` (+ the checkpoints file). Call ``refresh()`` to see new segments."""  # noqa: E501

    def __init__(
        self,
        segments_dir: Path | str,
        checkpoints_file: Path | str | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.segments_dir = Path(segments_dir)
        self.checkpoints_file = Path(checkpoints_file) if checkpoints_file else None
        self.verifier = verifier
        self._con = duckdb.connect()
        self.refresh()

    @classmethod
    def from_config(cls, config: Any) -> SegmentReader:
        from ledger.keys import load_verifier, public_key_path

        pub = public_key_path(config.key_path)
        verifier = load_verifier(pub) if pub.exists() else None
        return cls(config.segments_dir, config.checkpoints_file, verifier)

    def refresh(self) -> None:
        """Re-scan the directory (segments are immutable; new ones appear at each checkpoint)."""
        files = sorted(self.segments_dir.glob(SEGMENT_GLOB)) if self.segments_dir.is_dir() else []
        self._con.execute("DROP VIEW IF EXISTS entries")
        self._con.execute("DROP TABLE IF EXISTS entries")
        if files:
            glob = str(self.segments_dir / SEGMENT_GLOB).replace("'", "''")
            self._con.execute(f"CREATE VIEW entries AS SELECT * FROM read_parquet('{glob}')")
        else:
            self._con.execute(SCHEMA[0])
        self._files = files

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def size(self) -> int:
        row = self._con.execute("SELECT count(*) FROM entries").fetchall()
        return int(row[0][0])

    def checkpoints(self) -> list[Checkpoint]:
        if self.checkpoints_file is None or not self.checkpoints_file.exists():
            return []
        try:
            return read_checkpoints_file(self.checkpoints_file)
        except ValueError as exc:
            raise LedgerError(str(exc)) from None

    def latest_checkpoint(self) -> Checkpoint | None:
        return max(self.checkpoints(), key=lambda c: c.tree_size, default=None)

    def stats(self) -> dict[str, Any]:
        out = _query.stats(self._con, "entries")
        cp = self.latest_checkpoint()
        out["last_checkpoint"] = cp.to_dict() if cp else None
        out["segments"] = len(self._files)
        return out

    def _leaf_hashes(self, n: int) -> list[bytes]:
        rows = self._con.execute("SELECT leaf_hash FROM entries WHERE seq < ? ORDER BY seq", [n]).fetchall()
        return [bytes(r[0]) for r in rows]

    def prove(self, event_id: str) -> dict[str, Any]:
        """Inclusion proof against the latest checkpoint, recomputed from the segments' leaf hashes."""
        entry = self.get(event_id)
        cp = self.latest_checkpoint()
        if entry is None:
            raise ProofError(f"event {event_id!r} is not in the published segments")
        if cp is None or cp.tree_size <= entry.seq:
            raise ProofError(
                f"event {event_id!r} (seq {entry.seq}) is not covered by a published checkpoint yet"
            )
        leaves = self._leaf_hashes(cp.tree_size)

        def fetch(ids: Sequence[NodeId]) -> list[bytes]:
            return [root_from_leaf_hashes(leaves[i << lv : (i + 1) << lv]) for lv, i in ids]

        proof = inclusion_proof_at(entry.seq, cp.tree_size, fetch)
        return {
            "event_id": event_id,
            "seq": entry.seq,
            "tree_size": cp.tree_size,
            "root_hash": cp.root_hash.hex(),
            "leaf_hash": entry.leaf_hash.hex(),
            "inclusion_proof": [p.hex() for p in proof],
            "checkpoint": cp.signed_note_text,
        }

    def verify(self) -> Any:
        """Re-verify the segments against the signed checkpoints (a ``ledger.verify.VerifyReport``)."""
        from ledger.verify import VerifyReport, _check_signatures, _verify_segments

        report = VerifyReport()
        cps = [(cp, str(self.checkpoints_file)) for cp in self.checkpoints()]
        if self.verifier is not None:
            _check_signatures(cps, self.verifier, None, report)
        _verify_segments(self.segments_dir, cps, report)
        report.tree_size = self.size
        return report
