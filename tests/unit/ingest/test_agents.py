"""Claude Code hook payloads and MCP tools/call messages (real doc examples plus synthetic variants)."""

from __future__ import annotations

import copy

import pytest

from core.event import sha256_hex
from ingest import normalise_record, stamp_hook_payload
from tests.unit.ingest.helpers import load, run

HOOKS = "agent-hooks/claude-code-doc-examples/"
MCP = "agent-hooks/mcp-2025-06-18/"


def test_doc_examples_inputs_normalise_and_outputs_are_dead_lettered(asset, config):
    root = asset(HOOKS + "01.PreToolUse.input.Bash.json").parent
    for path in sorted(root.glob("*.json")):
        events, dead = run(path.read_bytes(), config, source="claude-code", origin=path.name)
        if ".input." in path.name:
            assert len(events) == 1 and dead == []
        else:
            assert events == [] and [d.reason for d in dead] == ["hook-output"]


def test_pre_tool_use_bash_doc_example(asset, config):
    [ev] = run(asset(HOOKS + "01.PreToolUse.input.Bash.json").read_bytes(), config)[0]
    assert ev.event_id == "claude-code:abc123:toolu_01ABC123..."
    assert ev.action == "shell:Exec" and ev.resource.id == "cmd://npm"
    assert ev.actor.kind == "agent" and ev.actor.session == "abc123"
    assert ev.change.diff_sha256 == sha256_hex(b"npm test")
    assert ev.attributes["prompt_id"] == "550e8400-e29b-41d4-a716-446655440000"


def test_post_tool_use_write_has_diff_hash_and_distinct_id(asset, config):
    [ev] = run(asset(HOOKS + "03.PostToolUse.input.Write.json").read_bytes(), config)[0]
    assert ev.action == "file:Write"
    assert ev.resource.id == "file:///path/to/file.txt"
    assert ev.change.diff_sha256 == sha256_hex(b"file content")
    assert ev.event_id == "claude-code:abc123:toolu_01ABC123...:result"


def test_prompt_is_hashed_never_stored_and_pan_detected(asset, config):
    payload = load(asset(HOOKS + "02.UserPromptSubmit.input.json"))
    [ev] = normalise_record(payload, source="claude-code", where="x", config=config)
    assert ev.action == "agent:Prompt"
    assert ev.change.prompt_sha256 == sha256_hex(payload["prompt"].encode())
    assert payload["prompt"] not in (ev.raw or "")
    assert ev.resource.data_classes == ()
    leaky = dict(payload, prompt="refund card 4111 1111 1111 1111 for SSN 123-45-6789 please")  # synthetic
    [ev2] = normalise_record(leaky, source="claude-code", where="x", config=config)
    assert set(ev2.resource.data_classes) >= {"pci", "pii"}
    assert "4111" not in (ev2.raw or "") and "refund" not in (ev2.raw or "")


def test_tool_response_with_card_data_marks_pci(asset, config):
    payload = copy.deepcopy(load(asset(HOOKS + "03.PostToolUse.input.Write.json")))
    payload["tool_response"]["content"] = "pan,name\n5555555555554444,Ada\n"  # synthetic
    [ev] = normalise_record(payload, source="claude-code", where="x", config=config)
    assert "pci" in ev.resource.data_classes
    assert "5555555555554444" not in (ev.raw or "")


def test_mcp_tool_and_stamp(config):
    record = {
        "tool_name": "mcp__github__delete_repo",
        "tool_input": {"repo": "a/b"},
        "session_id": "s",
        "hook_event_name": "PreToolUse",
        "tool_use_id": "t1",
    }
    stamped = stamp_hook_payload(
        record, {"RAILBOOK_AGENT_ID": "agent:ci-fixer", "RAILBOOK_ON_BEHALF_OF": "bob@x.io"}
    )
    assert stamped["railbook_agent_id"] == "agent:ci-fixer" and "railbook_received_at" in stamped
    assert "railbook_agent_id" not in record
    [ev] = normalise_record(stamped, source="claude-code", where="x", config=config)
    assert ev.action == "mcp:CallTool" and ev.resource.id == "mcp://github/delete_repo"
    assert (ev.actor.id, ev.actor.on_behalf_of) == ("agent:ci-fixer", "bob@x.io")
    assert "time_source" not in ev.attributes


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda p: p.pop("session_id"), "missing-field"),
        (lambda p: p.update(session_id=""), "schema"),
        (lambda p: p.update(tool_input="npm test"), "schema"),
        (lambda p: p["tool_input"].update(command=["npm", "test"]), "schema"),
        (lambda p: p.pop("tool_input"), "missing-field"),
        (lambda p: p.update(hook_event_name="Pre Tool Use!"), "schema"),
        (lambda p: p.update(session_id="s" * 100_000), "schema"),
        (lambda p: p.update(railbook_received_at="12:00"), "bad-time"),
        (lambda p: p["tool_input"].update(command="\ud800 rm -rf /"), "unicode"),
    ],
)
def test_hostile_hooks(asset, config, edit, reason):
    payload = copy.deepcopy(load(asset(HOOKS + "01.PreToolUse.input.Bash.json")))
    edit(payload)
    events, dead = run(payload, config, source="claude-code")
    assert events == [] and [d.reason for d in dead] == [reason]


def test_mcp_samples(asset, config):
    expected = {
        "tools-call.request.json": ("mcp:CallTool", None),
        "tools-call.response.json": ("mcp:ToolResult", None),
        "tools-call.response.structuredContent.json": ("mcp:ToolResult", None),
        "tools-call.tool-execution-error.json": ("mcp:ToolResult", "tool-error"),
        "tools-call.protocol-error.json": ("mcp:ToolError", "-32602"),
        "tools-list.request.json": (None, "unsupported"),
    }
    for name, (action, code) in expected.items():
        events, dead = run(asset(MCP + name).read_bytes(), config)
        if action is None:
            assert events == [] and [d.reason for d in dead] == [code]
            continue
        [ev] = events
        assert ev.action == action and ev.source == "mcp" and ev.actor.kind == "agent"
        assert ev.attributes.get("error_code") == code


def test_mcp_request_with_session_and_server(asset, config):
    msg = dict(
        load(asset(MCP + "tools-call.request.json")), railbook_session="m-1", railbook_server="weather"
    )
    [ev] = normalise_record(msg, source="mcp", where="x", config=config)
    assert ev.event_id == "mcp:m-1:2"
    assert ev.resource.id == "mcp://weather/get_weather"
    assert ev.change.diff_sha256 is not None
