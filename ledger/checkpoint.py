"""Checkpoints: a C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint) in a signed note.

Body, one field per line, each ending in ``\\n``::

    <origin>
    <tree size, decimal, no leading zeros>
    <root hash, standard base64>

Railbook adds no extension lines. The note is signed with the ledger's Ed25519 key (``ledger.note``),
whose key name is the origin. A :class:`Checkpoint` is a frozen value that always carries its signed
text, so a copy of it can be checked by anyone holding the public key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.event import format_time, parse_time
from ledger.merkle import HASH_SIZE
from ledger.note import Signer, Verifier, open_note, sign_note, split_note

__all__ = ["Checkpoint", "checkpoint_body", "parse_body", "read_checkpoints_file", "sign_checkpoint"]


def checkpoint_body(origin: str, tree_size: int, root_hash: bytes) -> str:
    if not origin or "\n" in origin:
        raise ValueError(f"origin {origin!r} must be one non-empty line")
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"


def parse_body(text: str) -> tuple[str, int, bytes]:
    """``(origin, tree_size, root_hash)`` of a checkpoint body; raises ValueError on a malformed one."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise ValueError("checkpoint body must have origin, size and root lines, each ending in a newline")
    origin, size_s, root_s = lines[0], lines[1], lines[2]
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise ValueError(f"checkpoint tree size {size_s!r} is not a decimal without leading zeros")
    try:
        root = base64.b64decode(root_s, validate=True)
    except binascii.Error:
        raise ValueError(f"checkpoint root {root_s!r} is not base64") from None
    if len(root) != HASH_SIZE:
        raise ValueError(f"checkpoint root is {len(root)} bytes, expected {HASH_SIZE}")
    return origin, int(size_s), root


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: the log ``origin`` had ``tree_size`` entries with root ``root_hash``."""

    origin: str
    """The log's name (first line of the body; also the signing key's name)."""
    tree_size: int
    """Number of entries covered (entries with seq < tree_size)."""
    root_hash: bytes
    """RFC 6962 root of those entries (32 bytes)."""
    signed_note_text: str
    """The whole C2SP signed note: body, blank line, signature line(s)."""
    created_at: datetime
    """When the writer signed it (UTC)."""

    @classmethod
    def from_note(cls, note: str, created_at: datetime, verifier: Verifier | None = None) -> Checkpoint:
        """Parse a signed checkpoint; with ``verifier``, also check its signature (ValueError if bad)."""
        text = open_note(note, verifier) if verifier is not None else split_note(note)[0]
        origin, size, root = parse_body(text)
        return cls(origin, size, root, note, created_at)

    def verify(self, verifier: Verifier) -> None:
        """Raise ValueError unless the note is validly signed and agrees with the fields."""
        text = open_note(self.signed_note_text, verifier)
        if parse_body(text) != (self.origin, self.tree_size, self.root_hash):
            raise ValueError("checkpoint fields differ from its signed body")

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": base64.b64encode(self.root_hash).decode(),
            "note": self.signed_note_text,
            "created_at": format_time(self.created_at),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Checkpoint:
        """Rebuild from :meth:`to_dict`; the fields are re-read from the signed body, not trusted."""
        return cls.from_note(str(d["note"]), parse_time(str(d["created_at"])))

    def to_line(self) -> str:
        """One JSON line for the append-only checkpoints file."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"


def sign_checkpoint(
    signer: Signer, origin: str, tree_size: int, root_hash: bytes, created_at: datetime
) -> Checkpoint:
    note = sign_note(checkpoint_body(origin, tree_size, root_hash), signer)
    return Checkpoint(origin, tree_size, root_hash, note, created_at)


def read_checkpoints_file(path: Path) -> list[Checkpoint]:
    """Every checkpoint in an append-only checkpoints file (JSON lines); ValueError names a bad line."""
    out: list[Checkpoint] = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(Checkpoint.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{n}: not a checkpoint line ({exc})") from None
    return out
