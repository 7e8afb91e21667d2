"""Page logic over a real on-disk ledger: the SQL aggregates, the segments reader, in-process
submission through the real policy engine, evidence packs that verify, and verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.config import Config
from dashboard import open_backend
from dashboard._aggregates import _sql_for, daily_counts, distinct_values, totals
from dashboard._approvals import approval_event, pending_requests
from dashboard._events import EventFilter, fetch_page
from dashboard._overview import overview
from dashboard._seed import seed_ledger, story, synthetic
from dashboard._violations import ViolationFilter, acknowledgement_event, fetch_violations

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path) -> Config:
    cfg = Config.model_validate(
        {
            "ledger": {"path": str(tmp_path / "ledger.duckdb")},
            "identities": {"approvers": ["alice@example.com", "carol@example.com", "bob@example.com"]},
        }
    )
    seed_ledger(cfg, [*story(), *synthetic(500)])
    return cfg


@pytest.mark.parametrize("mode", ["file", "segments"])
def test_sql_path_matches_the_fallback(config: Config, mode: Any) -> None:
    b = open_backend(config, mode=mode)
    with b.source.reader() as reader:
        assert _sql_for(reader) is not None, "the ledger reader should answer aggregates in SQL"
        t = totals(reader)
        assert t.entries == 529
        scanned = reader.entries(limit=10_000)
        assert t.violations == sum(1 for e in scanned if e.decision.is_violation)
        per_day = daily_counts(reader)
        assert sum(d.count for d in per_day if d.rail is None) == 529
        assert sum(d.count for d in per_day if d.rail is not None) == sum(
            len(e.decision.rails) for e in scanned if e.decision.is_violation
        )
        assert "agent" in distinct_values(reader, "source")
        rows, _, more = fetch_violations(reader, ViolationFilter(severity="critical"), page_size=5)
        assert rows and all(r["severity"] == "critical" for r in rows) and more
        page = fetch_page(reader, EventFilter(text="legacy_hold"), page_size=10)
        assert [r["event_id"] for r in page.rows] == ["agent:sess-81:alter"]
        ov = overview(reader, checkpoints=b.checkpoints(), verification=None)
        assert ov.checkpoint is not None and ov.checkpoint["tree_size"] == 529


def test_offline_approval_and_acknowledgement_are_appended(config: Config) -> None:
    b = open_backend(config)  # no service: in-process through the real pipeline
    with b.source.reader() as reader:
        req = next(r for r in pending_requests(reader) if r.request_id == "req-drop-tmp")
        violation = reader.get("agent:sess-81:alter")
    with pytest.raises(PermissionError, match="approver-is-instructing-human"):
        approval_event(config, "bob@example.com", req, "grant")
    receipt = b.submitter.submit_approval(
        approval_event(config, "alice@example.com", req, "grant"), token=None
    )
    assert receipt.seq == 529 and receipt.via == "in-process"
    ack = acknowledgement_event(config, "carol@example.com", violation, "restored; INC-7")
    assert b.submitter.submit_event(ack, token=None).seq == 530
    with b.source.reader() as reader:
        assert "req-drop-tmp" not in [r.request_id for r in pending_requests(reader)]
        rows, _, _ = fetch_violations(reader, ViolationFilter(open_only=True), page_size=500)
        assert "agent:sess-81:alter" not in [r["event_id"] for r in rows]
    seg = open_backend(config, mode="segments")  # the submit signed a checkpoint: segments see it too
    with seg.source.reader() as reader:
        assert reader.get(ack.event_id) is not None


@pytest.mark.parametrize("mode", ["file", "segments"])
def test_evidence_pack_verifies_and_verification_passes(config: Config, mode: Any) -> None:
    from ledger import verify_evidence

    b = open_backend(config, mode=mode)
    pack = b.evidence_pack(event_id="agent:sess-81:alter")
    report = verify_evidence(pack)
    assert report.ok, report.to_dict()
    change = b.evidence_pack(commit="9f3c2ab47e1d")
    assert verify_evidence(change).ok
    seen: list[float] = []
    status = b.verify(lambda f, _t: seen.append(f))
    assert status.ok, status.message
    assert seen and seen[-1] == 1.0
    assert b.verification() == status
