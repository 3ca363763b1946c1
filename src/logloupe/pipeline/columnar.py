"""Buffer entries of plain JSON records decoded as columns: Arrow's JSON reader instead of a
Python object, a ``Fields`` and a row per event.

The common entry (an HTTP body of ``{"timestamp","service","host","level","message","meta"}``
objects) cost the row path 12–17 µs per event in a decoder process on the reference machine
(``orjson.loads`` ~2.2, ``record_fields`` ~5.8, the row and the column lists, Arrow and marshal the
rest); read here, ~7.6, of which Arrow's reader ~1.3: the normalisation runs once per column or per
distinct value (levels, services, time texts) instead of once per event.

``plain_entry`` answers exactly what the row path (``decode._payload_rows``) would, or None when
the entry needs it: anything the records' fast path (``records._plain_record_fields``) would not
take, and anything where a column could blur a per-record decision — a ``null`` anywhere (Arrow
reads a null and a missing key alike), a NUL or a lone surrogate escape, a text over a limit, a time
outside the sanity window, two keys of one role, nested attributes, numbers beyond 2**53 in a
column of floats. One difference is kept on purpose: the attributes' keys are stored in the order
the entry's records first name them, not each record's own order (a JSON object's members carry
no order, RFC 8259 §4; the values are the same).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from logloupe.model import INDEX_BITS, input_uid_base
from logloupe.parse.records import RECORD_KEY_ROLES, Limits, guess_level, level_from, time_from
from logloupe.parse.sources import RAW_LINE_SOURCES
from logloupe.parse.timestamps import MAX_FUTURE_US, MIN_TS_US
from logloupe.store.events import empty_string_lists

# Arrow types a column of each role may have here; any other type takes the row path.
_TEXT = {pa.string()}
_TYPES: dict[str, set[pa.DataType]] = {
    "message": _TEXT,
    "level": {pa.string(), pa.int64()},
    "service": _TEXT,
    "host": _TEXT,
    "trace_id": _TEXT,
    "span_id": _TEXT,
}
# Longest text (in bytes, so in characters too) that the row path keeps as it is, per role.
# (The sender's fields are cut to the attribute value limit too; the level's text to 64 alone.)
_MAX_TEXT = {"service": 256, "host": 256, "trace_id": 64, "span_id": 64}
_EXACT_FLOAT = 2.0**53  # larger numbers in a float column may have been integers Arrow rounded
# Escapes that decode to what the row path flags or rejects: NUL, lone surrogates (any \\uD8xx-DFxx).
_ESCAPES = (b"\\u0000", b"\\ud", b"\\uD")


class Part:
    """One entry's events: ``lists`` in ``decode._PACKED`` order (levels as ints; the attributes as
    ``attributes``, flat), and ``arrays``, its Arrow columns by field name (the analysis columns,
    level and retention left to the caller)."""

    __slots__ = ("arrays", "attributes", "lists")

    def __init__(self, lists: list[list[Any]], arrays: dict[str, pa.Array], attributes: FlatAttributes) -> None:
        self.lists = lists
        self.arrays = arrays
        self.attributes = attributes


# The events' attributes flat: every key, every value, and each event's count of them.
FlatAttributes = tuple[list[str], list[str], list[int]]


def plain_entry(pos: int, payload: bytes, limits: Limits, now_us: int) -> Part | None:
    """An entry of JSON records only (``decode.encode_entry``, no source rules) as columns, or None
    when it needs the row path (see the module's docstring)."""
    if limits.max_attributes < 1 or limits.max_nesting_depth < 1:
        return None
    head, _, body = payload.partition(b"\n")
    if body[:1] != b"J" or b"\nL" in body or b"null" in body or (b"\\u" in body and any(b in body for b in _ESCAPES)):
        return None
    header = orjson.loads(head)
    if header.get("flush") or header.get("ids") or header.get("flags") or "tenant" not in header:
        return None
    source = str(header.get("source", ""))
    if source.startswith(RAW_LINE_SOURCES):
        return None
    count = body.count(b"\n") + 1
    if count >> INDEX_BITS:
        return None
    data = body[1:].replace(b"\nJ", b"\n")
    try:
        options = pj.ReadOptions(use_threads=False, block_size=len(data) + 1)
        table = pj.read_json(io.BytesIO(data), read_options=options)
    except (pa.ArrowException, UnicodeDecodeError, ValueError):
        return None
    if table.num_rows != count:
        return None
    columns: dict[str, pa.Array] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        role = RECORD_KEY_ROLES.get(name)
        if role is None or role in columns or role == "source":  # a record's own source: the row path
            return None
        columns[role] = column.combine_chunks()
    observed = int(header.get("observed_us") or now_us)
    try:
        return _part(columns, header, source, count, limits, observed, pos)
    except Exception:  # anything unforeseen in a column: the row path reads the entry (never rejected here)
        return None


def _part(
    columns: dict[str, pa.Array],
    header: dict[str, Any],
    source: str,
    n: int,
    limits: Limits,
    observed: int,
    pos: int,
) -> Part | None:
    for role, column in columns.items():
        allowed = _TYPES.get(role)
        if allowed is not None and column.type not in allowed:
            return None
        if column.type == pa.string():
            limit = _text_limit(role, limits)
            if limit and _longest(column) > limit:
                return None
    attributes = _attributes(columns.get("attributes"), n, limits)
    if attributes is None:
        return None
    ts = _times(columns.get("time"), n, observed)
    if ts is None:
        return None
    message = _text(columns.get("message"), n)
    messages = message.to_pylist()
    levels, level_raw = _levels(columns.get("level"), messages, n)
    services = _filled(columns.get("service"), n, str(header.get("service", "")))
    hosts = _filled(columns.get("host"), n, str(header.get("host", "")))
    trace, span = _text(columns.get("trace_id"), n), _text(columns.get("span_id"), n)
    tenant = str(header["tenant"])
    uids = _uids(services, tenant, str(header.get("key") or f"wal:{pos}"))
    keys, values, offsets = attributes
    lists: list[list[Any]] = [
        [tenant] * n,
        ts.tolist(),
        [observed] * n,
        uids.tolist(),
        messages,
        services.to_pylist(),
        hosts.to_pylist(),
        levels,
        level_raw,
        [],  # the attributes: flat, below
        [source] * n,
        trace.to_pylist(),
        span.to_pylist(),
        [[] for _ in range(n)],
    ]
    arrays = {
        "tenant": pa.array(lists[0], pa.string()),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "observed_lag_us": pa.array(observed - ts, pa.int64()),
        "uid": pa.array(uids, pa.uint64()),
        "service": services,
        "host": hosts,
        "message": message,
        "attributes": pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), keys, values),
        "source": pa.array(lists[10], pa.string()),
        "trace_id": trace,
        "span_id": span,
        "flags": empty_string_lists(n),
    }
    return Part(lists, arrays, (keys.to_pylist(), values.to_pylist(), np.diff(offsets).tolist()))


def _longest(column: pa.Array) -> int:
    """The longest text of a string column, in bytes (0 when it holds none)."""
    return int(pc.max(pc.binary_length(column)).as_py() or 0)


def _text_limit(role: str, limits: Limits) -> int:
    """The longest text of ``role`` the row path keeps as it is (0: no limit of its own here)."""
    if role == "message":
        return limits.max_message_bytes
    if role == "level":
        return 64
    if role in _MAX_TEXT:
        return min(_MAX_TEXT[role], limits.max_attribute_value_bytes)
    return 0


def _text(column: pa.Array | None, n: int) -> pa.Array:
    """A text column with a missing value as the empty text (what the row path reads for it)."""
    if column is None:
        return pa.array([""] * n, pa.string())
    return column.fill_null("") if column.null_count else column


def _filled(column: pa.Array | None, n: int, default: str) -> pa.Array:
    """``_text``, with ``default`` (the sender's service or host for the input) for the empty ones."""
    text = _text(column, n)
    if not default:
        return text
    return pc.if_else(pc.equal(text, ""), default, text)


def _times(column: pa.Array | None, n: int, observed: int) -> np.ndarray | None:
    """The events' times in µs as ``records.time_from`` reads each, the observed time where none is
    given; None when one does not read or falls outside the sanity window (the row path decides)."""
    if column is None:
        return np.full(n, observed, np.int64)
    valid = None if not column.null_count else column.is_valid().to_numpy(zero_copy_only=False)
    kind = column.type
    if pa.types.is_timestamp(kind):  # ISO 8601 texts Arrow read itself, zone-less ones as UTC
        if kind.tz not in (None, "UTC", "+00:00"):
            return None
        us = column.cast(pa.timestamp("us")).cast(pa.int64()).fill_null(0).to_numpy()
    elif kind == pa.string():
        found: dict[str, int | None] = {}
        out = []
        for text in column.to_pylist():
            if text is None:
                out.append(0)
                continue
            ts = found[text] if text in found else found.setdefault(text, time_from(text))
            if ts is None:
                return None
            out.append(ts)
        us = np.array(out, np.int64)
    elif kind in (pa.int64(), pa.float64()):
        raw = column.fill_null(0).to_numpy()
        f = raw.astype(np.float64)
        a = np.abs(f)
        if kind == pa.float64() and (a >= _EXACT_FLOAT).any():
            return None
        # records.time_from by magnitude: ns, µs, ms, s (the float products truncated, as int() does)
        us = np.empty(len(raw), np.int64)
        whole = raw if kind == pa.int64() else np.trunc(f).astype(np.int64)
        ns, micros, ms, s = a >= 1e17, (a >= 1e14) & (a < 1e17), (a >= 1e11) & (a < 1e14), a < 1e11
        us[ns] = whole[ns] // 1000
        us[micros] = whole[micros]
        us[ms] = np.trunc(f[ms] * 1000)
        us[s] = np.trunc(f[s] * 1_000_000)
    else:
        return None
    if valid is not None:
        us = np.where(valid, us, observed)
    if (us > observed + MAX_FUTURE_US).any() or (us < MIN_TS_US).any():
        return None
    times: np.ndarray = us.astype(np.int64)
    return times


def _levels(column: pa.Array | None, messages: list[str], n: int) -> tuple[list[int], list[str]]:
    """Levels (as ints) and the level texts as the row path keeps them: the record's value, or the
    level word guessed from the message when the record gives none or one that names no level."""
    if column is None:
        values: list[Any] = [None]
        index: list[int] = [0] * n
    else:
        encoded = column.dictionary_encode()
        values = encoded.dictionary.to_pylist()
        if encoded.null_count:  # a record without a level: one more distinct value, None
            values.append(None)
            index = encoded.indices.fill_null(len(values) - 1).to_pylist()
        else:
            index = encoded.indices.to_pylist()
    known = [None if value is None else level_from(value) for value in values]
    texts = ["" if value is None else str(value) for value in values]
    levels = [int(known[i] or 0) for i in index]
    raw = list(map(texts.__getitem__, index))
    for i, code in enumerate(index) if None in known else ():
        if known[code] is None:  # the row path guesses from the message
            level, guessed = guess_level(messages[i])
            levels[i] = int(level)
            raw[i] = raw[i] or guessed
    return levels, raw


def _uids(services: pa.Array, tenant: str, position: str) -> np.ndarray:
    """``assemble_rows``' uids: per service, its input digest and the count of its events so far."""
    encoded = services.dictionary_encode()
    index = encoded.indices.to_numpy(zero_copy_only=False)
    uids = np.zeros(len(index), np.uint64)
    for code, service in enumerate(encoded.dictionary.to_pylist()):
        at = np.flatnonzero(index == code)
        uids[at] = np.uint64(input_uid_base(tenant, position, service, 0)) | np.arange(len(at), dtype=np.uint64)
    return uids


def _attributes(column: pa.Array | None, n: int, limits: Limits) -> tuple[pa.Array, pa.Array, np.ndarray] | None:
    """The attribute object's members as a map's keys, values and offsets; None when the row path
    decides (not an object of texts, too many keys, a key or value beyond its limits)."""
    none = (pa.array([], pa.string()), pa.array([], pa.string()), np.zeros(n + 1, np.int32))
    if column is None:
        return none
    kind = column.type
    if not pa.types.is_struct(kind) or kind.num_fields > limits.max_attributes:
        return None
    names = [kind.field(i).name for i in range(kind.num_fields)]
    for i, name in enumerate(names):
        if not name or len(name.encode()) > 256 or kind.field(i).type != pa.string():
            return None
    children = [column.field(i) for i in range(kind.num_fields)]
    for child in children:
        if _longest(child) > limits.max_attribute_value_bytes:
            return None
    k = len(names)
    if k == 0:
        return none
    # Row-major: each event's members in the struct's field order, then only those it has.
    order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).ravel()
    values = pa.concat_arrays(children).take(pa.array(order))
    keys = pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(k, dtype=np.int32), n)), pa.array(names))
    present = values.is_valid().to_numpy(zero_copy_only=False)
    if column.null_count:  # an event without the object: none of its members
        present &= np.repeat(column.is_valid().to_numpy(zero_copy_only=False), k)
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(present.reshape(n, k).sum(axis=1), out=offsets[1:])
    if int(offsets[-1]) == n * k:
        return keys.cast(pa.string()), values, offsets
    mask = pa.array(present)
    return keys.filter(mask).cast(pa.string()), values.filter(mask), offsets
