"""Railbook's leaf package: the canonical event, canonical JSON, Avro, configuration and errors.

It imports no other Railbook package, so ingest/, policy/, ledger/, dashboard/ and railbook/
may all import it.
"""

from core.avro import decode_event, encode_event
from core.canonical import canonical_json
from core.config import Config, load_config
from core.deadletter import DeadLetter
from core.errors import RailbookError
from core.event import (
    Actor,
    Approval,
    CanonicalEvent,
    Change,
    Resource,
    event_from_dict,
    format_time,
    parse_time,
    sha256_hex,
)

__all__ = [
    "Actor",
    "Approval",
    "CanonicalEvent",
    "Change",
    "Config",
    "DeadLetter",
    "RailbookError",
    "Resource",
    "canonical_json",
    "decode_event",
    "encode_event",
    "event_from_dict",
    "format_time",
    "load_config",
    "parse_time",
    "sha256_hex",
]
