from __future__ import annotations

import pytest

from logloupe.model import Level
from logloupe.parse.levels import normalise_level, syslog_severity


@pytest.mark.parametrize(
    ("raw", "level"),
    [
        ("WARNING", Level.WARN),
        ("warn", Level.WARN),
        ("W", Level.WARN),
        ("Warn:", Level.WARN),
        ("crit", Level.FATAL),
        ("CRITICAL", Level.FATAL),
        ("err", Level.ERROR),
        ("ERROR", Level.ERROR),
        ("fatal", Level.FATAL),
        ("emerg", Level.FATAL),
        ("panic", Level.FATAL),
        ("alert", Level.FATAL),
        ("notice", Level.INFO),
        ("INFO", Level.INFO),
        ("Information", Level.INFO),
        ("I", Level.INFO),
        ("debug", Level.DEBUG),
        ("FINE", Level.DEBUG),
        ("trace", Level.TRACE),
        ("verbose", Level.TRACE),
        ("severe", Level.ERROR),
        ("[error]", Level.ERROR),
        ("E0102", Level.ERROR),
        ("WARNINGS", Level.WARN),
        (0, Level.FATAL),
        (3, Level.ERROR),
        (4, Level.WARN),
        (5, Level.INFO),
        (6, Level.INFO),
        (7, Level.DEBUG),
        ("3", Level.ERROR),
        (30, Level.INFO),
        (50, Level.ERROR),
        (60, Level.FATAL),
        (10, Level.TRACE),
    ],
)
def test_normalise(raw: str | int, level: Level) -> None:
    assert normalise_level(raw) == level


@pytest.mark.parametrize("raw", [None, "", "hello", 99, True, "combo"])
def test_not_a_level(raw: object) -> None:
    assert normalise_level(raw) is None  # type: ignore[arg-type]


def test_syslog_severity_bounds() -> None:
    assert syslog_severity(2) == Level.FATAL
    assert syslog_severity(42) == Level.INFO
