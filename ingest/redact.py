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
keeps its user, host and database. The hash of the original record is kept by the caller
(``raw_sha256``); the classes found go to ``resource.data_classes`` for the policy.
"""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

from core.errors import NormaliseError
from ingest._common import MAX_DEPTH

__all__ = ["luhn_valid", "redact", "redact_text"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SECRET_KEYS = frozenset(
    k.replace("_", "").replace("-", "")
    for k in (
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "secret_access_key",
        "secretAccessKey",
        "aws_secret_access_key",
        "session_token",
        "sessionToken",
        "access_token",
        "refresh_token",
        "id_token",
        "api_key",
        "apikey",
        "private_key",
        "authorization",
        "x-hub-signature-256",
        "pgpassword",
        "mysql_pwd",
        "token",
    )
)
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

# Issuer prefixes of the card schemes (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay):
# a Luhn check alone flags one in ten long numbers, so the prefix must also fit.
_PAN_PREFIX = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|6011|64[4-9]|65|35|30[0-5]|36|38|62)")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _is_pan(text: str) -> bool:
    digits = re.sub(r"[ \-]", "", text)
    return 13 <= len(digits) <= 19 and bool(_PAN_PREFIX.match(digits)) and luhn_valid(digits)


# Cheap necessary condition for any pattern above: most strings (keys, names, ids) fail it fast.
_MAYBE = re.compile(
    r"\d[ \-]?\d[ \-]?\d|[:=]|(?i:bearer|token)|BEGIN|gh[pousr]_|github_pat_|xox|eyJ|sk-|AIza"
)


def redact_text(text: str) -> tuple[str, set[str]]:
    """Redact one string; returns the new text and the data classes found (``secret``, ``pci``, ``pii``)."""
    found: set[str] = set()
    if not _MAYBE.search(text):
        return text, found

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
            if _is_pan(m.group("pan")):
                found.add("pci")
                return "[REDACTED:pan]"
            return m.group(0)
        if m.group("ssn") is not None:
            found.add("pii")
            return "[REDACTED:ssn]"
        raise AssertionError(kind)  # pragma: no cover - every alternative is handled above

    out = _PATTERNS.sub(repl, text)
    return out, found


def _norm_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _walk(value: Any, found: set[str], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise NormaliseError(f"JSON nested deeper than {MAX_DEPTH} levels", reason="too-deep")
    if isinstance(value, str):
        new, classes = redact_text(value)
        found |= classes
        return new
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        # A PAN may arrive as a JSON number; it must not survive in ``raw`` either.
        if 10**12 <= abs(value) < 10**19 and _is_pan(str(abs(value))):
            found.add("pci")
            return "[REDACTED:pan]"
        return value
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = _walk(k, found, depth + 1) if isinstance(k, str) else k
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
                out[key] = _walk(v, found, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_walk(v, found, depth + 1) for v in value]
    return value


def redact(value: T) -> tuple[T, tuple[str, ...]]:
    """Redact a string or a decoded JSON value; returns the redacted copy and the sorted data classes.

    Raises ``NormaliseError(reason="too-deep")`` for nesting deeper than ``MAX_DEPTH``.
    """
    found: set[str] = set()
    out = _walk(value, found, 0)
    return out, tuple(sorted(found))
