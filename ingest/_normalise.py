"""Bytes → records → canonical events or dead letters; one decoded record → canonical events.

``normalise_bytes`` never raises on input: whatever cannot be decoded or normalised becomes a
``core.DeadLetter`` with a reason code, a detail naming ``origin:line`` / ``origin#index``, the field,
the expected and the actual value, and the (redacted) raw bytes of that record; the rest continues.

Reason codes: ``bad-gzip``, ``truncated-gzip``, ``oversized``, ``not-utf8``, ``not-json``,
``too-deep``, ``unknown-source``, ``shape``, ``schema``, ``missing-field``, ``bad-time``,
``oversized-field``, ``unicode``, ``hook-output``, ``unsupported``, ``adapter-error``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import zlib
from collections.abc import Iterator
from typing import Any

from core.canonical import canonical_json
from core.config import Config
from core.deadletter import MAX_DEAD_LETTER_BYTES, DeadLetter
from core.errors import DecodeError, IngestError, NormaliseError
from core.event import CanonicalEvent, sha256_hex
from ingest._adapter import KEEP_OWN_RAW
from ingest._common import MAX_INPUT_BYTES, MAX_RECORD_BYTES, compact_json
from ingest._registry import ADAPTERS, adapter_for
from ingest._screen import screen
from ingest.detect import detect_source
from ingest.redact import redact, redact_text

__all__ = ["normalise_bytes", "normalise_record"]

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_ASTRAL = "\U00010000"


def normalise_record(record: Any, *, source: str, where: str, config: Config) -> list[CanonicalEvent]:
    """Normalise one decoded JSON record read as ``source``; raises ``NormaliseError(reason=…)``.

    Adds ``raw`` (compact JSON of the record after redaction), ``raw_sha256`` (SHA-256 of the
    canonical JSON of the original record) and the data classes redaction found.
    """
    adapter = adapter_for(source)
    try:
        original = canonical_json(record)
    except RecursionError:
        raise NormaliseError(f"{source}: {where}: JSON nested too deeply", reason="too-deep") from None
    if len(original) > MAX_RECORD_BYTES:
        raise NormaliseError(
            f"{source}: {where}: record is {len(original)} bytes, over the {MAX_RECORD_BYTES}-byte limit",
            reason="oversized",
        )
    text = original.decode("utf-8")
    # one pre-screen over the JSON text; the structured walk only when something might match
    redacted, classes = redact(record, json_text=text)
    events = adapter.normalise(record, where=where, config=config)
    scrubbed = adapter.scrub(redacted)
    raw_sha = sha256_hex(original)
    if scrubbed is KEEP_OWN_RAW:
        return [_finish(e, e.raw, e.raw_sha256 or raw_sha, classes) for e in events]
    # nothing redacted or scrubbed: the canonical JSON already is the compact JSON (the two differ
    # only in key order, and only for keys outside the BMP)
    unchanged = scrubbed is record and (text.isascii() or max(text) < _ASTRAL)
    raw = text if unchanged else compact_json(scrubbed)
    return [_finish(e, raw, raw_sha, classes) for e in events]


def _finish(ev: CanonicalEvent, raw: str | None, raw_sha: str, classes: tuple[str, ...]) -> CanonicalEvent:
    found = set(classes)
    attributes = ev.attributes
    change = ev.change
    values = list(attributes.values())
    if change.task:
        values.append(change.task)
    # one screen over all free text; a newline cannot join two values into something redactable
    # that the screen would miss (it is a necessary condition on every part)
    if values and screen("\n".join(values), fields=False):
        attributes = {}
        for k, v in ev.attributes.items():
            red, c = redact_text(v)
            found |= c
            attributes[k] = red
        if change.task:
            task, c = redact_text(change.task)
            found |= c
            change = dataclasses.replace(change, task=task)
    data_classes = tuple(sorted(set(ev.resource.data_classes) | found))
    resource = ev.resource
    if data_classes != resource.data_classes:
        resource = dataclasses.replace(resource, data_classes=data_classes)
    return dataclasses.replace(
        ev, resource=resource, change=change, attributes=attributes, raw=raw, raw_sha256=raw_sha
    )


# --- bytes ----------------------------------------------------------------------------------------


def _gunzip(data: bytes) -> bytes:
    out = bytearray()
    buf = data
    while buf:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(buf, MAX_INPUT_BYTES + 1 - len(out))
        except zlib.error as exc:
            raise DecodeError(f"not valid gzip: {exc}", reason="bad-gzip") from None
        if len(out) > MAX_INPUT_BYTES or d.unconsumed_tail:
            raise DecodeError(f"gzip expands to more than {MAX_INPUT_BYTES} bytes", reason="oversized")
        if not d.eof:
            raise DecodeError(
                f"gzip stream is truncated after {len(data)} compressed bytes ({len(out)} decompressed)",
                reason="truncated-gzip",
            )
        buf = d.unused_data
        if buf and not buf.startswith(_GZIP_MAGIC):
            if buf.strip(b"\x00") == b"":
                break
            raise DecodeError(
                f"{len(buf)} bytes of trailing garbage after the gzip stream", reason="bad-gzip"
            )
    return bytes(out)


def _dead(source: str, reason: str, detail: str, raw: bytes, where: str) -> DeadLetter:
    """A dead letter whose kept bytes are redacted too (a bad record may still hold a password)."""
    truncated = len(raw) > MAX_DEAD_LETTER_BYTES
    head = raw[:MAX_DEAD_LETTER_BYTES]
    text, found = redact_text(head.decode("utf-8", "surrogateescape"))
    if found:
        detail += f" (raw redacted: {', '.join(sorted(found))}; original sha256 {sha256_hex(raw)})"
    if truncated:
        detail += f" (raw truncated from {len(raw)} bytes)"
    return DeadLetter(
        source, reason, detail, text.encode("utf-8", "surrogateescape"), where, truncated=truncated
    )


def _record_bytes(record: Any) -> bytes:
    try:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (UnicodeEncodeError, ValueError, RecursionError, TypeError):
        try:
            return json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        except (ValueError, RecursionError, TypeError):
            return repr(record)[:MAX_DEAD_LETTER_BYTES].encode("utf-8", "backslashreplace")


def _one(
    record: Any, where: str, source: str | None, config: Config, raw: bytes | None
) -> Iterator[CanonicalEvent | DeadLetter]:
    src = source or detect_source(record)
    if src is None:
        yield _dead(
            "auto",
            "unknown-source",
            f"{where}: cannot tell the source of this record (no CloudTrail, GitHub, Kubernetes audit, "
            "Claude Code, MCP or canonical-event shape matches); pass --source",
            raw if raw is not None else _record_bytes(record),
            where,
        )
        return
    try:
        events = normalise_record(record, source=src, where=where, config=config)
    except IngestError as exc:
        reason = getattr(exc, "reason", "normalise")
        yield _dead(src, reason, str(exc), raw if raw is not None else _record_bytes(record), where)
        return
    except RecursionError:
        yield _dead(
            src,
            "too-deep",
            f"{src}: {where}: JSON nested too deeply",
            raw if raw is not None else _record_bytes(record),
            where,
        )
        return
    except Exception as exc:  # noqa: BLE001 - an adapter bug must dead-letter the record, not stop the stream
        logger.exception("adapter %s failed on %s", src, where)
        yield _dead(
            src,
            "adapter-error",
            f"{src}: {where}: adapter error {type(exc).__name__}: {exc}",
            raw if raw is not None else _record_bytes(record),
            where,
        )
        return
    for ev in events:
        logger.debug("normalised event_id=%s where=%s", ev.event_id, where)
        yield ev


def _expand(value: Any, where: str, source: str | None) -> Iterator[tuple[Any, str, str | None]]:
    """A CloudTrail ``{"Records": [...]}`` file or a JSON array → its records."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _expand_records(item, f"{where}#{i}", source)
    else:
        yield from _expand_records(value, where, source)


def _expand_records(value: Any, where: str, source: str | None) -> Iterator[tuple[Any, str, str | None]]:
    if isinstance(value, dict) and isinstance(value.get("Records"), list) and source in (None, "cloudtrail"):
        for i, item in enumerate(value["Records"]):
            yield item, f"{where}#{i}", "cloudtrail"
    else:
        yield value, where, source


def normalise_bytes(
    data: bytes, *, source: str | None, origin: str, config: Config
) -> Iterator[CanonicalEvent | DeadLetter]:
    """Decode ``data`` (gzip or not; a JSON document or JSON lines) and normalise every record.

    ``source`` ``None`` or ``"auto"`` recognises each record by its shape. Never raises on input.
    """
    src = None if source in (None, "auto") else source
    label = src or "auto"
    if src is not None and src not in ADAPTERS:
        yield _dead(
            label,
            "unknown-source",
            f"{origin}: unknown source {src!r}; expected one of {', '.join(ADAPTERS)} or 'auto'",
            data,
            origin,
        )
        return
    if data[:2] == _GZIP_MAGIC:
        try:
            data = _gunzip(data)
        except DecodeError as exc:
            yield _dead(label, exc.reason, f"{origin}: {exc}", data, origin)
            return
    if len(data) > MAX_INPUT_BYTES:
        yield _dead(
            label,
            "oversized",
            f"{origin}: input is {len(data)} bytes, more than {MAX_INPUT_BYTES}",
            data,
            origin,
        )
        return
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    body = data.lstrip()
    if not body:
        return
    doc_error: str | None = None
    doc_reason = "not-json"
    if body[:1] in (b"{", b"["):
        try:
            value = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            doc_reason, doc_error = "not-utf8", f"byte {exc.start} is not UTF-8 ({exc.reason})"
        except json.JSONDecodeError as exc:
            doc_error = f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        except RecursionError:
            doc_reason, doc_error = "too-deep", "JSON nested too deeply to decode"
        else:
            where = (
                f"{origin}#0"
                if isinstance(value, dict) and not isinstance(value.get("Records"), list)
                else origin
            )
            for record, w, s in _expand(value, where, src):
                yield from _one(record, w, s, config, None)
            return
    lines = data.split(b"\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and doc_error is not None and not _parses(lines[first]):
        # A multi-line document that does not parse is one bad record, not a line per fragment.
        yield _dead(label, doc_reason, f"{origin}: {doc_error}", data, origin)
        return
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{origin}:{n}"
        if len(line) > MAX_RECORD_BYTES:
            yield _dead(
                label,
                "oversized",
                f"{where}: line is {len(line)} bytes, more than the {MAX_RECORD_BYTES}-byte record limit",
                line,
                where,
            )
            continue
        try:
            value = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield _dead(
                label, "not-utf8", f"{where}: byte {exc.start} is not UTF-8 ({exc.reason})", line, where
            )
            continue
        except json.JSONDecodeError as exc:
            yield _dead(
                label, "not-json", f"{where}: not valid JSON at column {exc.colno}: {exc.msg}", line, where
            )
            continue
        except RecursionError:
            yield _dead(label, "too-deep", f"{where}: JSON nested too deeply to decode", line, where)
            continue
        expanded = list(_expand(value, where, src))
        for record, w, s in expanded:
            yield from _one(record, w, s, config, line if len(expanded) == 1 else None)


def _parses(line: bytes) -> bool:
    try:
        json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True
