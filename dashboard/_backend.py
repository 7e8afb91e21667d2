"""Everything a page needs besides Streamlit: config, a reader source, a submitter, verification.

``open_backend(config)`` picks the wiring: with a service URL (``railbook up`` beside it) the
dashboard reads the published segments and POSTs what users submit; without one it reads the
ledger file (offline copy) and submits in-process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import EvidenceError
from dashboard._integrity import (
    Progress,
    VerifyStatus,
    load_status,
    read_checkpoints,
    run_verification,
    save_status,
)
from dashboard._reader import LedgerSource, SourceMode, StaticSource
from dashboard._settings import DashboardSettings, dashboard_settings
from dashboard._submit import InProcessSubmitter, ServiceSubmitter, Submitter

if TYPE_CHECKING:
    from core.config import Config

__all__ = ["Backend", "open_backend"]

logger = logging.getLogger(__name__)


@dataclass
class Backend:
    config: Config
    settings: DashboardSettings
    source: LedgerSource | StaticSource
    submitter: Submitter
    #: verification for the Integrity page: ``verify(progress=cb)``; default: the ledger's own
    verifier: Callable[..., Any] | None = None
    #: evidence packs: ``packer(**query) -> bytes``; default: ``ledger.build_evidence``
    packer: Callable[..., bytes] | None = None
    _status: VerifyStatus | None = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        """True when a service runs beside the dashboard (data as of the last checkpoint)."""
        return isinstance(self.submitter, ServiceSubmitter)

    def checkpoints(self) -> list[Any]:
        return read_checkpoints(self.config.checkpoints_file)

    def verification(self) -> VerifyStatus | None:
        return self._status or load_status(self.config)

    def verify(self, progress: Progress | None = None) -> VerifyStatus:
        verifier = self.verifier or self._ledger_verifier()
        status = run_verification(verifier, progress=progress)
        self._status = status
        save_status(self.config, status)
        return status

    def _ledger_verifier(self) -> Callable[..., Any]:
        from ledger import verify_ledger

        config = self.config
        source = self.source

        def verify(progress: Any = None) -> Any:
            if source.last_mode == "segments" or not config.ledger_path.exists():
                # a running writer holds the file: re-verify the published segments against the
                # signed checkpoints instead (what this dashboard shows)
                with source.reader() as reader:
                    if progress is not None:
                        progress(0, 1)
                    report = reader.verify()
                    if progress is not None:
                        progress(1, 1)
                    return report
            segs = config.segments_dir if config.segments_dir.is_dir() else None
            source.close()
            return verify_ledger(config, progress=progress, segments=segs)

        return verify

    def evidence_pack(self, **query: Any) -> bytes:
        """The evidence pack (``ledger.build_evidence``) for an event id or a change, as JSON bytes."""
        if self.packer is not None:
            return self.packer(**query)
        from ledger import build_evidence

        with self.source.reader() as reader:
            target: Any = reader if hasattr(reader, "inclusion_proof") else SegmentLedger(reader)
            pack = build_evidence(target, **query)  # SegmentLedger has the Ledger methods it uses
        return (json.dumps(pack, indent=2, sort_keys=True, default=str) + "\n").encode()


class SegmentLedger:
    """What ``ledger.build_evidence`` needs from a ledger, over a ``SegmentReader`` (proofs are
    recomputed from the published leaf hashes; no write access, so no checkpoint is ever signed)."""

    read_only = True

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._leaves: list[bytes] | None = None

    def get(self, event_id: str) -> Any:
        return self._reader.get(event_id)

    def entries(self, **filters: Any) -> list[Any]:
        return list(self._reader.entries(**filters))

    def find(self, **filters: Any) -> list[Any]:
        return list(self._reader.find(**filters))

    def latest_checkpoint(self) -> Any:
        return self._reader.latest_checkpoint()

    def checkpoint(self) -> Any:
        return self._reader.latest_checkpoint()

    def verifier(self) -> Any:
        v = getattr(self._reader, "verifier", None)
        if v is None:
            raise EvidenceError(
                "the ledger's public key (signing.key.pub beside the ledger) is missing, so the pack "
                "could not name it; copy it next to the segments or run 'railbook evidence' on the writer"
            )
        return v

    def inclusion_proof(self, seq: int, tree_size: int) -> list[bytes]:
        from ledger.merkle import root_from_leaf_hashes
        from ledger.proofs import inclusion_proof_at

        if self._leaves is None or len(self._leaves) < tree_size:
            self._leaves = self._reader._leaf_hashes(tree_size)
        leaves = self._leaves

        def fetch(ids: Any) -> list[bytes]:
            return [root_from_leaf_hashes(leaves[i << lv : (i + 1) << lv]) for lv, i in ids]

        return inclusion_proof_at(seq, tree_size, fetch)


def _service_token(config: Config, settings: DashboardSettings) -> str | None:
    import os

    from dashboard._settings import TOKEN_ENV

    env = os.environ.get(TOKEN_ENV)
    if env:
        return env.strip()
    path = (
        Path(settings.service_token_file)
        if settings.service_token_file
        else config.ledger_path.parent / "service.token"
    )
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def open_backend(config: Config, *, mode: SourceMode | None = None, reader: Any = None) -> Backend:
    """The dashboard's wiring for ``config`` (``reader``: serve this reader instead, for tests/bench)."""
    settings = dashboard_settings(config)
    source: LedgerSource | StaticSource
    if reader is not None:
        source = StaticSource(reader)
    else:
        source = LedgerSource(config, mode=mode or ("segments" if settings.service_url else "auto"))
    submitter: Submitter
    if settings.service_url:
        submitter = ServiceSubmitter(settings.service_url, default_token=_service_token(config, settings))
    else:
        submitter = InProcessSubmitter(config, before=source.close)
    logger.info(
        "dashboard backend ledger=%s service=%s mode=%s",
        config.ledger_path,
        settings.service_url,
        getattr(source, "mode", "static"),
    )
    return Backend(config, settings, source, submitter)
