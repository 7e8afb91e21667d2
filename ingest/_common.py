"""Shared helpers for the adapters: limits, strict validation, time parsing, config-wins rules.

Internal and unstable: adapters import from here, nothing outside ``ingest`` should.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from core.canonical import canonical_json
from core.config import Config
from core.errors import NormaliseError
from core.event import MAX_ID_LEN, UNKNOWN, ActorKind, parse_time, sha256_hex

logger = logging.getLogger(__name__)

#: One record (a JSON line, an element of ``Records``) larger than this is dead-lettered, not loaded.
#: Kept well under the 1 MiB ``raw`` bound of the canonical event so the redacted copy always fits.
MAX_RECORD_BYTES = 512 * 1024
#: A whole input (after gzip) larger than this is dead-lettered as one oversized item.
MAX_INPUT_BYTES = 256 * 1024 * 1024
#: JSON nesting deeper than this is hostile, not a record.
MAX_DEPTH = 64
#: Attribute values are free text from the source; longer values are cut (marked with an ellipsis).
MAX_ATTR_LEN = 1024

M = TypeVar("M", bound=BaseModel)


class Wire(BaseModel):
    """Base of the wire models: strict types, unknown fields ignored (sources add fields freely)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, populate_by_name=True)


def validate(model: type[M], record: Any, *, source: str, where: str) -> M:
    """Parse ``record`` with ``model``; the error names where, the field, expected and actual value."""
    if not isinstance(record, dict):
        raise NormaliseError(
            f"{source}: {where}: expected a JSON object, got {type(record).__name__}", reason="shape"
        )
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        parts = []
        for e in exc.errors()[:3]:
            loc = ".".join(str(p) for p in e["loc"]) or "<root>"
            got = e.get("input")
            shown = _short(got)
            parts.append(f"field {loc!r}: {e['msg']} (got {shown})")
        reason = "missing-field" if any(e["type"] == "missing" for e in exc.errors()) else "schema"
        raise NormaliseError(f"{source}: {where}: " + "; ".join(parts), reason=reason) from None


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fail(
    source: str, where: str, field: str, expected: str, actual: Any, *, reason: str = "schema"
) -> NormaliseError:
    """A NormaliseError naming the input, the field, the expected and the actual value."""
    return NormaliseError(
        f"{source}: {where}: field {field!r}: expected {expected}, got {_short(actual)}", reason=reason
    )


def parse_ts(value: Any, *, source: str, where: str, field: str) -> datetime:
    """An RFC 3339 string or epoch seconds (GitHub's ``pushed_at``) to an aware UTC datetime."""
    if isinstance(value, bool):
        raise fail(source, where, field, "an RFC 3339 timestamp", value, reason="bad-time")
    if isinstance(value, int):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise fail(source, where, field, "epoch seconds in range", value, reason="bad-time") from None
    if not isinstance(value, str) or len(value) > 64:
        raise fail(source, where, field, "an RFC 3339 timestamp", value, reason="bad-time")
    try:
        return parse_time(value)
    except ValueError:
        raise fail(
            source, where, field, "an RFC 3339 timestamp with a zone", value, reason="bad-time"
        ) from None


def now_utc() -> datetime:
    return datetime.now(UTC)


def check_id(value: str, *, source: str, where: str, field: str) -> str:
    """An identifier copied into the event: non-empty and at most ``MAX_ID_LEN`` characters."""
    if not value or len(value) > MAX_ID_LEN:
        raise fail(
            source,
            where,
            field,
            f"1..{MAX_ID_LEN} characters",
            f"{len(value)} characters",
            reason="oversized-field" if value else "missing-field",
        )
    return value


def attrs(**values: Any) -> dict[str, str]:
    """String attributes from keyword values: ``None`` dropped, booleans lowercase, long text cut."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        out[key.replace("__", ".")] = clip(text)
    return out


def clip(text: str, limit: int = MAX_ATTR_LEN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload_hash(record: Any, length: int = 32) -> str:
    """A stable id for a record without one: the SHA-256 of its canonical JSON, shortened."""
    return sha256_hex(canonical_json(record))[:length]


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# --- configuration wins ---------------------------------------------------------------------------


def actor_kind(config: Config, actor_id: str, claimed: Any, attributes: dict[str, str]) -> ActorKind:
    """The kind configuration derives for ``actor_id``; a differing producer claim goes to attributes."""
    kind = config.actor_kind(actor_id)
    if isinstance(claimed, str) and claimed and claimed != kind:
        attributes["claimed.actor.kind"] = clip(claimed, 64)
    return kind


def environment(derived: str, claimed: Any, attributes: dict[str, str]) -> str:
    """The configured environment; a differing producer claim is recorded, never used."""
    if isinstance(claimed, str) and claimed and claimed != derived:
        attributes["claimed.resource.environment"] = clip(claimed, 64)
    return derived


def _glob(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    parts = [re.escape(p).replace(r"\*", ".*").replace(r"\?", ".") for p in patterns]
    return re.compile("(?:" + "|".join(parts) + r")\Z", re.DOTALL)


def environment_for_branch(config: Config, branch: str | None) -> str:
    """The environment whose ``protected_branches`` match ``branch`` (same globs as core.config)."""
    if not branch:
        return UNKNOWN
    name = branch.removeprefix("refs/heads/")
    for env_name, env in config.environments.items():
        rx = _glob(env.protected_branches)
        if rx is not None and rx.match(name):
            return env_name
    return UNKNOWN


def environment_by_name(config: Config, name: str | None) -> str:
    """``name`` itself when it is a configured environment name (GitHub deployment environments)."""
    if name and name in config.environments:
        return name
    return UNKNOWN


def get_path(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]…`` or ``None`` when any step is missing or not an object."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def opt_str(obj: Any, *keys: str) -> str | None:
    value = get_path(obj, *keys)
    return value if isinstance(value, str) and value else None
