"""Railbook's error hierarchy, in one place so every package raises the same types.

    RailbookError                      base; ``diagnostics()`` is the text shown to a user
    ├── ConfigError                    railbook.toml missing keys, bad values, unreadable file
    ├── IngestError
    │   ├── DecodeError                bytes that are not JSON / Avro / gzip, unknown schema fingerprint
    │   ├── NormaliseError             a decodable record an adapter cannot map (wrong shape, missing field)
    │   └── KafkaError                 broker unreachable, publish or consume failed (wraps kafka-python)
    ├── PolicyError
    │   ├── PolicyLoadError            a policy, schema or catalog file that does not parse or validate
    │   └── PolicyTestError            a policy unit test file that is malformed
    ├── LedgerError
    │   ├── LedgerLockedError          another process holds the DuckDB file (wraps duckdb.IOException)
    │   ├── IntegrityError             verification found a mismatch; carries the evidence
    │   ├── ProofError                 a proof cannot be built (index out of range, unknown checkpoint)
    │   ├── SigningKeyError            missing / unreadable / wrong-permission signing key
    │   └── EvidenceError              an evidence pack that is malformed or does not verify
    └── ServiceError
        ├── GateError                  the gate cannot answer (unreachable, bad response)
        └── AlertError                 a sink cannot be configured or reached

Library code raises these with ``raise … from exc`` at the boundary with kafka-python,
duckdb and cedarpy; only the CLI turns them into ``click.ClickException``.
This module imports nothing from Railbook, so any package may import it.
"""

from __future__ import annotations

__all__ = [
    "AlertError",
    "ConfigError",
    "DecodeError",
    "EvidenceError",
    "GateError",
    "IngestError",
    "IntegrityError",
    "KafkaError",
    "LedgerError",
    "LedgerLockedError",
    "NormaliseError",
    "PolicyError",
    "PolicyLoadError",
    "PolicyTestError",
    "ProofError",
    "RailbookError",
    "ServiceError",
    "SigningKeyError",
]


class RailbookError(Exception):
    """Base of every error Railbook raises on purpose."""

    def diagnostics(self) -> str:
        """Text for a human: the message, plus the underlying cause when there is one."""
        text = str(self)
        cause = self.__cause__
        if cause is not None and str(cause) and str(cause) not in text:
            text += f"\n\nAdditional context:\n{cause}"
        return text


class ConfigError(RailbookError):
    """railbook.toml (or an environment override) is missing, unreadable or invalid."""


class IngestError(RailbookError):
    """A record could not be taken in."""


class DecodeError(IngestError):
    """Bytes that cannot be decoded at all (not JSON, bad Avro, truncated gzip, oversized)."""

    def __init__(self, message: str, *, reason: str = "decode") -> None:
        super().__init__(message)
        #: short machine-readable reason code, used for dead-letter counts
        self.reason = reason


class NormaliseError(IngestError):
    """A decoded record that an adapter cannot turn into a canonical event."""

    def __init__(self, message: str, *, reason: str = "normalise") -> None:
        super().__init__(message)
        self.reason = reason


class KafkaError(IngestError):
    """The Kafka broker could not be reached, or a publish/consume failed."""


class PolicyError(RailbookError):
    """Policy evaluation or loading failed."""


class PolicyLoadError(PolicyError):
    """A policy, schema or catalog file does not parse or does not validate."""


class PolicyTestError(PolicyError):
    """A policy unit-test file is malformed."""


class LedgerError(RailbookError):
    """The ledger could not be read or written."""


class LedgerLockedError(LedgerError):
    """Another process holds the DuckDB ledger file."""


class IntegrityError(LedgerError):
    """Verification found a mismatch. ``seq`` is the first bad sequence number, if known."""

    def __init__(self, message: str, *, seq: int | None = None, kind: str = "mismatch") -> None:
        super().__init__(message)
        self.seq = seq
        self.kind = kind


class ProofError(LedgerError):
    """A proof cannot be built or does not verify."""


class SigningKeyError(LedgerError):
    """The checkpoint signing key is missing, unreadable or unsafe."""


class EvidenceError(LedgerError):
    """An evidence pack is malformed or does not verify."""


class ServiceError(RailbookError):
    """The running service failed."""


class GateError(ServiceError):
    """The gate could not answer."""


class AlertError(ServiceError):
    """An alert sink is misconfigured or unreachable."""
