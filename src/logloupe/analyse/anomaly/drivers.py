"""Which variable values drove an anomaly: the values of its patterns' variables that are much more
common in the anomalous stretch than before it — like Kibana's log rate analysis, for free.

``value_drivers`` is pure: it compares two samples of (pattern id, variables) and ranks values by
how much more of the anomaly's events hold them than the baseline's. ``store_drivers`` reads both
samples from the event store for one anomaly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from logloupe.model import Anomaly, format_pattern_id
from logloupe.store.events import EventStore
from logloupe.store.schema import HAS_PATTERN_VARIABLES

TOP = 5
MIN_COUNT = 2  # a value seen once in the anomaly drives nothing
WINDOW_US = 60_000_000  # the anomaly's stretch: a bucket each side of its time
BASELINE_US = 3_600_000_000  # the hour before it
SAMPLE = 5000

Sample = Iterable[tuple[int, Sequence[str]]]


def _shares(sample: Sample) -> tuple[Counter[tuple[int, int, str]], Counter[int]]:
    values: Counter[tuple[int, int, str]] = Counter()
    events: Counter[int] = Counter()
    for pattern_id, variables in sample:
        events[pattern_id] += 1
        for position, value in enumerate(variables):
            values[(pattern_id, position, value)] += 1
    return values, events


def value_drivers(anomalous: Sample, baseline: Sample, top: int = TOP) -> list[dict[str, Any]]:
    """Values of pattern variables ranked by how much more often the anomaly's events of that pattern
    hold them than the baseline's (a value the baseline never had counts as fully new)."""
    values, events = _shares(anomalous)
    base_values, base_events = _shares(baseline)
    found: list[tuple[float, int, str, dict[str, Any]]] = []
    for (pattern_id, position, value), count in values.items():
        if count < MIN_COUNT:
            continue
        share = count / events[pattern_id]
        base_n = base_events.get(pattern_id, 0)
        base_share = base_values.get((pattern_id, position, value), 0) / base_n if base_n else 0.0
        if share <= base_share:
            continue
        driver = {
            "pattern_id": format_pattern_id(pattern_id),
            "variable": f"var.{position}",
            "value": value[:200],
            "count": count,
            "share": round(share, 3),
            "baseline_share": round(base_share, 3),
        }
        found.append((share - base_share, count, value, driver))
    found.sort(key=lambda f: (-f[0], -f[1], f[2]))
    return [f[3] for f in found[:top]]


def store_drivers(store: EventStore, anomaly: Anomaly) -> list[dict[str, Any]]:
    """``value_drivers`` for one anomaly: its service's events of its patterns around its time,
    against the hour before."""
    if not anomaly.pattern_ids:
        return []
    params: dict[str, Any] = {"tenant": anomaly.tenant, "service": anomaly.service, "limit": SAMPLE}
    ids = ", ".join(f"{{p{i}:UInt64}}" for i in range(len(anomaly.pattern_ids[:20])))
    params.update({f"p{i}": pid for i, pid in enumerate(anomaly.pattern_ids[:20])})
    sql = (
        "SELECT pattern_id, pattern_variables AS pattern_vars FROM events"
        " WHERE tenant = {tenant:String} AND service = {service:String}"
        " AND ts >= fromUnixTimestamp64Micro({lo:Int64}, 'UTC') AND ts < fromUnixTimestamp64Micro({hi:Int64}, 'UTC')"
        f" AND pattern_id IN ({ids}) AND {HAS_PATTERN_VARIABLES} LIMIT {{limit:UInt32}}"
    )
    lo = anomaly.ts_us - WINDOW_US
    now = store.rows(sql, {**params, "lo": lo, "hi": anomaly.ts_us + WINDOW_US})
    before = store.rows(sql, {**params, "lo": lo - BASELINE_US, "hi": lo})
    return value_drivers(
        ((int(r["pattern_id"]), r["pattern_vars"]) for r in now),
        ((int(r["pattern_id"]), r["pattern_vars"]) for r in before),
    )
