"""Live detection for the tests: one service, sessions keyed by a ``block_id`` attribute."""

from __future__ import annotations

from typing import Any

from logloupe.analyse.anomaly.live import LiveDetection
from logloupe.analyse.anomaly.tracker import TrackerSettings
from logloupe.model import Level, LogEvent, event_uid
from logloupe.store.anomalies import AnomalyRecords
from logloupe.store.meta import MetaStore


def block_event(i: int, message: str, block: str, ts_us: int, level: Level = Level.INFO) -> LogEvent:
    return LogEvent(
        tenant="t",
        ts_us=ts_us,
        observed_ts_us=ts_us,
        uid=event_uid("t", i),
        message=message,
        service="hdfs",
        level=level,
        attributes={"block_id": block},
    )


def block_detection(meta: MetaStore, *, train_sessions: int, **options: Any) -> LiveDetection:
    """The server's live detection storing into ``meta``: sessions keyed by ``block_id``, closed
    after 60 s idle, the model trained on the first ``train_sessions``."""
    return LiveDetection(
        AnomalyRecords(meta.engine),
        session_key="block_id",
        tracker=TrackerSettings(idle_close_s=60, train_sessions=train_sessions),
        **options,
    )
