"""Hypothesis strategies for canonical events (shared by tests that need random events)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from core.event import Actor, Approval, CanonicalEvent, Change, Resource

# Strings that survive UTF-8 (no lone surrogates): what a valid event may contain.
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
ident = text.filter(bool)
hexes = st.text("0123456789abcdef", min_size=64, max_size=64)
times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
actions = st.builds(
    lambda ns, verb: f"{ns}:{verb}",
    st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True),
    st.text(
        st.characters(min_codepoint=0x21, exclude_categories=["Cs"], exclude_characters="\x7f"),
        min_size=1,
        max_size=30,
    ),
)

actors = st.builds(
    Actor,
    id=ident,
    kind=st.sampled_from(["agent", "human", "pipeline", "service", "unknown"]),
    on_behalf_of=st.none() | ident,
    session=st.none() | ident,
    credential=st.none() | ident,
)
resources = st.builds(
    Resource,
    id=ident,
    type=ident,
    environment=st.sampled_from(["prod", "staging", "dev", "unknown"]),
    account=st.none() | ident,
    data_classes=st.lists(st.sampled_from(["pci", "pii", "secret"]), unique=True).map(tuple),
)
changes = st.builds(
    Change,
    task=st.none() | text,
    prompt_sha256=st.none() | hexes,
    diff_sha256=st.none() | hexes,
    commit=st.none() | ident,
    pull_request=st.none() | ident,
    ticket=st.none() | ident,
)
approvals = st.builds(
    Approval,
    request_id=ident,
    decision=st.sampled_from(["grant", "deny"]),
    actor=ident,
    action=ident,
    resource=ident,
    digest=st.none() | hexes,
    expires_at=st.none() | times,
)
events = st.builds(
    CanonicalEvent,
    event_id=ident,
    occurred_at=times,
    source=st.sampled_from(["agent", "cloudtrail", "github", "k8s-audit", "approval"]),
    actor=actors,
    action=actions,
    resource=resources,
    change=changes,
    approval=st.none() | approvals,
    attributes=st.dictionaries(ident, text, max_size=4),
    raw=st.none() | text,
    raw_sha256=st.none() | hexes,
)
