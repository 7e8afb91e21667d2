"""``--source github``: GitHub webhook payloads, live (with headers) or saved to a file (by shape).

A live delivery is wrapped by the HTTP intake as ``{"headers": {"X-GitHub-Event": …,
"X-GitHub-Delivery": …}, "payload": {…}, "received_at": "…"}`` after ``verify_github_signature``;
a bare payload is recognised by its shape. ``event_id`` = ``github:<delivery id>``, or, without one,
``github:<event>:<sha256 of the canonical payload, 32 hex>`` so a re-ingested file never duplicates.

=========================  ==========================================  =====================================
event                      action                                      resource
=========================  ==========================================  =====================================
push                       ``git:Push`` / ``git:ForcePush`` (forced),  ``<owner/repo>@<branch>`` git-branch
                           ``git:DeleteBranch``/``git:DeleteTag``      (``…@<tag>`` git-tag)
pull_request               ``github:PullRequest<Action>``,             ``<owner/repo>#<number>`` pull-request
                           ``github:PullRequestMerged``
pull_request_review        ``approval:Grant`` (approved),              ``<owner/repo>#<number>``
                           ``approval:Deny`` (changes_requested),
                           else ``github:PullRequestReview<State>``
deployment(_status)        ``github:Deployment<Action>``,              ``<owner/repo>@<environment>``
                           ``github:DeploymentStatus<State>``          deployment
workflow_run               ``github:WorkflowRun<Action>``              ``<owner/repo>:<workflow path>``
create / delete            ``git:CreateBranch|CreateTag|Delete…``      ``<owner/repo>@<ref>``
branch_protection_rule     ``github:BranchProtectionRule<Action>``     ``<owner/repo>@<pattern>``
repository                 ``github:Repository<Action>``               ``<owner/repo>`` repository
=========================  ==========================================  =====================================

Commit trailers in pushed commits (``Co-authored-by:``, ``Agent:``, ``On-behalf-of:``) are recorded
as attributes; ``On-behalf-of`` becomes ``actor.on_behalf_of``. Environment: the configured
environment whose ``protected_branches`` match the branch; for deployments, the GitHub environment
name when it is a configured environment name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime
from typing import Any, Literal

from core.config import Config
from core.errors import NormaliseError
from core.event import UNKNOWN, Actor, Approval, CanonicalEvent, Change, Resource
from ingest._adapter import BaseAdapter
from ingest._common import (
    actor_kind,
    attrs,
    check_id,
    clip,
    environment_by_name,
    environment_for_branch,
    fail,
    get_path,
    opt_str,
    parse_ts,
    payload_hash,
)
from ingest.detect import is_github_payload

__all__ = ["GitHubAdapter", "github_event_name", "verify_github_signature"]

logger = logging.getLogger(__name__)

SOURCE = "github"
_ZERO_SHA = "0" * 40
_TRAILER = re.compile(r"^(Co-authored-by|Agent|On-behalf-of):\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_TICKET = re.compile(r"\b([A-Z][A-Z0-9]{1,9}-\d{1,7})\b")
#: co-author addresses that agents sign commits with (Claude Code, Copilot, Codex, Cursor, Devin)
AGENT_COAUTHORS = (
    "noreply@anthropic.com",
    "copilot",
    "codex",
    "cursoragent@cursor.com",
    "devin-ai-integration",
)


def verify_github_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Check ``X-Hub-Signature-256`` (``sha256=<hex HMAC of the body>``) in constant time."""
    if not header or not header.startswith("sha256=") or not secret:
        return False
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))


def github_event_name(payload: dict[str, Any]) -> str | None:
    """The webhook event a saved payload belongs to, from its shape (``None`` if it fits none)."""
    if "pusher" in payload and "ref" in payload and ("commits" in payload or "after" in payload):
        return "push"
    if isinstance(payload.get("review"), dict) and isinstance(payload.get("pull_request"), dict):
        return "pull_request_review"
    if isinstance(payload.get("pull_request"), dict) and "number" in payload:
        return "pull_request"
    if isinstance(payload.get("deployment_status"), dict):
        return "deployment_status"
    if isinstance(payload.get("deployment"), dict):
        return "deployment"
    if isinstance(payload.get("workflow_run"), dict):
        return "workflow_run"
    if "ref_type" in payload and "ref" in payload:
        return "create" if "master_branch" in payload else "delete"
    if isinstance(payload.get("rule"), dict) and "action" in payload:
        return "branch_protection_rule"
    if (
        isinstance(payload.get("repository"), dict)
        and "action" in payload
        and set(payload)
        <= {
            "action",
            "repository",
            "organization",
            "enterprise",
            "sender",
            "installation",
            "changes",
        }
    ):
        return "repository"
    return None


def _pascal(text: str) -> str:
    return "".join(w.capitalize() for w in re.split(r"[_\-\s]+", text) if w)


def _req_str(obj: Any, *keys: str, where: str) -> str:
    value = get_path(obj, *keys)
    if not isinstance(value, str) or not value:
        raise fail(
            SOURCE,
            where,
            ".".join(keys),
            "a non-empty string",
            value,
            reason="missing-field" if value is None else "schema",
        )
    if len(value) > 2048:
        raise fail(
            SOURCE,
            where,
            ".".join(keys),
            "at most 2048 characters",
            f"{len(value)} characters",
            reason="oversized-field",
        )
    return value


def _obj(payload: Any, key: str, where: str) -> dict[str, Any]:
    value = get_path(payload, key)
    if not isinstance(value, dict):
        raise fail(
            SOURCE, where, key, "an object", value, reason="missing-field" if value is None else "schema"
        )
    return value


def _when(payload: Any, where: str, received: Any, *paths: tuple[str, ...]) -> datetime:
    for path in paths:
        value = get_path(payload, *path)
        if value is not None:
            return parse_ts(value, source=SOURCE, where=where, field=".".join(path))
    if received is not None:
        return parse_ts(received, source=SOURCE, where=where, field="received_at")
    raise fail(SOURCE, where, ".".join(paths[0]), "a timestamp", None, reason="missing-field")


class GitHubAdapter(BaseAdapter):
    name = SOURCE

    def normalise(self, record: Any, *, where: str, config: Config) -> list[CanonicalEvent]:
        if not isinstance(record, dict):
            raise fail(SOURCE, where, "<root>", "a JSON object", record, reason="shape")
        delivery = event_name = received = None
        payload: Any = record
        if isinstance(record.get("headers"), dict) and isinstance(record.get("payload"), dict):
            headers = {str(k).lower(): v for k, v in record["headers"].items()}
            event_name = headers.get("x-github-event")
            delivery = headers.get("x-github-delivery")
            payload = record["payload"]
            received = record.get("received_at")
        elif not is_github_payload(record):
            raise NormaliseError(
                f"{SOURCE}: {where}: not a GitHub webhook payload (no 'repository' and 'sender' objects)",
                reason="shape",
            )
        if not isinstance(event_name, str) or not event_name:
            event_name = github_event_name(payload)
        if event_name is None:
            raise NormaliseError(
                f"{SOURCE}: {where}: cannot tell which webhook event this is (push, pull_request, …); "
                "deliver it with its X-GitHub-Event header",
                reason="unsupported",
            )
        handler = _HANDLERS.get(event_name)
        if handler is None:
            raise NormaliseError(
                f"{SOURCE}: {where}: webhook event {event_name!r} is not mapped; "
                f"supported: {', '.join(sorted(_HANDLERS))}",
                reason="unsupported",
            )
        repo = _req_str(payload, "repository", "full_name", where=where)
        sender = opt_str(payload, "sender", "login")
        attributes = attrs(
            github_event=event_name, github_action=opt_str(payload, "action"), delivery=delivery
        )
        built = handler(payload, repo, where, received, config, attributes)
        actor_id = clip(built.actor_id or sender or UNKNOWN, 2048)
        if sender and sender != actor_id:
            attributes["sender"] = clip(sender, 256)
        if delivery is not None and (not isinstance(delivery, str) or not delivery):
            raise fail(SOURCE, where, "X-GitHub-Delivery", "a non-empty string", delivery)
        event_id = f"{SOURCE}:{delivery}" if delivery else f"{SOURCE}:{event_name}:{payload_hash(payload)}"
        return [
            CanonicalEvent(
                event_id=check_id(event_id, source=SOURCE, where=where, field="X-GitHub-Delivery"),
                occurred_at=built.occurred_at,
                source=SOURCE,
                actor=Actor(
                    id=actor_id,
                    kind=actor_kind(config, actor_id, None, attributes),
                    on_behalf_of=built.on_behalf_of,
                ),
                action=built.action,
                resource=built.resource,
                change=built.change,
                approval=built.approval,
                attributes=attributes,
            )
        ]


class _Built:
    __slots__ = ("action", "actor_id", "approval", "change", "occurred_at", "on_behalf_of", "resource")

    def __init__(
        self,
        action: str,
        resource: Resource,
        occurred_at: datetime,
        *,
        actor_id: str | None = None,
        change: Change | None = None,
        approval: Approval | None = None,
        on_behalf_of: str | None = None,
    ) -> None:
        self.action = action
        self.resource = resource
        self.occurred_at = occurred_at
        self.actor_id = actor_id
        self.change = change or Change()
        self.approval = approval
        self.on_behalf_of = on_behalf_of


def _branch_resource(repo: str, ref: str, config: Config, attributes: dict[str, str]) -> Resource:
    is_tag = ref.startswith("refs/tags/")
    name = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    if not is_tag:
        protected = config.is_protected_branch(name)
        attributes["protected_branch"] = "true" if protected else "false"
    env = UNKNOWN if is_tag else environment_for_branch(config, name)
    return Resource(
        id=clip(f"{repo}@{name}", 2048),
        type="git-tag" if is_tag else "git-branch",
        environment=env,
        account=repo,
    )


def _push(p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]) -> _Built:
    ref = _req_str(p, "ref", where=where)
    resource = _branch_resource(repo, ref, config, attributes)
    forced, deleted, created = bool(p.get("forced")), bool(p.get("deleted")), bool(p.get("created"))
    attributes.update(
        attrs(
            forced=forced,
            deleted=deleted,
            created=created,
            before=opt_str(p, "before"),
            after=opt_str(p, "after"),
        )
    )
    if deleted:
        action = "git:DeleteTag" if resource.type == "git-tag" else "git:DeleteBranch"
    else:
        action = "git:ForcePush" if forced else "git:Push"
    commits = p.get("commits") if isinstance(p.get("commits"), list) else []
    messages: list[str] = [
        c["message"] for c in commits[:2048] if isinstance(c, dict) and isinstance(c.get("message"), str)
    ]
    head_msg = opt_str(p, "head_commit", "message")
    if head_msg and head_msg not in messages:
        messages.append(head_msg)
    on_behalf_of = _trailers(messages, attributes)
    attributes["commit_count"] = str(len(commits))
    after = opt_str(p, "after")
    ticket = next((m.group(1) for msg in messages for m in [_TICKET.search(msg)] if m), None)
    change = Change(commit=after if after and after != _ZERO_SHA else None, ticket=ticket)
    occurred = _when(p, where, received, ("head_commit", "timestamp"), ("repository", "pushed_at"))
    pusher = opt_str(p, "sender", "login") or opt_str(p, "pusher", "name")
    return _Built(action, resource, occurred, actor_id=pusher, change=change, on_behalf_of=on_behalf_of)


def _trailers(messages: list[str], attributes: dict[str, str]) -> str | None:
    co_authors: list[str] = []
    agents: list[str] = []
    on_behalf: list[str] = []
    for msg in messages:
        for key, value in _TRAILER.findall(msg):
            k = key.lower()
            (co_authors if k == "co-authored-by" else agents if k == "agent" else on_behalf).append(value)
    if co_authors:
        attributes["trailer.co_authored_by"] = clip("; ".join(dict.fromkeys(co_authors)))
        agent_coauthors = [c for c in co_authors if any(a in c.lower() for a in AGENT_COAUTHORS)]
        if agent_coauthors:
            agents.extend(agent_coauthors)
    if agents:
        attributes["trailer.agent"] = clip("; ".join(dict.fromkeys(agents)))
        attributes["agent_authored"] = "true"
    if on_behalf:
        attributes["trailer.on_behalf_of"] = clip("; ".join(dict.fromkeys(on_behalf)))
        return clip(on_behalf[0], 512)
    return None


def _pull_request(
    p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]
) -> _Built:
    pr = _obj(p, "pull_request", where)
    number = pr.get("number", p.get("number"))
    if not isinstance(number, int) or isinstance(number, bool):
        raise fail(SOURCE, where, "pull_request.number", "an integer", number)
    base = opt_str(pr, "base", "ref")
    action = opt_str(p, "action") or "event"
    merged = action == "closed" and pr.get("merged") is True
    verb = "PullRequestMerged" if merged else "PullRequest" + _pascal(action)
    env = environment_for_branch(config, base)
    attributes.update(
        attrs(
            base_branch=base,
            head_branch=opt_str(pr, "head", "ref"),
            merged=pr.get("merged") if isinstance(pr.get("merged"), bool) else None,
            protected_branch=config.is_protected_branch(base) if base else None,
        )
    )
    change = Change(
        commit=opt_str(pr, "merge_commit_sha") if merged else opt_str(pr, "head", "sha"),
        pull_request=opt_str(pr, "html_url"),
        ticket=(m.group(1) if (m := _TICKET.search(opt_str(pr, "title") or "")) else None),
    )
    occurred = _when(
        p,
        where,
        received,
        ("pull_request", "merged_at") if merged else ("pull_request", "updated_at"),
        ("pull_request", "updated_at"),
        ("pull_request", "created_at"),
    )
    actor = opt_str(pr, "merged_by", "login") if merged else None
    return _Built(
        f"github:{verb}",
        Resource(id=f"{repo}#{number}", type="pull-request", environment=env, account=repo),
        occurred,
        actor_id=actor or opt_str(p, "sender", "login"),
        change=change,
    )


def _review(
    p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]
) -> _Built:
    review, pr = _obj(p, "review", where), _obj(p, "pull_request", where)
    number = pr.get("number")
    if not isinstance(number, int) or isinstance(number, bool):
        raise fail(SOURCE, where, "pull_request.number", "an integer", number)
    state = (opt_str(review, "state") or "unknown").lower()
    base = opt_str(pr, "base", "ref")
    resource = Resource(
        id=f"{repo}#{number}",
        type="pull-request",
        environment=environment_for_branch(config, base),
        account=repo,
    )
    reviewer = opt_str(review, "user", "login") or opt_str(p, "sender", "login")
    author = opt_str(pr, "user", "login") or UNKNOWN
    attributes.update(
        attrs(
            review_state=state,
            review_id=review.get("id"),
            commit_id=opt_str(review, "commit_id"),
            pull_request_author=author,
            base_branch=base,
        )
    )
    occurred = _when(p, where, received, ("review", "submitted_at"), ("pull_request", "updated_at"))
    change = Change(commit=opt_str(review, "commit_id"), pull_request=opt_str(pr, "html_url"))
    approval = None
    action = "github:PullRequestReview" + _pascal(state)
    if opt_str(p, "action") == "submitted" and state in ("approved", "changes_requested"):
        decision: Literal["grant", "deny"] = "grant" if state == "approved" else "deny"
        action = "approval:Grant" if decision == "grant" else "approval:Deny"
        approval = Approval(
            request_id=f"{repo}#{number}",
            decision=decision,
            actor=author,
            action="github:PullRequestMerged",
            resource=f"{repo}#{number}",
        )
    return _Built(action, resource, occurred, actor_id=reviewer, change=change, approval=approval)


def _deployment(
    p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]
) -> _Built:
    dep = _obj(p, "deployment", where)
    gh_env = opt_str(dep, "environment") or UNKNOWN
    status = p.get("deployment_status") if isinstance(p.get("deployment_status"), dict) else None
    attributes.update(
        attrs(
            github_environment=gh_env,
            ref=opt_str(dep, "ref"),
            deployment_id=dep.get("id"),
            task=opt_str(dep, "task"),
        )
    )
    if status is not None:
        state = opt_str(status, "state") or "unknown"
        attributes["deployment_state"] = clip(state, 64)
        action = "github:DeploymentStatus" + _pascal(state)
        occurred = _when(
            p, where, received, ("deployment_status", "updated_at"), ("deployment_status", "created_at")
        )
        actor = opt_str(status, "creator", "login")
    else:
        action = "github:Deployment" + _pascal(opt_str(p, "action") or "created")
        occurred = _when(p, where, received, ("deployment", "updated_at"), ("deployment", "created_at"))
        actor = opt_str(dep, "creator", "login")
    resource = Resource(
        id=clip(f"{repo}@{gh_env}", 2048),
        type="deployment",
        environment=environment_by_name(config, gh_env),
        account=repo,
    )
    return _Built(
        action,
        resource,
        occurred,
        actor_id=actor or opt_str(p, "sender", "login"),
        change=Change(commit=opt_str(dep, "sha")),
    )


def _workflow_run(
    p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]
) -> _Built:
    run = _obj(p, "workflow_run", where)
    branch = opt_str(run, "head_branch")
    attributes.update(
        attrs(
            workflow=opt_str(run, "name"),
            run_id=run.get("id"),
            run_attempt=run.get("run_attempt"),
            conclusion=opt_str(run, "conclusion"),
            status=opt_str(run, "status"),
            trigger=opt_str(run, "event"),
            head_branch=branch,
        )
    )
    path = opt_str(run, "path") or opt_str(run, "name") or UNKNOWN
    occurred = _when(
        p,
        where,
        received,
        ("workflow_run", "updated_at"),
        ("workflow_run", "run_started_at"),
        ("workflow_run", "created_at"),
    )
    actor = opt_str(run, "triggering_actor", "login") or opt_str(run, "actor", "login")
    return _Built(
        "github:WorkflowRun" + _pascal(opt_str(p, "action") or "event"),
        Resource(
            id=clip(f"{repo}:{path}", 2048),
            type="workflow",
            environment=environment_for_branch(config, branch),
            account=repo,
        ),
        occurred,
        actor_id=actor,
        change=Change(commit=opt_str(run, "head_sha")),
    )


def _create_delete(kind: str) -> Any:
    def handler(
        p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]
    ) -> _Built:
        ref = _req_str(p, "ref", where=where)
        ref_type = opt_str(p, "ref_type") or "branch"
        full = f"refs/tags/{ref}" if ref_type == "tag" else f"refs/heads/{ref}"
        resource = _branch_resource(repo, full, config, attributes)
        attributes["ref_type"] = clip(ref_type, 32)
        occurred = _when(p, where, received, ("repository", "pushed_at"), ("repository", "updated_at"))
        return _Built(f"git:{kind}{_pascal(ref_type)}", resource, occurred)

    return handler


def _branch_protection(
    p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]
) -> _Built:
    rule = _obj(p, "rule", where)
    pattern = opt_str(rule, "name") or UNKNOWN
    attributes.update(
        attrs(
            rule_id=rule.get("id"),
            required_approving_review_count=rule.get("required_approving_review_count")
            if isinstance(rule.get("required_approving_review_count"), int)
            else None,
        )
    )
    occurred = _when(p, where, received, ("rule", "updated_at"), ("rule", "created_at"))
    return _Built(
        "github:BranchProtectionRule" + _pascal(opt_str(p, "action") or "event"),
        Resource(
            id=clip(f"{repo}@{pattern}", 2048),
            type="branch-protection",
            environment=environment_for_branch(config, pattern),
            account=repo,
        ),
        occurred,
    )


def _repository(
    p: Any, repo: str, where: str, received: Any, config: Config, attributes: dict[str, str]
) -> _Built:
    occurred = _when(p, where, received, ("repository", "updated_at"), ("repository", "pushed_at"))
    return _Built(
        "github:Repository" + _pascal(opt_str(p, "action") or "event"),
        Resource(id=repo, type="repository", account=repo),
        occurred,
    )


_HANDLERS = {
    "push": _push,
    "pull_request": _pull_request,
    "pull_request_review": _review,
    "deployment": _deployment,
    "deployment_status": _deployment,
    "workflow_run": _workflow_run,
    "create": _create_delete("Create"),
    "delete": _create_delete("Delete"),
    "branch_protection_rule": _branch_protection,
    "repository": _repository,
}
