"""Consumer-side decoding: every message becomes events or dead letters with topic/partition/offset."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.avro import MAGIC, encode_event
from core.deadletter import DeadLetter
from core.errors import NormaliseError
from core.event import CanonicalEvent
from ingest.kafka import decode_message, message_where
from tests.unit.kafka.strategies import wire_events as events


@settings(max_examples=100, deadline=None)
@given(events, st.integers(0, 63), st.integers(0, 2**62))
def test_event_messages_decode_to_the_published_event(
    event: CanonicalEvent, partition: int, offset: int
) -> None:
    assert decode_message("railbook.events", partition, offset, encode_event(event)) == [event]


def _one_dead(items: list[Any]) -> DeadLetter:
    assert len(items) == 1 and isinstance(items[0], DeadLetter), items
    dl: DeadLetter = items[0]
    return dl


@given(events)
def test_any_truncation_of_an_event_is_a_dead_letter_never_an_exception(event: CanonicalEvent) -> None:
    data = encode_event(event)
    for cut in {0, 1, 2, 9, 10, len(data) // 2, len(data) - 1}:
        items = decode_message("railbook.events", 0, cut, data[:cut])
        dl = _one_dead(items)
        assert dl.where == f"kafka:railbook.events/0@{cut}"
        assert dl.raw == data[:cut]


def test_reasons_for_bad_messages(make_event: CanonicalEvent) -> None:
    good = encode_event(make_event)
    cases = {
        "bad-header": b'{"event_id": "json, not avro"}',
        "unknown-schema": MAGIC + b"\x01\x02\x03\x04\x05\x06\x07\x08" + good[10:],
        "bad-avro": good[:10] + b"\xff" * 20,
        "empty": b"",
    }
    for reason, value in cases.items():
        dl = _one_dead(decode_message("railbook.events", 3, 42, value))
        assert dl.reason == reason, (reason, dl)
        assert dl.where == "kafka:railbook.events/3@42"
        assert dl.source == "kafka"
        assert "kafka:railbook.events/3@42" in dl.detail
    assert _one_dead(decode_message("railbook.events", 0, 0, None)).reason == "empty"


def test_unknown_fingerprint_names_the_known_ones(make_event: CanonicalEvent) -> None:
    data = MAGIC + b"\x00" * 8 + encode_event(make_event)[10:]
    dl = _one_dead(decode_message("railbook.events", 0, 1, data))
    assert "unknown schema fingerprint 0000000000000000" in dl.detail and "v1=" in dl.detail


def test_oversized_messages_are_dead_lettered_without_decoding(make_event: CanonicalEvent) -> None:
    data = encode_event(make_event)
    dl = _one_dead(decode_message("railbook.events", 0, 7, data, max_bytes=len(data) - 1))
    assert dl.reason == "oversized" and f"{len(data)} bytes exceeds the limit of {len(data) - 1}" in dl.detail
    assert decode_message("railbook.events", 0, 7, data, max_bytes=len(data)) == [make_event]


def test_huge_messages_keep_only_a_bounded_head() -> None:
    data = b"\xc3\x01" + b"\x00" * (5 << 20)
    dl = _one_dead(decode_message("railbook.events", 0, 0, data))
    assert dl.reason == "oversized" and dl.truncated and len(dl.raw) == 1 << 20


def test_unknown_topics_are_dead_letters() -> None:
    dl = _one_dead(decode_message("railbook.decisions", 0, 0, b"{}"))
    assert dl.reason == "unknown-topic"
    dl = _one_dead(decode_message("railbook.raw.syslog", 0, 0, b"{}"))
    assert dl.reason == "unknown-source" and dl.source == "syslog"


class _Normaliser:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[bytes, dict[str, Any]]] = []

    def __call__(self, data: bytes, **kwargs: Any) -> Iterable[CanonicalEvent | DeadLetter]:
        self.calls.append((data, kwargs))
        if isinstance(self.result, BaseException):
            raise self.result
        return iter(cast("list[CanonicalEvent | DeadLetter]", self.result))


def test_raw_topics_go_through_the_sources_adapter_with_the_message_origin(
    make_event: CanonicalEvent,
) -> None:
    norm = _Normaliser([make_event, make_event])
    items = decode_message("railbook.raw.cloudtrail", 2, 9, b'{"Records": []}', normaliser=norm, config=None)
    assert items == [make_event, make_event]
    [(data, kwargs)] = norm.calls
    assert data == b'{"Records": []}'
    assert kwargs == {"source": "cloudtrail", "origin": "kafka:railbook.raw.cloudtrail/2@9", "config": None}


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (NormaliseError("k8s-audit: 'verb' missing", reason="schema"), "schema"),
        (KeyError("verb"), "adapter-error"),
        ([], "no-records"),
    ],
)
def test_adapter_failures_become_dead_letters_of_the_raw_source(result: Any, reason: str) -> None:
    dl = _one_dead(
        decode_message("railbook.raw.k8s-audit", 0, 5, b'{"kind": "Event"}', normaliser=_Normaliser(result))
    )
    assert (
        dl.reason == reason
        and dl.source == "k8s-audit"
        and dl.where == message_where("railbook.raw.k8s-audit", 0, 5)
    )
    assert dl.raw == b'{"kind": "Event"}'


def test_oversized_raw_records_never_reach_the_adapter() -> None:
    norm = _Normaliser([])
    dl = _one_dead(
        decode_message("railbook.raw.github", 0, 0, b"{" + b" " * 100 + b"}", max_bytes=50, normaliser=norm)
    )
    assert dl.reason == "oversized" and norm.calls == []


def test_a_single_record_dead_lettered_by_the_adapter_keeps_the_message_bytes() -> None:
    original = b'{"kind": "Event",  "verb": 7}'
    adapter_dl = DeadLetter.of(
        source="k8s-audit",
        reason="schema",
        detail="verb: expected str",
        raw=b'{"kind":"Event","verb":7}',
        where="kafka:railbook.raw.k8s-audit/0@3",
    )
    [dl] = decode_message("railbook.raw.k8s-audit", 0, 3, original, normaliser=_Normaliser([adapter_dl]))
    assert isinstance(dl, DeadLetter)
    assert dl.raw == original and dl.reason == "schema" and dl.detail == "verb: expected str"
