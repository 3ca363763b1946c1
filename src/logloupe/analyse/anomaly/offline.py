"""Anomalies in one log file, for ``logloupe analyze``: the online detector driven by the file.

The file is read once, in order; each event ``Analysis`` counted (``analyse/reading.py``: parsed
as ingest parses it, stack traces joined) is passed here with its first line number, time, level,
service and pattern id (``add_record``); ``add`` parses a raw line itself. Choices for an offline file (see docs/ai.md):

- **The clock is the file's.** Lines with a parsed timestamp feed an ``OnlineDetector`` with
  that timestamp, and the detector is ticked whenever the file's latest timestamp enters a new
  bucket, so buckets, baselines and silences follow the file's own time, never the wall clock.
- **No warm-up by time.** A file is often shorter than the live detector's one-hour warm-up, so
  new patterns are reported once a service has ``warmup_events`` (200) lines, whatever time
  they span. Rates still need ``min_history`` (30) buckets of history before they alert.
- **Lines without a timestamp** feed a second detector whose clock never moves: only
  ``new_pattern`` can fire there (rates, ratios and silence need time).
- **The end of the file** closes the last bucket, so a burst in the final minute is seen; a
  ``rate_drop`` or ``silence`` from that last, partial bucket is dropped (the file ended, the
  service did not go quiet).
- **Bounded.** The detector's memory is per service and pattern; at most ``max_kept``
  anomalies are kept, the highest scores (ties: the earliest), plus a count of all found.

Event ids are ``L<line number>``, turned back into line numbers for the report.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logloupe.analyse.anomaly.online import OnlineDetector, OnlineSettings
from logloupe.model import Anomaly, Level, format_pattern_id, from_micros
from logloupe.parse.formats import PARSERS, detect, level_of

if TYPE_CHECKING:
    from logloupe.analyse.reading import FileRecord

DEFAULT_SERVICE = "default"
_LEVELS = {
    "trace": Level.TRACE,
    "debug": Level.DEBUG,
    "info": Level.INFO,
    "warn": Level.WARN,
    "error": Level.ERROR,
    "fatal": Level.FATAL,
}
_UNTIMED_CLOCK = 0


@dataclass(frozen=True, slots=True)
class FileAnomaly:
    anomaly: Anomaly
    timed: bool
    lines: tuple[int, ...]
    # The line being read when the detector reported it (where it sits in the file).
    at_line: int

    def to_dict(self) -> dict[str, Any]:
        a = self.anomaly
        return {
            "kind": a.kind,
            "service": a.service,
            "score": round(a.score, 4),
            "ts": from_micros(a.ts_us).strftime("%Y-%m-%dT%H:%M:%SZ") if self.timed else None,
            "explanation": a.explanation,
            "pattern_ids": [format_pattern_id(p) for p in a.pattern_ids if p],
            "lines": list(self.lines),
            "at_line": self.at_line,
        }


def _lines_of(event_ids: tuple[str, ...]) -> tuple[int, ...]:
    out = []
    for event_id in event_ids:
        if event_id.startswith("L") and event_id[1:].isdigit():
            out.append(int(event_id[1:]))
    return tuple(sorted(out))


class FileAnomalies:
    """Feeds a file's lines to the online detectors and keeps the top anomalies."""

    def __init__(
        self,
        tenant: str = "default",
        threshold: float = 0.7,
        max_kept: int = 100,
        warmup_events: int = 200,
        bucket_s: int = 60,
        max_gap_buckets: int = 60,
        default_tz: str = "UTC",
    ) -> None:
        settings = OnlineSettings(
            threshold=threshold,
            bucket_s=bucket_s,
            warmup_events=warmup_events,
            warmup_s=0,
            max_gap_buckets=max_gap_buckets,
        )
        self.tenant = tenant
        self.timed = OnlineDetector(settings)
        self.untimed = OnlineDetector(settings)
        self.max_kept = max_kept
        self.found = 0
        self.timed_lines = 0
        self.untimed_lines = 0
        self._bucket_us = bucket_s * 1_000_000
        self._default_tz = default_tz
        self._hint: str | None = None
        self._latest_us: int | None = None
        self._seq = 0
        self._line = 0
        # Min-heap of (score, -seq, anomaly): the lowest score (then the latest found) leaves first.
        self._kept: list[tuple[float, int, FileAnomaly]] = []

    def add(self, line_no: int, line: str, pattern_id: int, level_name: str) -> None:
        """One raw line: its fields are parsed here (``add_record`` takes them already parsed)."""
        fields = detect(line, default_tz=self._default_tz, hint=self._hint)
        if fields.format in PARSERS:
            self._hint = fields.format
        parsed = level_of(fields)
        level = int(parsed) if parsed is not None else int(_LEVELS.get(level_name, Level.INFO))
        self.observe(line_no, fields.service, fields.ts_us, level, pattern_id)

    def add_record(self, record: FileRecord, pattern_id: int, level_name: str) -> None:
        """One record as ``analyse/reading.py`` read it (parsed like ingest, traces joined)."""
        self.observe(record.line, record.service, record.ts_us, int(record.level), pattern_id)

    def observe(self, line_no: int, service: str, ts_us: int | None, level: int, pattern_id: int) -> None:
        service = service or DEFAULT_SERVICE
        event_id = f"L{line_no}"
        self._line = line_no
        if ts_us is None:
            self.untimed_lines += 1
            got = self.untimed.observe(self.tenant, service, _UNTIMED_CLOCK, level, pattern_id, event_id)
            self._keep(got, timed=False)
            return
        self.timed_lines += 1
        ts = ts_us
        if self._latest_us is None or ts > self._latest_us:
            if self._latest_us is not None and ts // self._bucket_us > self._latest_us // self._bucket_us:
                # The file's clock entered a new bucket: close the ended ones of every service.
                self._keep(self.timed.tick(ts - ts % self._bucket_us), timed=True)
            self._latest_us = ts
        self._keep(self.timed.observe(self.tenant, service, ts, level, pattern_id, event_id), timed=True)

    def finish(self) -> list[FileAnomaly]:
        """Closes the last bucket; the kept anomalies, in file order."""
        if self._latest_us is not None:
            end = self._latest_us - self._latest_us % self._bucket_us + self._bucket_us
            last = [a for a in self.timed.tick(end) if a.kind not in ("rate_drop", "silence")]
            self._keep(last, timed=True)
        kept = [item for _, _, item in self._kept]
        kept.sort(key=lambda f: (f.at_line, f.lines[0] if f.lines else 0, -f.anomaly.score))
        return kept

    def _keep(self, anomalies: list[Anomaly], timed: bool) -> None:
        for anomaly in anomalies:
            self.found += 1
            self._seq += 1
            entry = (anomaly.score, -self._seq, FileAnomaly(anomaly, timed, _lines_of(anomaly.event_ids), self._line))
            if len(self._kept) < self.max_kept:
                heapq.heappush(self._kept, entry)
            elif entry[:2] > self._kept[0][:2]:
                heapq.heapreplace(self._kept, entry)
