"""``--source event``: canonical JSON in; configuration wins over claims; hypothesis round trip."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from core.event import Actor, CanonicalEvent, Change, Resource, event_from_dict
from ingest import normalise_record
from tests.unit.ingest.helpers import run


def _event(**kw):
    base = {
        "event_id": "ci:run-1",
        "occurred_at": "2026-01-02T03:04:05.000006Z",
        "source": "ci",
        "actor": {"id": "pipeline:deploy", "kind": "pipeline"},
        "action": "sql:AlterTable",
        "resource": {"id": "db://prod-db.internal/ledger", "type": "database", "environment": "prod"},
    }
    base.update(kw)
    return base


def test_claims_that_disagree_with_configuration_are_recorded(config):
    record = _event(
        actor={"id": "agent:claude-code", "kind": "human"},
        resource={"id": "db://prod-db.internal/ledger", "type": "database", "environment": "dev"},
    )
    [ev] = normalise_record(record, source="event", where="x", config=config)
    assert ev.actor.kind == "agent" and ev.attributes["claimed.actor.kind"] == "human"
    assert ev.resource.environment == "prod" and ev.attributes["claimed.resource.environment"] == "dev"


def test_agreeing_claims_leave_no_trace_and_raw_stays_the_producers(config):
    [ev] = normalise_record(_event(), source="event", where="x", config=config)
    assert ev.actor.kind == "pipeline" and "claimed.actor.kind" not in ev.attributes
    assert ev.resource.environment == "prod" and "claimed.resource.environment" not in ev.attributes
    assert ev.raw is None and ev.raw_sha256 is not None


def test_free_text_is_redacted(config):
    record = _event(attributes={"note": "used password=hunter2"}, change={"task": "charge 4111111111111111"})
    [ev] = normalise_record(record, source="event", where="x", config=config)
    assert "hunter2" not in ev.attributes["note"] and "4111111111111111" not in (ev.change.task or "")
    assert set(ev.resource.data_classes) >= {"pci", "secret"}


def test_schema_errors_are_dead_letters(config):
    events, dead = run(
        [_event(), _event(action="nonamespace"), _event(occurred_at="2026-01-01")], config, source="event"
    )
    assert len(events) == 1 and [d.reason for d in dead] == ["schema", "schema"]
    assert [d.where for d in dead] == ["test#1", "test#2"]


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@st.composite
def events(draw):
    return CanonicalEvent(
        event_id="e:" + draw(_text),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC).replace(microsecond=draw(st.integers(0, 999_999))),
        source="agent",
        actor=Actor(
            id=draw(st.sampled_from(["agent:a", "alice@example.com", "pipeline:deploy", "x"])),
            kind=draw(st.sampled_from(["agent", "human", "pipeline", "unknown"])),
            on_behalf_of=draw(st.none() | _text),
        ),
        action="sql:" + draw(st.sampled_from(["AlterTable", "Select"])),
        resource=Resource(
            id=draw(st.sampled_from(["db://prod-db.internal/x", "db://elsewhere/x", "s3://b"])),
            environment=draw(st.sampled_from(["prod", "dev", "unknown"])),
        ),
        change=Change(ticket=draw(st.none() | st.from_regex(r"[A-Z]{2,4}-[0-9]{1,4}", fullmatch=True))),
        attributes=draw(
            st.dictionaries(
                st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                st.from_regex(r"[a-z ]{0,20}", fullmatch=True),
                max_size=3,
            )
        ),
    )


@settings(max_examples=60, deadline=None)
@given(events())
def test_round_trip_event_json_event_json(config, ev):
    """event → JSON → normalised event → JSON → event is stable (a second pass changes nothing)."""
    [once] = normalise_record(ev.to_dict(), source="event", where="h", config=config)
    [twice] = normalise_record(once.to_dict(), source="event", where="h", config=config)
    assert event_from_dict(once.to_dict()) == once
    assert twice.to_dict() == {**once.to_dict(), "raw_sha256": twice.raw_sha256}
    assert once.actor.kind == config.actor_kind(ev.actor.id)
