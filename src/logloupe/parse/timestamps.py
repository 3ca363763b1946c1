"""Timestamps in the many shapes logs write them, to microseconds since the epoch (UTC).

``parse_timestamp(text)`` reads a whole timestamp; ``find_timestamp(line)`` finds one at the start of a
line (optionally in brackets) and says where it ends. Formats without a year (RFC 3164 ``Jun 14
15:16:01``, Android ``03-17 16:13:38.811``) take the year of the observed time and roll back a year
when that would put them more than a day in the future (a December line read in January).
Formats without a zone use ``default_tz`` (an IANA name or ``UTC``). ``sanity_check`` applies the
window: a time before ``MIN_YEAR`` or more than ``MAX_FUTURE_S`` ahead of the observed time is
replaced by the observed time with a reason.

Pure functions: the observed time (``now_us``) is always passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

# The sanity window, one for every path (text lines here, structured records in
# ``pipeline/assemble.py``): a time before ``MIN_YEAR`` or more than ``MAX_FUTURE_S`` ahead of the
# observed time is replaced by the observed time, flagged ``time_replaced``, and the reason kept in
# the ``REASON_ATTRIBUTE`` attribute (with the time as written in ``ORIGINAL_ATTRIBUTE``).
MIN_YEAR = 1990
MAX_FUTURE_S = 86_400
MAX_FUTURE_US = MAX_FUTURE_S * 1_000_000
MIN_TS_US = 631_152_000_000_000  # 1990-01-01T00:00:00Z
REASON_ATTRIBUTE = "time_replaced_reason"
ORIGINAL_ATTRIBUTE = "original_time"

_MONTHS = {
    m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}

# Zone abbreviations that are unambiguous enough in logs, in minutes east of UTC.
ZONE_OFFSETS: dict[str, int] = {
    "UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 60, "BST": 60, "CET": 60, "CEST": 120,
    "MET": 60, "MEST": 120, "EET": 120, "EEST": 180, "MSK": 180, "IST": 330, "SGT": 480, "HKT": 480,
    "CST": -360, "CDT": -300, "EST": -300, "EDT": -240, "MST": -420, "MDT": -360, "PST": -480,
    "PDT": -420, "AKST": -540, "AKDT": -480, "HST": -600, "JST": 540, "KST": 540, "AEST": 600,
    "AEDT": 660, "ACST": 570, "AWST": 480, "NZST": 720, "NZDT": 780, "BRT": -180, "ART": -180,
}  # fmt: skip


@lru_cache(maxsize=256)
def zone(name: str) -> tzinfo:
    """A tzinfo for an IANA name, an abbreviation from ZONE_OFFSETS or an offset like ``+05:30``;
    unknown names are UTC."""
    if not name or name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    if name.upper() in ZONE_OFFSETS:
        return timezone(timedelta(minutes=ZONE_OFFSETS[name.upper()]))
    off = _parse_offset(name)
    if off is not None:
        return timezone(timedelta(minutes=off))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # unknown or unavailable zone database: fall back to UTC
        return UTC


_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})?$")


def _parse_offset(text: str) -> int | None:
    m = _OFFSET.match(text)
    if m is None:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    if minutes > 18 * 60:
        return None
    return -minutes if m.group(1) == "-" else minutes


def _micros(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _frac_us(frac: str | None) -> int:
    if not frac:
        return 0
    return int((frac + "000000")[:6])


def _build(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    frac: str | None,
    tz: str | None,
    default_tz: str,
) -> int | None:
    try:
        if second == 60:  # leap second
            second = 59
        dt = datetime(year, month, day, hour, minute, second, _frac_us(frac))
    except ValueError:
        return None
    zone_info = zone(tz) if tz else zone(default_tz)
    try:
        aware = dt.replace(tzinfo=zone_info)
        return _micros(aware)
    except (OverflowError, ValueError):
        return None


def _year_for(month: int, day: int, now_us: int | None, default_tz: str) -> int:
    """Year for a date written without one: the observed year, or the one before when the date
    would otherwise lie more than a day ahead (December lines read in January)."""
    now = datetime.fromtimestamp((now_us or 0) / 1_000_000, tz=UTC) if now_us else datetime.now(UTC)
    year = now.year
    try:
        candidate = datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return year
    if candidate - now > timedelta(days=1):
        return year - 1
    return year


_Builder = Callable[["re.Match[str]", int | None, str], int | None]
_TZ = (
    r"(?:\s?(?P<tz>Z|[+-]\d{2}(?::?\d{2})?(?![\d:])|(?:"
    + "|".join(sorted((k for k in ZONE_OFFSETS if k != "Z"), key=len, reverse=True))
    + r")\b))?"
)
_FRAC = r"(?:[.,](?P<frac>\d{1,9}))?"
_HMS = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?" + _FRAC
_MON = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_DOW = r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,?\s+)"


def _ymd(m: re.Match[str], now_us: int | None, default_tz: str, *, year: int | None = None) -> int | None:
    g = m.groupdict()
    if year is None:
        y = g.get("y")
        if y is None:
            return None
        year = int(y)
        if len(y) == 2:
            year += 2000 if year < 70 else 1900
    month = _MONTHS[g["mon"][:3].lower()] if g.get("mon") else int(g["m"])
    hour = int(g.get("H") or 0)
    if g.get("ampm"):
        ampm = g["ampm"].upper()
        if ampm == "PM" and hour < 12:
            hour += 12
        elif ampm == "AM" and hour == 12:
            hour = 0
    return _build(
        year,
        month,
        int(g["d"]),
        hour,
        int(g.get("M") or 0),
        int(g.get("S") or 0),
        g["ms"].zfill(3) if g.get("ms") else g.get("frac"),
        g.get("tz"),
        default_tz,
    )


def _yearless(m: re.Match[str], now_us: int | None, default_tz: str) -> int | None:
    g = m.groupdict()
    month = _MONTHS[g["mon"][:3].lower()] if g.get("mon") else int(g["m"])
    try:
        day = int(g["d"])
    except (TypeError, ValueError):
        return None
    return _ymd(m, now_us, default_tz, year=_year_for(month, day, now_us, default_tz))


@lru_cache(maxsize=256)
def _is_zone(name: str) -> bool:
    """Whether the zone database knows ``name``; remembered, as lines repeat what follows their time
    (``HTTP/1``, ``GET /path``) and a failed lookup reads the disk."""
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(name)
    except Exception:
        return False
    return True


def _iana(m: re.Match[str], now_us: int | None, default_tz: str) -> int | None:
    """ISO 8601 followed by an IANA zone name (``... Europe/Paris``, Java's ``...+01:00[Europe/Paris]``):
    the offset when written, else the named zone; None for a name the zone database does not know."""
    name = m.group("iana")
    if m.group("tz") is None and not _is_zone(name):  # not a zone: the plain ISO format reads it
        return None
    g = m.groupdict()
    return _build(
        int(g["y"]),
        int(g["m"]),
        int(g["d"]),
        int(g["H"]),
        int(g["M"]),
        int(g.get("S") or 0),
        g.get("frac"),
        g["tz"] or name,
        default_tz,
    )


def _ordinal(m: re.Match[str], now_us: int | None, default_tz: str) -> int | None:
    """ISO 8601 ordinal date: 2026-002T03:04:05Z is 2 January."""
    year, doy = int(m.group("y")), int(m.group("doy"))
    try:
        day = datetime(year, 1, 1) + timedelta(days=doy - 1)
    except (ValueError, OverflowError):
        return None
    if doy < 1 or day.year != year:
        return None
    g = m.groupdict()
    return _build(
        year, day.month, day.day, int(g["H"]), int(g["M"]), int(g.get("S") or 0), g.get("frac"), g.get("tz"), default_tz
    )


def _time_only(m: re.Match[str], now_us: int | None, default_tz: str) -> int | None:
    """A time of day alone (``15:04:05.123``, ``3:04:05 PM``): the date is the observed one in the
    source's zone, or the day before when that would put the time over an hour ahead (a line
    written just before midnight, read just after)."""
    tz = zone(m.group("tz") or default_tz)
    now = datetime.fromtimestamp((now_us or 0) / 1_000_000, tz=UTC) if now_us else datetime.now(UTC)
    local = now.astimezone(tz)
    g = m.groupdict()
    hour = int(g["H"])
    if g.get("ampm"):
        if hour > 12:
            return None
        hour = hour % 12 + (12 if g["ampm"].upper() == "PM" else 0)
    ts = _build(
        local.year, local.month, local.day, hour, int(g["M"]), int(g["S"]), g.get("frac"), g.get("tz"), default_tz
    )
    if ts is None:
        return None
    if ts - _micros(now) > 3_600_000_000:
        ts -= 86_400_000_000
    return ts


def _epoch(m: re.Match[str], now_us: int | None, default_tz: str) -> int | None:
    whole, frac = m.group("epoch"), m.group("efrac")
    n = len(whole)
    if n <= 10:  # seconds
        return int(whole) * 1_000_000 + _frac_us(frac)
    if n <= 13:  # milliseconds
        return int(whole) * 1000
    if n <= 16:  # microseconds
        return int(whole)
    return int(whole) // 1000  # nanoseconds


# (name, regex, builder). Every regex is anchored at the start; ``find_timestamp`` tries them in order.
FORMATS: list[tuple[str, re.Pattern[str], _Builder]] = []


def _add(name: str, pattern: str, builder: _Builder) -> None:
    FORMATS.append((name, re.compile(pattern), builder))


_D = r"(?P<d>\d{1,2})"
# ISO 8601 / RFC 3339 and their relatives.
# With an IANA zone name after the time (tried first, only when a "/" follows the date):
# 2026-01-02T03:04:05 Europe/Paris, Java's ZonedDateTime 2026-01-02T03:04:05+01:00[Europe/Paris]
_add(
    "iso8601_zone_name",
    r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[T ]" + _HMS
    + r"(?P<tz>Z|[+-]\d{2}:?\d{2})?(?:\s|\[)(?P<iana>[A-Z][A-Za-z_]+(?:/[A-Za-z0-9_+\-]+){1,2})\]?",
    _iana,
)  # fmt: skip
_add("iso8601", r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[T ]" + _HMS + _TZ, _ymd)
_add(
    "iso8601_basic",
    r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})T(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})" + _FRAC + _TZ,
    _ymd,
)
_add(
    "bgl",
    r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})-(?P<H>\d{2})\.(?P<M>\d{2})\.(?P<S>\d{2})(?:\.(?P<frac>\d{1,9}))?",
    _ymd,
)
# ISO 8601 ordinal date: 2026-002T03:04:05Z
_add("iso8601_ordinal", r"(?P<y>\d{4})-(?P<doy>\d{3})T" + _HMS + _TZ, _ordinal)
_add("slash_ymd", r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})[ T:]" + _HMS + _TZ, _ymd)
_add("dot_ymd", r"(?P<y>\d{4})\.(?P<m>\d{2})\.(?P<d>\d{2})[ T]" + _HMS + _TZ, _ymd)
_add(
    "healthapp",
    # minutes, seconds and milliseconds are written without zero padding: 20171223-22:16:0:119,
    # 20171223-22:15:35:11 (11 ms, before 22:15:35:96 and 22:15:35:104)
    r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})-(?P<H>\d{1,2}):(?P<M>\d{1,2}):(?P<S>\d{1,2})(?::(?P<ms>\d{1,3}))?",
    _ymd,
)
_add("yymmdd_hhmmss", r"(?P<y>\d{2})(?P<m>\d{2})(?P<d>\d{2}) (?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})\b", _ymd)
# MySQL 5 error log: 150109 11:22:33, 260102  3:04:05
_add("mysql", r"(?P<y>\d{2})(?P<m>\d{2})(?P<d>\d{2})\s+(?P<H>\d{1,2}):(?P<M>\d{2}):(?P<S>\d{2})(?!\d)", _ymd)
# compact digits, to the second (or millisecond): 20260102030405, 20260102030405123
_add(
    "compact_ymdhms",
    r"(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2})(?P<frac>\d{3})?(?!\d)",
    _ymd,
)
# Chinese / Japanese: 2026年1月2日 3時04分05秒, 2026年01月02日 03:04:05
_add(
    "cjk",
    r"(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日\s*(?P<H>\d{1,2})[時时:](?P<M>\d{2})[分:](?P<S>\d{2})秒?",
    _ymd,
)
_add("yy_slash", r"(?P<y>\d{2})/(?P<m>\d{2})/(?P<d>\d{2}) " + _HMS, _ymd)
_add("iso_date", r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?![\d:T])", _ymd)
# CLF (Apache/Nginx access): 10/Oct/2000:13:55:36 -0700
_add("clf", _D + r"/" + _MON + r"/(?P<y>\d{4}):" + _HMS + _TZ, _ymd)
# RFC 2822 / HTTP date: Sun, 04 Dec 2005 04:47:44 GMT
_add("rfc2822", _DOW + r"?" + _D + r"\s+" + _MON + r"\s+(?P<y>\d{4})\s+" + _HMS + _TZ, _ymd)
# RFC 850 (obsolete HTTP date): Sunday, 06-Nov-94 08:49:37 GMT
_add(
    "rfc850",
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday),\s+" + _D + r"-" + _MON + r"-(?P<y>\d{2})\s+"
    + _HMS + _TZ,
    _ymd,
)  # fmt: skip
# ctime / Apache error: Sun Dec 04 04:47:44 2005, Mon Jan  2 15:04:05 MST 2006
_add("ctime", _DOW + r"?" + _MON + r"\s+" + _D + r"\s+" + _HMS + _TZ + r"\s+(?P<y>\d{4})", _ymd)
# month, day, year, time without a comma (Cisco ASA, some Java layouts): Jan 02 2026 03:04:05
_add("mon_d_yyyy", _MON + r"\s+" + _D + r"\s+(?P<y>\d{4})\s+" + _HMS + _TZ, _ymd)
# Java/US long form: Jan 2, 2006 3:04:05 PM
_add(
    "java_long",
    _MON + r"\s+" + _D + r",\s+(?P<y>\d{4})\s+" + _HMS + r"(?:\s*(?P<ampm>[AaPp][Mm]))?" + _TZ,
    _ymd,
)
# Erlang / RabbitMQ: 2-Jan-2026::03:04:05
_add("erlang", _D + r"-" + _MON + r"-(?P<y>\d{4})::" + _HMS, _ymd)
# Tomcat / Oracle: 02-Jan-2006 15:04:05.000
_add("dd_mon_yyyy", _D + r"-" + _MON + r"-(?P<y>\d{4})[ :]" + _HMS + _TZ, _ymd)
# numeric day-first / month-first with a year: 25.12.2023 10:00:00, 12/25/2023 10:00:00 PM
_add("dmy_dots", _D + r"\.(?P<m>\d{1,2})\.(?P<y>\d{4})[ ,]+" + _HMS + _TZ, _ymd)
_add(
    "mdy_slash",
    r"(?P<m>\d{1,2})/" + _D + r"/(?P<y>\d{4})[ ,:]+" + _HMS + r"(?:\s*(?P<ampm>[AaPp][Mm]))?" + _TZ,
    _ymd,
)
# day first, told apart from month first by a day over 12 (en-GB, fr-FR...): 25/12/2023 10:00:00
_add(
    "dmy_slash",
    r"(?P<d>1[3-9]|2\d|3[01])/(?P<m>\d{1,2})/(?P<y>\d{4})[ ,:]+" + _HMS + r"(?:\s*(?P<ampm>[AaPp][Mm]))?" + _TZ,
    _ymd,
)
# RFC 3164 syslog, no year: Jun 14 15:16:01 (with optional zone)
_add("rfc3164", _MON + r"\s+" + _D + r"\s+" + _HMS + _TZ, _yearless)
# Android logcat, no year: 03-17 16:13:38.811
_add("android", r"(?P<m>\d{2})-(?P<d>\d{2})\s+" + _HMS, _yearless)
# Proxifier, no year: 10.30 16:49:06
_add("mm_dd_dot", r"(?P<m>\d{2})\.(?P<d>\d{2})\s+" + _HMS, _yearless)
# Go glog / klog header, no year, the level letter first: I1101 12:00:00.123456
_add("glog", r"[IWEF](?P<m>\d{2})(?P<d>\d{2}) " + _HMS, _yearless)
# a time of day alone, the date from the observed time: 15:04:05.123, 3:04:05 PM
_add(
    "time_only",
    r"(?P<H>\d{1,2}):(?P<M>\d{2}):(?P<S>\d{2})" + _FRAC + r"(?:\s*(?P<ampm>[AaPp][Mm])\b)?" + _TZ + r"(?![\d:])",
    _time_only,
)
# epoch seconds / ms / µs / ns, optionally with a fraction (seconds only)
_add("epoch", r"(?P<epoch>\d{9,10}|\d{12,13}|\d{15,16}|\d{18,19})(?:\.(?P<efrac>\d{1,9}))?(?![\d.])", _epoch)


# The families that can start with a letter (month or weekday names, glog's level letter); every
# other one starts with a digit. find_timestamp tries only the ones the first character allows, so
# a line without a time (a stack frame, plain text) costs one character test, not 31 patterns.
_LETTER_FIRST = frozenset({"rfc2822", "rfc850", "ctime", "mon_d_yyyy", "java_long", "rfc3164", "glog"})
_LETTER_ONLY = _LETTER_FIRST - {"rfc2822"}  # an RFC 2822 date may start with its day number
_DIGIT_FORMATS = [f for f in FORMATS if f[0] not in _LETTER_ONLY]
_LETTER_FORMATS = [f for f in FORMATS if f[0] in _LETTER_FIRST]


def find_timestamp(
    line: str, *, now_us: int | None = None, default_tz: str = "UTC", allow_epoch: bool = True
) -> tuple[int, int, str] | None:
    """A timestamp at the start of ``line`` (after optional ``[``): (ts_us, end offset, format name)."""
    start = 0
    bracket = line[:1] in "[("
    if bracket:
        start = 1
    first = line[start : start + 1]
    if first.isdigit():
        formats = _DIGIT_FORMATS
    elif first.isalpha():
        formats = _LETTER_FORMATS
    else:
        return None
    for name, pattern, builder in formats:
        if name == "epoch" and not allow_epoch:
            continue
        if name == "iso8601_zone_name" and "/" not in line[start + 16 : start + 48]:
            continue  # no zone name can follow: skip the pattern (most ISO lines)
        m = pattern.match(line, start)
        if m is None:
            continue
        ts = builder(m, now_us, default_tz)
        if ts is None:
            continue
        end = m.end()
        if bracket and line[end : end + 1] in "])":
            end += 1
        return ts, end, name
    return None


def parse_timestamp(text: str, *, now_us: int | None = None, default_tz: str = "UTC") -> int | None:
    """A whole string as a timestamp (any of ``FORMATS``), in µs since the epoch; None otherwise."""
    text = text.strip()
    if not text:
        return None
    found = find_timestamp(text, now_us=now_us, default_tz=default_tz)
    if found is None:
        return None
    ts, end, _ = found
    rest = text[end:].strip()
    if rest and rest not in ("]", ")"):
        return None
    return ts


def sanity_check(ts_us: int, now_us: int) -> tuple[int, str | None]:
    """Keep ``ts_us`` when plausible; otherwise the observed time and the reason."""
    if ts_us > now_us + MAX_FUTURE_US:
        return now_us, "time_in_future"
    if ts_us < MIN_TS_US:
        return now_us, "time_before_1990"
    return ts_us, None
