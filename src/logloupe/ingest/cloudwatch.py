"""AWS CloudWatch Logs: one poller per log group (and optional stream prefix), ``FilterLogEvents``.

The poller reads in *windows*: ``[floor, end]`` with ``end`` fixed when the window opens
(now minus ``settle_s``, the time CloudWatch may take to make fresh events searchable). Each
page of the window is a batch; after the sink acknowledges it, the checkpoint records, per log
stream, the newest event time reached and the ids of the events at exactly that time. A
restart re-opens the same window and skips, stream by stream, whatever is at or before that
position — so a restart between pages neither repeats nor skips an event (events of one stream
come in time order). When the window's last page is done, ``floor`` moves past ``end`` and the
per-stream positions are dropped. As in the file tail, the batch in flight is written into the
checkpoint first and looked up in the sink after a crash.

Credentials and region come from the usual AWS chain (environment, profile, instance role);
``endpoint_url`` points the client elsewhere (a VPC endpoint, or a local stand-in in tests).
Throttling: botocore's adaptive retry mode, then our own backoff on the step that failed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from logloupe.ingest.checkpoints import Checkpoints
from logloupe.ingest.sinks import Sink
from logloupe.ingest.sources import PolledSource, SourceStatus

log = logging.getLogger(__name__)


@dataclass
class CloudWatchConfig:
    log_group: str
    stream_prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    service: str = ""  # default: the log group name
    labels: dict[str, str] = field(default_factory=dict)
    start_lookback_s: float = 0.0  # with no checkpoint yet: start this far before now
    settle_s: float = 5.0
    max_window_s: float = 3600.0
    page_limit: int = 1000
    poll_s: float = 10.0
    max_attempts: int = 10


def make_client(cfg: CloudWatchConfig) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(profile_name=cfg.profile, region_name=cfg.region)
    return session.client(
        "logs",
        endpoint_url=cfg.endpoint_url,
        config=Config(retries={"max_attempts": cfg.max_attempts, "mode": "adaptive"}),
    )


class CloudWatchPoller(PolledSource):
    kind = "cloudwatch"
    pending_key = "events"

    def __init__(
        self,
        config: CloudWatchConfig,
        sink: Sink,
        checkpoints: Checkpoints,
        *,
        source_id: str | None = None,
        client: Any = None,
        stopping: threading.Event | None = None,
        clock: Any = time.time,
    ) -> None:
        self.cfg = config
        self.sink = sink
        self.checkpoints = checkpoints
        suffix = f":{config.stream_prefix}" if config.stream_prefix else ""
        self.id = source_id or f"cloudwatch:{config.log_group}{suffix}"
        self.client = client if client is not None else make_client(config)
        self.stopping = stopping or threading.Event()
        self.idle_s = config.poll_s
        self.clock = clock
        self.status = SourceStatus(self.id, self.kind)
        saved = checkpoints.load(self.id) or {}
        self.floor: int | None = saved.get("floor")
        self.window_end: int | None = saved.get("window_end")
        self.streams: dict[str, dict[str, Any]] = saved.get("streams", {})
        self._pending: dict[str, Any] | None = saved.get("pending")
        self._token: str | None = None  # in memory only: a restart re-opens the window
        self.newest_ts: int | None = saved.get("newest_ts")

    def _state(self, pending: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "floor": self.floor,
            "window_end": self.window_end,
            "streams": self.streams,
            "pending": pending,
            "newest_ts": self.newest_ts,
        }

    def _save(self, pending: dict[str, Any] | None = None) -> None:
        self.checkpoints.save(self.id, self._state(pending))

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _advance(self, events: list[Any]) -> None:
        """Move the per-stream positions past ``[stream, ts, id]`` triples."""
        for stream, ts, event_id in events:
            pos = self.streams.get(stream)
            if pos is None or ts > pos["ts"]:
                self.streams[stream] = {"ts": ts, "ids": [event_id]}
            elif ts == pos["ts"] and event_id not in pos["ids"]:
                pos["ids"].append(event_id)
            if self.newest_ts is None or ts > self.newest_ts:
                self.newest_ts = ts

    def _fresh(self, ev: dict[str, Any]) -> bool:
        pos = self.streams.get(ev.get("logStreamName", ""))
        if pos is None:
            return True
        ts = int(ev["timestamp"])
        return ts > pos["ts"] or (ts == pos["ts"] and ev["eventId"] not in pos["ids"])

    def _record(self, ev: dict[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            **self.cfg.labels,
            "aws.log_group": self.cfg.log_group,
            "aws.log_stream": ev.get("logStreamName", ""),
            "aws.event_id": ev["eventId"],
        }
        if "ingestionTime" in ev:
            attrs["aws.ingestion_time"] = ev["ingestionTime"]
        return {
            "message": ev.get("message", "").rstrip("\n"),
            "ts": int(ev["timestamp"]),
            "service": self.cfg.service or self.cfg.log_group,
            "attributes": attrs,
        }

    def step(self) -> bool:
        if not self._recover():
            return False
        now = self._now_ms()
        if self.floor is None:
            self.floor = now - int(self.cfg.start_lookback_s * 1000)
            self._save()
        if self.window_end is None:
            end = now - int(self.cfg.settle_s * 1000)
            if end < self.floor:
                self._update_lag()
                return False
            self.window_end = min(end, self.floor + int(self.cfg.max_window_s * 1000))
            self._token = None
            self._save()
        params: dict[str, Any] = {
            "logGroupName": self.cfg.log_group,
            "startTime": self.floor,
            "endTime": self.window_end,
            "limit": self.cfg.page_limit,
        }
        if self.cfg.stream_prefix:
            params["logStreamNamePrefix"] = self.cfg.stream_prefix
        if self._token:
            params["nextToken"] = self._token
        try:
            page = self.client.filter_log_events(**params)
        except Exception as exc:  # botocore ClientError / connection errors after its own retries
            self.status.error("api", f"FilterLogEvents: {exc}")
            self.status.state = "retrying"
            raise
        self.status.last_read_at = time.time()
        prefix = self.cfg.stream_prefix
        # The prefix is also checked here: not every implementation of the API applies it.
        events = [
            ev
            for ev in page.get("events", [])
            if self._fresh(ev) and str(ev.get("logStreamName", "")).startswith(prefix)
        ]
        token = page.get("nextToken")
        delivered = False
        if events:
            triples = [[ev.get("logStreamName", ""), int(ev["timestamp"]), ev["eventId"]] for ev in events]
            if not self._deliver([self._record(ev) for ev in events], triples):
                return False
            delivered = True
        if token and token != self._token:
            self._token = token
        else:
            # The window is complete: everything up to ``window_end`` is in.
            self.floor = self.window_end + 1
            self.window_end = None
            self.streams = {}
            self._token = None
        self._save()
        self.status.state = "running"
        self._update_lag()
        return delivered or self.window_end is not None

    def _update_lag(self) -> None:
        floor_s = self.floor / 1000 if self.floor else None
        self.status.caught_up_to(
            floor_s,
            {
                "floor_ms": self.floor,
                "window_end_ms": self.window_end,
                "streams": len(self.streams),
                "newest_event_ms": self.newest_ts,
            },
        )
