"""The Merkle-chained, signed DuckDB ledger (see docs/design/ledger.md).

Public surface: ``Ledger`` (the writer and its read API), ``SegmentReader`` (read-only over the
published segments), ``verify_ledger``, proofs and evidence packs, ``keygen``, and the pure
RFC 6962 primitives in ``ledger.merkle``.
"""

from ledger import merkle
from ledger.checkpoint import Checkpoint
from ledger.entry import AppendResult, DeadLetterRow, Entry
from ledger.evidence import EvidenceReport, build_evidence, prove, verify_evidence
from ledger.keys import keygen
from ledger.segments import SegmentReader
from ledger.store import ExistingLookup, Ledger
from ledger.verify import Problem, VerifyReport, verify_ledger

__all__ = [
    "AppendResult",
    "Checkpoint",
    "DeadLetterRow",
    "Entry",
    "EvidenceReport",
    "ExistingLookup",
    "Ledger",
    "Problem",
    "SegmentReader",
    "VerifyReport",
    "build_evidence",
    "keygen",
    "merkle",
    "prove",
    "verify_evidence",
    "verify_ledger",
]
