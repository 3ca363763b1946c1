"""Read operations over the event store. Every one is scoped to a tenant here, in one place.

``scope`` builds the WHERE clause every read uses: the tenant condition comes first and is not
optional, then the time range, then the compiled user query. Endpoints never write SQL.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from logloupe.errors import BadRequest, NotFound
from logloupe.model import LogEvent, parse_event_id
from logloupe.store.events import EVENT_SELECT, EventStore, row_to_event
from logloupe.store.query import compile_query, field_expression
from logloupe.store.timerange import parse_duration_us

# Bucket sizes the histogram picks from, in seconds (what Kibana users expect to see).
_BUCKETS_S = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400]
MAX_BUCKETS = 50000


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class Scope:
    """Who is asking, over which time range, with which query."""

    tenant: str
    q: str = ""
    from_us: int | None = None
    to_us: int | None = None
    now_us: int = field(default_factory=now_us)
    regex_max: int = 256

    def where(self) -> tuple[str, dict[str, Any]]:
        compiled = compile_query(self.q, now_us=self.now_us, regex_max=self.regex_max)
        params = dict(compiled.params)
        params["tenant"] = self.tenant
        parts = ["tenant = {tenant:String}"]
        if self.from_us is not None:
            params["from_us"] = self.from_us
            parts.append("ts >= fromUnixTimestamp64Micro({from_us:Int64}, 'UTC')")
        if self.to_us is not None:
            params["to_us"] = self.to_us
            parts.append("ts <= fromUnixTimestamp64Micro({to_us:Int64}, 'UTC')")
        if compiled.where != "1":
            parts.append(compiled.where)
        return " AND ".join(parts), params


@dataclass
class SearchResult:
    total: int
    events: list[LogEvent]
    next_cursor: str | None


def _encode_cursor(ts_us: int, uid: int, direction: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([ts_us, uid, direction])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int, str]:
    try:
        ts_us, uid, direction = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if direction not in ("asc", "desc"):
            raise ValueError(direction)
        return int(ts_us), int(uid), str(direction)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise BadRequest("invalid cursor: pass back the next_cursor of a previous page") from None


def search(
    store: EventStore, scope: Scope, *, limit: int = 100, sort: str = "desc", cursor: str | None = None
) -> SearchResult:
    """Newest (or oldest) ``limit`` matching events, the exact total, and a cursor for the next page."""
    if sort not in ("asc", "desc"):
        raise BadRequest("sort must be ts:desc or ts:asc")
    where, params = scope.where()
    total = int(store.scalar(f"SELECT count() FROM events WHERE {where}", params) or 0)
    page_where = where
    if cursor:
        c_ts, c_uid, c_dir = _decode_cursor(cursor)
        if c_dir != sort:
            raise BadRequest("the cursor belongs to a search sorted the other way")
        op = "<" if sort == "desc" else ">"
        params = {**params, "c_ts": c_ts, "c_uid": c_uid}
        page_where += (
            f" AND (ts {op} fromUnixTimestamp64Micro({{c_ts:Int64}}, 'UTC')"
            f" OR (ts = fromUnixTimestamp64Micro({{c_ts:Int64}}, 'UTC') AND uid {op} {{c_uid:UInt64}}))"
        )
    order = "DESC" if sort == "desc" else "ASC"
    rows = store.rows(
        f"SELECT {EVENT_SELECT} FROM events WHERE {page_where} ORDER BY ts {order}, uid {order} LIMIT {int(limit)}",
        params,
    )
    events = [row_to_event(r) for r in rows]
    next_cursor = None
    if len(events) == limit and events:
        last = events[-1]
        next_cursor = _encode_cursor(last.ts_us, last.uid, sort)
    return SearchResult(total, events, next_cursor)


def count(store: EventStore, scope: Scope) -> int:
    where, params = scope.where()
    return int(store.scalar(f"SELECT count() FROM events WHERE {where}", params) or 0)


def pick_interval_s(span_us: int, target_buckets: int = 100) -> int:
    span_s = max(1, span_us // 1_000_000)
    for size in _BUCKETS_S:
        if span_s / size <= target_buckets:
            return size
    return _BUCKETS_S[-1]


def histogram(
    store: EventStore,
    scope: Scope,
    *,
    interval: str | None = None,
    split: str | None = "level",
    top: int = 10,
    target_buckets: int = 100,
) -> dict[str, Any]:
    """Counts over time, split by a field; the bucket size is chosen automatically unless given."""
    where, params = scope.where()
    lo, hi = scope.from_us, scope.to_us
    if lo is not None and hi is None:
        hi = scope.now_us
    if lo is None or hi is None:
        bounds = store.rows(
            "SELECT toUnixTimestamp64Micro(min(ts)) AS lo, toUnixTimestamp64Micro(max(ts)) AS hi, count() AS n"
            f" FROM events WHERE {where}",
            params,
        )[0]
        if not bounds["n"]:
            return {"interval_seconds": 0, "split": split, "buckets": [], "total": 0}
        lo = bounds["lo"] if lo is None else lo
        hi = bounds["hi"] if hi is None else hi
    assert lo is not None and hi is not None
    if interval:
        try:
            step_s = max(1, parse_duration_us(interval) // 1_000_000)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    else:
        step_s = pick_interval_s(hi - lo, target_buckets)
    if (hi - lo) // 1_000_000 // step_s > MAX_BUCKETS:
        raise BadRequest(f"more than {MAX_BUCKETS} buckets: choose a larger interval or a shorter range")
    params = {**params, "step": step_s}
    bucket = "toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({step:UInt32})))"
    if split:
        key = field_expression(split, params)
        top_values = [
            r["k"]
            for r in store.rows(
                f"SELECT {key} AS k, count() AS c FROM events WHERE {where}"
                f" GROUP BY k ORDER BY c DESC LIMIT {int(top)}",
                params,
            )
        ]
        names = []
        for i, value in enumerate(top_values):
            params[f"tv{i}"] = value
            names.append(f"{{tv{i}:String}}")
        in_top = f"{key} IN ({', '.join(names)})" if names else "0"
        rows = store.rows(
            f"SELECT {bucket} AS b, if({in_top}, {key}, '__other__') AS k,"
            f" count() AS c FROM events WHERE {where} GROUP BY b, k ORDER BY b",
            params,
        )
    else:
        rows = store.rows(
            f"SELECT {bucket} AS b, '' AS k, count() AS c FROM events WHERE {where} GROUP BY b ORDER BY b",
            params,
        )
    buckets: dict[int, dict[str, Any]] = {}
    for r in rows:
        entry = buckets.setdefault(int(r["b"]), {"ts": int(r["b"]), "total": 0, "counts": {}})
        entry["total"] += int(r["c"])
        if split:
            entry["counts"][r["k"]] = entry["counts"].get(r["k"], 0) + int(r["c"])
    # Empty buckets are returned too, so charts have a continuous time axis.
    start = (lo // 1_000_000) // step_s * step_s
    end = (hi // 1_000_000) // step_s * step_s
    out = []
    for b in range(start, end + 1, step_s):
        entry = buckets.get(b, {"ts": b, "total": 0, "counts": {}})
        out.append({**entry, "ts": _iso_s(b)})
    return {
        "interval_seconds": step_s,
        "split": split,
        "buckets": out,
        "total": sum(e["total"] for e in out),
    }


def _iso_s(epoch_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


DEFAULT_FACETS = ("service", "host", "level", "pattern_id", "source")


def facets(
    store: EventStore, scope: Scope, *, fields: list[str] | None = None, size: int = 10, attributes: int = 10
) -> dict[str, Any]:
    """Top values per field; with no fields named, the standard fields plus the commonest attributes."""
    where, params = scope.where()
    names = list(fields or DEFAULT_FACETS)
    if not fields and attributes:
        keys = store.rows(
            f"SELECT arrayJoin(mapKeys(attributes)) AS k, count() AS c FROM events WHERE {where}"
            f" GROUP BY k ORDER BY c DESC LIMIT {int(attributes)}",
            params,
        )
        names += [f"attr.{r['k']}" for r in keys]
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        local = dict(params)
        expr = field_expression(name, local)
        rows = store.rows(
            f"SELECT {expr} AS v, count() AS c FROM events WHERE {where} AND v != ''"
            " GROUP BY v ORDER BY c DESC, v"
            f" LIMIT {int(size)}",
            local,
        )
        out[name] = [{"value": r["v"], "count": int(r["c"])} for r in rows]
    return {"fields": out, "total": count(store, scope)}


def get_event(store: EventStore, tenant: str, event_id: str) -> LogEvent:
    try:
        ts_us, uid = parse_event_id(event_id)
    except ValueError:
        raise NotFound(f"no event with id {event_id!r}") from None
    rows = store.rows(
        f"SELECT {EVENT_SELECT} FROM events WHERE tenant = {{tenant:String}}"
        " AND ts = fromUnixTimestamp64Micro({ts:Int64}, 'UTC') AND uid = {uid:UInt64} LIMIT 1",
        {"tenant": tenant, "ts": ts_us, "uid": uid},
    )
    if not rows:
        raise NotFound(f"no event with id {event_id!r}")
    return row_to_event(rows[0])


def context(store: EventStore, tenant: str, event_id: str, *, before: int = 10, after: int = 10) -> dict[str, Any]:
    """The event and its neighbours in time from the same service and host."""
    event = get_event(store, tenant, event_id)
    params = {
        "tenant": tenant,
        "service": event.service,
        "host": event.host,
        "ts": event.ts_us,
        "uid": event.uid,
    }
    base = (
        f"SELECT {EVENT_SELECT} FROM events WHERE tenant = {{tenant:String}} AND service = {{service:String}}"
        " AND host = {host:String} AND "
    )
    at = "fromUnixTimestamp64Micro({ts:Int64}, 'UTC')"
    older = store.rows(
        base
        + f"(ts < {at} OR (ts = {at} AND uid < {{uid:UInt64}}))"
        + f" ORDER BY ts DESC, uid DESC LIMIT {int(before)}",
        params,
    )
    newer = store.rows(
        base + f"(ts > {at} OR (ts = {at} AND uid > {{uid:UInt64}}))" + f" ORDER BY ts ASC, uid ASC LIMIT {int(after)}",
        params,
    )
    return {
        "event": event,
        "before": [row_to_event(r) for r in reversed(older)],
        "after": [row_to_event(r) for r in newer],
    }
