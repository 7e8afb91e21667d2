"""Each ingest module imports first, in a fresh interpreter (no hidden import cycles; STYLE rule 1)."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODULES = [
    "ingest",
    "ingest.redact",
    "ingest._screen",
    "ingest.commands",
    "ingest.commands._classify",
    "ingest.commands._sql",
    "ingest.commands._kubectl",
    "ingest.commands._cloud",
    "ingest.commands._workspace",
    "ingest.detect",
    "ingest.cloudtrail",
    "ingest.github",
    "ingest.k8s_audit",
    "ingest.claude_code",
    "ingest.mcp",
    "ingest.event_source",
    "ingest._normalise",
    "ingest._bench",
]


@pytest.mark.parametrize("module", MODULES)
def test_import_first(module):
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_public_surface():
    import ingest

    assert ingest.SOURCES == ("event", "cloudtrail", "github", "k8s-audit", "claude-code", "mcp")
    for name in ingest.__all__:
        assert hasattr(ingest, name), name


def test_commands_public_names_survive_the_split():
    import ingest
    import ingest.commands as commands

    assert commands.__all__ == ["CommandFacts", "classify_command", "classify_sql", "redact_command"]
    assert ingest.classify_command is commands.classify_command
    assert ingest.CommandFacts is commands.CommandFacts
