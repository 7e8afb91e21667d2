"""A cheap pre-screen for redaction: can this text contain anything ``ingest.redact`` replaces?

Internal. ``might_redact(text)`` is a **necessary condition**: when it answers ``False``, neither
``redact_text`` on any part of ``text`` nor the structured walk of ``redact`` over a record whose
JSON text is ``text`` would change anything or find a data class. It may answer ``True`` when
nothing would be redacted (then the caller takes the exact, slower path), never the reverse.

Why each screen is necessary, against the patterns of ``ingest.redact``:

* The text may be a record's JSON (``ensure_ascii=False``, any separators): JSON escapes only
  ``"``, ``\\`` and control characters. Every screen either looks only at characters JSON never
  escapes (letters, digits, ``-``, ``:``, ``@``, ``/``) or also accepts the escaped forms (``\\"``,
  ``\\n``, ``\\u001c``, …). Screens use no ``\\b``: a boundary in a string can sit next to an
  escape in its JSON (``"x\\nsk-…"``).
* Words (``password``, ``bearer``, the secret field names, …) are matched on a folded copy:
  ``_`` and ``-`` removed (the field-name rule removes them; the patterns allow them), and
  lowercased when the text is ASCII. A non-ASCII text keeps its case and the word screens run
  with ``re.IGNORECASE`` — the same matching the redaction patterns use (``ſ`` ~ ``s``, Kelvin
  sign ~ ``k``; ``str.lower`` maps no other non-ASCII character to an ASCII letter but ``İ``,
  which adds a combining dot and so cannot spell a field name).
* A secret *field* ``{"sessionToken": "…"}`` shows in JSON as ``"sessiontoken":`` after folding.
* Card numbers: a PAN is 13–19 digits with single spaces or dashes between them, so its digits
  are 13 consecutive digits once spaces and dashes are deleted; only such runs are then checked
  window by window with the same ``is_pan`` (issuer prefix + Luhn) the redaction uses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

__all__ = ["FIELD", "TEXT", "is_pan", "luhn_valid", "might_redact", "screen"]

logger = logging.getLogger(__name__)

# Issuer prefixes of the card schemes (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay):
# a Luhn check alone flags one in ten long numbers, so the prefix must also fit.
_PAN_PREFIX = re.compile(r"(?:4|5[1-5]|2[2-7]|3[47]|6011|64[4-9]|65|35|30[0-5]|36|38|62)")
_PAN_SEPARATORS = re.compile(r"[ \-]")


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


def is_pan(text: str) -> bool:
    """Digits (spaces and dashes allowed) that form a card number: 13-19 digits, scheme prefix, Luhn."""
    digits = _PAN_SEPARATORS.sub("", text)
    return 13 <= len(digits) <= 19 and bool(_PAN_PREFIX.match(digits)) and luhn_valid(digits)


# JSON-escaped whitespace counts as whitespace (the record's JSON text is screened)
_WS = r"""(?:\s|\\[nrtf]|\\u00[0-9a-fA-F]{2})"""
_QUOTE = r"""(?:\\?"|')?"""
# ``kv`` of ingest.redact, folded: aws_secret_access_key / secret-access-key → …accesskey,
# aws-secret-key → …secretkey, (pg)password / passwd → passw(or)d, mysql_pwd → …pwd, client_secret
_KV = rf"{_QUOTE}{_WS}*[=:]"
_WORD_PATTERNS = (
    rf"passw(?:or)?d{_KV}",
    rf"pwd{_KV}",
    rf"secretkey{_KV}",
    rf"accesskey{_KV}",
    rf"clientsecret{_KV}",
    rf"bearer{_WS}",
    rf"token{_WS}",
)
#: ingest.redact._SECRET_KEYS, normalised (lowercase, no "_" or "-")
SECRET_FIELDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "clientsecret",
        "secretaccesskey",
        "awssecretaccesskey",
        "sessiontoken",
        "accesstoken",
        "refreshtoken",
        "idtoken",
        "apikey",
        "privatekey",
        "authorization",
        "xhubsignature256",
        "pgpassword",
        "mysqlpwd",
        "token",
    }
)


def _field_pattern(words: frozenset[str]) -> str:
    """``"(?:word|…)":`` factored by first letter (fewer attempts at each quote)."""
    heads: dict[str, list[str]] = {}
    for w in sorted(words, key=lambda w: (-len(w), w)):
        heads.setdefault(w[0], []).append(re.escape(w[1:]))
    return '"(?:' + "|".join(f"{h}(?:{'|'.join(rest)})" for h, rest in sorted(heads.items())) + ')":'


_FIELD_PATTERN = _field_pattern(SECRET_FIELDS)
# each screen starts with a literal, so the regex engine skips to candidates in C
_WORDS = tuple(re.compile(p) for p in _WORD_PATTERNS)
_WORDS_ANYCASE = tuple(re.compile(p, re.IGNORECASE) for p in _WORD_PATTERNS)
_FIELD = re.compile(_FIELD_PATTERN)
_FIELD_ANYCASE = re.compile(_FIELD_PATTERN, re.IGNORECASE)
_PLAIN = tuple(
    re.compile(p)
    for p in (
        r"-----BEGIN",  # pem
        r"""://[^/@\s"'<>]*@""",  # uri with user:password@
        r"gh[pousr]_[A-Za-z0-9]{30}",  # token formats, as in ingest.redact without \b
        r"github_pat_[A-Za-z0-9_]{30}",
        r"xox[abprs]-[A-Za-z0-9\-]{10}",
        r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ",
        r"sk-[A-Za-z0-9_\-]{20}",
        r"AIza[0-9A-Za-z_\-]{35}",
        r"-\d\d-\d\d\d\d",  # ssn ddd-dd-dddd
    )
)
_DIGITS_TO_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_THIRTEEN = b"0" * 13
# a maximal run of >= 13 digits with single spaces or dashes between them: over the text
# (Unicode digits, as \d in the redaction pattern), or over its ASCII bytes with digits as "0"
_DIGIT_RUN = re.compile(r"\d(?:[ \-]?\d){12,}")
_ZERO_RUN = re.compile(rb"0(?:[ \-]?0){12,}")


def _maybe_pan(text: str, ascii_text: bool) -> bool:
    runs: Iterator[str]
    if ascii_text:
        data = text.encode("ascii")
        if _THIRTEEN not in data.translate(_DIGITS_TO_ZERO, b" -"):
            return False  # not 13 digits in a row even with every space and dash removed
        # same offsets as ``text``: digits became "0", nothing was removed
        runs = (text[m.start() : m.end()] for m in _ZERO_RUN.finditer(data.translate(_DIGITS_TO_ZERO)))
    else:
        runs = (m.group() for m in _DIGIT_RUN.finditer(text))
    for run in runs:  # a PAN may start anywhere in a run: try every window
        digits = _PAN_SEPARATORS.sub("", run)
        n = len(digits)
        for start in range(n - 12):
            if not _PAN_PREFIX.match(digits, start):  # (no "^" in the prefix: match() at pos)
                continue
            for length in range(13, min(19, n - start) + 1):
                if luhn_valid(digits[start : start + length]):
                    return True
    return False


#: ``screen`` bits: some string (or number) may match a redaction pattern / a secret field is named
TEXT = 1
FIELD = 2


def screen(text: str, *, fields: bool = True) -> int:
    """Which kinds of redaction ``text`` (a string, or a record's JSON) may need: ``TEXT | FIELD`` bits.

    A bit is clear only if that kind of redaction would find nothing: ``TEXT`` clear means no
    string in it matches a pattern of ``ingest.redact`` and no number is a card number; ``FIELD``
    clear means no object field is named like a secret. ``fields=False`` skips the field check.
    """
    found = 0
    ascii_text = text.isascii()
    stripped = text.replace("_", "").replace("-", "")
    if ascii_text:
        folded, words, field = stripped.lower(), _WORDS, _FIELD
    else:
        folded, words, field = stripped, _WORDS_ANYCASE, _FIELD_ANYCASE
    if fields and field.search(folded):
        found = FIELD
    for rx in _PLAIN:
        if rx.search(text):
            return found | TEXT
    for rx in words:
        if rx.search(folded):
            return found | TEXT
    if _maybe_pan(text, ascii_text):
        return found | TEXT
    return found


def might_redact(text: str) -> bool:
    """``False`` only if redaction would find nothing in ``text`` (a string, or a record's JSON)."""
    return screen(text) != 0
