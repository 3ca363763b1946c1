"""Time expressions users type: ``now``, ``now-15m``, ``now/d``, ISO 8601, epoch seconds or milliseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from logloupe.model import to_micros

_UNITS_US = {
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
_RELATIVE = re.compile(r"^now(?:(?P<sign>[-+])(?P<n>\d+)(?P<unit>[smhdw]))?(?:/(?P<round>[smhdw]))?$")
_DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdw])$")


def parse_duration_us(text: str) -> int:
    """``15m`` → microseconds. ValueError on anything else."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"'{text}' is not a duration such as 30s, 15m, 1h, 7d")
    return int(m["n"]) * _UNITS_US[m["unit"]]


def parse_time(text: str, now_us: int) -> int:
    """A user time expression → microseconds since the epoch (UTC). ValueError if unreadable."""
    s = text.strip()
    m = _RELATIVE.match(s)
    if m:
        us = now_us
        if m["sign"]:
            delta = int(m["n"]) * _UNITS_US[m["unit"]]
            us = us - delta if m["sign"] == "-" else us + delta
        if m["round"]:
            step = _UNITS_US[m["round"]]
            us -= us % step
        return us
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        value = float(s)
        # Epoch in seconds (10 digits today) or milliseconds (13 digits).
        return int(value * 1000) if abs(value) >= 1e11 else int(value * 1_000_000)
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not a time: use now-1h, ISO 8601 or epoch seconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return to_micros(dt)
