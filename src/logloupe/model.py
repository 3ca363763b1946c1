"""Shared value types that flow through every stage."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any


class Level(IntEnum):
    """Normalised severities; the integer order makes ``level:>=WARN`` a plain comparison."""

    TRACE = 1
    DEBUG = 2
    INFO = 3
    WARN = 4
    ERROR = 5
    FATAL = 6


LEVEL_NAMES: tuple[str, ...] = tuple(level.name for level in Level)

# Flags an event may carry when its input was not clean; stored, never silently fixed.
FLAG_INVALID_UTF8 = "invalid_utf8"
FLAG_TRUNCATED = "truncated"
FLAG_NUL_BYTES = "nul_bytes"
FLAG_ATTRIBUTES_DROPPED = "attributes_dropped"
FLAG_NESTING_FLATTENED = "nesting_flattened"
FLAG_TIME_REPLACED = "time_replaced"


def to_micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


def event_uid(*parts: str | int) -> int:
    """64 stable bits naming an event within its microsecond.

    Built from content and source position, so re-ingesting the same input yields the same id.
    """
    # One update over the joined parts: the same digest as one update per part and separator, faster.
    text = "\x1f".join([str(part) for part in parts]) + "\x1f"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def event_uid_of(
    tenant: str, source: str, service: str, host: str, ts_us: int, message: str, position: str, index: int
) -> int:
    """``event_uid`` of exactly these parts (the pipeline's), with one f-string instead of a join: the same
    digest, about a third cheaper on the ingest hot path."""
    text = f"{tenant}\x1f{source}\x1f{service}\x1f{host}\x1f{ts_us}\x1f{message}\x1f{position}\x1f{index}\x1f"
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def format_event_id(ts_us: int, uid: int) -> str:
    """32 hex characters: the timestamp first, so ids sort by time."""
    return f"{ts_us & 0xFFFFFFFFFFFFFFFF:016x}{uid:016x}"


def parse_event_id(event_id: str) -> tuple[int, int]:
    """Inverse of ``format_event_id``; ValueError on anything else."""
    if len(event_id) != 32:
        raise ValueError("an event id has 32 hex characters")
    ts_us = int(event_id[:16], 16)
    if ts_us >= 1 << 63:
        ts_us -= 1 << 64
    return ts_us, int(event_id[16:], 16)


@dataclass(slots=True)
class LogEvent:
    """One log event as stored. ``ts``/``observed_ts`` are microseconds since the epoch, UTC."""

    tenant: str
    ts_us: int
    observed_ts_us: int
    uid: int
    message: str
    service: str = ""
    host: str = ""
    level: Level = Level.INFO
    level_raw: str = ""
    pattern_id: int = 0
    pattern_vars: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    source: str = ""
    trace_id: str = ""
    span_id: str = ""
    flags: list[str] = field(default_factory=list)
    # Room for analysis results without schema churn.
    classification: str = ""
    anomaly_score: float = 0.0

    @property
    def id(self) -> str:
        return format_event_id(self.ts_us, self.uid)

    @property
    def ts(self) -> datetime:
        return from_micros(self.ts_us)

    def to_api(self) -> dict[str, Any]:
        """The JSON shape every API and CLI output uses for an event."""
        from logloupe.parse.masking import value_type  # parse imports this module

        return {
            "id": self.id,
            "ts": iso_micros(self.ts_us),
            "observed_ts": iso_micros(self.observed_ts_us),
            "tenant": self.tenant,
            "service": self.service,
            "host": self.host,
            "level": self.level.name,
            "level_raw": self.level_raw,
            "message": self.message,
            "pattern_id": format_pattern_id(self.pattern_id),
            "pattern_vars": self.pattern_vars,
            # Typed as the miner types them (int, float, hex, ipv4, uuid, path, ... str): a function of
            # the value, so derived here rather than stored twice.
            "pattern_var_types": [value_type(v) for v in self.pattern_vars],
            "attributes": self.attributes,
            "source": self.source,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "flags": self.flags,
            "classification": self.classification,
            "anomaly_score": self.anomaly_score,
        }


def format_pattern_id(pattern_id: int) -> str:
    """Patterns are named by 16 hex characters in every external interface; 0 means none."""
    return f"{pattern_id:016x}" if pattern_id else ""


def parse_pattern_id(text: str) -> int:
    return int(text, 16) if text else 0


def iso_micros(ts_us: int) -> str:
    return from_micros(ts_us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something changed in a tenant's service; emitted by the online detectors.

    ``kind`` is one of ``new_pattern``, ``rate_spike``, ``rate_drop``, ``silence``,
    ``error_ratio``. ``score`` lies in [0, 1]; ``explanation`` says what changed and what drove it;
    ``pattern_ids`` and ``event_ids`` are the evidence (event ids as ``LogEvent.id``).
    """

    tenant: str
    service: str
    kind: str
    score: float
    ts_us: int
    explanation: str
    pattern_ids: tuple[int, ...] = ()
    event_ids: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "service": self.service,
            "kind": self.kind,
            "score": self.score,
            "ts": iso_micros(self.ts_us),
            "explanation": self.explanation,
            "pattern_ids": [format_pattern_id(p) for p in self.pattern_ids],
            "event_ids": list(self.event_ids),
        }
