"""The canonical event: the one envelope every source is normalised into (DESIGN.md, "The canonical event").

Values are frozen dataclasses. Adapters build them; policy/, ledger/ and dashboard/ only read
them. ``CanonicalEvent.to_dict()`` is the JSON shape (what the ledger hashes, what ``--source
event`` accepts); ``event_from_dict()`` parses that shape strictly with pydantic and is the only
place untrusted canonical-event JSON is validated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NewType, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.canonical import canonical_json_fast
from core.errors import NormaliseError

__all__ = [
    "ACTOR_KINDS",
    "Actor",
    "ActorKind",
    "Approval",
    "CanonicalEvent",
    "Change",
    "Resource",
    "Sha256Hex",
    "UNKNOWN",
    "event_from_dict",
    "filled",
    "format_time",
    "parse_time",
    "plain_attributes",
    "sha256_hex",
]

#: a lowercase hex SHA-256 digest (64 characters)
Sha256Hex = NewType("Sha256Hex", str)

ActorKind = Literal["agent", "human", "pipeline", "service", "unknown"]
ACTOR_KINDS: tuple[str, ...] = ("agent", "human", "pipeline", "service", "unknown")

#: Unknown is a value, never a guess (DESIGN.md).
UNKNOWN = "unknown"

# Hostile-input bounds: a field longer than this is a normalisation error, not a 10 MB ledger row.
MAX_ID_LEN = 2048
MAX_TEXT_LEN = 65536
#: ``namespace:Verb[:more]``; no whitespace or control characters anywhere
ACTION_PATTERN = r"^[A-Za-z0-9_.\-]+:[^\x00-\x20\x7f]{1,200}$"
_ACTION_RE = re.compile(ACTION_PATTERN)


def sha256_hex(data: bytes) -> Sha256Hex:
    """Lowercase hex SHA-256 of ``data``."""
    return Sha256Hex(hashlib.sha256(data).hexdigest())


def format_time(t: datetime) -> str:
    """RFC 3339 UTC with exactly six fractional digits and a ``Z``: one spelling per instant."""
    u = t.astimezone(UTC)
    if u.year < 1000:  # %04d pads the year to four digits; the format's %Y does not
        return u.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # %-formatting the fields: ~1.2 µs, against ~2.4 for an f-string or isoformat(timespec=...)
    # and ~5 for strftime; this runs for every event serve's consumer process decodes
    fields = (u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % fields  # noqa: UP031


def plain_attributes(attributes: Mapping[str, Any]) -> bool:
    """Whether orjson may encode an event with these attributes (ASCII string keys, string values):
    ``core.canonical.canonical_json_fast``'s ``plain``. Every other part of an event is typed;
    attributes are the free-form part."""
    for k, v in attributes.items():
        if type(v) is not str or type(k) is not str or not k.isascii():
            return False
    return True


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 / RFC 3339 timestamp; naive times are rejected, not assumed UTC."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    t = datetime.fromisoformat(s)
    if t.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone; expected e.g. '2026-01-01T00:00:00Z'")
    return t.astimezone(UTC)


@dataclass(frozen=True)
class Actor:
    """Who did it."""

    id: str
    """The principal as the source names it: an ARN, ``agent:<name>``, an e-mail, a k8s username."""
    kind: ActorKind = "unknown"
    """agent / human / pipeline / service / unknown, derived from configuration (identities.*)."""
    on_behalf_of: str | None = None
    """For an agent: the human who instructed it. ``None`` when not known."""
    session: str | None = None
    """The agent session, role session name or CI run the action belongs to."""
    credential: str | None = None
    """Whose credential was used: an access key id, role session ARN, user or token id."""


@dataclass(frozen=True)
class Resource:
    """What it was done to."""

    id: str
    """Resource identifier: an ARN, ``db://host/name``, ``k8s://cluster/ns/kind/name``, ``repo@branch``."""
    type: str = "unknown"
    """Resource type: ``database``, ``s3-bucket``, ``iam-role``, ``k8s:deployments``, ``git-branch``, …"""
    environment: str = UNKNOWN
    """prod / staging / dev / any configured environment name / unknown, derived from configuration."""
    account: str | None = None
    """AWS account id, Kubernetes cluster, or repository (owner/name)."""
    data_classes: tuple[str, ...] = ()
    """Sensitive data seen in or around the action: ``pci`` (a Luhn-valid PAN), ``pii``, ``secret``."""


@dataclass(frozen=True)
class Change:
    """Attribution of an agent-authored change (rail 4)."""

    task: str | None = None
    """The task or instruction the agent was working on (free text or a tracker reference)."""
    prompt_sha256: str | None = None
    """SHA-256 (hex) of the prompt that led to the action; the prompt itself is not stored."""
    diff_sha256: str | None = None
    """SHA-256 (hex) of the diff, command or plan that was applied."""
    commit: str | None = None
    """Git commit id, when the change is a commit."""
    pull_request: str | None = None
    """Pull request URL, when there is one."""
    ticket: str | None = None
    """Change ticket id (e.g. ``CHG-1234``)."""

    def is_empty(self) -> bool:
        return not any(
            (self.task, self.prompt_sha256, self.diff_sha256, self.commit, self.pull_request, self.ticket)
        )


@dataclass(frozen=True)
class Approval:
    """On an approval event (action ``approval:Grant`` / ``approval:Deny``; the actor is the approver)."""

    request_id: str
    """The gate request (or change request) this approval answers."""
    decision: Literal["grant", "deny"]
    """grant or deny."""
    actor: str
    """Scope: whose action is approved (an actor id)."""
    action: str
    """Scope: which action is approved (a namespaced verb, e.g. ``sql:AlterTable``)."""
    resource: str
    """Scope: on which resource (a resource id)."""
    digest: str | None = None
    """SHA-256 (hex) of the exact command, plan or diff approved; when set, only that digest is covered."""
    expires_at: datetime | None = None
    """When the approval lapses (UTC). ``None``: the configured default TTL from the grant time applies."""


@dataclass(frozen=True)
class CanonicalEvent:
    """One thing that happened (or, in gate mode, is proposed), from any source."""

    event_id: str
    """Unique, derived from the source's own id (``cloudtrail:<eventID>``, ``github:<delivery>``)."""
    occurred_at: datetime
    """When it happened, UTC, microsecond precision."""
    source: str
    """Where it came from: agent, claude-code, mcp, ci, github, cloudtrail, k8s-audit, approval, gate, …"""
    actor: Actor
    """Who did it."""
    action: str
    """Namespaced verb: ``sql:AlterTable``, ``iam:AttachRolePolicy``, ``k8s:delete:deployments``, …"""
    resource: Resource
    """What it was done to."""
    change: Change = field(default_factory=Change)
    """Attribution facts (task, prompt hash, diff hash, commit, pull request, ticket)."""
    approval: Approval | None = None
    """Set on approval events only."""
    attributes: dict[str, str] = field(default_factory=dict, hash=False)
    """Other string facts: user agent, source IP, tool name, ``request_id``, ``error_code``, …"""
    raw: str | None = None
    """The original record as compact JSON text, secrets redacted. ``None`` when the event is its own raw."""
    raw_sha256: str | None = None
    """SHA-256 (hex) of the original record before redaction."""

    def __post_init__(self) -> None:
        if not self.event_id or len(self.event_id) > MAX_ID_LEN:
            raise NormaliseError(f"event_id must be 1..{MAX_ID_LEN} characters, got {len(self.event_id)}")
        if self.occurred_at.tzinfo is None:
            raise NormaliseError(f"event {self.event_id!r}: occurred_at has no time zone")
        if len(self.action) > 256 or not _ACTION_RE.match(self.action):
            raise NormaliseError(
                f"event {self.event_id!r}: action {self.action[:80]!r} is not a namespaced verb "
                "(expected 'ns:Verb', no spaces, at most 256 characters)"
            )
        if not 1 <= len(self.source) <= 64:
            raise NormaliseError(f"event {self.event_id!r}: source must be 1..64 characters")

    @property
    def canonical_bytes(self) -> bytes:
        """``core.canonical.canonical_json(self.to_dict())``: the ``event`` member of a ledger entry.

        Computed on each read, unless ``keep_canonical_bytes`` stored it in the object.
        """
        kept: bytes | None = self.__dict__.get("_canonical_bytes")
        if kept is not None:
            return kept
        return canonical_json_fast(self.to_dict(), plain=plain_attributes(self.attributes))

    def keep_canonical_bytes(self, canonical: bytes | None = None) -> None:
        """Compute ``canonical_bytes`` now and keep it in the object (events are immutable, and
        ``dataclasses.replace`` makes a new one without it). It lives in the instance ``__dict__``,
        so it travels with a pickled event: serve's consumer process encodes events off the GIL of
        the process that evaluates and appends them. Not kept by default: a kept copy is ~1 KB per
        event held for as long as the event is. ``canonical``: the bytes, already computed another
        way by the code that built the event (``core.avro.decode_event``), which answers for them."""
        if canonical is None:
            canonical = self.canonical_bytes
        self.__dict__["_canonical_bytes"] = canonical

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the event; ``core.canonical.canonical_json`` of it is what gets hashed."""
        a = self.actor
        r = self.resource
        c = self.change
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "occurred_at": format_time(self.occurred_at),
            "source": self.source,
            "actor": {
                "id": a.id,
                "kind": a.kind,
                "on_behalf_of": a.on_behalf_of,
                "session": a.session,
                "credential": a.credential,
            },
            "action": self.action,
            "resource": {
                "id": r.id,
                "type": r.type,
                "environment": r.environment,
                "account": r.account,
                "data_classes": list(r.data_classes),
            },
            "change": {
                "task": c.task,
                "prompt_sha256": c.prompt_sha256,
                "diff_sha256": c.diff_sha256,
                "commit": c.commit,
                "pull_request": c.pull_request,
                "ticket": c.ticket,
            },
            "approval": None,
            "attributes": dict(self.attributes),
            "raw": self.raw,
            "raw_sha256": self.raw_sha256,
        }
        if self.approval is not None:
            ap = self.approval
            out["approval"] = {
                "request_id": ap.request_id,
                "decision": ap.decision,
                "actor": ap.actor,
                "action": ap.action,
                "resource": ap.resource,
                "digest": ap.digest,
                "expires_at": format_time(ap.expires_at) if ap.expires_at else None,
            }
        return out


# --- strict parsing of the JSON shape -------------------------------------------------------------

_Id = Field(min_length=1, max_length=MAX_ID_LEN)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _ActorIn(_Strict):
    id: str = _Id
    kind: Literal["agent", "human", "pipeline", "service", "unknown"] = "unknown"
    on_behalf_of: str | None = Field(default=None, max_length=MAX_ID_LEN)
    session: str | None = Field(default=None, max_length=MAX_ID_LEN)
    credential: str | None = Field(default=None, max_length=MAX_ID_LEN)


class _ResourceIn(_Strict):
    id: str = _Id
    type: str = Field(default="unknown", max_length=256)
    environment: str = Field(default=UNKNOWN, max_length=256)
    account: str | None = Field(default=None, max_length=MAX_ID_LEN)
    data_classes: list[str] = Field(default_factory=list, max_length=32)


class _ChangeIn(_Strict):
    task: str | None = Field(default=None, max_length=MAX_TEXT_LEN)
    prompt_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    diff_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    commit: str | None = Field(default=None, max_length=256)
    pull_request: str | None = Field(default=None, max_length=MAX_ID_LEN)
    ticket: str | None = Field(default=None, max_length=256)


class _ApprovalIn(_Strict):
    request_id: str = _Id
    decision: Literal["grant", "deny"]
    actor: str = _Id
    action: str = _Id
    resource: str = _Id
    digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    expires_at: str | None = None

    @field_validator("expires_at")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v is not None:
            parse_time(v)
        return v


class _EventIn(_Strict):
    event_id: str = _Id
    occurred_at: str
    source: str = Field(min_length=1, max_length=64)
    actor: _ActorIn
    action: str = Field(min_length=3, max_length=256, pattern=ACTION_PATTERN)
    resource: _ResourceIn
    change: _ChangeIn = Field(default_factory=_ChangeIn)
    approval: _ApprovalIn | None = None
    attributes: dict[str, str] = Field(default_factory=dict, max_length=256)
    raw: str | None = Field(default=None, max_length=1 << 20)
    raw_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @field_validator("occurred_at")
    @classmethod
    def _time(cls, v: str) -> str:
        parse_time(v)
        return v


_T = TypeVar("_T")


def filled(cls: type[_T], **fields: Any) -> _T:
    """An instance of the (frozen) dataclass ``cls`` holding ``fields`` — every one of them, by
    name — made the way unpickling makes it: without ``__init__``, whose frozen form sets each field
    through ``object.__setattr__`` (half the cost of building a decoded event). Checks are the
    caller's: it runs ``__post_init__``, or its values are already known good."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def event_from_dict(data: Any, *, where: str = "event") -> CanonicalEvent:
    """Parse the canonical JSON shape strictly; errors name the field, the bad value and ``where``."""
    if not isinstance(data, dict):
        raise NormaliseError(f"{where}: expected a JSON object, got {type(data).__name__}", reason="shape")
    try:
        m = _EventIn.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise NormaliseError(f"{where}: not a canonical event: {problems}", reason="schema") from None
    ap = None
    if m.approval is not None:
        a = m.approval
        ap = Approval(
            request_id=a.request_id,
            decision=a.decision,
            actor=a.actor,
            action=a.action,
            resource=a.resource,
            digest=a.digest,
            expires_at=parse_time(a.expires_at) if a.expires_at else None,
        )
    return CanonicalEvent(
        event_id=m.event_id,
        occurred_at=parse_time(m.occurred_at),
        source=m.source,
        actor=Actor(**m.actor.model_dump()),
        action=m.action,
        resource=Resource(**{**m.resource.model_dump(), "data_classes": tuple(m.resource.data_classes)}),
        change=Change(**m.change.model_dump()),
        approval=ap,
        attributes=dict(m.attributes),
        raw=m.raw,
        raw_sha256=m.raw_sha256,
    )
