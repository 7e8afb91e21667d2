"""Canonical JSON is stable; JSON and Avro round-trip every event; bad input is a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from core.avro import decode_event, encode_event, schema_fingerprint
from core.canonical import canonical_json
from core.errors import DecodeError, NormaliseError
from core.event import Actor, CanonicalEvent, Resource, event_from_dict
from tests.unit.core.strategies import events

EXAMPLE = CanonicalEvent(
    event_id="claude-code:s1:t1",
    occurred_at=datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC),
    source="claude-code",
    actor=Actor("agent:claude-code", "agent", on_behalf_of="bob@example.com"),
    action="sql:AlterTable",
    resource=Resource("db://prod-db.internal/ledger", "database", "prod"),
    attributes={"tool": "Bash", "é": "ü"},
)


@given(events)
def test_json_round_trip(event: CanonicalEvent) -> None:
    assert event_from_dict(json.loads(canonical_json(event.to_dict()))) == event


@given(events)
def test_avro_round_trip(event: CanonicalEvent) -> None:
    data = encode_event(event)
    assert data[:2] == b"\xc3\x01" and data[2:10] == schema_fingerprint()
    assert decode_event(data) == event


@given(events)
@settings(max_examples=200)
def test_canonical_json_matches_rfc8785(event: CanonicalEvent) -> None:
    assert canonical_json(event.to_dict()) == rfc8785.dumps(event.to_dict())


@given(st.dictionaries(st.text(), st.text(st.characters(exclude_categories=["Cs"]))))
def test_canonical_json_matches_rfc8785_for_any_keys(d: dict[str, str]) -> None:
    # keys may be lone surrogates or astral characters: JCS orders by UTF-16 code units
    try:
        expected = rfc8785.dumps(d)
    except Exception:
        with pytest.raises(NormaliseError):
            canonical_json(d)
        return
    assert canonical_json(d) == expected


def test_canonical_bytes_independent_of_field_order() -> None:
    d = EXAMPLE.to_dict()
    shuffled = dict(reversed(list(d.items())))
    shuffled["actor"] = dict(reversed(list(d["actor"].items())))
    assert canonical_json(shuffled) == canonical_json(d)
    assert event_from_dict(shuffled) == EXAMPLE


def test_canonical_bytes_stable_across_processes() -> None:
    """Same event, fresh interpreters with different hash seeds: the same bytes, pinned here."""
    code = (
        "from tests.unit.core.test_event_codecs import EXAMPLE;"
        "from core.canonical import canonical_json;import sys;"
        "sys.stdout.buffer.write(canonical_json(EXAMPLE.to_dict()))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": s},
        ).stdout
        for s in ("1", "2", "3")
    }
    assert outs == {canonical_json(EXAMPLE.to_dict())}
    assert canonical_json(EXAMPLE.to_dict()).startswith(
        b'{"action":"sql:AlterTable","actor":{"credential":null'
    )
    assert b'"occurred_at":"2026-03-04T05:06:07.000890Z"' in canonical_json(EXAMPLE.to_dict())


def test_lone_surrogate_is_a_normalise_error_not_a_crash() -> None:
    d = EXAMPLE.to_dict()
    d["attributes"] = {"x": "\ud800"}
    with pytest.raises(NormaliseError):
        canonical_json(d)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.pop("event_id"), "event_id"),
        (lambda d: d.update(occurred_at=12), "occurred_at"),
        (lambda d: d.update(occurred_at="2026-01-01T00:00:00"), "time zone"),
        (lambda d: d.update(action="AlterTable"), "action"),
        (lambda d: d["actor"].update(kind="robot"), "actor.kind"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["change"].update(diff_sha256="zz"), "diff_sha256"),
    ],
)
def test_bad_event_names_the_field(mutate, needle) -> None:  # type: ignore[no-untyped-def]
    d = EXAMPLE.to_dict()
    mutate(d)
    with pytest.raises(NormaliseError) as info:
        event_from_dict(d, where="events.jsonl:3")
    assert "events.jsonl:3" in str(info.value) and needle in str(info.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "bad-header"),
        (b'{"json": true}', "bad-header"),
        (b"\xc3\x01" + b"\x00" * 8 + b"\x02", "unknown-schema"),
        (b"\xc3\x01" + schema_fingerprint() + b"\xff\xff\xff", "bad-avro"),
        (b"\xc3\x01" + b"\x00" * (5 << 20), "oversized"),
    ],
)
def test_bad_avro_is_a_decode_error_with_reason(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_event(data)
    assert info.value.reason == reason


def test_truncated_avro_is_a_decode_error() -> None:
    data = encode_event(EXAMPLE)
    for cut in (11, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError):
            decode_event(data[:cut])
    with pytest.raises(DecodeError):
        decode_event(data + b"\x00")


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("actor", "kind"), "robot", "actor.kind"),
        (("change", "diff_sha256"), "not-hex", "change.diff_sha256"),
        (("action",), "no namespace", "namespaced"),
        (("event_id",), "", "event_id"),
    ],
)
def test_avro_with_valid_types_but_bad_values_is_a_decode_error(
    path: tuple[str, ...], value: str, needle: str
) -> None:
    """The Avro schema fixes types only; the constraints it cannot express are still checked."""
    import io

    import fastavro

    from core.avro import MAGIC, SCHEMA_VERSIONS, WRITER_VERSION

    sv = SCHEMA_VERSIONS[WRITER_VERSION]
    d = EXAMPLE.to_dict()
    d["occurred_at"] = EXAMPLE.occurred_at
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    buf = io.BytesIO()
    buf.write(MAGIC + sv.fingerprint)
    fastavro.schemaless_writer(buf, sv.parsed, d)
    with pytest.raises(DecodeError) as info:
        decode_event(buf.getvalue(), where="kafka:t/0@7")
    assert info.value.reason == "schema" and needle in str(info.value) and "kafka:t/0@7" in str(info.value)


@given(events)
def test_canonical_bytes_kept_while_decoding_are_the_events_own(event: CanonicalEvent) -> None:
    """``decode_event(keep_canonical=True)`` writes the decoded record instead of ``to_dict``: every
    schema version's record must be ``to_dict``'s shape field for field, times apart."""
    data = encode_event(event)
    kept = decode_event(data, keep_canonical=True)
    assert "_canonical_bytes" in kept.__dict__
    assert kept.canonical_bytes == canonical_json(event.to_dict())
    assert kept == decode_event(data) == event
