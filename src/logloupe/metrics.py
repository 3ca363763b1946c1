"""Prometheus metrics: one registry for the process; each stage defines its metrics here by name
so the exposition and docs/metrics.md stay in one place."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

INGESTED = Counter(
    "logloupe_ingested_events",
    "Events stored, by tenant, source and level.",
    ["tenant", "source", "level"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "logloupe_rejected_events",
    "Input items rejected or quarantined, by tenant, source and reason.",
    ["tenant", "source", "reason"],
    registry=REGISTRY,
)
DROPPED = Counter(
    "logloupe_dropped_events",
    "Events dropped where a protocol cannot push back (UDP), by source and reason.",
    ["source", "reason"],
    registry=REGISTRY,
)
WRITER_QUEUE = Gauge("logloupe_writer_queue_events", "Events waiting for the store writer.", registry=REGISTRY)
INGEST_LATENCY = Histogram(
    "logloupe_ingest_ack_seconds",
    "Time from receiving an ingest request to acknowledging it.",
    ["source"],
    registry=REGISTRY,
)
STORE_INSERT_SECONDS = Histogram(
    "logloupe_store_insert_seconds", "Duration of one batched insert into the event store.", registry=REGISTRY
)

# Pull sources (file tail, CloudWatch, Azure Monitor): one label value per configured source.
SOURCE_EVENTS = Counter(
    "logloupe_source_events",
    "Events a pull source delivered and had acknowledged, by source.",
    ["source"],
    registry=REGISTRY,
)
SOURCE_ERRORS = Counter(
    "logloupe_source_errors",
    "Pull source failures (sink not acknowledging, remote API errors, unreadable files), by source and kind.",
    ["source", "kind"],
    registry=REGISTRY,
)
SOURCE_LAG_BYTES = Gauge(
    "logloupe_source_lag_bytes",
    "File tail: bytes written to the followed files and not yet acknowledged, by source.",
    ["source"],
    registry=REGISTRY,
)
SOURCE_LAG_SECONDS = Gauge(
    "logloupe_source_lag_seconds",
    "Seconds between now and the newest acknowledged event time (cloud pollers) or last read (tail).",
    ["source"],
    registry=REGISTRY,
)
SOURCE_POSITION = Gauge(
    "logloupe_source_position",
    "Checkpoint position: acknowledged bytes over all files (tail), or the checkpoint time in epoch seconds.",
    ["source"],
    registry=REGISTRY,
)
SOURCE_FILES = Gauge(
    "logloupe_source_open_files",
    "File tail: files held open, by source.",
    ["source"],
    registry=REGISTRY,
)
