"""``parse_line``: the one entry point the pipeline calls for every raw line. Pure; never raises.

Steps: decode (invalid UTF-8 replaced and flagged), drop NULs (flagged), truncate past
``MAX_LINE_CHARS`` (flagged), strip ANSI colour codes, detect the format and split the fields,
normalise the level, read the timestamp and apply the sanity window (an impossible time becomes
the observed time, flagged ``time_replaced`` with a ``time_replaced_reason`` attribute).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from logloupe.model import (
    FLAG_INVALID_UTF8,
    FLAG_NUL_BYTES,
    FLAG_TIME_REPLACED,
    FLAG_TRUNCATED,
    Level,
)
from logloupe.parse.formats import CONTAINER_FORMATS, Fields, detect, level_of
from logloupe.parse.grok import CustomFormat
from logloupe.parse.levels import normalise_level
from logloupe.parse.timestamps import ORIGINAL_ATTRIBUTE, REASON_ATTRIBUTE, sanity_check

# Longest line kept, in characters (after decoding); the rest is cut and the line flagged "truncated".
MAX_LINE_CHARS = 65_536

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and lone escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_LEVEL_IN_TEXT = re.compile(r"\b(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL|SEVERE)\b")


@dataclass(slots=True)
class ParsedLine:
    """One line split into the fields of ``logloupe.model.LogEvent``; ``ts_us`` None: no time found."""

    message: str
    ts_us: int | None = None
    level: Level = Level.INFO
    level_raw: str = ""
    service: str = ""
    host: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""
    span_id: str = ""
    flags: list[str] = field(default_factory=list)
    format: str = "plain"
    # Container lines (CRI, Docker json): the format of the program's own text inside ("plain" when
    # it has no header of its own, so it may continue a stack trace); "" for other lines.
    inner: str = ""

    @property
    def headerless(self) -> bool:
        """No header of its own: the line may continue the record before it (``parse/multiline.py``)."""
        if self.inner:
            return self.inner in ("plain", "empty")
        return self.ts_us is None and self.format in ("plain", "empty")

    @property
    def partial(self) -> bool:
        """A container runtime cut this line (CRI ``P``, a Docker log without a newline): the next
        line of its stream is the rest of it."""
        return bool(self.inner) and self.attributes.get("partial") == "true"


def decode(line: str | bytes) -> tuple[str, list[str]]:
    """Text of a raw line and the flags its decoding earned."""
    flags: list[str] = []
    if isinstance(line, bytes | bytearray | memoryview):
        raw = bytes(line)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
            flags.append(FLAG_INVALID_UTF8)
    else:
        text = line
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates
            text = text.encode("utf-8", "replace").decode("utf-8")
            flags.append(FLAG_INVALID_UTF8)
    if "\x00" in text:
        text = text.replace("\x00", "")
        flags.append(FLAG_NUL_BYTES)
    return text, flags


def parse_line(
    line: str | bytes,
    *,
    now_us: int,
    default_tz: str = "UTC",
    hint: str | None = None,
    custom: Sequence[CustomFormat] = (),
) -> ParsedLine:
    """Structure one raw line. ``now_us`` is the observed time; ``hint`` the stream's last format;
    ``custom`` the source's own named formats (``logloupe.parse.grok``), tried first."""
    text, flags = decode(line)
    if len(text) > MAX_LINE_CHARS:
        text = text[:MAX_LINE_CHARS]
        flags.append(FLAG_TRUNCATED)
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = text.rstrip("\r\n")
    if not text.strip():
        return ParsedLine(message="", flags=flags, format="empty")
    fields = detect(text, now_us=now_us, default_tz=default_tz, hint=hint, custom=custom)
    inner = ""
    if fields.format in CONTAINER_FORMATS:
        inner = _read_inner(fields, now_us, default_tz, custom)
    level = level_of(fields)
    if level is None and (fields.format == "plain" or inner == "plain"):
        m = _LEVEL_IN_TEXT.search(text, 0, 80)
        if m is not None:
            fields.level_raw = m.group(1)
            level = normalise_level(m.group(1))
    attributes = fields.attributes
    ts_us = fields.ts_us
    if ts_us is not None:
        checked, reason = sanity_check(ts_us, now_us)
        if reason is not None:
            attributes[REASON_ATTRIBUTE] = reason
            attributes[ORIGINAL_ATTRIBUTE] = fields.ts_raw or str(ts_us)
            flags.append(FLAG_TIME_REPLACED)
            ts_us = checked
    elif fields.ts_raw:
        attributes[REASON_ATTRIBUTE] = "unparsable_time"
        attributes[ORIGINAL_ATTRIBUTE] = fields.ts_raw
        flags.append(FLAG_TIME_REPLACED)
        ts_us = now_us
    return ParsedLine(
        message=fields.message,
        ts_us=ts_us,
        level=level if level is not None else Level.INFO,
        level_raw=fields.level_raw,
        service=fields.service,
        host=fields.host,
        attributes=attributes,
        trace_id=fields.trace_id,
        span_id=fields.span_id,
        flags=flags + fields.flags,
        format=fields.format,
        inner=inner,
    )


def _read_inner(fields: Fields, now_us: int, default_tz: str, custom: Sequence[CustomFormat]) -> str:
    """A container line's own text read as a line of its own: its level, logger, attributes and
    message replace the runtime's wrapper (whose time and stream stay). Returns the inner format."""
    text = fields.message
    if not text.strip():
        return "empty"
    if text[0].isspace():
        return "plain"  # no format starts with a blank: an indented frame or continuation, cheaply
    inner = detect(text, now_us=now_us, default_tz=default_tz, custom=custom)
    if inner.format == "plain" or inner.format in CONTAINER_FORMATS:
        return "plain"
    fields.message = inner.message
    fields.level, fields.level_raw = inner.level, inner.level_raw
    fields.service = fields.service or inner.service
    fields.host = fields.host or inner.host
    fields.trace_id = fields.trace_id or inner.trace_id
    fields.span_id = fields.span_id or inner.span_id
    fields.attributes = {**inner.attributes, **fields.attributes}
    fields.flags.extend(inner.flags)
    if fields.ts_us is None and inner.ts_us is not None:
        fields.ts_us, fields.ts_raw = inner.ts_us, inner.ts_raw
    return inner.format
