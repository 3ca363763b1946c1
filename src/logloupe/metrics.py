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
ANOMALIES = Counter(
    "logloupe_anomalies",
    "Anomalies at or above the threshold, stored and published, by tenant and kind.",
    ["tenant", "kind"],
    registry=REGISTRY,
)
ANOMALY_SKIPPED = Counter(
    "logloupe_anomaly_skipped_events",
    "Stored events the anomaly detectors did not see or judge, by reason.",
    ["reason"],
    registry=REGISTRY,
)
ANOMALIES_REPEATED = Counter(
    "logloupe_anomalies_repeated",
    "Anomalies not stored because the same kind, service and pattern was stored within anomaly_repeat_s.",
    ["tenant", "kind"],
    registry=REGISTRY,
)
