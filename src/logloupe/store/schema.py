"""Registered schema migrations of the event store, applied in order and recorded by name.

Never ALTER at start-up outside this list: add a migration at the end instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logloupe.store.events import EventStore

LEVEL_ENUM = "Enum8('TRACE' = 1, 'DEBUG' = 2, 'INFO' = 3, 'WARN' = 4, 'ERROR' = 5, 'FATAL' = 6)"

# Codecs chosen by measurement with benchmarks/store.py (see docs/storage.md):
# ts is near-monotonic within a (tenant, service) run, so Delta+ZSTD packs it to ~1 byte;
# uid was random then (8 bytes incompressible); since 0004 it counts up within an input (UID_CODEC).
# The text index: bit-packed posting lists and 2048-token dictionary blocks measured ~20% smaller
# and faster on two-token queries than the defaults (300k Loghub-like events).
_CREATE_EVENTS = f"""
CREATE TABLE IF NOT EXISTS events (
    tenant LowCardinality(String),
    ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    observed_ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    uid UInt64,
    service LowCardinality(String),
    host LowCardinality(String),
    level {LEVEL_ENUM},
    level_raw LowCardinality(String),
    message String CODEC(ZSTD(3)),
    pattern_id UInt64 CODEC(ZSTD(1)),
    pattern_vars Array(String) CODEC(ZSTD(3)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    source LowCardinality(String),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    flags Array(LowCardinality(String)),
    classification LowCardinality(String),
    anomaly_score Float32 CODEC(ZSTD(1)),
    retention_days UInt16,
    INDEX message_text message TYPE text(
        tokenizer = splitByNonAlpha, preprocessor = lower(message),
        posting_list_codec = 'bitpacking', dictionary_block_size = 2048
    )
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (tenant, service, ts)
TTL toDateTime(observed_ts) + toIntervalDay(retention_days)
SETTINGS non_replicated_deduplication_window = 10000, merge_with_ttl_timeout = 3600
"""


def _create_events(store: EventStore) -> None:
    store.execute(_CREATE_EVENTS)


# Runs of more than this many digits are indexed by their first NUMBER_PREFIX digits: block ids,
# sizes and order ids are most of the index's distinct tokens (measured: the index went from 24.6
# to 16.6 bytes/event when numbers were cut to 4 digits, 8 of those bytes being their dictionary
# entries). A search for a token with such a run still looks it up in the index (the search term
# goes through the same preprocessor, so the index answers a superset) and then checks the exact
# token on the candidate rows (``store/query.py: text_condition``). 8 digits keep epoch-second and
# millisecond numbers of a day apart. One regex pass: ~10 % cheaper to insert than splitting,
# mapping and joining the tokens (measured on 1M events), same index.
NUMBER_PREFIX = 8

_MESSAGE_INDEX = f"""
    INDEX message_text message TYPE text(
        tokenizer = splitByNonAlpha,
        preprocessor = replaceRegexpAll(lower(message), '([0-9]{{{NUMBER_PREFIX}}})[0-9]+', '\\\\1'),
        posting_list_codec = 'bitpacking', dictionary_block_size = 2048
    )
"""

# Counts per tenant, level and minute, and per tenant, service, level and minute, kept inside each
# part: the histogram reads these instead of the rows when its query names only service and level
# (``store/search.py: histogram``); the engine picks the smaller one that answers the query (without
# a service condition, the one without services: 10× fewer rows with 10 services). Being part of
# the parts, they are deduplicated, merged, expired by TTL and deleted by retention mutations
# together with the rows they count.
MINUTE_COUNTS = ("minute_counts", "minute_counts_by_service")
_MINUTE_PROJECTIONS = [
    """PROJECTION minute_counts (
        SELECT tenant, level, toStartOfMinute(ts), count() GROUP BY tenant, level, toStartOfMinute(ts)
    )""",
    """PROJECTION minute_counts_by_service (
        SELECT tenant, service, level, toStartOfMinute(ts), count()
        GROUP BY tenant, service, level, toStartOfMinute(ts)
    )""",
]


def _smaller_index_and_minute_counts(store: EventStore) -> None:
    """Index long numbers by prefix, ZSTD for the index and small columns, the per-minute counts.

    Measured on 1M benchmark events (benchmarks/store.py): the index 23.7 → about 16 bytes/event
    (ZSTD instead of LZ4 on its files −4, number prefixes −3.5), host/level/level_raw 1.5 → 0.7.
    Existing parts are rewritten now (mutations_sync) so no part is searched without its index.
    """
    sync = "SETTINGS mutations_sync = 2"
    store.execute("ALTER TABLE events MODIFY SETTING default_compression_codec = 'ZSTD(3)'")
    store.execute(
        "ALTER TABLE events"
        " MODIFY COLUMN host LowCardinality(String) CODEC(ZSTD(1)),"
        f" MODIFY COLUMN level {LEVEL_ENUM} CODEC(ZSTD(1)),"
        " MODIFY COLUMN level_raw LowCardinality(String) CODEC(ZSTD(1))"
    )
    store.execute("ALTER TABLE events DROP INDEX IF EXISTS message_text")
    store.execute(f"ALTER TABLE events ADD {_MESSAGE_INDEX.strip()}")
    for projection in _MINUTE_PROJECTIONS:
        store.execute(f"ALTER TABLE events ADD {projection}")
    store.execute(f"ALTER TABLE events MATERIALIZE INDEX message_text {sync}")
    for name in MINUTE_COUNTS:
        store.execute(f"ALTER TABLE events MATERIALIZE PROJECTION {name} {sync}")


# The table as rebuilt by 0003 (``_rebuild_events``):
# - 1,024 rows per granule instead of 8,192: a page of newest events, a needle's row or an event by id
#   reads one granule per service, so 8× fewer rows of every column are read and decompressed (at
#   5M events, page reads took about a third less time); the marks cost ~0.2 bytes/event more. The
#   per-minute counts keep 8,192 (their rows are few and read whole: smaller granules only add marks).
# - observed_ts is stored as its lag behind ts (``observed_lag_us``, microseconds): arrival follows
#   the event by milliseconds to minutes, so the lag packs to a few bits where the absolute time
#   cost as much as ts itself (2.8 bytes/event); ``observed_ts`` stays readable as an ALIAS.
_EVENTS_V3 = f"""
CREATE TABLE {{name}} (
    tenant LowCardinality(String),
    ts DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    observed_lag_us Int64 CODEC(T64, ZSTD(1)),
    observed_ts DateTime64(6, 'UTC') ALIAS addMicroseconds(ts, observed_lag_us),
    uid UInt64,
    service LowCardinality(String),
    host LowCardinality(String) CODEC(ZSTD(1)),
    level {LEVEL_ENUM} CODEC(ZSTD(1)),
    level_raw LowCardinality(String) CODEC(ZSTD(1)),
    message String CODEC(ZSTD(3)),
    pattern_id UInt64 CODEC(ZSTD(1)),
    pattern_vars Array(String) CODEC(ZSTD(3)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    source LowCardinality(String),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    flags Array(LowCardinality(String)),
    classification LowCardinality(String),
    anomaly_score Float32 CODEC(ZSTD(1)),
    retention_days UInt16,
    {_MESSAGE_INDEX.strip()},
    {_MINUTE_PROJECTIONS[0]} WITH SETTINGS (index_granularity = 8192),
    {_MINUTE_PROJECTIONS[1]} WITH SETTINGS (index_granularity = 8192)
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (tenant, service, ts)
TTL toDateTime(addMicroseconds(ts, observed_lag_us)) + toIntervalDay(retention_days)
SETTINGS index_granularity = 1024, default_compression_codec = 'ZSTD(3)',
    non_replicated_deduplication_window = 10000, merge_with_ttl_timeout = 3600
"""

# Every column of the old table but observed_ts, in the new table's order.
_COPIED = (
    "tenant, ts, uid, service, host, level, level_raw, message, pattern_id, pattern_vars, attributes,"
    " source, trace_id, span_id, flags, classification, anomaly_score, retention_days"
)


def _rebuild_events(store: EventStore) -> None:
    """Rebuild ``events`` as ``_EVENTS_V3``: the granule size is fixed when a table is created.

    Copies every row (about 5 s per million events on this project's 2-core machine), then swaps
    the tables atomically; a crash before the swap leaves the old table in use and the step is
    run again at the next start.
    """
    _replace_events(
        store,
        "events_v3",
        _EVENTS_V3.replace("{name}", "events_v3"),
        f"INSERT INTO events_v3 ({_COPIED}, observed_lag_us)"
        f" SELECT {_COPIED}, toUnixTimestamp64Micro(observed_ts) - toUnixTimestamp64Micro(ts) FROM events",
    )


def _replace_events(store: EventStore, name: str, create: str, copy: str) -> None:
    """Create the table ``name`` (``create``), copy every row of ``events`` into it (``copy``), then
    swap the two atomically and drop the old one. A crash before the swap leaves the old table in
    use; the step then runs again from the start."""
    store.execute(f"DROP TABLE IF EXISTS {name} SYNC")
    store.execute(create)
    store.execute(f"{copy} SETTINGS insert_deduplicate = 0, max_partitions_per_insert_block = 0")
    store.execute(f"EXCHANGE TABLES events AND {name}")
    store.execute(f"DROP TABLE {name} SYNC")
    # The engine's memory of recent insert tokens stayed with the old table: the replay of a
    # write-ahead range a crash interrupted is stored once all the same, because every insert leaves
    # out the rows the table holds (``EventStore._new_rows``).


# uid packs as runs of consecutive numbers: an input's events of one service share a digest in the
# high bits and count up in the low bits (``model.input_uid``), and rows of one service sorted by ts
# keep that order. Measured on 1M benchmark events (inputs of 10,000 events across 10 services, twin
# tables ordered like ``events``) with uids counting per input (before they counted per service),
# bytes/event: Delta + ZSTD(3) 0.69, Delta + ZSTD(1) 0.91, DoubleDelta + ZSTD(1) 1.02, T64 + ZSTD(1)
# 1.40, Delta + LZ4 2.87, LZ4 alone 4.05, Delta + ZSTD(9) 1.04 (random uids: 8.0).
UID_CODEC = "CODEC(Delta, ZSTD(3))"
# Measured the same way: attributes ZSTD(3) 1.00, ZSTD(9) 0.77, ZSTD(19) 0.60 (too slow to write at
# ingest rates); host ZSTD(9) no gain; ts Delta + ZSTD(1) 2.91, ZSTD(3) 2.86, ZSTD(9) 3.07 (at 5M
# events ZSTD(3) saved 0.007 bytes/event: ts keeps ZSTD(1)).
ATTRIBUTES_CODEC = "CODEC(ZSTD(9))"
# ``level_raw`` (the level as written) is the level's own name for most events: stored as a NUL alone
# then, in ``level_raw_text`` (``events.stored_level_raw``), and read back through the ``level_raw``
# alias. Saves its 0.26 bytes/event where the raw text is the name; other spellings ("warning", "E")
# and no text at all are stored as before, so rows written before this read back unchanged (a text
# that begins with a NUL is stored with one more NUL in front).
LEVEL_RAW_ALIAS = (
    "if(level_raw_text = '\\0', toString(level),"
    " if(startsWith(level_raw_text, '\\0'), substring(level_raw_text, 2), toString(level_raw_text)))"
)


def _smaller_columns(store: EventStore) -> None:
    """``UID_CODEC``, ``ATTRIBUTES_CODEC``, and ``level_raw`` stored as a mark when it is
    the level's name (``LEVEL_RAW_ALIAS``). Nothing is rewritten now: a codec change applies to the
    parts written from here on (inserts and merges), the renamed column keeps its files, and rows
    stored before keep their level text in ``level_raw_text``, which the alias returns as it is."""
    store.execute(
        f"ALTER TABLE events MODIFY COLUMN uid UInt64 {UID_CODEC},"
        f" MODIFY COLUMN attributes Map(LowCardinality(String), String) {ATTRIBUTES_CODEC}"
    )
    store.execute("ALTER TABLE events RENAME COLUMN IF EXISTS level_raw TO level_raw_text")
    store.execute(
        f"ALTER TABLE events ADD COLUMN IF NOT EXISTS level_raw String ALIAS {LEVEL_RAW_ALIAS} AFTER level_raw_text"
    )


# The table as rebuilt by 0005 (``_rebuild_by_pattern``): rows of one service sorted by pattern, then
# time. A pattern's events lie together, so a search whose matches are one or a few patterns (a
# phrase, two words, an error class) reads their granules instead of a few candidates in every
# granule of the range, and the message column compresses better (similar lines side by side).
# Measured on copies of the 5M-event benchmark store (docs/storage.md, twelfth session): message
# 17.6 → 14.0 bytes/event, the phrase over 24 h 28 → 16 ms, two words 16 → 13, top-10 services by
# errors 68–78 → 15–40; a range of minutes on an older day reads one granule per (service, pattern)
# run instead of per service (15 minutes three days back 17–21 → 23–28 ms; the 7-day histogram
# 45–49 → 60–70 ms, from its partial minutes at either end). Events the miner has not named
# (pattern_id 0) sort by time as before.
EVENTS_ORDER_BY = "(tenant, service, pattern_id, ts)"
_ENGINE_V5 = f"""
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY {EVENTS_ORDER_BY}
TTL toDateTime(addMicroseconds(ts, observed_lag_us)) + toIntervalDay(retention_days)
SETTINGS index_granularity = 1024, default_compression_codec = 'ZSTD(3)',
    non_replicated_deduplication_window = 10000, merge_with_ttl_timeout = 3600
"""


def _rebuild_by_pattern(store: EventStore) -> None:
    """Rebuild ``events`` ordered by ``EVENTS_ORDER_BY``: a table's sort key is fixed when it is created.

    ``CREATE TABLE … AS events`` takes the columns, codecs, the text index and the per-minute
    counts as they are; every row is copied and the tables are swapped atomically, as in 0003.
    """
    _replace_events(
        store,
        "events_v5",
        f"CREATE TABLE events_v5 AS events {_ENGINE_V5.strip()}",
        "INSERT INTO events_v5 SELECT * FROM events",
    )


# Pattern variables (``pattern_vars``) are stored as spans of the message when they are its own
# text in order: [start byte, length, start, length, …] in ``pattern_var_spans``, found by the
# engine at insert from the message and the variables sent in the ephemeral ``pattern_vars``
# column; variables that are not (a miner could normalise one) are kept as text in
# ``pattern_vars_text`` instead, and reading takes one or the other (``pattern_variables``). The
# miner's variables are slices of the line, so for almost every event the text is not stored twice:
# measured on 1M benchmark events with the miner's variables, the variables cost 11.2 bytes/event
# as text (the message 13.9). Rows stored before 0006 keep their text and read back unchanged.
# ``position`` and ``substring`` count bytes, so multi-byte text is cut where it was found.
PATTERN_VAR_SPANS = (
    "arrayFold((acc, v) -> if(acc.2 = 0, acc,"
    " if((position(message, v, acc.2) AS p) = 0, (CAST([], 'Array(UInt32)'), toUInt32(0)),"
    " (arrayConcat(acc.1, [toUInt32(p - 1), toUInt32(length(v))]), toUInt32(p + length(v))))),"
    " pattern_vars, (CAST([], 'Array(UInt32)'), toUInt32(1))).1"
)
PATTERN_VARS_TEXT = "if(length(pattern_var_spans) = 2 * length(pattern_vars), [], pattern_vars)"
PATTERN_VARIABLES = (
    "if(empty(pattern_var_spans), pattern_vars_text, arrayMap(i -> substring(message,"
    " pattern_var_spans[2 * i - 1] + 1, pattern_var_spans[2 * i]), range(1, intDiv(length(pattern_var_spans), 2) + 1)))"
)
# Whether an event has variables, without reading the message.
HAS_PATTERN_VARIABLES = "(notEmpty(pattern_var_spans) OR notEmpty(pattern_vars_text))"


def _pattern_vars_as_spans(store: EventStore) -> None:
    """Variables as spans of the message (``PATTERN_VAR_SPANS``). Metadata only: no part is
    rewritten; a part written before reads its spans as empty (their default over no variables)
    and its variables from ``pattern_vars_text``, the renamed column. A step a crash interrupted
    is recognised by the columns there and not repeated."""
    columns = {r["name"] for r in store.rows("DESCRIBE TABLE events")}
    if "pattern_vars_text" not in columns:
        store.execute("ALTER TABLE events RENAME COLUMN pattern_vars TO pattern_vars_text")
    store.execute("ALTER TABLE events ADD COLUMN IF NOT EXISTS pattern_vars Array(String) EPHEMERAL")
    store.execute(
        "ALTER TABLE events ADD COLUMN IF NOT EXISTS pattern_var_spans Array(UInt32)"
        f" DEFAULT {PATTERN_VAR_SPANS} CODEC(ZSTD(3)) AFTER pattern_vars_text"
    )
    store.execute(
        f"ALTER TABLE events MODIFY COLUMN pattern_vars_text Array(String) DEFAULT {PATTERN_VARS_TEXT} CODEC(ZSTD(3))"
    )
    store.execute(
        f"ALTER TABLE events ADD COLUMN IF NOT EXISTS pattern_variables Array(String) ALIAS {PATTERN_VARIABLES}"
    )


MIGRATIONS: list[tuple[str, Callable[[EventStore], None]]] = [
    ("0001_create_events", _create_events),
    ("0002_number_prefixes_zstd_minute_counts", _smaller_index_and_minute_counts),
    ("0003_granules_of_1024_observed_lag", _rebuild_events),
    ("0004_uid_runs_smaller_columns", _smaller_columns),
    ("0005_events_by_pattern", _rebuild_by_pattern),
    ("0006_pattern_vars_as_spans", _pattern_vars_as_spans),
]


def migrate(store: EventStore) -> list[str]:
    """Apply the migrations not yet recorded; return their names."""
    store.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name String, applied_at DateTime DEFAULT now())"
        " ENGINE = MergeTree ORDER BY name"
    )
    done = {r["name"] for r in store.rows("SELECT name FROM schema_migrations")}
    applied = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        step(store)
        store.execute("INSERT INTO schema_migrations (name) VALUES ({name:String})", {"name": name})
        applied.append(name)
    return applied
