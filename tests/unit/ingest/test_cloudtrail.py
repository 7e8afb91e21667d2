"""CloudTrail adapter on the real public samples (tests/assets/cloudtrail) and hostile variants."""

from __future__ import annotations

import copy
import gzip
import json

import pytest

from ingest import normalise_record
from tests.unit.ingest.helpers import load, run

STRATUS = "cloudtrail/stratus-red-team/"
AWSDOCS = "cloudtrail/awsdocs-iam-user-guide/"
DDB = "cloudtrail/awsdocs-dynamodb-developer-guide/"


def test_every_sample_is_normalised_or_dead_lettered_with_a_reason(asset, config):
    root = asset(STRATUS + "aws.persistence.iam-backdoor-user.json").parents[1]
    ok = dead = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        events, letters = run(path.read_bytes(), config, source="cloudtrail", origin=path.name)
        for ev in events:
            assert ev.event_id.startswith("cloudtrail:") and ev.source == "cloudtrail"
            assert ev.raw and ev.raw_sha256 and ":" in ev.action
        if "INVALID-JSON" in path.name:
            assert events == [] and [d.reason for d in letters] == ["not-json"]
            assert "line" in letters[0].detail and path.name in letters[0].detail
        else:
            assert letters == [], letters
        ok += len(events)
        dead += len(letters)
    assert (ok, dead) == (80, 3)  # PROVENANCE.md: 80 parseable records + 3 published-but-invalid


def test_iam_user_attach_role_policy(asset, config):
    events, _ = run(asset(STRATUS + "aws.persistence.iam-create-backdoor-role.json").read_bytes(), config)
    ev = next(e for e in events if e.action == "iam:AttachRolePolicy")
    assert ev.event_id == "cloudtrail:39480357-0a1d-4531-a3f2-71be4c041c25"
    assert ev.actor.id == "arn:aws:iam::609418236337:user/christophe"
    assert ev.actor.kind == "human"
    assert ev.actor.credential == "AKIA0W5KI69TY8X86BGT"
    assert ev.resource.id == "arn:aws:iam::609418236337:role/stratus-red-team-malicious-iam-role"
    assert ev.resource.type == "iam-role"
    assert ev.resource.account == "609418236337"
    assert ev.resource.environment == "unknown"  # account not configured: never a guess
    assert ev.occurred_at.isoformat() == "2024-08-01T13:37:41+00:00"
    assert ev.attributes["source_ip"] == "209.209.254.254"


def test_assumed_role_with_session_issuer_and_failed_call(asset, config):
    events, _ = run(asset(STRATUS + "aws.defense-evasion.organizations-leave.json").read_bytes(), config)
    ev = next(e for e in events if e.action == "organizations:LeaveOrganization")
    assert ev.actor.id.startswith("arn:aws:sts::307578594326:assumed-role/stratus-red-team-leave-org-role/")
    assert ev.actor.session == "aws-go-sdk-1722587398902687000"
    assert ev.actor.credential == "ASIA36EV31F1RB3OA8IG"
    assert ev.attributes["session_issuer"].startswith("arn:aws:iam::307578594326:role/")
    assert ev.attributes["error_code"] == "AccessDenied"
    assert ev.attributes["failed"] == "true"


def test_federated_user_and_stop_logging(asset, config):
    events, _ = run(asset(STRATUS + "aws.persistence.sts-federation-token.json").read_bytes(), config)
    fed = next(e for e in events if e.action == "sts:GetCallerIdentity")
    assert fed.actor.id == "arn:aws:sts::742491224508:federated-user/stratus_red_team"
    assert fed.actor.session == "stratus_red_team"
    [stop] = run(asset(STRATUS + "aws.defense-evasion.cloudtrail-stop.json").read_bytes(), config)[0]
    assert stop.action == "cloudtrail:StopLogging"


def test_records_file_gzipped_and_environment_from_config(asset, config):
    data = asset(DDB + "dynamodb.DeleteTable.Records.json").read_bytes()
    events, dead = run(gzip.compress(data), config, origin="trail.json.gz")
    assert dead == []
    [ev] = events
    assert ev.action == "dynamodb:DeleteTable"
    assert ev.resource.id == "arn:aws:dynamodb:us-west-2:111122223333:table/Music"
    assert ev.resource.environment == "prod"  # 111122223333 is configured as prod
    assert ev.actor.id == "arn:aws:sts::111122223333:assumed-role/users/bob"


def test_aws_account_identity_and_secret_in_response_redacted(asset, config):
    record = load(asset(AWSDOCS + "sts.AssumeRole.cross-account.role-account-side.AWSAccount.json"))
    [ev] = normalise_record(record, source="cloudtrail", where="x", config=config)
    assert ev.actor.id == "arn:aws:iam::777788889999:root"
    assert ev.actor.on_behalf_of is None
    assert ev.resource.id == "arn:aws:iam::111122223333:role/EC2-dev"
    assert "<encoded session token blob>" not in (ev.raw or "")
    assert "secret" in ev.resource.data_classes


def test_lambda_version_suffix_dropped(asset, config):
    [ev] = run(asset(STRATUS + "aws.persistence.lambda-backdoor-function.json").read_bytes(), config)[0]
    assert ev.action == "lambda:AddPermission"
    assert ev.attributes["event_name"] == "AddPermission20150331v2"


def test_eventbridge_envelope_and_source_identity(asset, config):
    detail = load(asset(AWSDOCS + "s3.DeleteBucket.AssumedRole.json"))
    detail["userIdentity"]["sessionContext"]["sourceIdentity"] = "alice@example.com"  # synthetic edit
    envelope = {
        "version": "0",
        "id": "eb-1",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": "777788889999",
        "time": "2016-11-14T17:25:45Z",
        "detail": detail,
    }
    [ev] = run(envelope, config)[0]
    assert ev.action == "s3:DeleteBucket"
    assert ev.resource.id == "arn:aws:s3:::my-test-bucket-cross-account"
    assert ev.actor.on_behalf_of == "alice@example.com"
    assert ev.attributes["eventbridge.id"] == "eb-1"


def test_agent_role_is_an_agent(asset, config):
    record = load(asset(AWSDOCS + "s3.DeleteBucket.AssumedRole.json"))
    record["userIdentity"]["arn"] = "arn:aws:sts::777788889999:assumed-role/agent-migrator/sess-1"
    [ev] = normalise_record(record, source="cloudtrail", where="x", config=config)
    assert ev.actor.kind == "agent" and ev.actor.session == "sess-1"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda r: r.pop("eventID"), "missing-field"),
        (lambda r: r.pop("eventTime"), "missing-field"),
        (lambda r: r.update(eventTime="yesterday"), "bad-time"),
        (lambda r: r.update(eventTime=12), "schema"),
        (lambda r: r.update(eventName=["x"]), "schema"),
        (lambda r: r.update(eventSource="iam amazonaws com"), "schema"),
        (lambda r: r.update(userIdentity="root"), "schema"),
        (lambda r: r.update(eventID="x" * 5000), "schema"),
        (lambda r: r.update(requestParameters={"k": "v" * 600_000}), "oversized"),
    ],
)
def test_hostile_records_are_dead_lettered(asset, config, edit, reason):
    record = load(asset(STRATUS + "aws.defense-evasion.cloudtrail-stop.json"))[0]
    bad = copy.deepcopy(record)
    edit(bad)
    events, dead = run([bad, record], config, source="cloudtrail")
    assert [d.reason for d in dead] == [reason]
    assert dead[0].where == "test#0" and "cloudtrail" in dead[0].detail
    assert len(events) == 1  # the good record after it still went through


def test_wrong_shape_with_source_given(config):
    events, dead = run({"kind": "Event"}, config, source="cloudtrail")
    assert events == [] and dead[0].reason == "missing-field"
    assert json.loads(dead[0].raw) == {"kind": "Event"}
