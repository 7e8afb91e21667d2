"""GitHub webhook adapter on the real octokit/webhooks samples, synthetic variants, and signatures."""

from __future__ import annotations

import copy
import hashlib
import hmac

import pytest

from ingest import detect_source, normalise_record, verify_github_signature
from ingest.github import github_event_name
from tests.unit.ingest.helpers import load, run

EXPECTED = {
    "branch_protection_rule.created.json": ("branch_protection_rule", "github:BranchProtectionRuleCreated"),
    "branch_protection_rule.deleted.json": ("branch_protection_rule", "github:BranchProtectionRuleDeleted"),
    "create.tag.json": ("create", "git:CreateTag"),
    "delete.tag.json": ("delete", "git:DeleteTag"),
    "deployment.created.json": ("deployment", "github:DeploymentCreated"),
    "deployment_status.created.success.json": ("deployment_status", "github:DeploymentStatusSuccess"),
    "pull_request.closed.not-merged.json": ("pull_request", "github:PullRequestClosed"),
    "pull_request.opened.json": ("pull_request", "github:PullRequestOpened"),
    "pull_request_review.submitted.commented.json": (
        "pull_request_review",
        "github:PullRequestReviewCommented",
    ),
    "push.default-branch.new-branch.json": ("push", "git:Push"),
    "push.default-branch.no-username-committer.json": ("push", "git:Push"),
    "push.tag-deleted.json": ("push", "git:DeleteTag"),
    "repository.deleted.ghes-35.json": ("repository", "github:RepositoryDeleted"),
    "workflow_run.completed.success.json": ("workflow_run", "github:WorkflowRunCompleted"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_sample_recognised_by_shape(asset, config, name):
    payload = load(asset("github/" + name))
    event, action = EXPECTED[name]
    assert detect_source(payload) == "github"
    assert github_event_name(payload) == event
    events, dead = run(asset("github/" + name).read_bytes(), config)
    assert dead == []
    [ev] = events
    assert ev.action == action
    assert ev.source == "github" and ev.event_id.startswith(f"github:{event}:")
    assert ev.resource.account == payload["repository"]["full_name"]
    assert ev.actor.id == "Codertocat"
    assert ev.raw_sha256 and ev.raw
    # re-ingesting the same file gives the same event id
    assert run(asset("github/" + name).read_bytes(), config)[0][0].event_id == ev.event_id


def test_push_to_protected_branch_with_agent_trailers(asset, config):
    payload = load(asset("github/push.default-branch.new-branch.json"))
    p = copy.deepcopy(payload)  # synthetic: forced push to main with agent trailers
    p["ref"] = "refs/heads/main"
    p["forced"] = True
    p["head_commit"]["message"] = (
        "Fix migration LEDG-42\n\nAgent: claude-code\nOn-behalf-of: alice@example.com\n"
        "Co-authored-by: Claude <noreply@anthropic.com>\n"
    )
    [ev] = normalise_record(p, source="github", where="x", config=config)
    assert ev.action == "git:ForcePush"
    assert ev.resource.id == "Codertocat/Hello-World@main"
    assert ev.resource.environment == "prod"
    assert ev.attributes["protected_branch"] == "true"
    assert ev.attributes["trailer.agent"].startswith("claude-code")
    assert ev.attributes["agent_authored"] == "true"
    assert ev.actor.on_behalf_of == "alice@example.com"
    assert ev.change.commit == "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    assert ev.change.ticket == "LEDG-42"


def test_sample_push_to_master_is_not_protected(asset, config):
    [ev] = normalise_record(
        load(asset("github/push.default-branch.new-branch.json")), source="github", where="x", config=config
    )
    assert ev.attributes["protected_branch"] == "false"
    assert ev.resource.environment == "unknown"
    assert ev.occurred_at.isoformat() == "2019-05-15T15:19:25+00:00"


def test_approved_review_is_an_approval_fact(asset, config):
    payload = copy.deepcopy(load(asset("github/pull_request_review.submitted.commented.json")))
    payload["review"]["state"] = "approved"  # synthetic: octokit has no approved example
    payload["review"]["user"]["login"] = "bob"
    [ev] = normalise_record(payload, source="github", where="x", config=config)
    assert ev.action == "approval:Grant"
    assert ev.actor.id == "bob"
    assert ev.approval is not None
    assert ev.approval.decision == "grant"
    assert ev.approval.actor == payload["pull_request"]["user"]["login"]
    assert ev.approval.resource == ev.resource.id == "Codertocat/Hello-World#2"
    payload["review"]["state"] = "changes_requested"
    [ev2] = normalise_record(payload, source="github", where="x", config=config)
    assert ev2.action == "approval:Deny" and ev2.approval and ev2.approval.decision == "deny"


def test_merged_pull_request(asset, config):
    payload = copy.deepcopy(load(asset("github/pull_request.closed.not-merged.json")))
    payload["pull_request"]["merged"] = True  # synthetic
    payload["pull_request"]["merged_at"] = "2019-05-15T15:21:00Z"
    payload["pull_request"]["merge_commit_sha"] = "c4295bd74fb0f4fbc0ed2a9a5b3e0c1a1e0a0b0c"
    payload["pull_request"]["base"]["ref"] = "main"
    [ev] = normalise_record(payload, source="github", where="x", config=config)
    assert ev.action == "github:PullRequestMerged"
    assert ev.change.commit == "c4295bd74fb0f4fbc0ed2a9a5b3e0c1a1e0a0b0c"
    assert ev.resource.environment == "prod"


def test_delivery_header_envelope_gives_the_event_id(asset, config):
    payload = load(asset("github/create.tag.json"))
    record = {
        "headers": {"X-GitHub-Event": "create", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
        "payload": payload,
    }
    [ev] = run(record, config)[0]
    assert ev.event_id == "github:72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert ev.attributes["delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def test_deployment_environment_only_when_configured_name(asset, config):
    [ev] = run(asset("github/deployment.created.json").read_bytes(), config)[0]
    assert ev.attributes["github_environment"] == "production"
    assert ev.resource.environment == "unknown"  # "production" is not a configured environment name
    payload = copy.deepcopy(load(asset("github/deployment.created.json")))
    payload["deployment"]["environment"] = "prod"
    [ev2] = normalise_record(payload, source="github", where="x", config=config)
    assert ev2.resource.environment == "prod"


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda p: p["repository"].pop("full_name"), "missing-field"),
        (lambda p: p["repository"].update(full_name=42), "schema"),
        (lambda p: p.update(ref=None), "missing-field"),
        (lambda p: p["head_commit"].update(timestamp="not a time"), "bad-time"),
        (lambda p: p["repository"].update(full_name="x" * 3000), "oversized-field"),
    ],
)
def test_hostile_push(asset, config, edit, reason):
    payload = copy.deepcopy(load(asset("github/push.default-branch.new-branch.json")))
    edit(payload)
    events, dead = run(payload, config, source="github")
    assert events == [] and [d.reason for d in dead] == [reason]


def test_unrecognised_payload_is_dead_lettered(config):
    events, dead = run({"repository": {"full_name": "a/b"}, "sender": {"login": "x"}, "zen": "hi"}, config)
    assert events == [] and dead[0].reason == "unsupported"


def test_signature():
    body = b'{"zen":"Keep it logically awesome."}'
    secret = "It's a Secret to Everybody"
    good = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert verify_github_signature(body, good, secret)
    assert not verify_github_signature(body + b" ", good, secret)
    assert not verify_github_signature(body, good, "other")
    assert not verify_github_signature(body, None, secret)
    assert not verify_github_signature(body, "sha1=" + good[7:], secret)
    assert not verify_github_signature(body, "sha256=zz\u00e9", secret)
    # GitHub's documented test vector (docs: "Validating webhook deliveries")
    assert verify_github_signature(
        b"Hello, World!",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "It's a Secret to Everybody",
    )
