"""The demo: DESIGN.md's incident, replayed through the same code paths as real ingestion.

The story's records are ordinary files in this folder, in their sources' real formats:

- ``agent-session.jsonl``: Claude Code hook payloads from Bob's session. The agent restarts a
  staging deployment (fine), then runs ``ALTER TABLE`` through ``psql`` against the production
  database: the wrong connection string, no approval.
- ``cloudtrail-deploy.json``: a CloudTrail log file: the deploy pipeline's role updates the
  production ECS service (fine: the pipeline is the one principal allowed to change prod).
- ``approved-change.jsonl``: canonical events: Alice (an approver, neither the actor nor the
  requester) grants change CHG-2291 for that exact migration digest; the pipeline applies it.

``run_demo`` ingests them with ``ingest.normalise_bytes`` and ``railbook.pipeline.Pipeline``,
exactly as ``railbook ingest`` does.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from core.config import Config, load_config
from ingest import normalise_bytes
from ledger import VerifyReport, keygen, verify_ledger
from railbook.pipeline import BatchSummary
from railbook.wiring import open_pipeline

__all__ = ["INCIDENT_EVENT_ID", "STEPS", "DemoResult", "prepare_demo_dir", "run_demo"]

INCIDENT_EVENT_ID = "claude-code:sess-7f3a:toolu_01ProdAlterTable"

#: (file, what a reader should know before it is ingested)
STEPS: tuple[tuple[str, str], ...] = (
    (
        "agent-session.jsonl",
        "Bob asks his coding agent to fix a flaky migration. The agent restarts the staging API, "
        "then sends ALTER TABLE to prod-db.internal: the wrong connection string.",
    ),
    (
        "cloudtrail-deploy.json",
        "CloudTrail: the deploy pipeline rolls out payments-api to production.",
    ),
    (
        "approved-change.jsonl",
        "The right way: Alice approves change CHG-2291 (that exact migration, by digest); "
        "the pipeline applies it.",
    ),
)

_MARKER = ".railbook-demo"


@dataclass
class DemoResult:
    """What the demo did, for the CLI to narrate."""

    config: Config
    config_path: Path
    steps: list[tuple[str, str, BatchSummary]] = field(default_factory=list)
    verify: VerifyReport | None = None


def prepare_demo_dir(directory: Path) -> Path:
    """A fresh demo directory with the demo's railbook.toml pointing at it; returns the config path.

    Only a directory the demo made before (it has a marker file) or an empty one is reset, so a
    mistyped ``--dir`` never deletes someone's data.
    """
    if directory.exists() and any(directory.iterdir()):
        if not (directory / _MARKER).exists():
            raise FileExistsError(
                f"{directory} exists and was not made by `railbook demo`; choose another --dir or remove it"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _MARKER).write_text("made by `railbook demo`; safe to delete\n")
    template = resources.files("railbook.demo").joinpath("railbook.toml").read_text()
    ledger = (directory / "ledger.duckdb").resolve()
    text = template.replace('path = "railbook-data/demo/ledger.duckdb"', f'path = "{ledger.as_posix()}"')
    config_path = directory / "railbook.toml"
    config_path.write_text(text)
    return config_path


def run_demo(directory: Path) -> DemoResult:
    """Replay the story into a fresh ledger under ``directory``, sign a checkpoint, verify it all."""
    config_path = prepare_demo_dir(directory)
    config = load_config(config_path)
    # The demo's own key, made up front (the ledger would make one on first use, with a warning).
    keygen(config.key_path, config.ledger.origin)
    result = DemoResult(config=config, config_path=config_path)
    data_dir = resources.files("railbook.demo")
    with open_pipeline(config) as pipeline:
        for name, blurb in STEPS:
            data = data_dir.joinpath(name).read_bytes()
            summary = pipeline.process(list(normalise_bytes(data, source=None, origin=name, config=config)))
            result.steps.append((name, blurb, summary))
        pipeline.ledger.checkpoint(force=True)
    result.verify = verify_ledger(config)
    return result
