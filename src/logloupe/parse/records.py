"""Structured records (JSON objects from any ingest path) → LogEvent fields, within documented limits.

Pure: the clock and the limits are passed in. Nothing is dropped silently: whatever had to be
changed to fit is named in ``flags`` (see docs/limits.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from logloupe.model import (
    FLAG_ATTRIBUTES_DROPPED,
    FLAG_INVALID_UTF8,
    FLAG_NESTING_FLATTENED,
    FLAG_NUL_BYTES,
    FLAG_TIME_REPLACED,
    FLAG_TRUNCATED,
    Level,
    to_micros,
)
from logloupe.parse.keys import (
    ATTRIBUTE_KEYS,
    HOST_KEYS,
    LEVEL_KEYS,
    LEVEL_WORD_ONLY,
    MESSAGE_KEYS,
    SERVICE_KEYS,
    SPAN_KEYS,
    TIME_KEYS,
    TRACE_KEYS,
    lift_attributes,
    lift_ecs,
    needs_lift,
    pop_level,
)
from logloupe.parse.timestamps import ORIGINAL_ATTRIBUTE, REASON_ATTRIBUTE, parse_timestamp, zone

if TYPE_CHECKING:
    from logloupe.parse.grok import CustomFormat
    from logloupe.parse.line import ParsedLine


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 65536
    max_attributes: int = 256
    max_attribute_value_bytes: int = 8192
    max_nesting_depth: int = 8


@dataclass(slots=True)
class Fields:
    """What one record says, normalised; the pipeline turns it into a LogEvent."""

    message: str
    ts_us: int | None = None
    service: str = ""
    host: str = ""
    level: Level = Level.INFO
    level_raw: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    source: str = ""
    trace_id: str = ""
    span_id: str = ""
    flags: list[str] = field(default_factory=list)
    # True when ``service`` was read out of a text line (often a logger or component name): a
    # service the sender names for the whole stream then wins, and this one is kept as ``logger``.
    service_from_text: bool = False


_LEVEL_WORDS = {
    "TRACE": Level.TRACE,
    "FINEST": Level.TRACE,
    "FINER": Level.TRACE,
    "VERBOSE": Level.TRACE,
    "DEBUG": Level.DEBUG,
    "DBG": Level.DEBUG,
    "FINE": Level.DEBUG,
    "D": Level.DEBUG,
    "INFO": Level.INFO,
    "INFORMATION": Level.INFO,
    "INFORMATIONAL": Level.INFO,
    "NOTICE": Level.INFO,
    "I": Level.INFO,
    "WARN": Level.WARN,
    "WARNING": Level.WARN,
    "W": Level.WARN,
    "ERROR": Level.ERROR,
    "ERR": Level.ERROR,
    "E": Level.ERROR,
    "SEVERE": Level.ERROR,
    "FATAL": Level.FATAL,
    "CRIT": Level.FATAL,
    "CRITICAL": Level.FATAL,
    "ALERT": Level.FATAL,
    "EMERG": Level.FATAL,
    "EMERGENCY": Level.FATAL,
    "PANIC": Level.FATAL,
    "F": Level.FATAL,
}
# Syslog numeric severities 0..7.
_SYSLOG_SEVERITY = [
    Level.FATAL,
    Level.FATAL,
    Level.FATAL,
    Level.ERROR,
    Level.WARN,
    Level.INFO,
    Level.INFO,
    Level.DEBUG,
]


_LEVEL_CACHE: dict[str, Level | None] = {}
_LEVEL_CACHE_MAX = 4096


def level_from(value: Any) -> Level | None:
    """A level word, a syslog severity number or an OpenTelemetry severity number → Level."""
    if type(value) is str:  # the hot path: the few level words a source sends, remembered
        try:
            return _LEVEL_CACHE[value]
        except KeyError:
            found = _level_from(value)
            if len(_LEVEL_CACHE) < _LEVEL_CACHE_MAX:
                _LEVEL_CACHE[value] = found
            return found
    return _level_from(value)


def _level_from(value: Any) -> Level | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if 0 <= value <= 7:
            return _SYSLOG_SEVERITY[value]
        if 1 <= value <= 24:  # OpenTelemetry SeverityNumber
            return [Level.TRACE, Level.DEBUG, Level.INFO, Level.WARN, Level.ERROR, Level.FATAL][(value - 1) // 4]
        return None
    text = str(value).strip().upper()
    if text.isdecimal():  # what int() reads: not isdigit(), which takes "²" and int() then raises
        return _level_from(int(text))
    return _LEVEL_WORDS.get(text)


_LEVEL_IN_TEXT = re.compile(
    r"\b(TRACE|DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|ERR|SEVERE|FATAL|CRIT(?:ICAL)?|PANIC|EMERG)\b", re.I
)


def guess_level(text: str) -> tuple[Level, str]:
    """The first level word in a plain line, else INFO."""
    m = _LEVEL_IN_TEXT.search(text[:200])
    if m:
        return _LEVEL_WORDS.get(m.group(1).upper(), Level.INFO), m.group(1)
    return Level.INFO, ""


_NUMBERS = (int, float)


def time_from(value: Any, *, now_us: int | None = None, default_tz: str = "UTC") -> int | None:
    """A record's time → µs; None if unreadable. Epoch numbers (s, ms, µs, ns by magnitude) and
    ISO 8601 strings first (the common case, cheap); any other string goes through the text-line
    reader (``timestamps.parse_timestamp``: RFC 3164 ``Jun 14 15:16:01``, CLF, RFC 2822, ctime...),
    with ``default_tz`` for times written without a zone and ``now_us`` for the year of those
    written without one (the wall clock when None)."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, _NUMBERS):
            v = float(value)
            a = abs(v)
            if a >= 1e17:
                return int(value) // 1000
            if a >= 1e14:
                return int(value)
            if a >= 1e11:
                return int(v * 1000)
            return int(v * 1_000_000)
        if isinstance(value, str):
            s = value.strip()
            if _NUMERIC.fullmatch(s):
                return time_from(int(s) if "." not in s else float(s))
            try:
                dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace(" UTC", "+00:00"))
            except ValueError:
                return parse_timestamp(s, now_us=now_us, default_tz=default_tz)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=zone(default_tz))
            return to_micros(dt)
    except (ValueError, OverflowError, OSError):
        return None
    return None


_NUMERIC = re.compile(r"-?\d+(\.\d+)?")


def clean_text(value: str | bytes, max_bytes: int, flags: list[str]) -> str:
    """Decode (with replacement), keep NULs but flag them, truncate at ``max_bytes`` on a character edge."""
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("utf-8", "replace")
            _flag(flags, FLAG_INVALID_UTF8)
    else:
        text = value
        if not text.isascii():  # ASCII cannot hold lone surrogates: skip the costly check (hot path)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates from a lenient JSON decoder
                text = text.encode("utf-8", "replace").decode("utf-8")
                _flag(flags, FLAG_INVALID_UTF8)
    if "\x00" in text:
        _flag(flags, FLAG_NUL_BYTES)
    if len(text) * 4 > max_bytes and len(text.encode("utf-8")) > max_bytes:
        text = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
        _flag(flags, FLAG_TRUNCATED)
    return text


def _flag(flags: list[str], name: str) -> None:
    if name not in flags:
        flags.append(name)


def add_flags(fields: Fields, names: Sequence[str]) -> None:
    """Flags found before the record was read (``invalid_utf8``: its JSON held invalid UTF-8, read
    with U+FFFD by the ingest side), once each."""
    for name in names:
        _flag(fields.flags, name)


def _pop_first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in obj:
            return obj.pop(key)
    return None


def flatten_attributes(obj: dict[str, Any], limits: Limits, flags: list[str]) -> dict[str, str]:
    """Nested objects become dotted keys (``user.id``); lists and over-deep subtrees stay JSON text."""
    out: dict[str, str] = {}

    def add(key: str, value: Any, depth: int) -> None:
        if len(out) >= limits.max_attributes:
            _flag(flags, FLAG_ATTRIBUTES_DROPPED)
            return
        if isinstance(value, dict):
            if depth >= limits.max_nesting_depth:
                _flag(flags, FLAG_NESTING_FLATTENED)
                out[key] = _as_text(value, limits, flags)
                return
            for k, v in value.items():
                add(f"{key}.{k}" if key else str(k), v, depth + 1)
            return
        out[clean_text(key, 256, flags)] = _as_text(value, limits, flags)

    add("", obj, 0)
    return out


def _as_text(value: Any, limits: Limits, flags: list[str]) -> str:
    if isinstance(value, str):
        text = value
    elif value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)
    else:
        try:
            text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            text = str(value)
    return clean_text(text, limits.max_attribute_value_bytes, flags)


# Each known top-level key → its role: the fast path below, and pipeline/columnar.py.
RECORD_KEY_ROLES: dict[str, str] = {
    key: role
    for role, keys in (
        ("message", MESSAGE_KEYS),
        ("time", TIME_KEYS),
        ("level", LEVEL_KEYS),
        ("service", SERVICE_KEYS),
        ("host", HOST_KEYS),
        ("trace_id", TRACE_KEYS),
        ("span_id", SPAN_KEYS),
        ("source", ("source",)),
        ("attributes", ATTRIBUTE_KEYS),
    )
    for key in keys
    if key not in LEVEL_WORD_ONLY  # read only when a level word: the general path decides
}


def record_fields(record: dict[str, Any], limits: Limits) -> Fields:
    """One JSON log record → normalised fields; unknown top-level keys become attributes."""
    fast = _plain_record_fields(record, limits)
    if fast is not None:
        return fast
    return _record_fields(record, limits)


def _plain_record_fields(record: dict[str, Any], limits: Limits) -> Fields | None:
    """The common shape (``{"timestamp","service","host","level","message","meta"}``) without the
    general path's copies and key searches; None when the record needs the general path.

    Taken only when every key has a role of its own (so which key wins is not in question), text
    values are strings, at most one attribute object holds string values only, and the timestamp
    reads: the result is then exactly what ``_record_fields`` returns.
    """
    if limits.max_attributes < 1 or limits.max_nesting_depth < 1:
        return None
    found: dict[str, Any] = {}
    for key, value in record.items():
        role = RECORD_KEY_ROLES.get(key)
        if role is None or role in found:
            return None
        found[role] = value
    flags: list[str] = []
    message_value = found.get("message")
    if message_value is None:
        message = ""
    elif isinstance(message_value, str):
        message = clean_text(message_value, limits.max_message_bytes, flags)
    else:
        return None
    ts_us = None
    ts_value = found.get("time")
    if ts_value is not None:
        ts_us = time_from(ts_value)
        if ts_us is None:
            return None
    level_value = found.get("level")
    level_raw = "" if level_value is None else str(level_value)[:64]
    level = level_from(level_value) if level_value is not None else None
    if level is None:
        level, guessed = guess_level(message)
        level_raw = level_raw or guessed
    value_bytes = limits.max_attribute_value_bytes
    text: dict[str, str] = {}
    for name in ("service", "host", "trace_id", "span_id", "source"):
        value = found.get(name)
        if not value:
            if value is None or value == "":
                text[name] = ""
                continue
            return None
        if not isinstance(value, str):
            return None
        if not (value.isascii() and len(value) <= value_bytes and "\x00" not in value):
            value = clean_text(value, value_bytes, flags)
        text[name] = value[: 64 if name == "trace_id" or name == "span_id" else 256]
    attributes: dict[str, str] = {}
    nested = found.get("attributes")
    if nested is not None:
        if not isinstance(nested, dict) or len(nested) > limits.max_attributes:
            return None
        for k, v in nested.items():
            if not isinstance(v, str) or not k:
                return None
            if not (k.isascii() and len(k) <= 256 and "\x00" not in k):
                k = clean_text(k, 256, flags)
            if not (v.isascii() and len(v) <= value_bytes and "\x00" not in v):
                v = clean_text(v, value_bytes, flags)
            attributes[k] = v
        if len(attributes) != len(nested):  # two keys cleaned to the same text: the general path decides
            return None
    # Positional (Fields' order): half the cost of keywords on the ingest hot path.
    return Fields(
        message,
        ts_us,
        text["service"],
        text["host"],
        level,
        level_raw,
        attributes,
        text["source"],
        text["trace_id"],
        text["span_id"],
        flags,
    )


def _is_level_value(value: str) -> bool:
    return level_from(value) is not None


def _pop_level(obj: dict[str, Any]) -> Any:
    return pop_level(obj, _is_level_value)


def _record_fields(record: dict[str, Any], limits: Limits) -> Fields:
    obj = lift_ecs(record) if needs_lift(record) else dict(record)
    flags: list[str] = []
    message_value = _pop_first(obj, MESSAGE_KEYS)
    if message_value is None:
        message = ""
    elif isinstance(message_value, str | bytes):
        message = clean_text(message_value, limits.max_message_bytes, flags)
    else:
        message = clean_text(orjson.dumps(message_value).decode(), limits.max_message_bytes, flags)
    ts_value = _pop_first(obj, TIME_KEYS)
    ts_us = time_from(ts_value) if ts_value is not None else None
    attributes: dict[str, Any] = {}
    if ts_value is not None and ts_us is None:
        # kept at the observed time (``pipeline/assemble.py``), as a text line's would be
        _flag(flags, FLAG_TIME_REPLACED)
        attributes[REASON_ATTRIBUTE] = "unparsable_time"
        attributes[ORIGINAL_ATTRIBUTE] = str(ts_value)[:100]
    level_value = _pop_level(obj)
    level_raw = "" if level_value is None else str(level_value)[:64]
    level = level_from(level_value) if level_value is not None else None
    if level is None:
        level, guessed = guess_level(message)
        level_raw = level_raw or guessed
    service = _as_text(_pop_first(obj, SERVICE_KEYS) or "", limits, flags)[:256]
    host = _as_text(_pop_first(obj, HOST_KEYS) or "", limits, flags)[:256]
    trace_id = _as_text(_pop_first(obj, TRACE_KEYS) or "", limits, flags)[:64]
    span_id = _as_text(_pop_first(obj, SPAN_KEYS) or "", limits, flags)[:64]
    source = _as_text(obj.pop("source", None) or "", limits, flags)[:256]
    attributes.update(lift_attributes(obj))
    return Fields(
        message=message,
        ts_us=ts_us,
        service=service,
        host=host,
        level=level,
        level_raw=level_raw,
        attributes=flatten_attributes(attributes, limits, flags),
        source=source,
        trace_id=trace_id,
        span_id=span_id,
        flags=flags,
    )


def line_fields(line: str | bytes, limits: Limits) -> Fields:
    """A raw text line with no structure we know: the message, and a level if one is written."""
    flags: list[str] = []
    text = clean_text(line, limits.max_message_bytes, flags).rstrip("\r\n")
    level, raw = guess_level(text)
    return Fields(message=text, level=level, level_raw=raw, flags=flags)


def text_fields(
    lines: list[bytes | str],
    limits: Limits,
    now_us: int,
    *,
    default_tz: str = "UTC",
    custom: Sequence[CustomFormat] = (),
    hint: str | None = None,
) -> list[Fields]:
    """Raw text lines of one stream chunk → fields: format detection per line (``parse/line.py``),
    then multiline assembly, so a stack trace's continuation lines join the line that started it.
    ``default_tz``, ``custom`` and ``hint`` are the source's settings (``parse/sources.py``)."""
    from logloupe.parse.line import parse_line
    from logloupe.parse.multiline import MultilineAssembler

    assembler = MultilineAssembler()
    records: list[ParsedLine] = []
    for line in lines:
        parsed = parse_line(line, now_us=now_us, default_tz=default_tz, custom=custom, hint=hint)
        records.extend(assembler.feed(parsed, now_us=now_us))
    records.extend(assembler.flush())
    return [parsed_fields(rec, limits) for rec in records]


def parsed_fields(rec: ParsedLine, limits: Limits) -> Fields:
    """One parsed text line (or assembled record) → fields within the limits."""
    flags = list(rec.flags)
    message = clean_text(rec.message, limits.max_message_bytes, flags)
    return Fields(
        message=message,
        ts_us=rec.ts_us,
        service=rec.service,
        host=rec.host,
        level=rec.level,
        level_raw=rec.level_raw,
        attributes=flatten_attributes(dict(rec.attributes), limits, flags),
        trace_id=rec.trace_id,
        span_id=rec.span_id,
        flags=flags,
        service_from_text=bool(rec.service),
    )
