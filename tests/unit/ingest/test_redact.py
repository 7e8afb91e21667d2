"""Redaction: known secrets are replaced, and generated secrets never reach ``raw``."""

from __future__ import annotations

import random
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest import normalise_record, redact, redact_text
from ingest._screen import is_pan
from ingest.redact import luhn_valid


def test_known_secrets():
    cases = {
        "mysql://root:pw@db:3306/x": "mysql://root:[REDACTED:password]@db:3306/x",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY": "aws_secret_access_key = "
        "[REDACTED:password]",
        "Authorization: Bearer eyJhbGciOi.abc.def": "Authorization: Bearer [REDACTED:token]",
        "token ghp_0123456789abcdefghij0123456789abcdef": "token [REDACTED:token]",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----": "[REDACTED:private-key]",
        "card 4012-8888-8888-1881.": "card [REDACTED:pan].",
    }
    for text, expected in cases.items():
        assert redact_text(text)[0] == expected, text


def test_not_redacted():
    for text in (
        "commit 6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "epoch 1557933657000",
        "v1.2.3",
        "ip 10.0.0.1",
        "AKIAIOSFODNN7EXAMPLE",
        "4111111111111112",
        "docker run -p 8080:80 x",
    ):
        assert redact_text(text) == (text, set()), text


def test_objects_keys_and_numbers():
    value = {
        "sessionToken": "abc",
        "nested": [{"password": "HIDDEN_DUE_TO_SECURITY_REASONS"}],
        "n": 4111111111111111,
    }
    out, classes = redact(value)
    assert out == {
        "sessionToken": "[REDACTED:secret]",
        "nested": [{"password": "HIDDEN_DUE_TO_SECURITY_REASONS"}],
        "n": "[REDACTED:pan]",
    }
    assert classes == ("pci", "secret")


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError


@st.composite
def pans(draw):
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "34", "37", "6011", "65", "35", "62"]))
    length = draw(st.integers(13, 19)) if prefix == "4" else draw(st.integers(15, 19))
    digits = _luhn_complete(prefix, length, random.Random(draw(st.integers(0, 2**32))))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4)), digits


_filler = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="0123456789"), max_size=20
)
_pw = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=6, max_size=24)


@settings(max_examples=200, deadline=None)
@given(pans(), _filler, _filler)
def test_generated_pan_never_in_raw(config, pan, before, after):
    shown, digits = pan
    record = {
        "session_id": "s",
        "hook_event_name": "UserPromptSubmit",
        "prompt": "x",
        "railbook_task": f"{before} {shown} {after}",
        "note": f"{before}{shown}{after}",
    }
    [ev] = normalise_record(record, source="claude-code", where="p", config=config)
    dumped = str(ev.to_dict())
    assert digits not in dumped.replace(" ", "").replace("-", "")
    assert shown not in dumped
    assert "pci" in ev.resource.data_classes


@settings(max_examples=200, deadline=None)
@given(
    _pw,
    st.sampled_from(["postgresql", "postgres", "mysql", "redis", "amqp"]),
    st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True),
)
def test_generated_password_in_connection_string_never_in_raw(config, password, scheme, host):
    url = f"{scheme}://user:{quote(password, safe='')}@{host}:5432/db"
    record = {
        "session_id": "s",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_use_id": "t",
        "tool_input": {"command": f"psql '{url}' -c 'select 1'"},
    }
    [ev] = normalise_record(record, source="claude-code", where="p", config=config)
    raw = ev.raw or ""
    assert f"user:{quote(password, safe='')}@" not in raw
    assert "user:[REDACTED:password]@" in raw
    assert "secret" in ev.resource.data_classes


def test_digits_inside_a_hex_hash_are_not_a_card_number() -> None:
    """A raw_sha256 found by hypothesis: its digit run 2499063917456 passes the issuer and Luhn
    checks. A normalised event carrying it must not be marked pci the second time it is read."""
    sha = "227c74690923771a2499063917456a97419f21886de62c5f10d4647d74b13285"
    assert is_pan("2499063917456")
    assert redact_text(sha) == (sha, set())
    assert redact_text(f"commit {sha[:40]} pushed") == (f"commit {sha[:40]} pushed", set())
    assert redact_text("card 2499063917456 on file") == ("card [REDACTED:pan] on file", {"pci"})
    assert redact_text("pan=2499-0639-1745-6;") == ("pan=[REDACTED:pan];", {"pci"})
    # run together with a few letters it is still a card number; only a hash-long hex run is not
    assert redact_text("x2499063917456abc") == ("x[REDACTED:pan]abc", {"pci"})
    assert redact_text(sha[:32]) == (sha[:32], set())
    assert redact_text(sha[1:32]) == ("27c74690923771a[REDACTED:pan]a97", {"pci"})
