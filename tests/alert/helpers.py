"""Events and rules the alerting tests build."""

from __future__ import annotations

import itertools

from logloupe.model import Level, LogEvent

_uid = itertools.count(1)


def event(
    message: str,
    *,
    tenant: str = "default",
    service: str = "api",
    ts_us: int = 1_800_000_000_000_000,
    level: Level = Level.ERROR,
    classification: str = "",
    anomaly_score: float = 0.0,
    pattern_id: int = 0,
) -> LogEvent:
    return LogEvent(
        tenant=tenant,
        ts_us=ts_us,
        observed_ts_us=ts_us,
        uid=next(_uid),
        message=message,
        service=service,
        level=level,
        classification=classification,
        anomaly_score=anomaly_score,
        pattern_id=pattern_id,
    )
