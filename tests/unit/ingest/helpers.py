"""Helpers shared by the ingest tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.config import Config
from core.deadletter import DeadLetter
from core.event import CanonicalEvent
from ingest import normalise_bytes


def run(
    data: bytes | Any, config: Config, *, source: str | None = None, origin: str = "test"
) -> tuple[list[CanonicalEvent], list[DeadLetter]]:
    """normalise_bytes on bytes (or a JSON value), split into events and dead letters."""
    if not isinstance(data, bytes):
        data = json.dumps(data).encode()
    events: list[CanonicalEvent] = []
    dead: list[DeadLetter] = []
    for item in normalise_bytes(data, source=source, origin=origin, config=config):
        (dead if isinstance(item, DeadLetter) else events).append(item)  # type: ignore[arg-type]
    return events, dead


def load(path: Path) -> Any:
    return json.loads(path.read_text())
