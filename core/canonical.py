"""Canonical JSON: the exact bytes the ledger hashes.

RFC 8785 (JCS) style: object keys sorted, no insignificant whitespace, UTF-8, strings escaped
as JCS does (only ``"``, ``\\`` and control characters). Railbook's entries contain only
strings, integers, booleans, nulls, lists and objects, never floats, so the subset of JCS that
matters here coincides with ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``; ``tests/unit/core/test_canonical.py`` checks that against the
``rfc8785`` reference implementation. (JCS sorts keys by UTF-16 code units, Python by code
points; they differ only for keys outside the BMP, which the check covers too.)
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from core.errors import NormaliseError

__all__ = ["canonical_json", "canonical_json_fast"]

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
)


def _sort_utf16(obj: Any) -> Any:
    # Only needed when a key has a character outside the BMP (rare: checked before use).
    if isinstance(obj, dict):
        return {k: _sort_utf16(obj[k]) for k in sorted(obj, key=lambda s: s.encode("utf-16-be"))}
    if isinstance(obj, list):
        return [_sort_utf16(v) for v in obj]
    return obj


def canonical_json(obj: Any) -> bytes:
    """Canonical bytes of a JSON value made of dicts, lists, str, int, bool and None."""
    try:
        text = _encoder.encode(obj)
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # A lone surrogate (e.g. JSON "\ud800") cannot be UTF-8: hostile input, not a crash.
        raise NormaliseError(f"string is not valid Unicode: {exc.reason}", reason="unicode") from None
    except (TypeError, ValueError) as exc:
        raise NormaliseError(f"value cannot be canonicalised: {exc}", reason="canonical") from None
    # JCS orders keys by UTF-16 code units; only astral characters in keys make that differ.
    if not text.isascii() and _has_astral_key(obj):
        return json.dumps(
            _sort_utf16(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    return data


def _has_astral_key(obj: Any) -> bool:
    if isinstance(obj, dict):
        return any(any(ord(c) > 0xFFFF for c in k) for k in obj) or any(
            _has_astral_key(v) for v in obj.values()
        )
    if isinstance(obj, list):
        return any(_has_astral_key(v) for v in obj)
    return False


def canonical_json_fast(obj: Any, *, plain: bool) -> bytes:
    """``canonical_json(obj)``, written by orjson (~10x faster) when ``plain`` says it may be.

    orjson with sorted keys writes the same bytes as ``canonical_json`` for every value whose object
    keys are ASCII strings and whose scalars are str, bool, None and 64-bit integers (tested against
    it with hypothesis). ``plain`` is the caller's word for that: JCS orders astral keys by UTF-16
    units, and floats are written differently. Anything orjson refuses (integers beyond 64 bits,
    lone surrogates) goes to the reference encoder, which accepts or rejects it.
    """
    if plain:
        try:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # orjson.JSONEncodeError
            pass
    return canonical_json(obj)
