"""Glue between HTTP bodies and the ingest adapters: records in, events or dead letters out.

Every function here takes an already-accepted envelope (size, type and syntax checked by
``intake``) and never raises for a bad *record*: a record an adapter rejects becomes a
``DeadLetter`` naming where it was (``http:/v1/sources/k8s-audit#3``) and why.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from core.deadletter import DeadLetter
from core.errors import IngestError
from core.event import CanonicalEvent

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["Item", "normalise_many", "normalise_one", "stamp"]

logger = logging.getLogger(__name__)

Item = CanonicalEvent | DeadLetter


def _as_items(result: Any) -> list[Item]:
    if isinstance(result, CanonicalEvent | DeadLetter):
        return [result]
    return list(result)


def normalise_one(record: Any, *, source: str, where: str, config: Config) -> list[Item]:
    """One decoded record through its adapter (``ingest.normalise_record``); failures dead-lettered."""
    import ingest

    try:
        return _as_items(ingest.normalise_record(record, source=source, where=where, config=config))
    except IngestError as exc:
        raw = json.dumps(record, separators=(",", ":"), default=str).encode()
        reason = getattr(exc, "reason", "normalise")
        logger.debug("dead letter where=%s reason=%s", where, reason)
        return [DeadLetter.of(source=source, reason=reason, detail=str(exc), raw=raw, where=where)]


def normalise_many(records: Iterable[Any], *, source: str, where: str, config: Config) -> list[Item]:
    """Each record through ``normalise_one``, ``where`` suffixed with ``#<index>``."""
    out: list[Item] = []
    for i, record in enumerate(records):
        out.extend(normalise_one(record, source=source, where=f"{where}#{i}", config=config))
    return out


def stamp(items: list[Item], **attributes: str) -> list[Item]:
    """Add intake facts (which token submitted it) to each event's attributes; keep existing values."""
    out: list[Item] = []
    for it in items:
        if isinstance(it, CanonicalEvent):
            merged = {**attributes, **it.attributes}
            it = dataclasses.replace(it, attributes=merged)
        out.append(it)
    return out
