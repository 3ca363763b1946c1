"""Shared value types that flow through every stage."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from functools import partial
from typing import Any, Generic, TypeVar, overload


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


# An input's events get uids that share their high bits and count up in their low bits:
# ``digest(tenant, input key, service, block) << INDEX_BITS | ordinal``, where the ordinal counts the
# input's events of that service. Rows of one service sorted by time then carry runs of consecutive
# uids, which Delta + ZSTD packs to a small fraction of a byte (random uids: 8 bytes). 24 bits number
# 16.7M events of a service per block; a larger input moves on to the next block (a new digest).
#
# Collision odds: events are told apart by (tenant, ts, uid), and one input never repeats a uid (the
# service is in the digest, the ordinal counts within it). Two different inputs give the same uid to
# two events only if their 40-bit digests are equal (odds 2^-40 per pair of inputs and service) and
# the ordinals too, and that only matters when the two events also share the tenant and the
# microsecond: even a million such pairs collide with odds of 1 in a million. A collision would make
# the store keep one of the two events (the second looks like a re-send).
INDEX_BITS = 24
INDEX_MASK = (1 << INDEX_BITS) - 1


def input_uid_base(tenant: str, key: str, service: str = "", block: int = 0) -> int:
    """The high 40 bits of the uids of ``key``'s events of ``service``, ordinals ``block << INDEX_BITS``
    onwards (the low bits zero)."""
    text = f"{tenant}\x1f{key}\x1f{service}\x1f{block}"
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=5).digest()
    return int.from_bytes(digest, "big") << INDEX_BITS


def input_uid(tenant: str, key: str, ordinal: int, service: str = "") -> int:
    """The uid of the ``ordinal``-th event of ``service`` in the input named ``key`` (a request body's
    digest, a file chunk): the same input gives the same uids, so a re-send is recognised at insert
    (``store/events.py``)."""
    return input_uid_base(tenant, key, service, ordinal >> INDEX_BITS) | (ordinal & INDEX_MASK)


def input_key(kind: str, *parts: bytes | str) -> str:
    """A key naming an input by its content: ``kind`` and a 128-bit digest of ``parts`` (the request
    body's items, its source and defaults; a file chunk and its place in the file)."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part)
        digest.update(b"\x1f")
    return f"{kind}:{digest.hexdigest()}"


def doc_uid(tenant: str, service: str, doc_id: str) -> int:
    """The uid of a document its sender names (an Elasticsearch ``_id``): the same id, the same event,
    whichever request carries it. 64 hashed bits (no runs to pack)."""
    return event_uid(tenant, "doc", service, doc_id)


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

    def to_api(self, fields: Collection[str] | None = None) -> dict[str, Any]:
        """The JSON shape every API and CLI output uses for an event; with ``fields``, only those
        (a search page read only their columns: the others hold defaults)."""
        from logloupe.parse.masking import value_type  # parse imports this module

        shown = {
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
        if fields is None or all(name in fields for name in shown):
            return shown
        return {name: value for name, value in shown.items() if name in fields}


_LEVEL_OF = {int(level): level for level in Level}

# ``EventColumns``' columns that may come unloaded (``EventColumns.with_cold``): the ones the event
# stage and the usual after-store hooks do not read for every batch.
COLD_COLUMNS = ("host", "level_raw", "attributes", "source", "span_id", "flags")


_T = TypeVar("_T")


class _ColdColumn(Generic[_T]):
    """An ``EventColumns`` list of ``COLD_COLUMNS``, kept in the slot ``_<name>``: reading it loads
    the batch's cold columns first when they are still a function (``EventColumns.with_cold``)."""

    __slots__ = ("slot",)

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    @overload
    def __get__(self, columns: None, owner: type) -> _ColdColumn[_T]: ...
    @overload
    def __get__(self, columns: EventColumns, owner: type) -> list[_T]: ...
    def __get__(self, columns: EventColumns | None, owner: type) -> _ColdColumn[_T] | list[_T]:
        if columns is None:
            return self
        if columns._cold is not None:
            columns._load_cold()
        values: list[_T] = getattr(columns, self.slot)
        return values


class EventColumns(Sequence[LogEvent]):
    """A batch of events as one list per ``LogEvent`` field, in field order (``level`` as its int).

    The ingest pipeline's form for events decoded in its decoder processes: the event stage fills
    in the analysis lists (``pattern_id``, ``pattern_vars``, ``classification``, ``anomaly_score``)
    and the after-store hooks that read a few fields of every event read the lists, so no
    ``LogEvent`` is built per event. To everything else it is a read-only sequence of ``LogEvent``:
    iterating builds the events once (kept for the next hook); an index builds that one event.

    The columns in ``COLD_COLUMNS`` may be given as a function that returns them (``with_cold``):
    they are loaded at their first read, so a batch whose readers never ask for its attributes or
    flags never builds them (the decoder processes ship them as a blob of their own).
    """

    __slots__ = (
        "_attributes",
        "_cold",
        "_events",
        "_flags",
        "_host",
        "_level_raw",
        "_source",
        "_span_id",
        "anomaly_score",
        "classification",
        "level",
        "message",
        "observed_ts_us",
        "pattern_id",
        "pattern_vars",
        "service",
        "tenant",
        "trace_id",
        "ts_us",
        "uid",
    )

    def __init__(
        self,
        tenant: list[str],
        ts_us: list[int],
        observed_ts_us: list[int],
        uid: list[int],
        message: list[str],
        service: list[str],
        host: list[str],
        level: list[int],
        level_raw: list[str],
        pattern_id: list[int],
        pattern_vars: list[list[str]],
        attributes: list[dict[str, str]],
        source: list[str],
        trace_id: list[str],
        span_id: list[str],
        flags: list[list[str]],
        classification: list[str],
        anomaly_score: list[float],
    ) -> None:
        self.tenant = tenant
        self.ts_us = ts_us
        self.observed_ts_us = observed_ts_us
        self.uid = uid
        self.message = message
        self.service = service
        self._host = host
        self.level = level
        self._level_raw = level_raw
        self.pattern_id = pattern_id
        self.pattern_vars = pattern_vars
        self._attributes = attributes
        self._source = source
        self.trace_id = trace_id
        self._span_id = span_id
        self._flags = flags
        self.classification = classification
        self.anomaly_score = anomaly_score
        self._events: list[LogEvent] | None = None
        self._cold: Callable[[], list[list[Any]]] | None = None

    @classmethod
    def with_cold(
        cls,
        tenant: list[str],
        ts_us: list[int],
        observed_ts_us: list[int],
        uid: list[int],
        message: list[str],
        service: list[str],
        level: list[int],
        trace_id: list[str],
        pattern_id: list[int],
        pattern_vars: list[list[str]],
        classification: list[str],
        anomaly_score: list[float],
        *,
        cold: Callable[[], list[list[Any]]],
    ) -> EventColumns:
        """Columns whose ``COLD_COLUMNS`` ``cold()`` returns (in that order) when first read."""
        columns = cls(
            tenant, ts_us, observed_ts_us, uid, message, service, [], level, [], pattern_id, pattern_vars,
            [], [], trace_id, [], [], classification, anomaly_score,
        )  # fmt: skip
        columns._cold = cold
        return columns

    def _load_cold(self) -> None:
        # Cleared only once every list is in place: a thread that finds it cleared reads them all;
        # two threads that read at once both load (the same lists), neither sees a missing one.
        cold = self._cold
        if cold is not None:
            self._host, self._level_raw, self._attributes, self._source, self._span_id, self._flags = cold()
            self._cold = None

    host: _ColdColumn[str] = _ColdColumn()
    level_raw: _ColdColumn[str] = _ColdColumn()
    attributes: _ColdColumn[dict[str, str]] = _ColdColumn()
    source: _ColdColumn[str] = _ColdColumn()
    span_id: _ColdColumn[str] = _ColdColumn()
    flags: _ColdColumn[list[str]] = _ColdColumn()

    @classmethod
    def of(cls, events: Sequence[LogEvent]) -> EventColumns:
        """The same events as column lists (the lists' items are the events' own values)."""
        return cls(
            [e.tenant for e in events],
            [e.ts_us for e in events],
            [e.observed_ts_us for e in events],
            [e.uid for e in events],
            [e.message for e in events],
            [e.service for e in events],
            [e.host for e in events],
            [int(e.level) for e in events],
            [e.level_raw for e in events],
            [e.pattern_id for e in events],
            [e.pattern_vars for e in events],
            [e.attributes for e in events],
            [e.source for e in events],
            [e.trace_id for e in events],
            [e.span_id for e in events],
            [e.flags for e in events],
            [e.classification for e in events],
            [e.anomaly_score for e in events],
        )

    def __len__(self) -> int:
        return len(self.tenant)

    def subset(self, indexes: Sequence[int]) -> EventColumns:
        """The events at ``indexes`` as column lists of their own (this batch itself when that is all of it)."""
        if len(indexes) == len(self.tenant):
            return self
        if self._cold is None:
            return EventColumns(*([column[i] for i in indexes] for column in self._columns()))
        # the cold columns stay unloaded here too: picked from this batch's when first read
        hot: tuple[list[Any], ...] = (
            self.tenant, self.ts_us, self.observed_ts_us, self.uid, self.message, self.service, self.level,
            self.trace_id, self.pattern_id, self.pattern_vars, self.classification, self.anomaly_score,
        )  # fmt: skip
        return EventColumns.with_cold(
            *([column[i] for i in indexes] for column in hot), cold=partial(_cold_subset, self, list(indexes))
        )

    def take(self, indexes: Sequence[int]) -> list[LogEvent]:
        """The events at ``indexes`` (built in one C-level ``map``, not one call each)."""
        if self._events is not None:
            return [self._events[i] for i in indexes]
        return self._build([[column[i] for i in indexes] for column in self._columns()])

    def _columns(self) -> list[list[Any]]:
        """The lists in ``LogEvent``'s field order (``level`` still as ints)."""
        return [
            self.tenant,
            self.ts_us,
            self.observed_ts_us,
            self.uid,
            self.message,
            self.service,
            self.host,
            self.level,
            self.level_raw,
            self.pattern_id,
            self.pattern_vars,
            self.attributes,
            self.source,
            self.trace_id,
            self.span_id,
            self.flags,
            self.classification,
            self.anomaly_score,
        ]

    @staticmethod
    def _build(columns: list[list[Any]]) -> list[LogEvent]:
        columns[7] = list(map(_LEVEL_OF.__getitem__, columns[7]))
        return list(map(LogEvent, *columns))

    def events(self) -> list[LogEvent]:
        """Every event as a ``LogEvent`` (built on the first call, in one C-level ``map``)."""
        if self._events is None:
            self._events = self._build(self._columns())
        return self._events

    def __iter__(self) -> Iterator[LogEvent]:
        return iter(self.events())

    @overload
    def __getitem__(self, index: int) -> LogEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[LogEvent]: ...

    def __getitem__(self, index: int | slice) -> LogEvent | list[LogEvent]:
        if self._events is not None or isinstance(index, slice):
            return self.events()[index]
        if index < 0:
            index += len(self.tenant)
        return LogEvent(
            self.tenant[index],
            self.ts_us[index],
            self.observed_ts_us[index],
            self.uid[index],
            self.message[index],
            self.service[index],
            self.host[index],
            _LEVEL_OF[self.level[index]],
            self.level_raw[index],
            self.pattern_id[index],
            self.pattern_vars[index],
            self.attributes[index],
            self.source[index],
            self.trace_id[index],
            self.span_id[index],
            self.flags[index],
            self.classification[index],
            self.anomaly_score[index],
        )

    def event_id(self, index: int) -> str:
        """``LogEvent.id`` of event ``index``, without building the event."""
        return format_event_id(self.ts_us[index], self.uid[index])


def _cold_subset(columns: EventColumns, indexes: list[int]) -> list[list[Any]]:
    """``COLD_COLUMNS`` of ``columns`` at ``indexes`` (``EventColumns.subset``'s, loaded when read)."""
    cold = (columns.host, columns.level_raw, columns.attributes, columns.source, columns.span_id, columns.flags)
    return [[column[i] for i in indexes] for column in cold]


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
