"""The engine's fast paths decide exactly like the plain reference (``optimize=False``).

Fast paths under test: answers and entities shared across ``evaluate`` calls, variant ids for an
id seen with other attributes, entity sets reused between Cedar calls, attributes no policy names
left out, policies whose scope cannot match left out (``policy._slicing``), action entities sent
by the engine instead of the schema's base set.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import Config
from core.event import Actor, Approval, CanonicalEvent, Change, Resource
from policy import DEFAULT_PACK_DIR, ApprovalBook, PolicyEngine
from policy._pack import load_pack
from policy._slicing import Slicer, _may_match
from tests.unit.policy.conftest import H1, H2, PROD_DB, STAGING_DB, T0, ev

AKIA = "AKIAABCDEFGHIJKLMNOP"
HUMAN_KEY = "arn:aws:iam::222222222222:user/bob"

_actors = st.sampled_from(
    [
        Actor("agent:a", "agent", on_behalf_of="bob@example.com"),
        Actor("agent:a", "agent", on_behalf_of="bob@example.com", credential=AKIA),
        Actor("agent:a", "agent", credential=HUMAN_KEY),
        Actor("agent:a", "agent", on_behalf_of="bob@example.com", session="s2"),
        Actor("agent:b", "agent", on_behalf_of="alice@example.com"),
        Actor("arn:aws:sts::1:assumed-role/agent-ops/s1", "agent", credential="ASIAXYZ"),
        Actor("bob@example.com", "human"),
        Actor("alice@example.com", "human"),
        Actor("pipeline:deploy", "pipeline"),
        Actor("autoscaling.amazonaws.com", "service"),
        Actor("who", "unknown"),
    ]
)
_resource_ids = [
    PROD_DB,
    STAGING_DB,
    "arn:aws:iam::1:user/agent-x",
    "acme/app@main",
    "k8s://prod-eks/p/pods/x",
]
_resources = st.builds(
    Resource,
    id=st.sampled_from(_resource_ids),
    type=st.sampled_from(["database", "iam-user"]),
    environment=st.sampled_from(["prod", "staging", "dev", "unknown"]),
    account=st.none() | st.just("111111111111"),
    data_classes=st.sampled_from([(), ("pci",), ("pii",), ("pii", "secret")]),
)
_changes = st.sampled_from(
    [
        Change(task="fix", prompt_sha256=H1, diff_sha256=H2),
        Change(task="fix", prompt_sha256=H1),
        Change(ticket="CHG-1", commit="abc"),
        Change(),
    ]
)
_attributes = st.sampled_from(
    [
        {},
        {"tool": "Bash"},
        {"tool": "Edit"},
        {"git.ref": "refs/heads/main"},
        {"git.protected": "true"},
        {"sql.where": "false"},
        {"error_code": "AccessDenied"},
        {"request_id": "r1"},
    ]
)
_verbs = [
    "sql:AlterTable",
    "sql:DropTable",
    "sql:Delete",
    "sql:Select",
    "file:Write",
    "file:Read",
    "s3:GetObject",
    "iam:CreateAccessKey",
    "iam:AttachRolePolicy",
    "cloudtrail:StopLogging",
    "git:Push",
    "k8s:delete:pods",
    "k8s:get:pods",
    "terraform:Destroy",
    "ci:Deploy",
    "weird:Thing",
]
_approvals = st.builds(
    Approval,
    request_id=st.sampled_from(["r1", "r2"]),
    decision=st.sampled_from(["grant", "grant", "deny"]),
    actor=st.sampled_from(["agent:a", "agent:b", "bob@example.com"]),
    action=st.sampled_from(["sql:AlterTable", "sql:DropTable", "cloudtrail:StopLogging"]),
    resource=st.sampled_from([PROD_DB, STAGING_DB]),
    digest=st.none() | st.just(H2),
    expires_at=st.none() | st.just(T0 + timedelta(minutes=30)),
)


@st.composite
def _event(draw: Any) -> CanonicalEvent:
    approval = draw(st.none() | st.none() | _approvals)
    action = draw(st.sampled_from(_verbs))
    if approval is not None:
        action = "approval:Grant" if approval.decision == "grant" else "approval:Deny"
    return CanonicalEvent(
        event_id="x",
        occurred_at=T0 + timedelta(minutes=draw(st.integers(0, 40))),
        source=draw(st.sampled_from(["agent", "cloudtrail", "k8s-audit", "github", "approval"])),
        actor=draw(_actors),
        action=action,
        resource=draw(_resources),
        change=draw(_changes),
        approval=approval,
        attributes=draw(_attributes),
    )


@pytest.fixture(scope="module")
def reference(config: Config) -> PolicyEngine:
    return PolicyEngine.load(config, strict=True, optimize=False)


@pytest.fixture(scope="module")
def fast(config: Config) -> PolicyEngine:
    # one engine for every example: caches carried from earlier examples must not matter
    return PolicyEngine.load(config)


def _numbered(evs: list[CanonicalEvent]) -> list[CanonicalEvent]:
    return [CanonicalEvent(**{**e.__dict__, "event_id": f"e{i}"}) for i, e in enumerate(evs)]


def _split(evs: list[CanonicalEvent], cuts: list[int]) -> list[list[CanonicalEvent]]:
    out, start = [], 0
    for c in sorted(set(cuts)):
        if 0 < c < len(evs):
            out.append(evs[start:c])
            start = c
    out.append(evs[start:])
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(_event(), min_size=1, max_size=16),
    st.lists(st.integers(0, 16), max_size=4),
    st.sampled_from(["detect", "gate"]),
)
def test_fast_engine_decides_like_the_reference_one_by_one(
    reference: PolicyEngine,
    fast: PolicyEngine,
    config: Config,
    evs: list[CanonicalEvent],
    cuts: list[int],
    mode: Any,
) -> None:
    evs = _numbered(evs)
    ref_book = ApprovalBook(config)
    expected = [reference.evaluate([e], approvals=ref_book, mode=mode)[0] for e in evs]
    book = ApprovalBook(config)
    got = [d for part in _split(evs, cuts) for d in fast.evaluate(part, approvals=book, mode=mode)]
    assert got == expected
    assert book.requests() == ref_book.requests()
    assert book.pending() == ref_book.pending()
    rebuilt = ApprovalBook.rebuild(config, list(zip(evs, got, strict=True)))
    assert rebuilt.requests() == book.requests()


def test_answers_are_reused_across_calls_and_survive_clear_cache(fast: PolicyEngine, config: Config) -> None:
    e = ev("file:Write", eid="w1")
    first = fast.evaluate([e], approvals=ApprovalBook(config))[0]
    again = fast.evaluate([ev("file:Write", eid="w2")], approvals=ApprovalBook(config))[0]
    assert again is first  # identical decision inputs: the cached decision
    fast.clear_cache()
    assert fast.evaluate([e], approvals=ApprovalBook(config))[0] == first


def test_default_pack_attribute_and_entity_facts() -> None:
    pack = load_pack(DEFAULT_PACK_DIR)
    assert pack.referenced is not None
    assert {
        "environment",
        "data_classes",
        "long_lived_credential",
        "approval",
        "gate_bypass",
    } <= pack.referenced
    assert not {"tool", "source", "action_name", "credential"} & pack.referenced
    assert not pack.names_entities


def _pack_with(tmp_path: Path, extra: str) -> Path:
    d = tmp_path / "pack"
    d.mkdir()
    for p in DEFAULT_PACK_DIR.iterdir():
        if p.is_file():
            shutil.copy(p, d / p.name)
    (d / "zz_extra.cedar").write_text(extra)
    return d


def test_a_policy_reading_an_attribute_gets_it(tmp_path: Path, config: Config) -> None:
    extra = (
        '@id("no-bash-in-prod")\n@rail("2")\n@severity("low")\n@title("Bash in prod")\n'
        'forbid (principal, action, resource) when { context.event.tool == "Bash" && '
        'resource.environment == "prod" };\n'
    )
    engine = PolicyEngine.load(config, pack_dir=_pack_with(tmp_path, extra))
    assert engine.pack.referenced is not None and "tool" in engine.pack.referenced
    human = {"actor": "bob@example.com", "kind": "human", "on_behalf_of": None, "resource": PROD_DB}
    bash, edit = (
        ev("sql:Select", eid=t, env="prod", attributes={"tool": t}, **human)  # type: ignore[arg-type]
        for t in ("Bash", "Edit")
    )
    d_bash, d_edit = engine.evaluate([bash, edit], approvals=ApprovalBook(config))
    assert d_bash.policy_ids == ("no-bash-in-prod",)
    assert d_edit.outcome == "allow"


def test_a_pack_naming_entities_gets_real_ids_and_no_sharing(tmp_path: Path, config: Config) -> None:
    extra = (
        '@id("agent-a-with-a-key")\n@rail("2")\n@severity("low")\n@title("agent a holds a key")\n'
        'forbid (principal == Agent::"agent:a", action, resource) when { principal.long_lived_credential };\n'
    )
    engine = PolicyEngine.load(config, pack_dir=_pack_with(tmp_path, extra))
    assert engine.pack.names_entities
    plain = ev("file:Read", eid="p", actor="agent:a")
    keyed = ev("file:Read", eid="k", actor="agent:a", credential=AKIA)
    batched = engine.evaluate([plain, keyed, plain], approvals=ApprovalBook(config))
    single = [engine.evaluate([e], approvals=ApprovalBook(config))[0] for e in (plain, keyed, plain)]
    assert batched == single
    assert batched[0].outcome == "allow"
    assert "agent-a-with-a-key" in batched[1].policy_ids


def _cedar_requests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests the engine sends to Cedar (one entry per batch call)."""
    import policy._engine as engine_module

    sizes: list[int] = []
    real = engine_module._cedar_batch

    def counting(requests: list[dict[str, Any]], *args: Any) -> list[str]:
        sizes.append(len(requests))
        return real(requests, *args)

    monkeypatch.setattr(engine_module, "_cedar_batch", counting)
    return sizes


def _same_but_ids(n: int) -> list[CanonicalEvent]:
    """Writes by ``n`` agents to ``n`` files, every entity's attributes equal but the ids."""
    return [
        ev("file:Write", eid=f"w{i}", actor=f"agent:{i}", resource=f"repo://acme/app/{i}", env="dev")
        for i in range(n)
    ]


def test_equal_attributes_under_other_ids_are_asked_once(
    monkeypatch: pytest.MonkeyPatch, reference: PolicyEngine, config: Config
) -> None:
    # the default pack names no entity, so Cedar cannot tell these requests apart: one is asked,
    # within a call and across calls
    evs = _same_but_ids(40)
    book = ApprovalBook(config)
    expected = [reference.evaluate([e], approvals=book)[0] for e in evs]
    engine = PolicyEngine.load(config)
    sizes = _cedar_requests(monkeypatch)
    got = engine.evaluate(evs[:20], approvals=ApprovalBook(config))
    got += engine.evaluate(evs[20:], approvals=ApprovalBook(config))
    assert sum(sizes) == 1
    assert got == expected
    # other attributes are another request: the prod twin of the same write is denied
    prod = ev("file:Write", eid="p", actor="agent:0", resource="repo://acme/app/0", env="prod")
    assert engine.evaluate([prod], approvals=ApprovalBook(config))[0].outcome == "deny"
    assert sum(sizes) == 2


def test_a_pack_naming_entities_asks_per_id(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: Config
) -> None:
    extra = (
        '@id("agent-3-writes")\n@rail("2")\n@severity("low")\n@title("agent 3 may not write")\n'
        'forbid (principal == Agent::"agent:3", action, resource);\n'
    )
    engine = PolicyEngine.load(config, pack_dir=_pack_with(tmp_path, extra))
    sizes = _cedar_requests(monkeypatch)
    decided = engine.evaluate(_same_but_ids(6), approvals=ApprovalBook(config))
    assert sum(sizes) == 6
    assert [d.outcome for d in decided] == ["allow"] * 3 + ["deny"] + ["allow"] * 2


def test_slices_keep_a_policy_when_unsure() -> None:
    groups = load_pack(DEFAULT_PACK_DIR).actions["git:Push"]
    scopes: dict[str, dict[str, Any]] = {
        "in-group": {"principal": {"op": "in", "entity": {"type": "Group", "id": "g"}}},
        "new-op": {"principal": {"op": "someday"}, "action": {"op": "someday"}},
        "other-ns": {"action": {"op": "==", "entity": {"type": "NS::Action", "id": "x"}}},
        "agent": {"principal": {"op": "is", "entity_type": "Agent"}},
        "agent-eq": {"principal": {"op": "==", "entity": {"type": "Agent", "id": "a"}}},
        "gitpush": {"action": {"op": "in", "entities": [{"type": "Action", "id": "GitPush"}]}},
        "exact": {"action": {"op": "==", "entity": {"type": "Action", "id": "git:Push"}}},
        "other-resource-type": {"resource": {"op": "is", "entity_type": "Bucket"}},
    }

    def matching(ptype: str, action: str, action_groups: frozenset[str]) -> set[str]:
        return {pid for pid, est in scopes.items() if _may_match(est, ptype, action, action_groups)}

    unsure = {"in-group", "new-op", "other-ns"}
    assert matching("Agent", "git:Push", groups) == unsure | {"agent", "agent-eq", "gitpush", "exact"}
    assert matching("Human", "git:Push", groups) == unsure | {"gitpush", "exact"}
    assert matching("Human", "s3:GetObject", frozenset({"Read"})) == unsure


def test_slicer_shares_one_policy_set_per_distinct_slice() -> None:
    pack = load_pack(DEFAULT_PACK_DIR)
    slicer = Slicer(pack.static, pack.actions)
    reads = {slicer.slice_of(p, "s3:GetObject") for p in ("Human", "Pipeline", "Service", "UnknownPrincipal")}
    assert len(reads) == 1
    assert slicer.slice_of("Agent", "s3:GetObject") not in reads
    assert len(slicer.sets) == 2


def test_sliced_engine_matches_reference_for_every_declared_action(
    reference: PolicyEngine, fast: PolicyEngine, config: Config
) -> None:
    kinds = [
        ("agent:a", "agent"),
        ("bob@example.com", "human"),
        ("pipeline:deploy", "pipeline"),
        ("svc", "service"),
    ]
    events = [
        ev(action, eid=f"{action}/{who}/{env}", actor=who, kind=kind, env=env, resource=PROD_DB)
        for action in sorted(a for a in fast.pack.actions if "*" not in a)
        for who, kind in kinds
        for env in ("prod", "staging")
    ]
    expected = [reference.evaluate([e], approvals=ApprovalBook(config))[0] for e in events]
    got = [fast.evaluate([e], approvals=ApprovalBook(config))[0] for e in events]
    assert got == expected
