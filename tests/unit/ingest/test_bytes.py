"""normalise_bytes on hostile input: never raises, every bad record is a dead letter with a reason."""

from __future__ import annotations

import gzip
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.deadletter import DeadLetter
from ingest import normalise_bytes
from tests.unit.ingest.helpers import run


def _hook(i: int) -> dict:
    return {
        "session_id": "s",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_use_id": f"t{i}",
        "tool_input": {"command": "git status"},
    }


def test_json_lines_with_bad_lines_continue(config):
    data = b"\n".join(
        [
            json.dumps(_hook(1)).encode(),
            b"{not json",
            b"\xff\xfe garbage",
            json.dumps([1, 2]).encode(),
            b"[" * 5000 + b"]" * 5000,
            b'"just a string"',
            json.dumps(_hook(2)).encode(),
        ]
    )
    events, dead = run(data, config, origin="hooks.jsonl")
    assert [e.event_id for e in events] == ["claude-code:s:t1", "claude-code:s:t2"]
    assert [(d.where, d.reason) for d in dead] == [
        ("hooks.jsonl:2", "not-json"),
        ("hooks.jsonl:3", "not-utf8"),
        ("hooks.jsonl:4#0", "unknown-source"),
        ("hooks.jsonl:4#1", "unknown-source"),
        ("hooks.jsonl:5", "too-deep"),
        ("hooks.jsonl:6", "unknown-source"),
    ]
    assert dead[1].raw == b"\xff\xfe garbage"  # raw bytes kept as they were


def test_truncated_and_bad_gzip(config):
    blob = gzip.compress(json.dumps(_hook(1)).encode() * 50)
    _, dead = run(blob[: len(blob) // 2], config, origin="x.gz")
    assert [d.reason for d in dead] == ["truncated-gzip"]
    _, dead = run(b"\x1f\x8b" + b"\x00" * 30, config, origin="x.gz")
    assert [d.reason for d in dead] == ["bad-gzip"]
    two = gzip.compress(json.dumps(_hook(1)).encode() + b"\n") + gzip.compress(json.dumps(_hook(2)).encode())
    events, dead = run(two, config)  # multi-member gzip (concatenated files)
    assert len(events) == 2 and dead == []


def test_oversized_line_is_not_parsed(config):
    big = json.dumps({"session_id": "s", "hook_event_name": "X", "pad": "a" * 700_000}).encode()
    events, dead = run(big + b"\n" + json.dumps(_hook(1)).encode(), config, origin="big.jsonl")
    assert len(events) == 1 and [d.reason for d in dead] == ["oversized"]


def test_lone_surrogates_and_huge_values(config):
    data = json.dumps({**_hook(1), "cwd": "\ud800"}).encode()  # json escapes it as \\ud800
    events, dead = run(data, config)
    assert events == [] and dead[0].reason == "unicode"


def test_empty_input_yields_nothing(config):
    assert run(b"", config) == ([], [])
    assert run(b"  \n\n ", config) == ([], [])


def test_unknown_source_name(config):
    _, dead = run(b"{}", config, source="splunk")
    assert dead[0].reason == "unknown-source"


def test_dead_letter_raw_is_redacted(config):
    line = b'{"oops": "postgresql://u:hunter2@db/x" '
    _, dead = run(line, config)
    assert (
        dead[0].reason == "not-json" and b"hunter2" not in dead[0].raw and b"postgresql://u:" in dead[0].raw
    )


def test_records_array_and_single_document_where(config):
    events, _ = run([_hook(1), _hook(2)], config, origin="f.json")
    assert len(events) == 2
    _, dead = run([_hook(1), {"x": 1}], config, origin="f.json")
    assert dead[0].where == "f.json#1"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400) | st.builds(lambda b: b"\x1f\x8b" + b, st.binary(max_size=100)))
def test_never_raises_on_arbitrary_bytes(config, data):
    for item in normalise_bytes(data, source=None, origin="fuzz", config=config):
        if isinstance(item, DeadLetter):
            assert item.reason and item.where.startswith("fuzz")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["event", "cloudtrail", "github", "k8s-audit", "claude-code", "mcp", None]), _json)
def test_never_raises_on_arbitrary_json(config, source, value):
    data = json.dumps(value).encode()
    items = list(normalise_bytes(data, source=source, origin="fuzz", config=config))
    assert all(isinstance(i, DeadLetter) for i in items) or items
