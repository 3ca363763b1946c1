"""Prometheus metrics: one registry for the process; each stage defines its metrics here by name
so the exposition and docs/metrics.md stay in one place."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

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
QUARANTINE_PRUNED = Counter(
    "logloupe_quarantine_pruned",
    "Quarantined items deleted past their tenant's retention (age) or the quarantine's size cap (size).",
    ["tenant", "reason"],
    registry=REGISTRY,
)
DROPPED = Counter(
    "logloupe_dropped_events",
    "Events dropped where a protocol cannot push back (UDP), by source and reason.",
    ["source", "reason"],
    registry=REGISTRY,
)
DUPLICATES_DROPPED = Counter(
    "logloupe_duplicate_events",
    "Events left out at insert because the store holds them already (a re-sent input), by tenant.",
    ["tenant"],
    registry=REGISTRY,
)
WRITER_QUEUE = Gauge("logloupe_writer_queue_events", "Events waiting for the store writer.", registry=REGISTRY)
MULTILINE_OPEN = Gauge(
    "logloupe_multiline_open_records",
    "Multiline records (stack traces) waiting for their next line across requests.",
    registry=REGISTRY,
)
MULTILINE_EVICTED = Counter(
    "logloupe_multiline_evicted_total",
    "Open multiline records stored early because too many streams held one.",
    registry=REGISTRY,
)
INGEST_LATENCY = Histogram(
    "logloupe_ingest_ack_seconds",
    "Time from receiving an ingest request to acknowledging it.",
    ["source"],
    registry=REGISTRY,
)
STORE_INSERT_SECONDS = Histogram(
    "logloupe_store_insert_seconds", "Duration of one batched insert into the event store.", registry=REGISTRY
)
AUTH_FAILURES = Counter(
    "logloupe_auth_failures",
    "Rejected credentials and permission checks, by reason.",
    ["reason"],
    registry=REGISTRY,
)
LOGINS = Counter(
    "logloupe_logins",
    "Login attempts, by outcome (ok, bad_credentials, locked, rate_limited).",
    ["outcome"],
    registry=REGISTRY,
)
QUOTA_REJECTED = Counter(
    "logloupe_quota_rejected_events",
    "Events refused with 429 because a tenant's ingest quota was reached, by tenant and quota.",
    ["tenant", "quota"],
    registry=REGISTRY,
)

# -- analysis results, counted as events are stored (names as in the issue: log_<class>_total) --
LOG_INCIDENT = Counter(
    "log_incident", "Events classified incident, by tenant and service.", ["tenant", "service"], registry=REGISTRY
)
LOG_WARNING = Counter(
    "log_warning",
    "Events classified preventive_action (worth acting on before they become incidents), by tenant and service.",
    ["tenant", "service"],
    registry=REGISTRY,
)
LOG_NORMAL = Counter(
    "log_normal", "Events classified normal, by tenant and service.", ["tenant", "service"], registry=REGISTRY
)
ANOMALY_SCORE = Histogram(
    "logloupe_anomaly_score",
    "Scores of reported anomalies (0..1), by tenant and kind.",
    ["tenant", "kind"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
    registry=REGISTRY,
)
ANOMALY_LAST_SCORE = Gauge(
    "logloupe_anomaly_last_score",
    "Score of the latest anomaly, by tenant and kind.",
    ["tenant", "kind"],
    registry=REGISTRY,
)

# -- alerting --
ALERT_NOTIFICATIONS = Counter(
    "logloupe_alert_notifications",
    "Alert outcomes by tenant, rule type and state (firing, resolved, suppressed, silenced).",
    ["tenant", "rule_type", "state"],
    registry=REGISTRY,
)
ALERT_DELIVERIES = Counter(
    "logloupe_alert_deliveries",
    "Notification deliveries by channel and result (sent, failed, rate_limited, not_configured, dropped).",
    ["channel", "result"],
    registry=REGISTRY,
)
ALERT_DELIVERY_SECONDS = Histogram(
    "logloupe_alert_delivery_seconds",
    "Time to deliver one notification on one channel, retries included.",
    ["channel"],
    registry=REGISTRY,
)
ALERT_EVALUATION_SECONDS = Histogram(
    "logloupe_alert_evaluation_seconds",
    "Time to evaluate one rule (scheduled) or one stored batch (streaming).",
    ["rule_type"],
    registry=REGISTRY,
)
ALERT_LATENCY_SECONDS = Histogram(
    "logloupe_alert_latency_seconds",
    "From the newest matching event's arrival to its notification being queued.",
    ["rule_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
ALERT_FIRING = Gauge("logloupe_alert_firing", "Alerts currently firing, by tenant.", ["tenant"], registry=REGISTRY)
METRICS_PUSHES = Counter(
    "logloupe_metrics_pushes", "Pushes to VictoriaMetrics by result (ok, failed).", ["result"], registry=REGISTRY
)


def push_metrics(client: httpx.Client, base_url: str, extra_label: str = "") -> None:
    """One push of the whole registry to VictoriaMetrics' Prometheus-text import endpoint."""
    url = base_url.rstrip("/") + "/api/v1/import/prometheus"
    params = {"extra_label": extra_label} if extra_label else None
    response = client.post(url, content=generate_latest(REGISTRY), params=params)
    response.raise_for_status()


class MetricsPusher:
    """Pushes the registry every ``interval_s`` on a daemon thread; failures are counted, never fatal."""

    def __init__(self, base_url: str, interval_s: float, client: httpx.Client | None = None) -> None:
        self.base_url = base_url
        self.interval_s = interval_s
        self._own = client is None
        self.client = client or httpx.Client(timeout=10.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logloupe-metrics-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def push_once(self) -> bool:
        try:
            push_metrics(self.client, self.base_url)
        except httpx.HTTPError as exc:
            METRICS_PUSHES.labels("failed").inc()
            log.warning("metrics push to %s failed: %s", self.base_url, exc)
            return False
        METRICS_PUSHES.labels("ok").inc()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.push_once()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.push_once()  # the last values before shutdown
        if self._own:
            self.client.close()


BUFFER_BYTES = Gauge(
    "logloupe_buffer_bytes", "Bytes in the write-ahead buffer not yet in the store.", registry=REGISTRY
)
BUFFER_FSYNC_SECONDS = Histogram(
    "logloupe_buffer_fsync_seconds", "Duration of one group-commit fsync of the write-ahead buffer.", registry=REGISTRY
)
RATE_LIMITED = Counter(
    "logloupe_rate_limited_requests",
    "Ingest requests refused with 429, by tenant and reason (rate_limit, buffer_full).",
    ["tenant", "reason"],
    registry=REGISTRY,
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

LLM_PATTERN_LABELS = Counter(
    "logloupe_llm_pattern_labels",
    "New patterns handled by the background LLM labeller (llm_classify_new_patterns), by outcome.",
    ["outcome"],
    registry=REGISTRY,
)


# The pattern miner (parse/patterns.py ``PatternMiner.stats()``), read when /metrics is scraped.
_MINER_GAUGES = {
    "trees": "(tenant, service) template trees held in memory",
    "clusters": "patterns (clusters) held in memory, all trees",
    "signatures": "token signatures remembered for the fast path, all trees",
    "aliases": "merged pattern ids remembered as aliases of their survivor",
    "lines": "lines learnt by the trees held now",
}
_MINER_COUNTERS = {
    "clusters_created": "patterns created",
    "clusters_evicted": "patterns evicted to keep a tree within its bound",
    "trees_evicted": "least recently used (tenant, service) trees evicted",
    "signatures_flushed": "fast-path signature tables flushed at their bound",
    "aliases_evicted": "merge aliases evicted at their bound",
    "merges": "patterns merged by users",
}


class PatternMinerCollector(Collector):
    """Gauges and counters from the server's pattern miner, read at scrape time (no per-event cost).
    ``watch`` names the callable returning ``PatternMiner.stats()``; zeros until one is set."""

    def __init__(self) -> None:
        self._stats: Callable[[], dict[str, int]] | None = None

    def watch(self, stats: Callable[[], dict[str, int]] | None) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        return list(self._families({}))

    def collect(self) -> Iterator[Metric]:
        stats: dict[str, int] = {}
        if self._stats is not None:
            try:
                stats = self._stats()
            except Exception:  # a scrape must never fail for this
                log.exception("pattern miner stats unavailable")
        return self._families(stats)

    @staticmethod
    def _families(stats: dict[str, int]) -> Iterator[Metric]:
        for key, text in _MINER_GAUGES.items():
            yield GaugeMetricFamily(f"logloupe_patterns_{key}", f"Pattern miner: {text}.", value=stats.get(key, 0))
        for key, text in _MINER_COUNTERS.items():
            yield CounterMetricFamily(f"logloupe_patterns_{key}", f"Pattern miner: {text}.", value=stats.get(key, 0))


PATTERN_MINER = PatternMinerCollector()
REGISTRY.register(PATTERN_MINER)
