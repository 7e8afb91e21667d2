"""Dead letters: input that could not be decoded or normalised, kept with the reason (never dropped)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["DeadLetter", "MAX_DEAD_LETTER_BYTES"]

#: raw bytes kept per dead letter; larger input keeps its head and its SHA-256 (see ``truncated``)
MAX_DEAD_LETTER_BYTES = 1 << 20


@dataclass(frozen=True)
class DeadLetter:
    """One record that could not become a canonical event."""

    source: str
    """The source it was read as (``cloudtrail``, ``event``, ``kafka``, … or ``auto``)."""
    reason: str
    """Short machine-readable reason code: ``not-json``, ``schema``, ``bad-avro``, ``oversized``, …"""
    detail: str
    """Human-readable explanation naming the input, the expected and the actual value."""
    raw: bytes
    """The original bytes (at most ``MAX_DEAD_LETTER_BYTES``; see ``truncated``)."""
    where: str
    """Where it came from: ``file.json:12``, ``kafka:railbook.events/0@1532``, ``http:/v1/events``."""
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When Railbook received it (UTC)."""
    truncated: bool = False
    """True when ``raw`` holds only the head of a larger input."""

    @classmethod
    def of(cls, *, source: str, reason: str, detail: str, raw: bytes, where: str) -> DeadLetter:
        """Build one, truncating oversized raw bytes (the detail says so)."""
        if len(raw) > MAX_DEAD_LETTER_BYTES:
            return cls(
                source,
                reason,
                f"{detail} (raw truncated from {len(raw)} bytes)",
                raw[:MAX_DEAD_LETTER_BYTES],
                where,
                truncated=True,
            )
        return cls(source, reason, detail, raw, where)
