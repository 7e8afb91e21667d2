"""Ingest: source records (CloudTrail, GitHub, Kubernetes audit, Claude Code, MCP, canonical events)
→ canonical events, with secrets redacted and bad records dead-lettered (see docs/design/ingest.md).

Everything not listed in ``__all__`` is internal; adapters register in ``ingest._registry``.
"""

from ingest._adapter import Adapter
from ingest._normalise import normalise_bytes, normalise_record
from ingest._registry import SOURCES
from ingest.claude_code import stamp_hook_payload
from ingest.commands import CommandFacts, classify_command
from ingest.detect import detect_source
from ingest.github import verify_github_signature
from ingest.kafka import ProducerLike, Publisher, decode_message
from ingest.redact import redact, redact_text

__all__ = [
    "SOURCES",
    "Adapter",
    "CommandFacts",
    "ProducerLike",
    "Publisher",
    "classify_command",
    "decode_message",
    "detect_source",
    "normalise_bytes",
    "normalise_record",
    "redact",
    "redact_text",
    "stamp_hook_payload",
    "verify_github_signature",
]
