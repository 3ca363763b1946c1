"""A file's lines read the way ingest reads an uploaded file, for ``logloupe analyze``.

The same calls as the server's path for a text upload (``ingest/upload.py`` → the buffer →
``pipeline/streams.py: join_entry`` → ``pipeline/assemble.py``), run in-process with line
numbers kept:

- blank lines are skipped (the upload does not buffer them);
- a line holding a JSON object is a record (``parse/records.py: record_fields`` and the source's
  options, ``parse/sources.py: apply_source``), events as sent;
- any other line goes through ``parse/line.py: parse_line`` (format and header detection, level,
  timestamp and its sanity window) and the pipeline's ``StreamJoiner`` (one stream per file), so a
  stack trace's continuation lines join the line that started it;
- each completed record goes through ``assemble_rows``: service, host, level and the impossible-time
  rule are exactly the server's. A file's stream service is the upload's (``upload_service``: the
  file's name without its extension, unless one is given); a service read out of a line is then
  ingest's ``logger`` attribute, not the service.

Records come out in the order they complete, each with the line numbers it spans.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson

from logloupe.model import FLAG_TIME_REPLACED, Level
from logloupe.parse.line import parse_line
from logloupe.parse.records import Fields, Limits, parsed_fields, record_fields
from logloupe.parse.sources import DEFAULT_OPTIONS, SourceOptions, apply_source
from logloupe.pipeline.assemble import assemble_rows
from logloupe.pipeline.streams import Origin, StreamJoiner

MAX_TEXT_CHARS = 4000  # of a record's original lines kept for exemplars


@dataclass(slots=True)
class FileRecord:
    """One event as ingest would store it, with where it sits in the file."""

    line: int  # the first line of the record
    last_line: int  # its last line (a joined stack trace spans several)
    text: str  # the record's lines as written (header included), cut at MAX_TEXT_CHARS
    message: str
    service: str
    level: Level
    level_found: bool  # whether the line named a level (else ingest's default, INFO)
    ts_us: int | None  # the event time parsed from the record; None when it had none (or impossible)


def upload_service(filename: str) -> str:
    """The service ``POST /api/v1/upload`` gives a file's lines when none is named: its name
    without ``.gz`` and the last extension (``serve/api/upload.py``)."""
    stem = filename[:-3] if filename.endswith(".gz") else filename
    return stem.rsplit(".", 1)[0] or "upload"


class RecordReader:
    """``(line_number, line)`` pairs → ``FileRecord``s, with the pipeline's parsing and joining."""

    def __init__(
        self,
        *,
        tenant: str,
        now_us: int,
        source: str = "upload:file",
        service: str = "",
        options: SourceOptions = DEFAULT_OPTIONS,
        limits: Limits | None = None,
    ) -> None:
        self.tenant = tenant
        self.now_us = now_us
        self.source = source
        self.service = service
        self.options = options
        self.limits = limits or Limits()
        self.joiner = StreamJoiner(max_message_bytes=self.limits.max_message_bytes)
        self._key = (tenant, source, service, "")
        # The open record's original lines (bounded) and last line number.
        self._pending: list[str] = []
        self._pending_chars = 0
        self._last_line = 0
        self.lines = 0  # non-blank lines read

    def read(self, lines: Iterable[tuple[int, str]]) -> Iterator[FileRecord]:
        for number, line in lines:
            yield from self.add(number, line)
        yield from self.finish()

    def add(self, number: int, line: str) -> list[FileRecord]:
        if not line.strip():
            return []
        self.lines += 1
        if line[:1] == "{":
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                return [self._record_line(number, line, value)]
        options = self.options
        parsed = parse_line(
            line, now_us=self.now_us, default_tz=options.timezone, custom=options.patterns, hint=options.format
        )
        if parsed.format == "empty":
            return []  # nothing left once NULs and colour codes are gone (an upload quarantines these)
        fields = parsed_fields(parsed, self.limits)
        origin = Origin(self.tenant, self.source, self.service, "", self.now_us, 0, number)
        if options.multiline == "off":
            self._pending, self._pending_chars, self._last_line = [line], len(line), number
            return [self._record(fields, number)]
        headless = parsed.ts_us is None and parsed.format in ("plain", "empty")
        done = self.joiner.feed(
            self._key,
            fields,
            origin,
            headless=headless,
            blank_drops=True,
            start=options.multiline_start,
            raw=None if options.multiline_start is None else line,
        )
        out = [self._record(f, o.item) for f, o in done]  # the open record, ended by this line
        if out or not self._pending:
            self._pending, self._pending_chars = [], 0
        if self._pending_chars < MAX_TEXT_CHARS:
            self._pending.append(line)
            self._pending_chars += len(line) + 1
        self._last_line = number
        return out

    def finish(self) -> list[FileRecord]:
        """The record still open at the end of the input."""
        done = self.joiner.flush_expired(self.now_us + self.joiner.timeout_us)
        return [self._record(f, o.item) for f, o in done]

    def _record_line(self, number: int, line: str, value: dict[str, object]) -> FileRecord:
        fields = record_fields(value, self.limits)
        src = fields.source or self.source
        apply_source(value, fields, self.options, self.now_us, src)
        return self._event(fields, number, number, line[:MAX_TEXT_CHARS])

    def _record(self, fields: Fields, first: int) -> FileRecord:
        text = "\n".join(self._pending)[:MAX_TEXT_CHARS]
        return self._event(fields, first, max(first, self._last_line), text)

    def _event(self, fields: Fields, first: int, last: int, text: str) -> FileRecord:
        timed = fields.ts_us is not None
        (row,) = assemble_rows(
            [fields],
            tenant=self.tenant,
            now_us=self.now_us,
            source=self.source,
            service=self.service,
            position="analyze",
            first_index=first,
        )
        _, ts_us, _, _, message, service, _, level, level_raw, _, _, _, _, flags = row
        if FLAG_TIME_REPLACED in flags:
            timed = False
        return FileRecord(first, last, text, message, service, level, bool(level_raw), ts_us if timed else None)
