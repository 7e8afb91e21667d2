"""The incident of DESIGN.md, from the command alone: an agent's ALTER TABLE on the production host."""

from __future__ import annotations

import json

from core.event import event_from_dict, sha256_hex
from ingest import normalise_bytes, normalise_record
from tests.unit.ingest.helpers import run

INCIDENT = "synthetic/claude-code.incident.PreToolUse.json"


def test_incident_is_an_agent_altering_a_prod_database(asset, config):
    data = asset(INCIDENT).read_bytes()
    events, dead = run(data, config, source="claude-code")
    assert dead == []
    [ev] = events
    assert ev.event_id == "claude-code:sess-7f3a:toolu_01"
    assert ev.source == "claude-code"
    assert ev.actor.id == "agent:claude-code"
    assert ev.actor.kind == "agent"
    assert ev.actor.on_behalf_of == "alice@example.com"
    assert ev.actor.session == "sess-7f3a"
    assert ev.action == "sql:AlterTable"
    assert ev.resource.type == "database"
    assert ev.resource.id == "db://prod-db.internal/ledger"
    assert ev.resource.environment == "prod"
    assert "secret" in ev.resource.data_classes
    assert ev.attributes["sql.table"] == "accounts"
    assert ev.change.task == "Fix the flaky accounts migration"
    command = json.loads(data)["tool_input"]["command"]
    assert ev.change.diff_sha256 == sha256_hex(command.encode())
    assert ev.occurred_at.isoformat() == "2026-03-02T09:14:07.250000+00:00"


def test_incident_password_never_stored(asset, config):
    data = asset(INCIDENT).read_bytes()
    [ev] = list(normalise_bytes(data, source=None, origin="hook.json", config=config))
    assert ev.raw is not None
    assert "s3cr3t" not in ev.raw
    assert "s3cr3t" not in json.dumps(ev.to_dict())
    cmd = json.loads(ev.raw)["tool_input"]["command"]
    assert "postgresql://migrator:[REDACTED:password]@prod-db.internal:5432/ledger" in cmd
    # the hash of the original is kept
    from core.canonical import canonical_json

    assert ev.raw_sha256 == sha256_hex(canonical_json(json.loads(data)))


def test_incident_round_trips_through_the_canonical_shape(asset, config):
    record = json.loads(asset(INCIDENT).read_text())
    [ev] = normalise_record(record, source="claude-code", where="hook", config=config)
    assert event_from_dict(ev.to_dict()) == ev


def test_incident_without_identity_fields_is_still_an_agent(asset, config):
    record = json.loads(asset(INCIDENT).read_text())
    for key in [k for k in record if k.startswith("railbook_")]:
        del record[key]
    [ev] = normalise_record(record, source="claude-code", where="hook", config=config)
    assert (ev.actor.id, ev.actor.kind, ev.actor.on_behalf_of) == ("agent:claude-code", "agent", None)
    assert ev.action == "sql:AlterTable" and ev.resource.environment == "prod"
    assert ev.attributes["time_source"] == "ingest"


def test_declared_environment_loses_to_configuration(asset, config):
    record = json.loads(asset(INCIDENT).read_text())
    record["railbook_environment"] = "dev"
    [ev] = normalise_record(record, source="claude-code", where="hook", config=config)
    assert ev.resource.environment == "prod"
    assert ev.attributes["claimed.resource.environment"] == "dev"


def test_unconfigured_host_stays_unknown(asset, config):
    record = json.loads(asset(INCIDENT).read_text())
    record["tool_input"]["command"] = record["tool_input"]["command"].replace(
        "prod-db.internal", "db.example"
    )
    [ev] = normalise_record(record, source="claude-code", where="hook", config=config)
    assert ev.resource.environment == "unknown"
    assert ev.action == "sql:AlterTable"
