"""``format_time`` has exactly one spelling per instant: the entry bytes (and so leaf hashes)
depend on it, so a faster formatter must agree with the reference strftime for every instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from core.event import format_time, parse_time

_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_INSTANTS = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_OFFSETS)


@given(_INSTANTS)
def test_format_time_equals_the_strftime_spelling(t: datetime) -> None:
    assert format_time(t) == t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(_INSTANTS)
def test_format_time_round_trips_for_four_digit_years(t: datetime) -> None:
    if t.astimezone(UTC).year >= 1000:
        assert parse_time(format_time(t)) == t


def test_format_time_examples() -> None:
    assert format_time(datetime(2026, 3, 1, tzinfo=UTC)) == "2026-03-01T00:00:00.000000Z"
    t = datetime(2026, 3, 1, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(t) == "2026-02-28T23:30:00.000005Z"
