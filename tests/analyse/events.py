"""Events for the live-detection tests: one service, sessions keyed by a ``block_id`` attribute."""

from __future__ import annotations

from logloupe.model import Level, LogEvent, event_uid


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
