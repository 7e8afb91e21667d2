"""Redaction of secrets and card data before anything is stored (issue 6, "Secrets and card data").

What is replaced, and the data class it records:

=======================================  ==================================  ==========
what                                     example                             class
=======================================  ==================================  ==========
password in a URL / connection string    ``postgresql://u:PASSWORD@host``    secret
``password=`` / ``PGPASSWORD=`` …        ``password=hunter2``                secret
AWS secret access key (named)            ``aws_secret_access_key = …``       secret
bearer and well-known API tokens         ``Authorization: Bearer …``, ghp_…  secret
PEM private keys                         ``-----BEGIN … PRIVATE KEY-----``   secret
fields named like a secret (objects)     ``{"sessionToken": "…"}``           secret
Luhn-valid card numbers (PAN)            ``4111 1111 1111 1111``             pci
US social security numbers               ``123-45-6789``                     pii
=======================================  ==================================  ==========

The replacement is ``[REDACTED:<kind>]``; only the secret part is replaced, so a connection string
keeps its user, host and database. A card number run together with letters is still one (better
one false positive than one stored PAN), except inside a hex string of 32 or more characters (a
commit SHA, a SHA-256, a UUID without dashes): 0.12 % of SHA-256 hex strings hold a digit run that
passes the issuer and Luhn checks (measured over 200,000). The hash of the original record is kept
by the caller (``raw_sha256``); the classes found go to ``resource.data_classes`` for the policy.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from core.errors import NormaliseError
from ingest._common import MAX_DEPTH
from ingest._screen import FIELD, SECRET_FIELDS, TEXT, is_pan, luhn_valid, screen

__all__ = ["luhn_valid", "redact", "redact_text"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: object fields whose string value is a secret, normalised (lowercase, no "_" or "-"): password,
#: passwd, pwd, secret, client_secret, (aws_)secret_access_key, session/access/refresh/id token,
#: api_key, private_key, authorization, x-hub-signature-256, pgpassword, mysql_pwd, token
_SECRET_KEYS = SECRET_FIELDS
# AWS writes this in place of sensitive values; it is not a secret, and must not mark the event.
_AWS_HIDDEN = frozenset({"HIDDEN_DUE_TO_SECURITY_REASONS", ""})

_PATTERNS = re.compile(
    r"""
    (?P<pem>-----BEGIN[A-Z ]{0,40}PRIVATE\ KEY-----.*?(?:-----END[A-Z ]{0,40}PRIVATE\ KEY-----|\Z))
    | (?P<uri>\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^:/@\s"'<>]*:)(?P<uripw>[^@/\s"'<>]+)(?=@)
    | (?P<kv>(?i:\b(?:aws_secret_access_key|aws[-_]?secret[-_]?key|secret[-_]?access[-_]?key|password
                     |passwd|pgpassword|mysql_pwd|pwd|client[-_]?secret)["']?\s*[=:]\s*["']?))
      (?P<kvval>[^\s"'&;,}]+)
    | (?P<bearer>(?i:\bbearer\s+|\btoken\s+(?=[A-Za-z0-9_\-]{20,})))(?P<bearerval>[A-Za-z0-9\-._~+/]{8,}=*)
    | (?P<token>\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abprs]-[A-Za-z0-9\-]{10,}
                   |eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}
                   |sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}|AIza[0-9A-Za-z_\-]{35}))
    | (?P<pan>(?<!\d)(?<!\d\.)(?:\d[ \-]?){12,18}\d(?!\d)(?!\.\d))
    | (?P<ssn>(?<![\d\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d\-]))
    """,
    re.VERBOSE | re.DOTALL,
)

# Cheap necessary condition for any pattern above, per string: most strings (keys, names, ids, ARNs)
# fail it fast. pem needs BEGIN; uri "://"; kv one of secret/passw/pwd (every keyword of it
# contains one, matched case-insensitively as there); bearer "bearer"/"token"; the token formats
# their literal heads; a PAN 13 digits with single separators; an SSN ddd-dd-dddd. Whole records
# and long texts are screened once by ``ingest._screen.might_redact`` instead.
_MAYBE = re.compile(
    r"BEGIN|://|(?i:secret|passw|pwd|bearer|token)|gh[pousr]_|github_pat_|xox|eyJ|sk-|AIza"
    r"|\d(?:[ \-]?\d){12}|\d\d\d-\d\d-\d\d\d\d"
)
# the same over an ASCII text lowercased (a superset: only case is lost), without (?i) branches
_MAYBE_LOWER = re.compile(
    r"begin|://|secret|passw|pwd|bearer|token|gh[pousr]_|github_pat_|xox|eyj|sk-|aiza"
    r"|\d(?:[ \-]?\d){12}|\d\d\d-\d\d-\d\d\d\d"
)


def redact_text(text: str) -> tuple[str, set[str]]:
    """Redact one string; returns the new text and the data classes found (``secret``, ``pci``, ``pii``)."""
    maybe = _MAYBE_LOWER.search(text.lower()) if text.isascii() else _MAYBE.search(text)
    if maybe is None:
        return text, set()
    return _redact_text_full(text)


def _redact_text_full(text: str) -> tuple[str, set[str]]:
    """``redact_text`` without the pre-screen (the reference the screens are tested against)."""
    found: set[str] = set()

    def repl(m: re.Match[str]) -> str:
        kind = m.lastgroup
        if m.group("pem") is not None:
            found.add("secret")
            return "[REDACTED:private-key]"
        if m.group("uripw") is not None:
            found.add("secret")
            return m.group("uri") + "[REDACTED:password]"
        if m.group("kvval") is not None:
            value = m.group("kvval")
            if value in _AWS_HIDDEN or value.startswith("[REDACTED"):
                return m.group(0)
            found.add("secret")
            return m.group("kv") + "[REDACTED:password]"
        if m.group("bearerval") is not None:
            found.add("secret")
            return m.group("bearer") + "[REDACTED:token]"
        if m.group("token") is not None:
            found.add("secret")
            return "[REDACTED:token]"
        if m.group("pan") is not None:
            if is_pan(m.group("pan")) and not _inside_hex_string(text, m.start(), m.end()):
                found.add("pci")
                return "[REDACTED:pan]"
            return m.group(0)
        if m.group("ssn") is not None:
            found.add("pii")
            return "[REDACTED:ssn]"
        raise AssertionError(kind)  # pragma: no cover - every alternative is handled above

    out = _PATTERNS.sub(repl, text)
    return out, found


_HEX = frozenset("0123456789abcdefABCDEF")
#: hex strings this long are hashes and ids (MD5 and dashless UUIDs 32, SHA-1 40, SHA-256 64)
_HEX_STRING = 32


def _inside_hex_string(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` (digits, maybe with separators) lies inside a run of at least
    ``_HEX_STRING`` hex characters."""
    if end - start >= _HEX_STRING or not all(c in _HEX for c in text[start:end]):
        return False
    while start > 0 and text[start - 1] in _HEX:
        start -= 1
    while end < len(text) and text[end] in _HEX:
        end += 1
    return end - start >= _HEX_STRING


def _norm_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _walk(
    value: Any, found: set[str], depth: int, text: Callable[[str], tuple[str, set[str]]] = redact_text
) -> Any:
    """Redact every string (with ``text``), secret field and card-number integer of ``value`` (a copy)."""
    if depth > MAX_DEPTH:
        raise NormaliseError(f"JSON nested deeper than {MAX_DEPTH} levels", reason="too-deep")
    if isinstance(value, str):
        new, classes = text(value)
        found |= classes
        return new
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        # A PAN may arrive as a JSON number; it must not survive in ``raw`` either.
        if 10**12 <= abs(value) < 10**19 and is_pan(str(abs(value))):
            found.add("pci")
            return "[REDACTED:pan]"
        return value
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = _walk(k, found, depth + 1, text) if isinstance(k, str) else k
            if (
                isinstance(k, str)
                and isinstance(v, str)
                and _norm_key(k) in _SECRET_KEYS
                and v not in _AWS_HIDDEN
                and not v.startswith("[REDACTED")
            ):
                found.add("secret")
                out[key] = "[REDACTED:secret]"
            else:
                out[key] = _walk(v, found, depth + 1, text)
        return out
    if isinstance(value, list | tuple):
        return [_walk(v, found, depth + 1, text) for v in value]
    return value


def redact(value: T, *, json_text: str | None = None) -> tuple[T, tuple[str, ...]]:
    """Redact a string or a decoded JSON value; returns the redacted copy and the sorted data classes.

    Nothing to redact (the common case) costs one pre-screen over the value's JSON text and
    returns ``value`` itself; otherwise the value is walked and every string, field and number
    checked. Pass ``json_text`` (the value's JSON, ``ensure_ascii=False``, e.g. its canonical
    JSON decoded) when it is already at hand, to skip encoding it again.

    Raises ``NormaliseError(reason="too-deep")`` for nesting deeper than ``MAX_DEPTH``.
    """
    text_fn = redact_text
    if isinstance(value, dict | list | tuple):
        text = json_text if json_text is not None else _json_text(value)
        hits = screen(text) if text is not None else TEXT | FIELD
        if not hits:
            if text is not None and text.count("{") + text.count("[") > MAX_DEPTH:
                _check_depth(value, 0)  # the walk would have raised; so must this path
            return value, ()
        if not hits & TEXT:
            text_fn = _unchanged  # only secret fields to replace: no string needs the patterns
    found: set[str] = set()
    out = _walk(value, found, 0, text_fn)
    return out, tuple(sorted(found))


def _unchanged(text: str) -> tuple[str, set[str]]:
    return text, set()


def _json_text(value: Any) -> str | None:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return None  # not plain JSON: the walk decides


def _check_depth(value: Any, depth: int) -> None:
    """Raise exactly when ``_walk`` would: some node (a key or value) sits deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise NormaliseError(f"JSON nested deeper than {MAX_DEPTH} levels", reason="too-deep")
    if isinstance(value, dict):
        if value and depth + 1 > MAX_DEPTH:
            _check_depth(None, depth + 1)
        for v in value.values():
            if isinstance(v, dict | list | tuple):
                _check_depth(v, depth + 1)
    elif isinstance(value, list | tuple):
        if value and depth + 1 > MAX_DEPTH:
            _check_depth(None, depth + 1)
        for v in value:
            if isinstance(v, dict | list | tuple):
                _check_depth(v, depth + 1)
