"""The redaction pre-screen never changes what is redacted (ingest._screen, issue 6 speed follow-up).

``redact`` skips the structured walk when ``might_redact`` says the record's JSON cannot contain
anything to redact. These properties pin that the fast path answers exactly like the full walk
(``ingest.redact._walk``, the behaviour before the screen), and that secrets of every kind still
never reach ``raw``.
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.canonical import canonical_json
from core.errors import NormaliseError
from ingest import normalise_record, redact, redact_text
from ingest._screen import TEXT, might_redact, screen
from ingest.redact import _redact_text_full, _walk, luhn_valid


def _reference(value: Any) -> tuple[Any, tuple[str, ...]]:
    """The structured walk with no screen at all: every string through every pattern."""
    found: set[str] = set()
    out = _walk(value, found, 0, _redact_text_full)
    return out, tuple(sorted(found))


def _pan(prefix: str, length: int, seed: int) -> str:
    rng = random.Random(seed)
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return next(body + c for c in string.digits if luhn_valid(body + c))


_ALNUM = string.ascii_letters + string.digits
_FRAGMENTS = [
    "password=hunter2",
    "PASSWORD: x1",
    "pa\u017f\u017fword=abc",  # long s: the (?i) pattern matches it
    "PgPassword'= v",
    'password\\"=x',
    "pwd\n= v",
    "mysql_pwd=q",
    "client-secret:xyz",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "aws-secret-key=abc",
    "Bearer abcdefgh12345",
    "bearer\tzzzzzzzzzz",
    "token ABCDEFGHIJKLMNOPQRSTUV",
    "to\u212aen ABCDEFGHIJKLMNOPQRSTUVWXYZ",  # Kelvin sign
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "postgresql://u:pw@h/db",
    "mysql://root:p%40ss@db:3306/x",
    "https://example.com/a@b",
    "ghp_" + "a1" * 18,
    "github_pat_" + "B_" * 16,
    "xoxb-1234567890ab",
    "eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.sigsigsigsig",
    "sk-ant-" + "x" * 24,
    "AIza" + "Q" * 35,
    "123-45-6789",
    "000-12-3456",
    "4111 1111 1111 1111",
    "4012-8888-8888-1881",
    "12 4111111111111111",
    "1722587398902",
    "229654561268",
    "2024-08-01T13:33:28Z",
    "\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661",
    "HIDDEN_DUE_TO_SECURITY_REASONS",
    "[REDACTED:secret]",
    "\x01",  # JSON writes it as \u0001: digits that extend a digit run in the record's JSON
    "\x0b",
    "\x1c",
    "\u2028",
    "\xa0",
    "\\",
    '"',
    "'",
    ":",
    "=",
    "@",
    "-",
    "_",
    " ",
]
_pans = st.builds(
    _pan,
    st.sampled_from(["4", "51", "2221", "34", "6011", "65", "35", "62", "1", "9"]),
    st.integers(13, 19),
    st.integers(0, 2**16),
)
_strings = st.lists(
    st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=6), _pans, st.sampled_from(_ALNUM)),
    max_size=6,
).map("".join)
_keys = st.one_of(
    st.sampled_from(
        [
            "sessionToken",
            "session_token",
            "SESSION-TOKEN",
            "to\u212aen",
            "p_a_s_s_w_o_r_d",
            "x-hub-signature-256",
            "Authorization",
            "apiKey",
            "password",
            "accessKeyId",
            "note",
            "id",
        ]
    ),
    _strings,
)
_numbers = st.one_of(
    st.integers(-(10**20), 10**20), _pans.map(int), st.floats(allow_nan=False, allow_infinity=False)
)
_values = st.recursive(
    st.one_of(st.none(), st.booleans(), _numbers, _strings),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(_values)
@example({"n": "12 4111111111111111"})
@example({"n": "\x014111111111111111"})
@example({"to\u212aen": "x"})
@example(["pa\u017f\u017fword=abc"])
@example({"k": "a\nsk-" + "x" * 24})
def test_fast_path_equals_the_full_walk(value: Any) -> None:
    expected = _reference(value)
    assert redact(value) == expected
    # whatever JSON text the caller hands in (canonical, or json.dumps' default separators)
    assert redact(value, json_text=canonical_json(value).decode("utf-8")) == expected
    assert redact(value, json_text=json.dumps(value, ensure_ascii=False)) == expected


@settings(max_examples=400, deadline=None)
@given(_strings)
@example("12 4111111111111111")
@example("\x014111111111111111")
@example("x\u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661")
def test_screen_is_necessary_for_text_and_its_json(text: str) -> None:
    assert redact_text(text) == _redact_text_full(text)
    if _redact_text_full(text) != (text, set()):
        # the TEXT bit itself (free text is screened with fields=False), not just any bit
        assert might_redact(text) and screen(text, fields=False) & TEXT
        assert screen(json.dumps(text, ensure_ascii=False)) & TEXT
        assert screen(json.dumps({"k": text}, ensure_ascii=False, separators=(",", ":"))) & TEXT
        assert screen(f"region\n{text}\nus-east-1", fields=False) & TEXT  # joined free text


def test_screen_passes_plain_cloudtrail_shapes() -> None:
    """The point of the screen: ordinary audit records do not take the slow path."""
    record = {
        "eventID": "083dc4ad-e264-46bc-a407-d0dd31b58bdc",
        "eventTime": "2024-08-01T13:33:28Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "AttachUserPolicy",
        "recipientAccountId": "229654561268",
        "requestParameters": {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess", "userName": "u"},
        "responseElements": {"createDate": 1722587398902},
        "userIdentity": {"accessKeyId": "AKIAOZUDECYXYM4ONAN4", "arn": "arn:aws:iam::229654561268:user/c"},
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.5 exe/x86_64.ubuntu.22 prompt/off",
    }
    assert not might_redact(canonical_json(record).decode())
    out, classes = redact(record)
    assert out is record and classes == ()


@pytest.mark.parametrize("depth", [62, 63, 64, 65, 66, 70])
@pytest.mark.parametrize("leaf", [[], {}, 1, "x", {"k": 1}])
def test_too_deep_raises_exactly_like_the_walk(depth: int, leaf: Any) -> None:
    value: Any = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    try:
        expected: Any = _reference(value)
    except NormaliseError as exc:
        assert exc.reason == "too-deep"
        with pytest.raises(NormaliseError, match="nested deeper"):
            redact(value)
    else:
        assert redact(value) == expected


# --- secrets never reach raw, through the fast path's callers ------------------------------------

_SECRET_CHARS = string.ascii_letters + string.digits + "/+"
_aws_secrets = st.text(st.sampled_from(_SECRET_CHARS), min_size=40, max_size=40)
_tokens = st.text(st.sampled_from(string.ascii_letters + string.digits + "-._~+/"), min_size=20, max_size=60)
_key_body = st.text(st.sampled_from(string.ascii_letters + string.digits + "+/="), min_size=20, max_size=200)


def _hook(command: str) -> dict[str, Any]:
    return {
        "session_id": "s",
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_use_id": "t",
        "tool_input": {"command": command},
    }


def _trail(**fields: Any) -> dict[str, Any]:
    return {
        "eventID": "e-1",
        "eventTime": "2024-08-01T13:33:28Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutObject",
        "recipientAccountId": "229654561268",
        **fields,
    }


def _stored(ev: Any) -> str:
    return json.dumps(ev.to_dict(), ensure_ascii=False)


@settings(max_examples=150, deadline=None)
@given(
    _aws_secrets,
    st.sampled_from(
        ["aws_secret_access_key=", "AWS_SECRET_ACCESS_KEY: ", "aws-secret-key = ", 'SecretAccessKey"="']
    ),
)
def test_generated_aws_secret_key_never_in_raw(config: Any, secret: str, name: str) -> None:
    for source, record in (
        ("claude-code", _hook(f"export {name}{secret} && aws s3 ls")),
        ("cloudtrail", _trail(userAgent=f"tool {name}{secret}")),
        ("cloudtrail", _trail(requestParameters={"bucketName": "b", "secretAccessKey": secret})),
    ):
        [ev] = normalise_record(record, source=source, where="p", config=config)
        assert secret not in _stored(ev), source
        assert "secret" in ev.resource.data_classes


@settings(max_examples=150, deadline=None)
@given(_tokens, st.sampled_from(["Authorization: Bearer ", "bearer ", "BEARER\t"]))
def test_generated_bearer_token_never_in_raw(config: Any, token: str, prefix: str) -> None:
    for source, record in (
        ("claude-code", _hook(f"curl -H '{prefix}{token}' https://api.example.com")),
        ("cloudtrail", _trail(errorMessage=f"rejected {prefix}{token}")),
    ):
        [ev] = normalise_record(record, source=source, where="p", config=config)
        assert token not in _stored(ev), source
        assert "secret" in ev.resource.data_classes


@settings(max_examples=100, deadline=None)
@given(_key_body, st.sampled_from(["RSA ", "EC ", "OPENSSH ", ""]))
def test_generated_private_key_never_in_raw(config: Any, body: str, kind: str) -> None:
    pem = f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"
    for source, record in (
        ("claude-code", _hook(f"echo '{pem}' > id")),
        ("cloudtrail", _trail(requestParameters={"bucketName": "b", "body": pem})),
    ):
        [ev] = normalise_record(record, source=source, where="p", config=config)
        assert body not in _stored(ev), source
        assert "secret" in ev.resource.data_classes
