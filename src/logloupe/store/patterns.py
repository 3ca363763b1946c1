"""Pattern statistics computed from the events table (GROUP BY pattern_id), tenant-scoped.

The template miner writes ``events.pattern_id``; counts, first/last seen, the level mix, an
example and a trend are read back here. Merged patterns (``MetaStore.pattern_groups``) are
folded into their surviving id.
"""

from __future__ import annotations

from typing import Any

from logloupe.model import LEVEL_NAMES, format_pattern_id, iso_micros
from logloupe.store.events import EventStore
from logloupe.store.search import Scope, pick_interval_s

_LEVEL_COUNTS = ", ".join(f"countIf(toInt8(level) = {i + 1}) AS l_{name}" for i, name in enumerate(LEVEL_NAMES))
NEW_WINDOW_US = 24 * 3600 * 1_000_000
SAMPLES = 3  # distinct example messages per pattern
SAMPLE_CHARS = 2000


def list_patterns(
    store: EventStore,
    scope: Scope,
    *,
    groups: dict[int, tuple[int, ...]],
    names: dict[int, dict[str, Any]],
    limit: int = 200,
    trend_buckets: int = 24,
) -> dict[str, Any]:
    """Patterns seen in the scope, commonest first, each with its stats and a trend series."""
    where, params = scope.where()
    rows = store.rows(
        "SELECT pattern_id AS pid, count() AS c, toUnixTimestamp64Micro(min(ts)) AS lo,"
        f" toUnixTimestamp64Micro(max(ts)) AS hi, groupUniqArray({SAMPLES})(substring(message, 1, {SAMPLE_CHARS}))"
        " AS ex, any(service) AS svc,"
        f" uniqExact(service) AS services, {_LEVEL_COUNTS}"
        f" FROM events WHERE {where} AND pattern_id != 0 GROUP BY pid",
        params,
    )
    owner = {member: target for target, members in groups.items() for member in members}
    merged: dict[int, dict[str, Any]] = {}
    for r in rows:
        pid = owner.get(int(r["pid"]), int(r["pid"]))
        levels = {name: int(r[f"l_{name}"]) for name in LEVEL_NAMES}
        entry = merged.get(pid)
        if entry is None:
            merged[pid] = {
                "pid": pid,
                "count": int(r["c"]),
                "lo": int(r["lo"]),
                "hi": int(r["hi"]),
                "samples": list(r["ex"]),
                "service": r["svc"],
                "levels": levels,
            }
            continue
        entry["count"] += int(r["c"])
        entry["samples"] = (entry["samples"] + [m for m in r["ex"] if m not in entry["samples"]])[:SAMPLES]
        entry["lo"] = min(entry["lo"], int(r["lo"]))
        entry["hi"] = max(entry["hi"], int(r["hi"]))
        for name, n in levels.items():
            entry["levels"][name] += n
    ranked = sorted(merged.values(), key=lambda e: (-e["count"], e["pid"]))[:limit]
    if not ranked:
        return {"patterns": [], "interval_seconds": 0, "total": 0}

    # The first time each pattern was ever seen (not just in this range) decides "new".
    member_ids = {pid: (pid, *groups.get(pid, ())) for pid in (e["pid"] for e in ranked)}
    all_ids = sorted({i for ids in member_ids.values() for i in ids})
    id_params = {f"id{i}": v for i, v in enumerate(all_ids)}
    in_list = ", ".join(f"{{id{i}:UInt64}}" for i in range(len(all_ids)))
    first_rows = store.rows(
        "SELECT pattern_id AS pid, toUnixTimestamp64Micro(min(ts)) AS first FROM events"
        f" WHERE tenant = {{tenant:String}} AND pattern_id IN ({in_list}) GROUP BY pid",
        {"tenant": scope.tenant, **id_params},
    )
    first_seen = {int(r["pid"]): int(r["first"]) for r in first_rows}

    lo = scope.from_us if scope.from_us is not None else min(e["lo"] for e in ranked)
    hi = scope.to_us if scope.to_us is not None else max(scope.now_us, max(e["hi"] for e in ranked))
    step_s = pick_interval_s(hi - lo, trend_buckets)
    start = lo // 1_000_000 // step_s * step_s
    n_buckets = (hi // 1_000_000 - start) // step_s + 1
    trend_rows = store.rows(
        "SELECT pattern_id AS pid, intDiv(toUnixTimestamp(ts) - {start:Int64}, {step:Int64}) AS b, count() AS c"
        f" FROM events WHERE {where} AND pattern_id IN ({in_list}) GROUP BY pid, b",
        {**params, **id_params, "start": start, "step": step_s},
    )
    trends: dict[int, list[int]] = {}
    for r in trend_rows:
        pid = owner.get(int(r["pid"]), int(r["pid"]))
        series = trends.setdefault(pid, [0] * n_buckets)
        b = int(r["b"])
        if 0 <= b < n_buckets:
            series[b] += int(r["c"])

    # "New": first seen within the last quarter of the range, but at most the last 24 hours
    # (a week's view highlights the last day; a two-hour view the last half hour).
    new_after = hi - min((hi - lo) // 4, NEW_WINDOW_US)
    out = []
    for e in ranked:
        pid = e["pid"]
        first = min(first_seen.get(i, e["lo"]) for i in member_ids[pid])
        meta = names.get(pid, {})
        out.append(
            {
                "id": format_pattern_id(pid),
                "name": meta.get("name", ""),
                "template": meta.get("template", ""),
                "service": e["service"],
                "count": e["count"],
                "first_seen": iso_micros(first),
                "last_seen": iso_micros(e["hi"]),
                "levels": {k: v for k, v in e["levels"].items() if v},
                "example": e["samples"][0] if e["samples"] else "",
                "samples": e["samples"],
                "trend": trends.get(pid, [0] * n_buckets),
                "merged": [format_pattern_id(i) for i in groups.get(pid, ())],
                "new": first >= new_after,
            }
        )
    return {
        "patterns": out,
        "interval_seconds": step_s,
        "trend_start": iso_micros(start * 1_000_000),
        "total": sum(e["count"] for e in merged.values()),
    }
