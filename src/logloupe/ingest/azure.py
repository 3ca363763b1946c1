"""Azure Monitor Logs: a poller running a KQL query over a Log Analytics workspace.

Each poll queries the window ``[high - overlap, now - settle)``, where ``high`` is the end of the
last complete window (the time-window checkpoint); the overlap catches rows that Log Analytics
makes searchable late. Rows are told apart by a key (the configured id columns, or a hash of
every column); the keys of rows newer than ``high - overlap`` are kept in the checkpoint, so the
overlap never stores a row twice. The query is wrapped as ``<query> | where <time> in window |
sort by <time> asc | take <page_rows>``; a full page continues from its last row's time (rows
at that exact time are de-duplicated by key; a page all at one time widens the next one), and
that page cursor is in the checkpoint, so a restart between pages resumes the page. The batch
in flight is written into the checkpoint first and looked up in the sink after a crash, as in
the file tail.

Credentials: ``azure-identity``'s DefaultAzureCredential unless one is passed in; ``endpoint``
points at another cloud (or a local stand-in in tests).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from logloupe.ingest.checkpoints import Checkpoints
from logloupe.ingest.sinks import Sink
from logloupe.ingest.sources import PolledSource, SourceStatus
from logloupe.model import from_micros, to_micros

log = logging.getLogger(__name__)

MAX_SEEN_KEYS = 200_000


@dataclass
class AzureConfig:
    workspace_id: str
    query: str
    endpoint: str = "https://api.loganalytics.io"
    time_column: str = "TimeGenerated"
    message_column: str = "Message"
    id_columns: list[str] = field(default_factory=list)  # empty: a hash of every column
    service: str = ""  # default "azure"
    labels: dict[str, str] = field(default_factory=dict)
    start_lookback_s: float = 0.0
    overlap_s: float = 300.0
    settle_s: float = 60.0
    max_window_s: float = 86400.0
    page_rows: int = 5000
    poll_s: float = 30.0
    server_timeout_s: int = 180
    ca_bundle: str | None = None


def make_client(cfg: AzureConfig, credential: Any = None) -> Any:
    from azure.monitor.query import LogsQueryClient

    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    kwargs: dict[str, Any] = {"endpoint": cfg.endpoint}
    if cfg.ca_bundle:
        kwargs["connection_verify"] = cfg.ca_bundle
    return LogsQueryClient(credential, **kwargs)


def _kql_datetime(us: int) -> str:
    return f"datetime({from_micros(us).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


class AzureMonitorPoller(PolledSource):
    kind = "azure"
    pending_key = "rows"

    def __init__(
        self,
        config: AzureConfig,
        sink: Sink,
        checkpoints: Checkpoints,
        *,
        source_id: str | None = None,
        client: Any = None,
        credential: Any = None,
        stopping: threading.Event | None = None,
        clock: Any = time.time,
    ) -> None:
        self.cfg = config
        self.sink = sink
        self.checkpoints = checkpoints
        self.id = source_id or f"azure:{config.workspace_id}"
        self.client = client if client is not None else make_client(config, credential)
        self.stopping = stopping or threading.Event()
        self.idle_s = config.poll_s
        self.clock = clock
        self.status = SourceStatus(self.id, self.kind)
        saved = checkpoints.load(self.id) or {}
        self.high_us: int | None = saved.get("high_us")
        self.seen: dict[str, int] = saved.get("seen", {})
        self.page_from_us: int | None = saved.get("page_from_us")
        self.window_end_us: int | None = saved.get("window_end_us")
        self._pending: dict[str, Any] | None = saved.get("pending")
        self._widen = 1  # page size multiplier while more than a page of rows share one time

    def _save(self, pending: dict[str, Any] | None = None) -> None:
        self.checkpoints.save(
            self.id,
            {
                "high_us": self.high_us,
                "seen": self.seen,
                "page_from_us": self.page_from_us,
                "window_end_us": self.window_end_us,
                "pending": pending,
            },
        )

    def _advance(self, rows: list[Any]) -> None:
        """Remember the (key, time) pairs delivered; keys older than the overlap are forgotten."""
        for key, ts in rows:
            self.seen[key] = ts
            if self.high_us is None or ts > self.high_us:
                self.high_us = ts
        if self.high_us is not None:
            horizon = self.high_us - int(self.cfg.overlap_s * 1_000_000)
            if len(self.seen) > MAX_SEEN_KEYS or any(ts < horizon for ts in self.seen.values()):
                kept = sorted(((ts, k) for k, ts in self.seen.items() if ts >= horizon), reverse=True)
                self.seen = {k: ts for ts, k in kept[:MAX_SEEN_KEYS]}

    def _key(self, row: dict[str, Any]) -> str:
        cols = self.cfg.id_columns or sorted(row)
        raw = orjson.dumps([row.get(c) for c in cols], default=str)
        return hashlib.blake2b(raw, digest_size=12).hexdigest()

    def _query(self, start_us: int, end_us: int) -> list[dict[str, Any]]:
        tc = self.cfg.time_column
        kql = (
            f"{self.cfg.query}\n| where {tc} >= {_kql_datetime(start_us)} and {tc} < {_kql_datetime(end_us)}"
            f"\n| sort by {tc} asc\n| take {self.cfg.page_rows * self._widen}"
        )
        try:
            result = self.client.query_workspace(
                self.cfg.workspace_id,
                kql,
                timespan=(from_micros(start_us), from_micros(end_us)),
                server_timeout=self.cfg.server_timeout_s,
            )
        except Exception as exc:  # azure-core HttpResponseError, ServiceRequestError, auth errors
            self.status.error("api", f"query_workspace: {exc}")
            self.status.state = "retrying"
            raise
        tables = getattr(result, "tables", None) or getattr(result, "partial_data", None) or []
        if getattr(result, "partial_error", None) is not None:
            self.status.error("api", f"partial result: {result.partial_error}")
        rows: list[dict[str, Any]] = []
        for table in tables[:1]:
            columns = list(table.columns)
            for row in table.rows:
                rows.append({c: _jsonable(row[i]) for i, c in enumerate(columns)})
        return rows

    def _time_us(self, row: dict[str, Any]) -> int | None:
        value = row.get(self.cfg.time_column)
        if not isinstance(value, str):
            return None
        try:
            return to_micros(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None

    def _record(self, row: dict[str, Any], ts_us: int) -> dict[str, Any]:
        attrs = {
            k: v for k, v in row.items() if k not in (self.cfg.time_column, self.cfg.message_column) and v is not None
        }
        message = row.get(self.cfg.message_column)
        if message is None:
            message = orjson.dumps(row).decode()
        return {
            "message": str(message),
            "ts": ts_us,
            "service": self.cfg.service or "azure",
            "attributes": {**self.cfg.labels, **attrs, "azure.workspace": self.cfg.workspace_id},
        }

    def step(self) -> bool:
        if not self._recover():
            return False
        now = int(self.clock() * 1_000_000)
        if self.high_us is None and not self.seen:
            self.high_us = now - int(self.cfg.start_lookback_s * 1_000_000)
            self._save()
        assert self.high_us is not None
        if self.window_end_us is None:
            start = self.high_us - int(self.cfg.overlap_s * 1_000_000)
            end = min(now - int(self.cfg.settle_s * 1_000_000), start + int(self.cfg.max_window_s * 1_000_000))
            if end <= self.high_us:
                self._update_lag()
                return False
            self.window_end_us = end
            self.page_from_us = start
            self._save()
        assert self.page_from_us is not None
        rows = self._query(self.page_from_us, self.window_end_us)
        self.status.last_read_at = time.time()
        fresh: list[tuple[str, int, dict[str, Any]]] = []
        last_ts = self.page_from_us
        for row in rows:
            ts = self._time_us(row)
            if ts is None:
                self.status.error("row", f"row without a readable {self.cfg.time_column}")
                continue
            last_ts = max(last_ts, ts)
            key = self._key(row)
            if key not in self.seen:
                fresh.append((key, ts, row))
        delivered = False
        if fresh:
            pairs = [(k, ts) for k, ts, _ in fresh]
            if not self._deliver([self._record(row, ts) for _, ts, row in fresh], pairs):
                return False
            delivered = True
        if len(rows) >= self.cfg.page_rows * self._widen:
            # A full page: continue from its last row's time (rows there are known by key).
            # When a whole page shares that time and brought nothing new, ask for a bigger page.
            if last_ts == self.page_from_us and not fresh:
                self._widen *= 2
            else:
                self._widen = 1
            self.page_from_us = last_ts
        else:
            self._widen = 1
            # The window is complete: the checkpoint moves to its end (the next one overlaps it).
            self.high_us = max(self.high_us or 0, self.window_end_us)
            self.window_end_us = None
            self.page_from_us = None
        self._save()
        self.status.state = "running"
        self._update_lag()
        return delivered or self.window_end_us is not None

    def _update_lag(self) -> None:
        high_s = self.high_us / 1_000_000 if self.high_us else None
        self.status.caught_up_to(
            high_s,
            {
                "high_us": self.high_us,
                "page_from_us": self.page_from_us,
                "window_end_us": self.window_end_us,
                "seen_keys": len(self.seen),
            },
        )
