"""Structured records' fields: times read like text lines' times, one sanity window and reason."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logloupe.model import FLAG_TIME_REPLACED, to_micros
from logloupe.parse.line import parse_line
from logloupe.parse.records import Limits, record_fields, time_from
from logloupe.parse.sources import SourceOptions, apply_to_record
from logloupe.parse.timestamps import ORIGINAL_ATTRIBUTE, REASON_ATTRIBUTE, zone
from logloupe.pipeline.assemble import assemble

NOW = to_micros(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))


def us(*args: int, tz: str = "UTC") -> int:
    return to_micros(datetime(*args, tzinfo=zone(tz)))  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jun 14 15:16:01", us(2026, 6, 14, 15, 16, 1)),
        ("10/Oct/2000:13:55:36 -0700", us(2000, 10, 10, 20, 55, 36)),
        ("Sun, 04 Dec 2005 04:47:44 GMT", us(2005, 12, 4, 4, 47, 44)),
        ("Mon Jan  2 15:04:05 MST 2006", us(2006, 1, 2, 22, 4, 5)),
        ("2023-01-02T03:04:05Z", us(2023, 1, 2, 3, 4, 5)),
        ("2023-01-02 03:04:05,123", us(2023, 1, 2, 3, 4, 5, 123000)),
        (1117838570, us(2005, 6, 3, 22, 42, 50)),
        ("1117838570123", us(2005, 6, 3, 22, 42, 50, 123000)),
    ],
)
def test_record_times_read_like_text_lines(value: object, expected: int) -> None:
    assert time_from(value, now_us=NOW) == expected
    fields = record_fields({"time": value, "message": "x"}, Limits())
    assert fields.ts_us == expected if "Jun" not in str(value) else fields.ts_us is not None
    assert FLAG_TIME_REPLACED not in fields.flags
    if isinstance(value, str) and not value.isdigit():  # the same text starting a line: the same time
        assert parse_line(f"{value} INFO x", now_us=NOW).ts_us == expected


def test_default_zone_applies_to_record_times_without_one() -> None:
    assert time_from("2023-01-02 03:04:05", default_tz="Europe/Berlin") == us(2023, 1, 2, 2, 4, 5)
    assert time_from("Jan 02 2023 03:04:05", default_tz="Europe/Berlin") == us(2023, 1, 2, 2, 4, 5)
    assert time_from("Jan 02 2023 03:04:05 nonsense", default_tz="Europe/Berlin") is None
    assert time_from("02-Jan-2023 03:04:05", default_tz="Europe/Berlin") == us(2023, 1, 2, 2, 4, 5)
    record = {"time": "02-Jan-2023 03:04:05", "message": "x"}
    fields = record_fields(record, Limits())
    apply_to_record(record, fields, SourceOptions(timezone="Europe/Berlin"), NOW)
    assert fields.ts_us == us(2023, 1, 2, 2, 4, 5)


def _event(record: dict[str, object]) -> tuple[int, dict[str, str], list[str]]:
    event = assemble([record_fields(record, Limits())], tenant="t", now_us=NOW)[0]
    return event.ts_us, event.attributes, event.flags


def test_one_reason_attribute_and_one_window_on_both_paths() -> None:
    ts, attrs, flags = _event({"time": "not a time at all", "message": "x"})
    assert ts == NOW and FLAG_TIME_REPLACED in flags
    assert attrs == {REASON_ATTRIBUTE: "unparsable_time", ORIGINAL_ATTRIBUTE: "not a time at all"}
    # before 1990: epoch 0 (a common "unset"), as for a text line
    ts, attrs, flags = _event({"time": 0, "message": "x"})
    assert ts == NOW and attrs[REASON_ATTRIBUTE] == "time_before_1990" and FLAG_TIME_REPLACED in flags
    line = parse_line("1985-01-01T00:00:00Z ERROR x", now_us=NOW)
    assert line.ts_us == NOW and line.attributes[REASON_ATTRIBUTE] == "time_before_1990"
    ts, attrs, _ = _event({"time": "1985-01-01T00:00:00Z", "message": "x"})
    assert ts == NOW and attrs[REASON_ATTRIBUTE] == "time_before_1990"
    assert attrs[ORIGINAL_ATTRIBUTE] == "1985-01-01T00:00:00Z"
    # more than a day ahead
    ts, attrs, _ = _event({"time": "2026-11-23T12:00:00Z", "message": "x"})
    assert ts == NOW and attrs[REASON_ATTRIBUTE] == "time_in_future"
    line = parse_line("2026-11-23T12:00:00Z ERROR x", now_us=NOW)
    assert line.attributes[REASON_ATTRIBUTE] == "time_in_future"
    # inside the window: kept
    ts, attrs, flags = _event({"time": "1990-01-02T00:00:00Z", "message": "x"})
    assert ts == us(1990, 1, 2) and not attrs and not flags
    assert "time_error" not in attrs
