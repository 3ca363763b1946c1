"""Buffer entries ↔ events, kept free of the store engine's import so decoder processes stay small.

An entry's payload is a JSON header line (tenant, source, default service/host, observed time)
followed by one tagged item per line: ``J`` + a JSON object, or ``L`` + a raw text line.
``decode_rows`` does the whole CPU-bound part (parse, assemble, build the Arrow columns) and returns
one Arrow IPC stream as bytes, so it can run in a separate process and hand back one blob cheaply.
"""

from __future__ import annotations

import importlib.abc
import marshal
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from itertools import repeat
from typing import Any

import orjson
import pyarrow as pa

from logloupe.model import COLD_COLUMNS, EventColumns, Level, LogEvent
from logloupe.parse.records import Fields, Limits, add_flags, line_fields, record_fields, text_fields
from logloupe.parse.sources import DEFAULT_OPTIONS, RAW_LINE_SOURCES, SourceOptions, SourceRules, apply_source
from logloupe.pipeline.assemble import Row, assemble, assemble_rows
from logloupe.pipeline.columnar import FlatAttributes, Part, plain_entry
from logloupe.pipeline.streams import StreamJoiner, entry_joins, join_entry
from logloupe.store.events import (
    ARROW_SCHEMA,
    arrow_ipc,
    empty_string_lists,
    record_batch,
    stored_level_raw,
    string_lists,
)

TAG_RECORD = b"J"  # a JSON object (one line)
TAG_LINE = b"L"  # a raw text line
DECODE_ERRORS = (orjson.JSONDecodeError, KeyError, TypeError, ValueError)


def encode_entry(
    tenant: str,
    source: str,
    records: Sequence[bytes],
    lines: Sequence[bytes] = (),
    *,
    service: str = "",
    host: str = "",
    observed_us: int = 0,
    key: str = "",
    doc_ids: dict[int, str] | None = None,
    flags: dict[int, list[str]] | None = None,
) -> bytes:
    """One buffer entry: a JSON header line, then one tagged item per line (the records first).

    ``key`` names the input (``model.input_key``): the events' uids derive from it and the item's index, so
    a re-sent input gets the same ids and is stored once; without one, from the buffer position.
    ``doc_ids``: the sender's own ids of some records (by their index), which name those events instead.
    ``flags``: flags the ingest side found for some records (by their index; ``invalid_utf8`` for JSON
    read with U+FFFD), which those events get.
    """
    header: dict[str, Any] = {
        "tenant": tenant,
        "source": source,
        "service": service,
        "host": host,
        "observed_us": observed_us,
    }
    if key:
        header["key"] = key
    if doc_ids:
        header["ids"] = {str(i): doc for i, doc in doc_ids.items()}
    if flags:
        header["flags"] = {str(i): names for i, names in flags.items()}
    parts = [orjson.dumps(header)]
    # Each item with its tag, in one join per kind (no tagged copy of each item first).
    if records:
        parts.append(TAG_RECORD + (b"\n" + TAG_RECORD).join(records))
    if lines:
        parts.append(TAG_LINE + (b"\n" + TAG_LINE).join(lines))
    return b"\n".join(parts)


def entry_tenant(payload: bytes) -> str:
    return str(orjson.loads(payload.partition(b"\n")[0])["tenant"])


def decode_payload(
    pos: int,
    payload: bytes,
    limits: Limits,
    now_us: int,
    rules: SourceRules | None = None,
    joiner: StreamJoiner | None = None,
) -> list[LogEvent]:
    """An entry back to events; its position in the buffer makes event ids stable across replays.

    ``rules``: per-source parsing settings (``parse/sources.py``). ``joiner``: multiline assembly
    across entries (``pipeline/streams.py``); without it, stack traces are joined within the entry."""
    if not payload:
        return []
    head, _, body = payload.partition(b"\n")
    header = orjson.loads(head)
    if joiner is not None and entry_joins(header, body, rules):
        return join_entry(pos, header, body, limits, now_us, rules, joiner)
    if header.get("flush"):
        return []  # a multiline flush marker, read without a joiner
    return assemble(_payload_fields(header, body, limits, now_us, rules), **_assembly(header, pos, now_us))


def _assembly(header: dict[str, Any], pos: int, now_us: int) -> dict[str, Any]:
    """``assemble``'s keyword arguments for an entry with this header at buffer position ``pos``."""
    return {
        "tenant": header["tenant"],
        "now_us": int(header.get("observed_us") or now_us),
        "source": header.get("source", ""),
        "service": header.get("service", ""),
        "host": header.get("host", ""),
        "position": header.get("key") or f"wal:{pos}",
        "doc_ids": {int(i): str(doc) for i, doc in header["ids"].items()} if header.get("ids") else None,
    }


def _payload_fields(
    header: dict[str, Any], body: bytes, limits: Limits, now_us: int, rules: SourceRules | None
) -> list[Fields]:
    """An entry's items (after its header line) → normalised fields, in order."""
    fields: list[Fields] = []
    observed = int(header.get("observed_us") or now_us)
    options = DEFAULT_OPTIONS
    own_rules = rules if rules else None  # once: SourceRules.__bool__ is not free, and this loop is hot
    source = header.get("source", "")
    if own_rules is not None:
        options = own_rules.options_for(header["tenant"], source, header.get("service", ""))
    text: list[bytes | str] = []  # consecutive raw lines: formats detected, stack traces joined
    for part in body.split(b"\n") if body else ():
        tag, data = part[:1], part[1:]
        if tag == TAG_RECORD:
            if text:
                fields.extend(_text(text, limits, observed, options))
                text = []
            try:
                value = orjson.loads(data)
            except orjson.JSONDecodeError:
                fields.append(line_fields(data, limits))
                continue
            record = value if isinstance(value, dict) else {"message": value}
            f = record_fields(record, limits)
            src = f.source or source
            if own_rules is not None or src.startswith(RAW_LINE_SOURCES):
                own = (
                    own_rules.options_for(header["tenant"], src, f.service or header.get("service", ""))
                    if own_rules is not None
                    else options
                )
                apply_source(record, f, own, observed, src)
            fields.append(f)
        else:
            text.append(data)
    if text:
        fields.extend(_text(text, limits, observed, options))
    flagged = header.get("flags")
    if flagged:  # by record index: the records come first in an entry, one fields each (encode_entry)
        for i, names in flagged.items():
            add_flags(fields[int(i)], names)
    return fields


def _text(lines: list[bytes | str], limits: Limits, observed: int, options: SourceOptions) -> list[Fields]:
    if options.is_default:
        return text_fields(lines, limits, observed)
    return text_fields(
        lines, limits, observed, default_tz=options.timezone, custom=options.patterns, hint=options.format
    )


RowsResult = tuple[bytes, int, dict[tuple[str, str, str], int], list[tuple[int, str]]]


def decode_rows(
    entries: list[tuple[int, bytes]],
    limits: Limits,
    retention: dict[str, int],
    default_days: int,
    now_us: int,
    rules: SourceRules | None = None,
) -> RowsResult:
    """Entries → (Arrow IPC stream, event count, counts by (tenant, source, level), [(pos, error)])."""
    events: list[LogEvent] = []
    counts: dict[tuple[str, str, str], int] = {}
    errors: list[tuple[int, str]] = []
    for pos, payload in entries:
        try:
            events.extend(decode_payload(pos, payload, limits, now_us, rules))
        except DECODE_ERRORS as exc:
            errors.append((pos, f"unreadable buffer entry: {exc}"))
    for e in events:
        key = (e.tenant, e.source, e.level.name)
        counts[key] = counts.get(key, 0) + 1
    if not events:
        return b"", 0, counts, errors
    batch = record_batch(events, lambda tenant: retention.get(tenant, default_days))
    return arrow_ipc([batch]), len(events), counts, errors


PackedResult = tuple[bytes, bytes, list[tuple[int, str]], dict[tuple[str, str, str], int]]
_LEVELS = {int(level): level for level in Level}
# LogEvent's fields as decode_packed ships them, in unpack_events' order (the level as its int).
_PACKED = (
    "tenant",
    "ts_us",
    "observed_ts_us",
    "uid",
    "message",
    "service",
    "host",
    "level",
    "level_raw",
    "attributes",
    "source",
    "trace_id",
    "span_id",
    "flags",
)
# Columns of few distinct values (shipped as one object per value).
_SHARED = tuple(_PACKED.index(name) for name in ("tenant", "service", "host", "level_raw", "source"))
# The columns the server's stage and after-store hooks read for every batch (mining, classes, anomaly
# detection, alert counts) ship as lists; the others (``model.COLD_COLUMNS``) as one marshalled blob
# of their own inside, which the server loads only when something reads them (an event built for the
# live tail or an alert's sample): most batches never unmarshal their attributes and flags.
_HOT = tuple(i for i, name in enumerate(_PACKED) if name not in COLD_COLUMNS)
_COLD = tuple(_PACKED.index(name) for name in COLD_COLUMNS)
# Set by the server's event stage (pattern mining, classification), after the decoder processes.
ANALYSIS_COLUMNS = ("pattern_id", "pattern_vars", "classification", "anomaly_score")


def decode_packed(
    entries: list[tuple[int, bytes]],
    limits: Limits,
    now_us: int,
    rules: SourceRules | None = None,
    retention: dict[str, int] | None = None,
    default_days: int = 30,
    *,
    columnar: bool = True,
) -> PackedResult:
    """Entries → (events packed as marshalled column lists, their Arrow columns as an IPC
    stream, [(pos, error)], counts by (tenant, source, level name) for the ingest metric).

    For decoder processes while analysis stages need the events in the server: plain lists cost
    a fraction of pickled ``LogEvent`` objects to ship, and ``unpack_events`` rebuilds them exactly.
    The Arrow columns are built here too, with the analysis columns empty: the server only fills
    those in (``with_analysis``) after its stage, instead of building every column itself.
    ``columnar``: entries of plain JSON records are read by Arrow's JSON reader (``columnar.py``:
    the same events, the attributes' keys in the order the entry first names them); False reads
    every entry row by row.
    """
    errors: list[tuple[int, str]] = []
    # Runs of entries in order: column lists with their Arrow columns where Arrow's JSON reader
    # decoded the entry (pipeline/columnar.py), else rows.
    parts: list[Part | list[Row]] = []
    run_of_rows: list[Row] | None = None  # the last part, while it is rows
    for pos, payload in entries:
        try:
            part = plain_entry(pos, payload, limits, now_us) if columnar and not rules else None
            if part is not None:
                parts.append(part)
                run_of_rows = None
                continue
            rows = _payload_rows(pos, payload, limits, now_us, rules)
        except DECODE_ERRORS as exc:
            errors.append((pos, f"unreadable buffer entry: {exc}"))
            continue
        if run_of_rows is None:
            parts.append(run_of_rows := [])
        run_of_rows.extend(rows)
    # Column lists (no event objects here), marshalled: cheaper both ways than pickled rows, and
    # unpack_events builds the events with one C-level map over them. The Arrow columns are built
    # from the same lists, or taken from the reader's. The attributes travel flat (their dicts are
    # built in the server only if something reads them: ``_attribute_dicts``).
    runs: list[tuple[list[list[Any]], dict[str, pa.Array]]] = []
    flat: FlatAttributes = ([], [], [])
    for item in parts:
        if isinstance(item, Part):
            runs.append((item.lists, item.arrays))
            flat[0].extend(item.attributes[0])
            flat[1].extend(item.attributes[1])
            flat[2].extend(item.attributes[2])
        elif item:
            run = [list(column) for column in zip(*item, strict=True)]
            run[_LEVEL_AT] = [int(level) for level in run[_LEVEL_AT]]
            runs.append((run, {"attributes": _attribute_map(run[_ATTRIBUTES_AT], flat)}))
    del parts
    lists: list[list[Any]] = _joined([run for run, _ in runs], len(_PACKED)) if runs else [[] for _ in _PACKED]
    lists[_ATTRIBUTES_AT] = flat  # type: ignore[call-overload]  # one item, flat, where a list of dicts was
    # Repeated values as one object each: marshal then writes a reference for the repeats, and
    # unpack_events loads them in the server in less than half the time (0.42 vs 0.95 µs per event).
    for i in _SHARED:
        seen: dict[str, str] = {}
        lists[i] = list(map(seen.setdefault, lists[i], lists[i]))
    packed = marshal.dumps((*(lists[i] for i in _HOT), marshal.dumps(tuple(lists[i] for i in _COLD))))
    if not lists[0]:
        return packed, b"", errors, {}
    levels = lists[_LEVEL_AT]
    groups = Counter(zip(lists[_PACKED.index("tenant")], lists[_PACKED.index("source")], levels, strict=True))
    counts = {(tenant, source, _LEVELS[level].name): n for (tenant, source, level), n in groups.items()}
    days = retention or {}
    return packed, arrow_ipc([_batch_of(run, days, default_days, given) for run, given in runs]), errors, counts


_LEVEL_AT = _PACKED.index("level")
_ATTRIBUTES_AT = _PACKED.index("attributes")


def _attribute_map(attributes: list[dict[str, str]], flat: FlatAttributes) -> pa.Array:
    """Events' attribute dicts → their Arrow map column; their members appended to ``flat`` too."""
    keys, values, sizes = flat
    start = len(keys)
    offsets = [0]
    for members in attributes:
        keys.extend(members)
        values.extend(members.values())
        offsets.append(len(keys) - start)
        sizes.append(len(members))
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()), pa.array(keys[start:], pa.string()), pa.array(values[start:], pa.string())
    )


def _attribute_dicts(flat: FlatAttributes) -> list[dict[str, str]]:
    """``decode_packed``'s flat attributes → one dict per event."""
    keys, values, sizes = flat
    out: list[dict[str, str]] = []
    start = 0
    for size in sizes:
        end = start + size
        out.append(dict(zip(keys[start:end], values[start:end], strict=True)) if size else {})
        start = end
    return out


_SCHEMA_NAMES = {"ts_us": "ts", "level_raw": "level_raw_text"}


def _batch_of(
    lists: list[list[Any]], retention: dict[str, int], default_days: int, given: dict[str, pa.Array] | None = None
) -> pa.RecordBatch:
    """``record_batch`` from ``decode_packed``'s column lists; the analysis columns empty. ``given``:
    Arrow columns (by field name) already built from the same events, taken as they are (the
    attributes always: the lists hold them flat, ``_attribute_map``)."""
    col = dict(zip(_PACKED, lists, strict=True))
    n = len(lists[0])
    tenants = col["tenant"]
    days = {tenant: retention.get(tenant, default_days) for tenant in set(tenants)}
    kept = [next(iter(days.values()))] * n if len(days) == 1 else [days[tenant] for tenant in tenants]
    arrays: dict[str, pa.Array] = {
        "pattern_id": pa.array([0] * n, pa.uint64()),
        "pattern_vars": empty_string_lists(n),
        "classification": pa.array([""] * n, pa.string()),
        "anomaly_score": pa.array([0.0] * n, pa.float32()),
        "retention_days": pa.array(kept, pa.uint16()),
        **(given or {}),
    }
    if "observed_lag_us" not in arrays:  # the table stores the observed time as its lag behind ts (0003)
        lags = [observed - ts for ts, observed in zip(col["ts_us"], col["observed_ts_us"], strict=True)]
        arrays["observed_lag_us"] = pa.array(lags, pa.int64())
    col["level_raw"] = stored_level_raw(col["level_raw"], col["level"])
    for name, column in col.items():
        field = _SCHEMA_NAMES.get(name, name)
        if name not in ("attributes", "observed_ts_us") and field not in arrays:
            arrays[field] = pa.array(column, ARROW_SCHEMA.field(field).type)
    return pa.RecordBatch.from_arrays([arrays[f.name] for f in ARROW_SCHEMA], schema=ARROW_SCHEMA)


def _payload_rows(pos: int, payload: bytes, limits: Limits, now_us: int, rules: SourceRules | None) -> list[Row]:
    """``decode_payload`` (without a joiner) as ``assemble_rows`` rows; all or nothing per entry."""
    if not payload:
        return []
    head, _, body = payload.partition(b"\n")
    header = orjson.loads(head)
    if header.get("flush"):
        return []
    return list(assemble_rows(_payload_fields(header, body, limits, now_us, rules), **_assembly(header, pos, now_us)))


def with_analysis(columns: bytes, events: Sequence[LogEvent]) -> list[pa.RecordBatch]:
    """``decode_packed``'s Arrow columns with the analysis columns taken from ``events`` (the same
    events, in the same order, after the server's stage)."""
    return with_analysis_columns(
        columns,
        [e.pattern_id for e in events],
        [e.pattern_vars for e in events],
        [e.classification for e in events],
        [e.anomaly_score for e in events],
    )


def with_analysis_columns(
    columns: bytes,
    pattern_id: Sequence[int],
    pattern_vars: Sequence[list[str]],
    classification: Sequence[str],
    anomaly_score: Sequence[float],
) -> list[pa.RecordBatch]:
    """``with_analysis`` from the analysis columns as lists (``EventColumns``' lists, or slices of them)."""
    batches = pa.ipc.open_stream(columns).read_all().to_batches()
    out = []
    start = 0
    for batch in batches:
        end = start + batch.num_rows
        values: dict[str, Any] = {
            "pattern_id": pattern_id[start:end],
            "pattern_vars": string_lists(pattern_vars[start:end]),
            "classification": classification[start:end],
            "anomaly_score": anomaly_score[start:end],
        }
        start = end
        arrays = list(batch.columns)
        for name in ANALYSIS_COLUMNS:
            i = ARROW_SCHEMA.get_field_index(name)
            column = values[name]
            arrays[i] = column if isinstance(column, pa.Array) else pa.array(column, type=ARROW_SCHEMA.field(i).type)
        out.append(pa.RecordBatch.from_arrays(arrays, schema=ARROW_SCHEMA))
    if start != len(pattern_id):
        raise ValueError(f"{len(pattern_id)} events for {start} rows of Arrow columns")
    return out


def _packed_lists(blob: bytes) -> list[list[Any]]:
    """``decode_packed``'s lists in ``_PACKED`` order, the cold ones loaded too."""
    *hot, cold = marshal.loads(blob)  # noqa: S302 - our own decoder process's output, like its pickles were
    lists: list[list[Any]] = [[] for _ in _PACKED]
    for i, column in zip(_HOT, hot, strict=True):
        lists[i] = column
    for i, column in zip(_COLD, _cold_of(cold), strict=True):
        lists[i] = column
    return lists


_COLD_ATTRIBUTES_AT = COLD_COLUMNS.index("attributes")


def _cold_of(blob: bytes) -> list[list[Any]]:
    """One chunk's cold columns (``model.COLD_COLUMNS``), the attributes as dicts again."""
    cold = list(marshal.loads(blob))  # noqa: S302 - our own decoder process's output
    cold[_COLD_ATTRIBUTES_AT] = _attribute_dicts(cold[_COLD_ATTRIBUTES_AT])
    return cold


def unpack_events(blob: bytes) -> list[LogEvent]:
    """The inverse of ``decode_packed``'s packing (the blob comes from our own decoder process)."""
    columns = _packed_lists(blob)
    tenant, ts, observed, uid, message, service, host, level, raw, attrs, source, trace, span, flags = columns
    # Positional, in LogEvent's field order; pattern id 0 and a fresh empty list of variables each.
    return list(
        map(
            LogEvent,
            tenant,
            ts,
            observed,
            uid,
            message,
            service,
            host,
            map(_LEVELS.__getitem__, level),
            raw,
            repeat(0),
            iter(list, None),
            attrs,
            source,
            trace,
            span,
            flags,
        )
    )


def unpack_columns(blobs: Sequence[bytes]) -> EventColumns:
    """``decode_packed``'s packed events of several chunks, in order, as one ``EventColumns`` (no
    ``LogEvent`` built); the analysis lists fresh: pattern id 0, no variables, no class, score 0."""
    parts = [marshal.loads(blob) for blob in blobs]  # noqa: S302 - our own decoder process's output
    # The last item of each part is its cold blob.
    tenant, ts, observed, uid, message, service, level, trace = _joined([part[:-1] for part in parts], len(_HOT))
    n = len(tenant)
    return EventColumns.with_cold(
        tenant,
        ts,
        observed,
        uid,
        message,
        service,
        level,
        trace,
        [0] * n,
        [[] for _ in range(n)],
        [""] * n,
        [0.0] * n,
        cold=partial(_cold_lists, [part[-1] for part in parts]),
    )


def _cold_lists(blobs: list[bytes]) -> list[list[Any]]:
    """The cold columns (``model.COLD_COLUMNS``) of ``decode_packed`` chunks, joined in order."""
    return _joined([_cold_of(blob) for blob in blobs], len(COLD_COLUMNS))


def _joined(parts: Sequence[Sequence[list[Any]]], width: int) -> list[list[Any]]:
    """The column lists of several chunks, each column joined in chunk order (one chunk: its own
    lists, as marshal gave them back)."""
    if len(parts) == 1:
        return list(parts[0])
    lists: list[list[Any]] = [[] for _ in range(width)]
    for part in parts:
        for into, column in zip(lists, part, strict=True):
            into.extend(column)
    return lists


class _NoPandas(importlib.abc.MetaPathFinder):
    """pyarrow imports pandas on its first ``pa.array`` only to ask whether the values are pandas
    objects (~47 MiB of RSS per process); decoder processes never hold any, so there it is absent."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not loaded in decoder processes")


def init_decoder(parent_pid: int) -> None:
    """Decoder-process initializer: no pandas (see ``_NoPandas``), and exit with the server."""
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())
    pa.set_memory_pool(pa.system_memory_pool())
    watch_parent(parent_pid)


def watch_parent(parent_pid: int) -> None:
    """Decoder-process initializer: exit when the server is gone (``kill -9`` leaves no one to stop us)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="logloupe-decoder-parent-watch", daemon=True).start()
