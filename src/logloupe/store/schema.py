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
# uid is random and incompressible (8 bytes) and is the price of idempotent ids.
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


MIGRATIONS: list[tuple[str, Callable[[EventStore], None]]] = [
    ("0001_create_events", _create_events),
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
