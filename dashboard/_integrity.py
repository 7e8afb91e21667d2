"""Integrity page logic: signed checkpoints, verification with progress, inclusion proofs.

The last verification result is kept in ``<ledger dir>/dashboard-verify.json`` (written by this
dashboard only; a copy of what the page showed, never trusted as evidence — the Integrity page
re-runs verification on demand).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import IntegrityError, LedgerError, ProofError, RailbookError
from core.event import format_time, parse_time

if TYPE_CHECKING:
    from core.config import Config

__all__ = [
    "STATUS_FILE",
    "VerifyStatus",
    "checkpoint_rows",
    "inclusion",
    "latest_checkpoint",
    "load_status",
    "read_checkpoints",
    "run_verification",
    "save_status",
]

logger = logging.getLogger(__name__)

STATUS_FILE = "dashboard-verify.json"

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class VerifyStatus:
    ok: bool
    at: datetime
    tree_size: int
    message: str
    first_bad_seq: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "at": format_time(self.at),
            "tree_size": self.tree_size,
            "message": self.message,
            "first_bad_seq": self.first_bad_seq,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerifyStatus:
        return cls(
            bool(d["ok"]),
            parse_time(str(d["at"])),
            int(d["tree_size"]),
            str(d["message"]),
            d.get("first_bad_seq"),
            float(d.get("seconds", 0.0)),
        )


def read_checkpoints(path: Path) -> list[Any]:
    """Signed checkpoints from the append-only checkpoints file, oldest first (unreadable lines skipped
    and logged: verification, not this list, is where a bad line fails loudly)."""
    from ledger import Checkpoint

    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LedgerError(f"checkpoints file {str(path)!r} cannot be read: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(Checkpoint.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("checkpoint line unreadable path=%s line=%d error=%s", path, n, exc)
    out.sort(key=lambda c: c.tree_size)
    return out


def latest_checkpoint(checkpoints: list[Any]) -> Any:
    return max(checkpoints, key=lambda c: c.tree_size) if checkpoints else None


def checkpoint_rows(checkpoints: list[Any]) -> list[dict[str, Any]]:
    """Newest first, as table rows."""
    return [
        {
            "tree_size": c.tree_size,
            "root_hash": c.root_hash.hex(),
            "signed_at": format_time(c.created_at),
            "origin": c.origin,
        }
        for c in sorted(checkpoints, key=lambda c: c.tree_size, reverse=True)
    ]


def _status_path(config: Config) -> Path:
    return config.ledger_path.parent / STATUS_FILE


def load_status(config: Config) -> VerifyStatus | None:
    path = _status_path(config)
    try:
        return VerifyStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("verification status unreadable path=%s error=%s", path, exc)
        return None


def save_status(config: Config, status: VerifyStatus) -> None:
    path = _status_path(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(status.to_dict(), sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a read-only offline copy: the page still shows the result
        logger.warning("verification status not saved path=%s error=%s", path, exc)


def run_verification(
    verify: Callable[..., Any], *, progress: Progress | None = None, now: Callable[[], datetime] | None = None
) -> VerifyStatus:
    """Run ``verify`` (the ledger's verification, given a progress callback) and summarise it.

    ``verify(progress=cb)`` returns a report (any object with ``tree_size``/``ok``/``message``-ish
    fields, or a dict) or raises ``IntegrityError`` naming the first bad entry.
    """
    started = time.perf_counter()
    clock = now or (lambda: datetime.now(UTC))

    def cb(done: Any, total: Any = None, *rest: Any) -> None:
        if progress is None:
            return
        if total:
            progress(min(float(done) / float(total), 1.0), f"{int(done):,} / {int(total):,} entries")
        else:
            progress(min(float(done), 1.0), str(rest[0]) if rest else "")

    try:
        report = verify(progress=cb)
    except IntegrityError as exc:
        return VerifyStatus(False, clock(), -1, str(exc), exc.seq, time.perf_counter() - started)
    except RailbookError as exc:
        return VerifyStatus(False, clock(), -1, exc.diagnostics(), None, time.perf_counter() - started)
    size = _field(report, "tree_size", "size", "entries") or 0
    ok = _field(report, "ok")
    message = (
        _field(report, "message", "summary")
        or f"all {int(size):,} entries, chain, roots and signatures check"
    )
    if progress is not None:
        progress(1.0, "done")
    return VerifyStatus(
        ok is not False, clock(), int(size), str(message), None, time.perf_counter() - started
    )


def _field(report: Any, *names: str) -> Any:
    for name in names:
        v = report.get(name) if isinstance(report, dict) else getattr(report, name, None)
        if v is not None:
            return v
    return None


def inclusion(reader: Any, event_id: str) -> dict[str, Any]:
    """The inclusion proof of ``event_id`` in the latest signed checkpoint (as ``railbook prove``)."""
    prove = getattr(reader, "prove", None)
    if prove is None:
        raise ProofError("this ledger reader cannot build proofs; open the ledger file or update railbook")
    result = prove(event_id.strip())
    return result if isinstance(result, dict) else _as_dict(result)


def _as_dict(obj: Any) -> dict[str, Any]:
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        d = to_dict()
        if isinstance(d, dict):
            return d
    return {"proof": str(obj)}
