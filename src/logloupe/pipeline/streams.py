"""Multiline assembly per stream across buffer entries: a stack trace whose lines arrive in several
requests, datagrams or reads becomes one event.

A *stream* is (tenant, source, service, host). ``StreamJoiner`` keeps one open record per stream.
A line joins the open record when it continues it (``parse/multiline.py`` rules, or "does not match
the source's ``multiline_start``") and arrived within ``timeout_us`` of the record's last line;
otherwise the open record is emitted and the line opens the next one.

Deterministic, so a replay yields the same events and ids: every decision reads only what is in
the write-ahead buffer — the entries' observed times, never the wall clock. When a record waits
past the timeout, the pipeline appends a small *flush marker* entry to the buffer
(``flush_entry``); reading that marker emits the expired records. The open records are saved in
the buffer's checkpoint with the position they are valid at (``export``/``from_state``), so a
restart continues them; an emitted record's id derives from the buffer position of its first line.

At the end of each entry only records that may still continue are held: one with continuation
lines already, inside a Python/Go trace, at WARN or above, ending with ``:`` or with a line that
looks like part of a trace (an exception header), or on a source with its own
``multiline_start``. Other records are emitted at once, so ordinary lines wait for nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from logloupe.model import Level, LogEvent
from logloupe.parse.line import parse_line
from logloupe.parse.multiline import append_capped, continues, glue_capped, next_mode, same_stream
from logloupe.parse.records import (
    Fields,
    Limits,
    add_flags,
    clean_text,
    line_fields,
    parsed_fields,
    record_fields,
)
from logloupe.parse.sources import DEFAULT_OPTIONS, SourceOptions, SourceRules, apply_source
from logloupe.pipeline.assemble import assemble

StreamKey = tuple[str, str, str, str]  # tenant, source, service, host
FLUSH_SOURCE = "multiline_flush"
MAX_LINES = 1000
MAX_CHARS = 262_144
MAX_OPEN = 10_000


class Origin(NamedTuple):
    """Where a record's first line came from: the entry's defaults and position (→ the event id)."""

    tenant: str
    source: str
    service: str
    host: str
    observed_us: int
    pos: int
    item: int  # the item's index in the entry
    key: str = ""  # the entry's input key (``model.input_key``); "" → the buffer position names it
    doc: str = ""  # the sender's own id of this item (an Elasticsearch ``_id``), if any


@dataclass(slots=True)
class _Open:
    head: Fields
    origin: Origin
    parts: list[str]
    chars: int
    mode: str
    updated_us: int
    start: re.Pattern[str] | None = None
    last_pos: int = -1  # the latest entry that added a line (acknowledgements of it wait too)
    glue: bool = False  # the last line was cut by a container runtime: the next one completes it


@dataclass
class StreamJoiner:
    timeout_us: int = 2_000_000
    max_message_bytes: int = 65536
    max_lines: int = MAX_LINES
    max_chars: int = MAX_CHARS
    max_open: int = MAX_OPEN
    evicted: int = 0  # open records emitted early because ``max_open`` streams were open
    _open: dict[StreamKey, _Open] = field(default_factory=dict)
    _touched: set[StreamKey] = field(default_factory=set)

    # -- feeding ---------------------------------------------------------------------------

    def feed(
        self,
        key: StreamKey,
        fields: Fields,
        origin: Origin,
        *,
        headless: bool,
        blank_drops: bool,
        start: re.Pattern[str] | None,
        raw: str | None = None,
        partial: bool = False,
    ) -> list[tuple[Fields, Origin]]:
        """Add one line (or record); returns the records it completed. ``start`` is tested on ``raw``
        (the line as sent) when given, else on the message. ``partial``: a container runtime cut
        this line; the next line of its stream (CRI/Docker ``stream``) is appended to it as written."""
        out: list[tuple[Fields, Origin]] = []
        now = origin.observed_us
        op = self._open.get(key)
        if op is not None and now - op.updated_us >= self.timeout_us:
            out.append(self._emit(key))
            op = None
        text = fields.message
        blank = not text or text.isspace()
        if op is not None:
            if op.glue and same_stream(op.head.attributes, fields.attributes):
                op.chars = glue_capped(op.parts, op.chars, text, op.head.flags, self.max_chars)
                op.glue = partial
                op.updated_us = max(op.updated_us, now)
                op.last_pos = max(op.last_pos, origin.pos)
                self._touched.add(key)
                return out
            if op.start is not None:
                joins = op.start.search(text if raw is None else raw) is None
            else:
                joins = (
                    headless and same_stream(op.head.attributes, fields.attributes) and continues(text, op.mode, blank)
                )
            if joins:
                op.chars = append_capped(op.parts, op.chars, text, op.head.flags, self.max_lines, self.max_chars)
                op.updated_us = max(op.updated_us, now)
                op.last_pos = max(op.last_pos, origin.pos)
                op.mode = next_mode(text, op.mode)
                op.glue = partial
                self._touched.add(key)
                return out
        if blank and blank_drops:
            return out  # a blank line outside a trace carries nothing
        if op is not None:
            out.append(self._emit(key))
        elif len(self._open) >= self.max_open:
            oldest = next(iter(self._open))
            out.append(self._emit(oldest))
            self.evicted += 1
        self._open[key] = _Open(fields, origin, [text], len(text), next_mode(text, ""), now, start, origin.pos, partial)
        self._touched.add(key)
        return out

    def end_entry(self) -> list[tuple[Fields, Origin]]:
        """After an entry: emit the records it touched that cannot continue; hold the others."""
        out = [self._emit(k) for k in sorted(self._touched) if k in self._open and not self._holds(self._open[k])]
        self._touched.clear()
        return out

    def flush_expired(self, observed_us: int) -> list[tuple[Fields, Origin]]:
        """Emit every record whose last line is ``timeout_us`` older than ``observed_us``."""
        expired = [k for k, op in self._open.items() if observed_us - op.updated_us >= self.timeout_us]
        return [self._emit(k) for k in expired]

    def _holds(self, op: _Open) -> bool:
        return (
            op.start is not None
            or op.glue
            or len(op.parts) > 1
            or bool(op.mode)
            or op.head.level >= Level.WARN
            or op.parts[-1].rstrip().endswith(":")
            or continues(op.parts[-1], "", False)  # e.g. a bare "java.lang.IllegalStateException: boom"
        )

    def _emit(self, key: StreamKey) -> tuple[Fields, Origin]:
        op = self._open.pop(key)
        parts = op.parts
        while len(parts) > 1 and not parts[-1].strip():
            parts.pop()
        head = op.head
        if len(parts) > 1 or parts[0] != head.message:  # joined lines, or a cut line completed
            flags = list(head.flags)
            message = clean_text("\n".join(parts), self.max_message_bytes, flags)
            head = Fields(**{**_shallow(head), "message": message, "flags": flags})
            attributes = {k: v for k, v in head.attributes.items() if k != "partial" or op.glue}
            head.attributes = {**attributes, "lines": str(len(parts))} if len(parts) > 1 else attributes
        return head, op.origin

    # -- what the pipeline asks ---------------------------------------------------------------

    @property
    def open_count(self) -> int:
        return len(self._open)

    def next_expiry_us(self) -> int | None:
        """The observed time at which the oldest open record expires; None when none is open."""
        if not self._open:
            return None
        return min(op.updated_us for op in self._open.values()) + self.timeout_us

    def held_from(self) -> int | None:
        """The lowest buffer position a held record's lines come from (acks wait for it)."""
        if not self._open:
            return None
        return min(op.origin.pos for op in self._open.values())

    def held(self) -> tuple[tuple[int, int], ...]:
        """(first, last) buffer positions of the entries each held record has lines from."""
        return tuple(sorted({(op.origin.pos, op.last_pos) for op in self._open.values()}))

    # -- state saved with the buffer's checkpoint -----------------------------------------------

    def export(self) -> list[dict[str, Any]]:
        return [
            {
                "key": list(k),
                # copies: the snapshot is written later, from another thread, while feeding goes on
                "head": {
                    **_shallow(op.head),
                    "level": int(op.head.level),
                    "attributes": dict(op.head.attributes),
                    "flags": list(op.head.flags),
                },
                "origin": op.origin._asdict(),
                "parts": list(op.parts),
                "chars": op.chars,
                "mode": op.mode,
                "updated_us": op.updated_us,
                "start": op.start.pattern if op.start is not None else None,
                "last_pos": op.last_pos,
                "glue": op.glue,
            }
            for k, op in self._open.items()
        ]

    def restore(self, state: Sequence[dict[str, Any]] | None) -> None:
        self._open.clear()
        self._touched.clear()
        for d in state or ():
            head = dict(d["head"])
            head["level"] = Level(int(head["level"]))
            key = (str(d["key"][0]), str(d["key"][1]), str(d["key"][2]), str(d["key"][3]))
            self._open[key] = _Open(
                Fields(**head),
                Origin(**d["origin"]),
                list(d["parts"]),
                int(d["chars"]),
                str(d["mode"]),
                int(d["updated_us"]),
                re.compile(d["start"]) if d.get("start") else None,
                int(d.get("last_pos", d["origin"]["pos"])),
                bool(d.get("glue", False)),
            )


def _shallow(f: Fields) -> dict[str, Any]:
    return {name: getattr(f, name) for name in f.__dataclass_fields__}


# -- decoding one buffer entry with the joiner -----------------------------------------------------


def flush_entry(observed_us: int) -> bytes:
    """A flush marker: reading it emits the records that expired by ``observed_us``."""
    return orjson.dumps({"tenant": "", "source": FLUSH_SOURCE, "flush": True, "observed_us": observed_us})


def entry_joins(header: dict[str, Any], body: bytes, rules: SourceRules | None) -> bool:
    """Whether an entry goes through the joiner: raw text lines, syslog messages, a flush marker, or a
    tenant whose rules join records."""
    if header.get("flush"):
        return True
    if body.startswith(b"L") or b"\nL" in body:
        return True
    source = str(header.get("source", ""))
    if source.startswith("syslog"):
        return True
    return bool(rules) and rules is not None and rules.tenant_wants_records_joined(str(header.get("tenant", "")))


def payload_joins(payload: bytes, rules: SourceRules | None) -> bool:
    head, _, body = payload.partition(b"\n")
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError:
        return False
    return isinstance(header, dict) and entry_joins(header, body, rules)


def _joins_records(options: SourceOptions, source: str) -> bool:
    if options.multiline == "off":
        return False
    if options.multiline == "on" or options.multiline_start is not None:
        return True
    return source.startswith("syslog")  # syslog messages are lines: joined by default


def join_entry(
    pos: int,
    header: dict[str, Any],
    body: bytes,
    limits: Limits,
    now_us: int,
    rules: SourceRules | None,
    joiner: StreamJoiner,
) -> list[LogEvent]:
    """One entry's items through the joiner; returns the events completed (maybe from earlier entries)."""
    observed = int(header.get("observed_us") or now_us)
    done: list[tuple[Fields, Origin]] = []
    if header.get("flush"):
        done.extend(joiner.flush_expired(observed))
        return _events(done)
    tenant = str(header["tenant"])
    source = str(header.get("source", ""))
    service = str(header.get("service", ""))
    host = str(header.get("host", ""))
    entry_options = rules.options_for(tenant, source, service) if rules else DEFAULT_OPTIONS
    text_key = (tenant, source, service, host)  # raw lines: the stream the entry names
    entry_key = str(header.get("key") or "")
    docs: dict[str, Any] = header.get("ids") or {}
    flagged: dict[str, list[str]] = header.get("flags") or {}
    for index, part in enumerate(body.split(b"\n") if body else ()):
        tag, data = part[:1], part[1:]
        origin = Origin(tenant, source, service, host, observed, pos, index, entry_key, str(docs.get(str(index), "")))
        if tag == b"J":
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                done.append((line_fields(data, limits), origin))
                continue
            record = value if isinstance(value, dict) else {"message": value}
            f = record_fields(record, limits)
            if flagged and str(index) in flagged:  # by record index, as decode._payload_fields
                add_flags(f, flagged[str(index)])
            src = f.source or source
            options = rules.options_for(tenant, src, f.service or service) if rules else DEFAULT_OPTIONS
            apply_source(record, f, options, observed, src)
            if not _joins_records(options, src):
                done.append((f, origin))
                continue
            key = (tenant, src, f.service or service, f.host or host)
            done.extend(joiner.feed(key, f, origin, headless=True, blank_drops=False, start=options.multiline_start))
        else:
            options = entry_options
            parsed = parse_line(
                data, now_us=observed, default_tz=options.timezone, custom=options.patterns, hint=options.format
            )
            f = parsed_fields(parsed, limits)
            if options.multiline == "off":
                if parsed.format != "empty":
                    done.append((f, origin))
                continue
            done.extend(
                joiner.feed(
                    text_key,
                    f,
                    origin,
                    headless=parsed.headerless,
                    blank_drops=True,
                    start=options.multiline_start,
                    raw=None if options.multiline_start is None else data.decode("utf-8", "replace"),
                    partial=parsed.partial,
                )
            )
    done.extend(joiner.end_entry())
    return _events(done)


def _events(done: list[tuple[Fields, Origin]]) -> list[LogEvent]:
    """Assemble in runs of consecutive items of one entry (one call per run, not per event)."""
    events: list[LogEvent] = []
    run: list[Fields] = []
    docs: dict[int, str] = {}
    first: Origin | None = None
    last = -1
    for f, o in done:
        # one entry's origins differ only in the item (the entry's defaults are the same)
        if first is not None and (o.item != last + 1 or o.pos != first.pos):
            events.extend(_assemble(run, first, docs))
            run, first, docs = [], None, {}
        if first is None:
            first = o
        run.append(f)
        if o.doc:
            docs[o.item] = o.doc
        last = o.item
    if first is not None:
        events.extend(_assemble(run, first, docs))
    return events


def _assemble(run: list[Fields], o: Origin, docs: dict[int, str]) -> list[LogEvent]:
    return assemble(
        run,
        tenant=o.tenant,
        now_us=o.observed_us,
        source=o.source,
        service=o.service,
        host=o.host,
        position=o.key or f"wal:{o.pos}",
        first_index=o.item,
        doc_ids=docs or None,
    )
