"""The event engine: embedded ClickHouse (chDB) behind a narrow seam.

chDB runs one embedded server per process, so one ``EventStore`` owns the data directory
(guarded by an exclusive file lock) and serialises access: streaming inserts and queries
cannot overlap on its connection. Writes arrive in large batches from one writer
(``pipeline/writer.py``); single-row inserts would be ~1000× slower.

Only this module and ``store/schema.py`` speak to chDB, so a ClickHouse server can stand in
later by reimplementing ``EventStore``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, chain
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from logloupe.errors import BadRequest, LogLoupeError, Unavailable
from logloupe.model import INDEX_BITS, Level, LogEvent
from logloupe.store.schema import migrate

log = logging.getLogger(__name__)

# The columns read back into a LogEvent (``stored_row_to_event``), in order; ts as integer
# microseconds. The stored columns as they are: ``observed_ts`` and ``level_raw`` are put together in
# Python from the lag and the stored text, fewer expressions for the engine to plan than the
# addition and the table's alias (5M benchmark events, 40 interleaved rounds: ``EXPLAIN`` of the
# two-token page 14.0 -> 11.5 ms p50, the needle's statement 19.0 -> 17.4 ms; docs/storage.md).
# ``tenant`` is read as the column: the tenant parameter aliased ``tenant`` would shadow the column in
# WHERE (the engine resolves SELECT aliases there) and every tenant's rows would match.
_STORED_COLUMNS: tuple[tuple[str, str], ...] = (  # (name in the row, expression)
    ("tenant", "tenant"),
    ("ts_us", "toUnixTimestamp64Micro(ts) AS ts_us"),
    ("observed_lag_us", "observed_lag_us"),
    ("uid", "uid"),
    ("service", "service"),
    ("host", "host"),
    ("level_n", "toInt8(level) AS level_n"),
    ("level_raw_text", "level_raw_text"),
    ("message", "message"),
    ("pattern_id", "pattern_id"),
    ("pattern_vars", "pattern_variables AS pattern_vars"),  # spans of the message or text (schema.py)
    ("attributes", "attributes"),
    ("source", "source"),
    ("trace_id", "trace_id"),
    ("span_id", "span_id"),
    ("flags", "flags"),
    ("classification", "classification"),
    ("anomaly_score", "anomaly_score"),
)
# The same for a JSON result (``EventStore.rows_with_total``). JSON prints a Float32 in its shortest
# form (0.1) where Arrow hands over the double it widens to (0.10000000149011612), and -0 and nan
# not as floats: the score comes as the text of that double, which ``float`` reads back exactly.
_JSON_COLUMNS = tuple(
    (name, "toString(toFloat64(anomaly_score)) AS anomaly_score" if name == "anomaly_score" else expr)
    for name, expr in _STORED_COLUMNS
)
EVENT_SELECT_STORED = ", ".join(expr for _, expr in _STORED_COLUMNS)
EVENT_SELECT_JSON = ", ".join(expr for _, expr in _JSON_COLUMNS)

# The fields of an event as the API shows it (``LogEvent.to_api``), each with the columns of
# ``EVENT_SELECT_STORED`` it is read from.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "id": ("ts_us", "uid"),
    "ts": ("ts_us",),
    "observed_ts": ("ts_us", "observed_lag_us"),
    "tenant": ("tenant",),
    "service": ("service",),
    "host": ("host",),
    "level": ("level_n",),
    "level_raw": ("level_n", "level_raw_text"),
    "message": ("message",),
    "pattern_id": ("pattern_id",),
    "pattern_vars": ("pattern_vars",),
    "pattern_var_types": ("pattern_vars",),
    "attributes": ("attributes",),
    "source": ("source",),
    "trace_id": ("trace_id",),
    "span_id": ("span_id",),
    "flags": ("flags",),
    "classification": ("classification",),
    "anomaly_score": ("anomaly_score",),
}
ALL_FIELDS = frozenset(EVENT_FIELDS)
# A search page's fields unless more are asked for: those every search answer promises (id, ts,
# service, host, level, message, pattern_id, attributes; docs/api.md) and the tenant. Every column
# costs the page a lazy read of its rows' granules (5M benchmark events, two words over 24 h, 20
# interleaved rounds: the page with every column 27.2 ms p50, with these 22.4; docs/storage.md).
DEFAULT_FIELDS = frozenset({"id", "ts", "tenant", "service", "host", "level", "message", "pattern_id", "attributes"})


def event_select(fields: frozenset[str] = ALL_FIELDS, *, json: bool = False) -> str:
    """The SELECT list reading ``fields`` (names of ``EVENT_FIELDS``) for ``stored_row_to_event``,
    in the form of ``EVENT_SELECT_STORED`` (``json``: of ``EVENT_SELECT_JSON``). ts and uid always
    come: pages are cut and cursors made by them."""
    if fields >= ALL_FIELDS:
        return EVENT_SELECT_JSON if json else EVENT_SELECT_STORED
    wanted = {"ts_us", "uid"}.union(*(EVENT_FIELDS[name] for name in fields))
    return ", ".join(expr for name, expr in (_JSON_COLUMNS if json else _STORED_COLUMNS) if name in wanted)


_PARAM_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"})


def _bind(params: dict[str, Any] | None) -> dict[str, Any]:
    """ClickHouse reads parameter values in its escaped text form: escape so values arrive verbatim."""
    if not params:
        return {}
    return {k: v.translate(_PARAM_ESCAPES) if isinstance(v, str) else v for k, v in params.items()}


class StoreLocked(Unavailable):
    code = "store_locked"


class ReadLimitExceeded(LogLoupeError):
    """A SELECT would read more rows than its ``max_rows_to_read`` setting allows (a probe's limit)."""


def _seconds(ts_us: int) -> str:
    """DateTime64(6) text that ClickHouse parses exactly (no float rounding)."""
    sign = "-" if ts_us < 0 else ""
    a = abs(ts_us)
    return f"{sign}{a // 1_000_000}.{a % 1_000_000:06d}"


def event_row(event: LogEvent, retention_days: int) -> dict[str, Any]:
    return {
        "tenant": event.tenant,
        "ts": _seconds(event.ts_us),
        "observed_lag_us": event.observed_ts_us - event.ts_us,
        "uid": event.uid,
        "service": event.service,
        "host": event.host,
        "level": event.level.name,
        "level_raw_text": stored_level_raw([event.level_raw], [int(event.level)])[0],
        "message": event.message,
        "pattern_id": event.pattern_id,
        "pattern_vars": event.pattern_vars,
        "attributes": event.attributes,
        "source": event.source,
        "trace_id": event.trace_id,
        "span_id": event.span_id,
        "flags": event.flags,
        "classification": event.classification,
        "anomaly_score": event.anomaly_score,
        "retention_days": retention_days,
    }


# The insert format: Arrow is ~4× cheaper for the engine to read than JSONEachRow (benchmarks/store.py).
ARROW_SCHEMA = pa.schema(
    [
        ("tenant", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("observed_lag_us", pa.int64()),
        ("uid", pa.uint64()),
        ("service", pa.string()),
        ("host", pa.string()),
        ("level", pa.int8()),
        ("level_raw_text", pa.string()),  # ``level_raw``, a NUL when it is the level's name (stored_level_raw)
        ("message", pa.string()),
        ("pattern_id", pa.uint64()),
        ("pattern_vars", pa.list_(pa.string())),
        ("attributes", pa.map_(pa.string(), pa.string())),
        ("source", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("flags", pa.list_(pa.string())),
        ("classification", pa.string()),
        ("anomaly_score", pa.float32()),
        ("retention_days", pa.uint16()),
    ]
)


# Every insert names its columns: ``pattern_vars`` is an ephemeral column (store/schema.py: the
# variables become spans of the message), which an insert without a column list would leave out.
INSERT_COLUMNS = ", ".join(ARROW_SCHEMA.names)


def string_lists(lists: Sequence[list[str]]) -> pa.Array:
    """A ``list<string>`` array from lists of strings, built flat: offsets and one string array
    (``pa.array`` on nested lists costs ~5x as much: 1.3 vs 0.24 µs per event of pattern variables)."""
    offsets = [0, *accumulate(map(len, lists))]
    values = pa.array(list(chain.from_iterable(lists)), pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)


def empty_string_lists(n: int) -> pa.Array:
    """``string_lists`` of ``n`` empty lists (a column no event of the batch has values in yet)."""
    return pa.ListArray.from_arrays(pa.array([0] * (n + 1), pa.int32()), pa.array([], pa.string()))


# The level names by their number: ``level_raw`` equal to its level's name is stored as NUL alone (the
# table's ``level_raw`` alias gives the name back; store/schema.py, LEVEL_RAW_ALIAS).
_LEVEL_NAME_OF = ("", *(level.name for level in Level))
LEVEL_NAME_MARK = "\x00"


def stored_level_raw(raw: Sequence[str], levels: Sequence[int]) -> list[str]:
    """``level_raw`` as stored: a NUL where it is the level's own name (most events); a text that begins
    with a NUL gets one more in front; any other text as it is (the empty text too)."""
    names, mark = _LEVEL_NAME_OF, LEVEL_NAME_MARK
    return [
        mark if text == names[level] else mark + text if text[:1] == mark else text
        for text, level in zip(raw, levels, strict=True)
    ]


def record_batch(events: Sequence[LogEvent], retention_days: Callable[[str], int]) -> pa.RecordBatch:
    """Events → one Arrow record batch. Pure and thread-safe: producers build, the writer inserts."""
    tenants = [e.tenant for e in events]
    # Retention per distinct tenant, not per event (a batch is mostly one tenant).
    days = {tenant: retention_days(tenant) for tenant in set(tenants)}
    kept = [next(iter(days.values()))] * len(events) if len(days) == 1 else [days[tenant] for tenant in tenants]
    columns = [
        tenants,
        [e.ts_us for e in events],
        [e.observed_ts_us - e.ts_us for e in events],
        [e.uid for e in events],
        [e.service for e in events],
        [e.host for e in events],
        levels := [int(e.level) for e in events],
        stored_level_raw([e.level_raw for e in events], levels),
        [e.message for e in events],
        [e.pattern_id for e in events],
        string_lists([e.pattern_vars for e in events]),
        None,  # attributes: built below without a tuple per pair
        [e.source for e in events],
        [e.trace_id for e in events],
        [e.span_id for e in events],
        [e.flags for e in events],
        [e.classification for e in events],
        [e.anomaly_score for e in events],
        kept,
    ]
    offsets = [0]
    keys: list[str] = []
    values: list[str] = []
    for e in events:
        attributes = e.attributes
        keys.extend(attributes)
        values.extend(attributes.values())
        offsets.append(len(keys))
    attributes_array = pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()), pa.array(keys, pa.string()), pa.array(values, pa.string())
    )
    arrays = [
        attributes_array if col is None else col if isinstance(col, pa.Array) else pa.array(col, type=f.type)
        for col, f in zip(columns, ARROW_SCHEMA, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=ARROW_SCHEMA)


def arrow_ipc(batches: Sequence[pa.RecordBatch]) -> bytes:
    """Record batches → one Arrow IPC stream, the bytes ``EventStore.insert_arrow`` takes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, ARROW_SCHEMA) as stream:
        for batch in batches:
            stream.write_batch(batch)
    return bytes(sink.getvalue().to_pybytes())


# One Arrow IPC stream is the schema message, record batch messages and this end-of-stream marker.
_IPC_SCHEMA = ARROW_SCHEMA.serialize().to_pybytes()
_IPC_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def ipc_message(batch: pa.RecordBatch) -> bytes:
    """One record batch as an Arrow IPC message; ``ipc_stream`` joins such messages into a stream."""
    return bytes(batch.serialize().to_pybytes())


def ipc_stream(messages: Sequence[bytes]) -> bytes:
    """``ipc_message`` outputs → one Arrow IPC stream (``insert_arrow``): a byte join, no re-encoding.

    Producers encode their batches in their own threads; the writer thread, whose time is the
    ingest rate's critical path, only joins bytes.
    """
    return b"".join((_IPC_SCHEMA, *messages, _IPC_END))


# Settings of every read. ``use_statistics = 0``: the engine keeps column statistics in each part
# (ClickHouse 26.x materializes ``auto_statistics_types`` on merge) and loads them while planning
# every statement, ~1-2 ms of a search's planning at 5M benchmark events, to estimate how selective
# each condition is; our reads are ordered by hand (tenant, time, text index) and the estimates
# changed no plan in the searches measured. Estimates only: results are the same either way.
READ_SETTINGS = "use_statistics = 0"


def level_raw_read(text: str, level: int) -> str:
    """``level_raw`` from its stored text (``stored_level_raw``): what the table's ``level_raw`` alias
    returns (store/schema.py, LEVEL_RAW_ALIAS), in Python."""
    if text == LEVEL_NAME_MARK:
        return _LEVEL_NAME_OF[level]
    return text[1:] if text[:1] == LEVEL_NAME_MARK else text


def stored_row_to_event(row: dict[str, Any]) -> LogEvent:
    """An event from a row of ``EVENT_SELECT_STORED``, ``EVENT_SELECT_JSON`` or ``event_select``:
    a column the row lacks leaves its field at the default."""
    level = row.get("level_n", Level.INFO)
    return LogEvent(
        tenant=row.get("tenant", ""),
        ts_us=row["ts_us"],
        observed_ts_us=row["ts_us"] + row.get("observed_lag_us", 0),
        uid=row["uid"],
        message=row.get("message", ""),
        service=row.get("service", ""),
        host=row.get("host", ""),
        level=Level(level),
        level_raw=level_raw_read(row["level_raw_text"], level) if "level_raw_text" in row else "",
        pattern_id=row.get("pattern_id", 0),
        pattern_vars=list(row.get("pattern_vars", ())),
        attributes=dict(row.get("attributes", ())),
        source=row.get("source", ""),
        trace_id=row.get("trace_id", ""),
        span_id=row.get("span_id", ""),
        flags=list(row.get("flags", ())),
        classification=row.get("classification", ""),
        anomaly_score=float(row.get("anomaly_score", 0.0)),
    )


# The engine's cache of decompressed column blocks, MiB (0: none). Searches read the newest data
# again and again (the last 24 h, a page of newest events): from the cache the engine skips
# decompressing them. The engine uses it only for reads of up to about a million rows
# (``merge_tree_max_rows_to_use_cache``), so scans of whole weeks do not evict the recent blocks.
# Measured with benchmarks/store.py at 5M events: the phrase over 24 h 123 → 47 ms, two tokens
# 43 → 31 ms; the 24 h of every column fit in well under 256 MiB there (see docs/storage.md).
BLOCK_CACHE_MB = 512


@dataclass(frozen=True)
class Duplicates:
    """The rows an insert left out as stored already: ``stored``, the keys (tenant, ts µs, uid) the
    table held; ``rows``, how many rows in all, repeats within the insert included (the first of
    each is stored)."""

    stored: frozenset[tuple[str, int, int]] = frozenset()
    rows: int = 0

    def kept(self, keys: Iterable[tuple[str, int, int]]) -> list[int]:
        """The indexes of the rows the insert stored, given every row's key in insert order."""
        seen: set[tuple[str, int, int]] = set()
        out: list[int] = []
        for index, key in enumerate(keys):
            if key not in self.stored and key not in seen:
                seen.add(key)
                out.append(index)
        return out


NO_DUPLICATES = Duplicates()

_MAX_INPUTS = 1000  # distinct inputs in one insert up to which the check asks for them, not for each uid
_MIX = 0x9E3779B97F4A7C15  # an odd 64-bit constant: spreads ts over the uid's bits


class EventStore:
    """Owns ``<data_dir>/events``; thread-safe; one per process."""

    def __init__(self, data_dir: Path, *, query_timeout_s: float = 30.0, block_cache_mb: int = BLOCK_CACHE_MB) -> None:
        self.path = Path(data_dir) / "events"
        self.path.mkdir(parents=True, exist_ok=True)
        self.query_timeout_s = query_timeout_s
        self.block_cache_mb = max(0, int(block_cache_mb))
        # An upper bound of the newest stored ts per (tenant, service), and of all of them at the
        # first insert (``_newest_stored``); None until the first insert. ``_oldest``: a lower bound
        # of the ts this process inserted per (tenant, service).
        self._newest: dict[tuple[str, str], int] | None = None
        self._newest_floor = 0
        self._oldest: dict[tuple[str, str], int] = {}
        self._lock = threading.RLock()
        self._lock_file = open(self.path / ".owner.lock", "a+")  # noqa: SIM115 - held for our lifetime
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreLocked(
                f"the event store in {self.path} is owned by another process (a running "
                "`logloupe serve`?); talk to it through its API instead"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()
        import chdb  # imported here: decoder processes use event_row without loading the engine

        try:
            # Server settings travel in the connection string (chDB starts its server from it).
            cache = f"?uncompressed_cache_size={self.block_cache_mb << 20}" if self.block_cache_mb else ""
            self._conn = chdb.connect(f"{self.path}{cache}")  # type: ignore[no-untyped-call]
        except Exception:
            self._release_file_lock()
            raise
        migrate(self)

    # -- low level ----------------------------------------------------------------

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        with self._lock:
            try:
                self._conn.query(sql, "CSV", params=_bind(params))
            except Exception as exc:
                raise _store_error(exc) from exc

    def _select(self, sql: str, params: dict[str, Any] | None, fmt: str = "ArrowTable") -> Any:
        """Run a SELECT, time-limited by ``query_timeout_s``, as an Arrow table (or chDB's result in ``fmt``)."""
        limit = f"max_execution_time = {float(self.query_timeout_s)}, {READ_SETTINGS}"
        if self.block_cache_mb:
            limit += ", use_uncompressed_cache = 1"
        sql = f"{sql}, {limit}" if " SETTINGS " in sql else f"{sql} SETTINGS {limit}"
        with self._lock:
            try:
                table = self._conn.query(sql, fmt, params=_bind(params))
            except Exception as exc:
                # chDB 4.4 hands the next Arrow result after a failed one back unreadable ("Invalid
                # flatbuffers message"): a throwaway statement takes that turn, not the next caller's.
                with contextlib.suppress(Exception):  # the expected unreadable result
                    self._conn.query("SELECT 1", "ArrowTable")
                raise _store_error(exc) from exc
        return table

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT (time-limited) and return rows as dicts."""
        result: list[dict[str, Any]] = self._select(sql, params).to_pylist()
        return result

    def columns(self, sql: str, params: dict[str, Any] | None = None) -> dict[str, list[Any]]:
        """Run a SELECT (time-limited) and return its columns as lists: cheaper than ``rows`` for many rows."""
        result: dict[str, list[Any]] = self._select(sql, params).to_pydict()
        return result

    def rows_with_total(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], int]:
        """Run an ``ORDER BY … LIMIT n`` SELECT: its rows, and how many rows matched before the LIMIT.

        The engine counts every row that passes the WHERE exactly (``exact_rows_before_limit``) in
        the same read that sorts them, so a page and its total cost one statement. That count
        reaches Python only in the JSON formats' ``rows_before_limit_at_least``, so the rows come as
        JSON, 64-bit integers as numbers (floats: see ``EVENT_SELECT_JSON``).
        """
        exact = (
            "exact_rows_before_limit = 1, output_format_json_quote_64bit_integers = 0,"
            " output_format_json_validate_utf8 = 1, output_format_parallel_formatting = 0"
        )
        sql = f"{sql}, {exact}" if " SETTINGS " in sql else f"{sql} SETTINGS {exact}"
        doc = orjson.loads(self._select(sql, params, "JSONCompact").bytes())
        names = [column["name"] for column in doc["meta"]]
        rows = [dict(zip(names, values, strict=True)) for values in doc["data"]]
        return rows, int(doc.get("rows_before_limit_at_least", len(rows)))

    def json_rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a SELECT (time-limited) and return rows as dicts decoded from the engine's JSON.

        For results the engine can shape whole (nested maps, formatted times): one ``orjson.loads``
        of its output builds the objects far faster than Python can from Arrow columns (a 7-day
        histogram of 1-minute buckets: ~10 ms against ~50 ms). Strings that are not valid UTF-8
        come back with replacement characters, 64-bit integers as numbers.
        """
        shape = (
            "output_format_json_array_of_rows = 1, output_format_json_quote_64bit_integers = 0,"
            " output_format_json_validate_utf8 = 1, output_format_parallel_formatting = 0"
        )
        sql = f"{sql}, {shape}" if " SETTINGS " in sql else f"{sql} SETTINGS {shape}"
        result: list[dict[str, Any]] = orjson.loads(self._select(sql, params, "JSONEachRow").bytes())
        return result

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        rows = self.rows(sql, params)
        if not rows:
            return None
        return next(iter(rows[0].values()))

    # -- writes ---------------------------------------------------------------------

    def insert_rows(self, rows: Sequence[dict[str, Any]], *, dedup_token: str | None = None) -> int:
        """Insert JSON-shaped rows (``event_row``) in one block; prefer ``insert`` (Arrow, ~4× cheaper)."""
        if not rows:
            return 0
        self.insert_json_lines(b"\n".join(orjson.dumps(row) for row in rows), dedup_token=dedup_token)
        return len(rows)

    def insert_json_lines(
        self, data: bytes, *, dedup_token: str | None = None, columns: Sequence[str] | None = None
    ) -> None:
        """Insert rows already encoded as JSONEachRow (``event_row`` dicts, one per line) in one block;
        ``columns``: the rows' keys when they are not ``event_row``'s (a table of an older schema)."""
        if not data:
            return
        names = ", ".join(columns) if columns is not None else INSERT_COLUMNS
        with self._lock:
            try:
                with self._conn.send_insert(self._insert_sql(dedup_token, names), "JSONEachRow") as inserter:
                    inserter.append(data)
                    inserter.finish()
            except Exception as exc:
                raise _store_error(exc) from exc

    def insert_batches(self, batches: Sequence[pa.RecordBatch], *, dedup_token: str | None = None) -> int:
        """Insert Arrow batches as one block. With ``dedup_token``, a replay of the same batch is a no-op.

        Without a token the engine still drops a block identical to a recent one (the table's
        deduplication window): ids derive from content and position, so that is a replay too.
        """
        rows = int(sum(b.num_rows for b in batches))
        if not rows:
            return 0
        return rows - self.insert_arrow(arrow_ipc(batches), dedup_token=dedup_token).rows

    def insert_arrow(self, data: bytes, *, dedup_token: str | None = None) -> Duplicates:
        """Insert one Arrow IPC stream of ``ARROW_SCHEMA`` batches (``arrow_ipc``) as one block.

        Returns the rows left out as stored already (``_new_rows``), usually none: the caller's
        after-store hooks and counts must not see a re-sent event twice either (``stored_only``).
        """
        if not data:
            return NO_DUPLICATES
        with self._lock:
            data, duplicates = self._new_rows(data)
            if not data:
                return duplicates
            try:
                with self._conn.send_insert(self._insert_sql(dedup_token), "ArrowStream") as inserter:
                    inserter.append(data)
                    inserter.finish()
            except Exception as exc:
                raise _store_error(exc) from exc
        return duplicates

    def insert(
        self,
        events: Sequence[LogEvent],
        *,
        retention_days: int | Callable[[str], int] = 30,
        dedup_token: str | None = None,
    ) -> int:
        if callable(retention_days):
            keep = retention_days
        else:
            days = retention_days

            def keep(_tenant: str) -> int:
                return days

        return self.insert_batches([record_batch(events, keep)], dedup_token=dedup_token)

    def _new_rows(self, data: bytes) -> tuple[bytes, Duplicates]:
        """The rows of an Arrow IPC stream that are not stored yet: by (tenant, ts, uid), against the
        table and within the stream itself, and the keys of those left out. ``data`` itself when
        every row is new (the usual case).

        Ids name an event's place in its input (``model.input_uid``), so this is what makes a re-sent
        request, file or upload idempotent, across restarts and days apart. It is cheap for live
        ingest: a (tenant, service) whose rows in the batch are all newer than anything stored for it
        (``_newest_stored``: a bound kept up to date by the inserts) cannot hold a re-send, and the
        rows are kept unread; only older rows (a re-send, a backfill, a replay)
        cost one query per tenant, reading ts and uid of the batch's services and time range.
        """
        # Imported here: decoder processes import this module and load neither (see decode._NoPandas).
        import numpy as np
        import pyarrow.compute as pc

        table = pa.ipc.open_stream(data).read_all()
        if not table.num_rows:
            return b"", NO_DUPLICATES
        newest = self._newest_stored()
        ts = table.column("ts").cast(pa.int64())
        spans = (
            pa.table({"tenant": table.column("tenant"), "service": table.column("service"), "ts": ts})
            .group_by(["tenant", "service"])
            .aggregate([("ts", "min"), ("ts", "max")])
            .to_pydict()
        )
        older: dict[str, list[tuple[str, int, int]]] = {}
        for tenant, service, lo, hi in zip(
            spans["tenant"], spans["service"], spans["ts_min"], spans["ts_max"], strict=True
        ):
            known = newest.get((tenant, service), self._newest_floor)
            if lo <= known:  # only rows up to the newest stored can be stored already
                if lo > self._newest_floor and hi < self._oldest.get((tenant, service), -1):
                    continue  # newer than the table's rows of the start, older than all inserted since
                older.setdefault(tenant, []).append((service, lo, min(hi, known)))
        uids = table.column("uid")
        # Repeats within the batch (two sends of one input that arrived together): ts and uid mixed
        # into one number, sorted; a repeat of (ts, uid) repeats it, so no equal neighbours means no
        # repeat (an equal pair of different rows only costs the exact comparison below).

        mixed = pc.bit_wise_xor(uids, pc.multiply(ts.cast(pa.uint64(), safe=False), pa.scalar(_MIX, pa.uint64())))
        mixed = np.sort(mixed.to_numpy())
        repeats = bool((mixed[1:] == mixed[:-1]).any())
        if not older and not repeats:
            self._note_newest(spans)
            return data, NO_DUPLICATES
        stored: set[tuple[str, int, int]] = set()
        # An input's uids share their high bits (``model.input_uid``): asking for rows of the batch's
        # inputs is a parameter of a few numbers, where the uids themselves would be the whole batch.
        # Only a re-send finds rows; the exact comparison below keeps what is new.
        inputs = pc.unique(pc.shift_right(uids, pa.scalar(INDEX_BITS, pa.uint64()))).to_pylist()
        if len(inputs) <= _MAX_INPUTS:
            by_uid = f"bitShiftRight(uid, {INDEX_BITS}) IN {{inputs:Array(UInt64)}}"
            values: list[int] = inputs
        else:  # Elasticsearch _ids: one hash each
            by_uid, values = "uid IN {inputs:Array(UInt64)}", pc.unique(uids).to_pylist()
        for tenant, groups in older.items():
            services = {f"s{i}": service for i, service in enumerate(sorted({service for service, _, _ in groups}))}
            found = self.columns(
                "SELECT toUnixTimestamp64Micro(ts) AS ts_us, uid FROM events WHERE tenant = {tenant:String}"
                f" AND service IN ({', '.join(f'{{{name}:String}}' for name in services)})"
                " AND ts BETWEEN fromUnixTimestamp64Micro({lo:Int64}) AND fromUnixTimestamp64Micro({hi:Int64})"
                f" AND {by_uid}",
                {
                    **services,
                    "tenant": tenant,
                    "lo": min(lo for _, lo, _ in groups),
                    "hi": max(hi for _, _, hi in groups),
                    "inputs": values,
                },
            )
            stored.update((tenant, t, u) for t, u in zip(found["ts_us"], found["uid"], strict=True))
        self._note_newest(spans)
        if not stored and not repeats:
            return data, NO_DUPLICATES
        keys = list(zip(table.column("tenant").to_pylist(), ts.to_pylist(), uids.to_pylist(), strict=True))
        left_out = Duplicates(frozenset(stored), 0)
        kept = left_out.kept(keys)
        if len(kept) == len(keys):
            return data, NO_DUPLICATES
        from logloupe.metrics import DUPLICATES_DROPPED  # here: decoder processes import this module, lean

        dropped = Counter(tenant for tenant, _, _ in keys)
        dropped.subtract(keys[i][0] for i in kept)
        for tenant, n in dropped.items():
            if n:
                DUPLICATES_DROPPED.labels(tenant).inc(n)
        log.info("insert: %d of %d rows were stored already (a re-sent input)", len(keys) - len(kept), len(keys))
        rest = table.take(pa.array(kept, pa.int64()))
        return (arrow_ipc(rest.to_batches()) if rest.num_rows else b""), replace(left_out, rows=len(keys) - len(kept))

    def _newest_stored(self) -> dict[tuple[str, str], int]:
        """An upper bound of the newest stored ts (µs) per (tenant, service).

        At the first insert every (tenant, service) starts at the newest ts of the whole table (the
        parts' own bounds: no rows read, however large the table); each insert then raises its
        services' values to its newest rows. A bound, never below what is stored, so a row newer
        than it cannot be a re-send; a service that is behind the rest is checked until it passes
        the table's newest time of the start (live services do within seconds).

        ``_oldest`` bounds the same inserts from below: the rows stored for a (tenant, service) are
        those of the start (at most the floor) and this process's inserts (``_oldest`` to
        ``_newest``), so rows between the floor and ``_oldest`` cannot be stored either — clients
        that send newer batches first (the ingest benchmark's do), or a backfill going back in time.
        """
        if self._newest is None:
            seconds = self.scalar(
                "SELECT toUnixTimestamp(max(max_time)) FROM system.parts"
                " WHERE active AND database = currentDatabase() AND table = 'events'"
            )
            self._newest_floor = (int(seconds or 0) + 1) * 1_000_000  # max_time is in whole seconds
            self._newest = {}
        return self._newest

    def _note_newest(self, spans: dict[str, list[Any]]) -> None:
        newest = self._newest_stored()
        floor = self._newest_floor
        oldest = self._oldest
        for tenant, service, lo, hi in zip(
            spans["tenant"], spans["service"], spans["ts_min"], spans["ts_max"], strict=True
        ):
            if hi > newest.get((tenant, service), floor):
                newest[(tenant, service)] = hi
            if lo < oldest.get((tenant, service), lo + 1):
                oldest[(tenant, service)] = lo

    @staticmethod
    def _insert_sql(dedup_token: str | None, columns: str = INSERT_COLUMNS) -> str:
        settings = ["max_partitions_per_insert_block = 10000"]
        if dedup_token:
            safe = "".join(ch for ch in dedup_token if ch.isalnum() or ch in "-_.:")
            settings.append(f"insert_deduplication_token = '{safe}'")
        return f"INSERT INTO events ({columns}) SETTINGS {', '.join(settings)}"

    # -- lifecycle --------------------------------------------------------------------

    def optimize(self) -> None:
        """Merge parts now (tests and benchmarks; the engine does this in the background)."""
        self.execute("OPTIMIZE TABLE events FINAL")

    def disk_usage(self) -> dict[str, int]:
        row = self.rows(
            "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes_on_disk,"
            " sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed"
            " FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active"
        )[0]
        return {k: int(v or 0) for k, v in row.items()}

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            self._release_file_lock()

    def _release_file_lock(self) -> None:
        if not self._lock_file.closed:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _store_error(exc: Exception) -> LogLoupeError:
    text = str(exc)
    if "TOO_MANY_ROWS_OR_BYTES" in text or "Limit for rows or bytes to read exceeded" in text:
        return ReadLimitExceeded(text.splitlines()[0][:300])
    if "TIMEOUT_EXCEEDED" in text or "Timeout exceeded" in text:
        return Unavailable("the query took longer than the time limit; narrow the time range or query")
    if any(code in text for code in ("CANNOT_COMPILE_REGEXP", "BAD_ARGUMENTS", "ILLEGAL_TYPE_OF_ARGUMENT")):
        return BadRequest(f"the store rejected the query: {text.splitlines()[0][:300]}")
    return LogLoupeError(f"event store error: {text.splitlines()[0][:300] if text else type(exc).__name__}")
