from __future__ import annotations

from datetime import UTC, datetime

import pytest

from logloupe.model import to_micros
from logloupe.parse.timestamps import FORMATS, find_timestamp, parse_timestamp, sanity_check, zone

NOW = to_micros(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))


def us(*args: int, tz: str = "UTC") -> int:
    return to_micros(datetime(*args, tzinfo=zone(tz)))  # type: ignore[misc]


CASES = [
    ("2023-01-02T03:04:05Z", us(2023, 1, 2, 3, 4, 5)),
    ("2023-01-02T03:04:05.123456Z", us(2023, 1, 2, 3, 4, 5, 123456)),
    ("2023-01-02T03:04:05.123456789Z", us(2023, 1, 2, 3, 4, 5, 123456)),
    ("2023-01-02T03:04:05+01:00", us(2023, 1, 2, 2, 4, 5)),
    ("2023-01-02T03:04:05-0530", us(2023, 1, 2, 8, 34, 5)),
    ("2023-01-02T03:04:05+01", us(2023, 1, 2, 2, 4, 5)),
    ("2023-01-02 03:04:05", us(2023, 1, 2, 3, 4, 5)),
    ("2015-07-29 17:41:44,747", us(2015, 7, 29, 17, 41, 44, 747000)),
    ("2023-01-02 03:04:05 PST", us(2023, 1, 2, 11, 4, 5)),
    ("2023-01-02 03:04:05 CEST", us(2023, 1, 2, 1, 4, 5)),
    ("20230102T030405Z", us(2023, 1, 2, 3, 4, 5)),
    ("2023/01/02 15:04:05.000001", us(2023, 1, 2, 15, 4, 5, 1)),
    ("2005.06.03 15:42:50", us(2005, 6, 3, 15, 42, 50)),
    ("2005-06-03-15.42.50.675872", us(2005, 6, 3, 15, 42, 50, 675872)),
    ("20171223-22:15:29:606", us(2017, 12, 23, 22, 15, 29, 606000)),
    ("081109 203615", us(2008, 11, 9, 20, 36, 15)),
    ("17/06/09 20:10:40", us(2017, 6, 9, 20, 10, 40)),
    ("2023-01-02", us(2023, 1, 2)),
    ("10/Oct/2000:13:55:36 -0700", us(2000, 10, 10, 20, 55, 36)),
    ("Sun, 04 Dec 2005 04:47:44 GMT", us(2005, 12, 4, 4, 47, 44)),
    ("04 Dec 2005 04:47:44 +0100", us(2005, 12, 4, 3, 47, 44)),
    ("Sun Dec 04 04:47:44 2005", us(2005, 12, 4, 4, 47, 44)),
    ("Mon Jan  2 15:04:05 MST 2006", us(2006, 1, 2, 22, 4, 5)),
    ("Wed Oct 11 14:32:52.123456 2000", us(2000, 10, 11, 14, 32, 52, 123456)),
    ("Jan 2, 2006 3:04:05 PM", us(2006, 1, 2, 15, 4, 5)),
    ("02-Jan-2006 15:04:05.000", us(2006, 1, 2, 15, 4, 5)),
    ("25.12.2023 10:00:00", us(2023, 12, 25, 10, 0, 0)),
    ("12/25/2023 10:00:00 PM", us(2023, 12, 25, 22, 0, 0)),
    ("Jun 14 15:16:01", us(2026, 6, 14, 15, 16, 1)),
    ("Jun  9 05:06:07", us(2026, 6, 9, 5, 6, 7)),
    ("03-17 16:13:38.811", us(2026, 3, 17, 16, 13, 38, 811000)),
    ("10.30 16:49:06", us(2026, 10, 30, 16, 49, 6)),
    ("1117838570", us(2005, 6, 3, 22, 42, 50)),
    ("1117838570.5", us(2005, 6, 3, 22, 42, 50, 500000)),
    ("1117838570123", us(2005, 6, 3, 22, 42, 50, 123000)),
    ("1117838570123456", us(2005, 6, 3, 22, 42, 50, 123456)),
    ("1117838570123456789", us(2005, 6, 3, 22, 42, 50, 123456)),
    # the families added for the audit (#3 item 7), one case each or more
    ("I1101 12:00:00.123456", us(2026, 11, 1, 12, 0, 0, 123456)),  # glog / klog
    ("E0102 15:04:05.000001", us(2026, 1, 2, 15, 4, 5, 1)),
    ("2026-01-02T03:04:05 Europe/Paris", us(2026, 1, 2, 2, 4, 5)),  # ISO + IANA zone name
    ("2026-07-02 03:04:05.5 America/New_York", us(2026, 7, 2, 7, 4, 5, 500000)),  # summer time
    ("2026-01-02T03:04:05+01:00[Europe/Paris]", us(2026, 1, 2, 2, 4, 5)),  # Java ZonedDateTime
    ("2026-002T03:04:05Z", us(2026, 1, 2, 3, 4, 5)),  # ISO ordinal date
    ("150109 11:22:33", us(2015, 1, 9, 11, 22, 33)),  # MySQL 5
    ("260102  3:04:05", us(2026, 1, 2, 3, 4, 5)),
    ("20260102030405", us(2026, 1, 2, 3, 4, 5)),  # compact digits
    ("20260102030405123", us(2026, 1, 2, 3, 4, 5, 123000)),
    ("2026年1月2日 3時04分05秒", us(2026, 1, 2, 3, 4, 5)),  # Japanese
    ("2026年01月02日 03:04:05", us(2026, 1, 2, 3, 4, 5)),  # Chinese
    ("Sunday, 06-Nov-94 08:49:37 GMT", us(1994, 11, 6, 8, 49, 37)),  # RFC 850
    ("Jan 02 2026 03:04:05", us(2026, 1, 2, 3, 4, 5)),  # Cisco ASA
    ("2-Jan-2026::03:04:05", us(2026, 1, 2, 3, 4, 5)),  # Erlang / RabbitMQ
    ("25/12/2023 10:00:00", us(2023, 12, 25, 10, 0, 0)),  # day first (day over 12)
    ("25/12/2023 10:00:00 PM", us(2023, 12, 25, 22, 0, 0)),
    ("1/2/2026 3:04:05 PM", us(2026, 1, 2, 15, 4, 5)),  # Windows M/D/YYYY h:mm:ss tt (mdy_slash)
    ("11:30:00", us(2026, 11, 21, 11, 30, 0)),  # a time alone: today
    ("15:04:05.123", us(2026, 11, 20, 15, 4, 5, 123000)),  # over an hour ahead: yesterday
    ("3:04:05 AM", us(2026, 11, 21, 3, 4, 5)),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_formats(text: str, expected: int) -> None:
    assert parse_timestamp(text, now_us=NOW) == expected


def test_at_least_thirty_formats() -> None:
    """Thirty format families (``FORMATS``: one regular expression each), every one exercised here."""
    assert len(FORMATS) >= 30
    used = {find_timestamp(text, now_us=NOW)[2] for text, _ in CASES}  # type: ignore[index]
    assert used == {name for name, _, _ in FORMATS}


def test_zone_names_and_times_alone() -> None:
    assert parse_timestamp("2026-01-02T03:04:05 No/Such_Zone", now_us=NOW) is None
    found = find_timestamp("2026-01-02 03:04:05 Europe/Paris INFO started", now_us=NOW)
    assert found is not None and found[2] == "iso8601_zone_name"
    # a time alone takes the date in the source's zone: 15:04 Berlin is 14:04 UTC, over an hour ahead
    assert parse_timestamp("15:04:05", now_us=NOW, default_tz="Europe/Berlin") == us(2026, 11, 20, 14, 4, 5)
    assert parse_timestamp("13:04:05", now_us=NOW, default_tz="Europe/Berlin") == us(2026, 11, 21, 12, 4, 5)
    assert parse_timestamp("25:00:00", now_us=NOW) is None
    assert parse_timestamp("2026-366T00:00:00Z", now_us=NOW) is None  # 2026 has 365 days


def test_year_rolls_back_for_december_read_in_january() -> None:
    jan = to_micros(datetime(2027, 1, 1, 0, 5, tzinfo=UTC))
    assert parse_timestamp("Dec 31 23:59:59", now_us=jan) == us(2026, 12, 31, 23, 59, 59)
    assert parse_timestamp("Jan  1 00:04:00", now_us=jan) == us(2027, 1, 1, 0, 4, 0)


def test_default_zone_applies_to_zoneless_times() -> None:
    assert parse_timestamp("2023-01-02 03:04:05", default_tz="Europe/Berlin") == us(2023, 1, 2, 2, 4, 5)
    assert parse_timestamp("2023-01-02 03:04:05", default_tz="+02:00") == us(2023, 1, 2, 1, 4, 5)
    assert parse_timestamp("2023-01-02 03:04:05Z", default_tz="Europe/Berlin") == us(2023, 1, 2, 3, 4, 5)
    assert parse_timestamp("2023-01-02 03:04:05", default_tz="No/Such_Zone") == us(2023, 1, 2, 3, 4, 5)


@pytest.mark.parametrize("text", ["", "hello", "2023-13-45 10:00:00", "99:99:99", "2023-02-30T00:00:00Z"])
def test_not_a_timestamp(text: str) -> None:
    assert parse_timestamp(text, now_us=NOW) is None


def test_find_timestamp_reports_the_end() -> None:
    found = find_timestamp("[2023-01-02 03:04:05,123] INFO x", now_us=NOW)
    assert found is not None
    ts, end, name = found
    assert ts == us(2023, 1, 2, 3, 4, 5, 123000) and name == "iso8601"
    assert "[2023-01-02 03:04:05,123] INFO x"[end:] == " INFO x"


def test_sanity_window() -> None:
    assert sanity_check(NOW - 1000, NOW) == (NOW - 1000, None)
    assert sanity_check(NOW + 10 * 86_400_000_000, NOW) == (NOW, "time_in_future")
    assert sanity_check(0, NOW) == (NOW, "time_before_1990")
