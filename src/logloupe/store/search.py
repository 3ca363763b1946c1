"""Read operations over the event store. Every one is scoped to a tenant here, in one place.

``scope`` builds the WHERE clause every read uses: the tenant condition comes first and is not
optional, then the time range, then the compiled user query. Endpoints never write SQL.
"""

from __future__ import annotations

import base64
import operator
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from logloupe.errors import BadRequest, NotFound
from logloupe.model import Level, LogEvent, parse_event_id
from logloupe.store.events import (
    ALL_FIELDS,
    EVENT_SELECT_STORED,
    EventStore,
    ReadLimitExceeded,
    event_select,
    stored_row_to_event,
)
from logloupe.store.query import (
    All,
    And,
    Match,
    Node,
    Not,
    Or,
    compile_query,
    cut_by_index,
    field_expression,
    parse_query,
    resolve_field,
)
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
    # Merged patterns (surviving id → ids merged into it), so ``pattern:<id>`` finds them all.
    pattern_groups: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def where(self) -> tuple[str, dict[str, Any]]:
        compiled = compile_query(
            self.q, now_us=self.now_us, regex_max=self.regex_max, pattern_groups=self.pattern_groups
        )
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
    store: EventStore,
    scope: Scope,
    *,
    limit: int = 100,
    sort: str = "desc",
    cursor: str | None = None,
    fields: frozenset[str] = ALL_FIELDS,
) -> SearchResult:
    """Newest (or oldest) ``limit`` matching events, the exact total, and a cursor for the next page.

    The events are read with ``fields`` (``EVENT_FIELDS``' names) only, the others left at their
    defaults: the API's page reads ``DEFAULT_FIELDS`` unless asked for more.

    A query that requires a condition on the message (``_text_required``) over a range of at most
    a day (``_short_range``) takes one statement: the page, with the total counted by the engine in
    the same read (``EventStore.rows_with_total``).
    Any other query takes two statements: the total, then the page from a window at the near end of
    the range (``_page_window``; an ordered read that stops early when the service and pattern are
    fixed), cheaper than collecting the keys of every match (measured with benchmarks/store.py at
    5M events: service + level newest 50 took 2.3 times as long one-pass).
    Without the engine's block cache (``EventStore.block_cache_mb``), a condition that reads the
    message itself (a phrase's substring check, a regex, a wildcard, a long number's exact token)
    takes one pass over the matching rows for the total and the page's keys (ts, uid), and the
    page's rows are then read by key from the few granules that hold them: counting and paging
    separately would decompress the message twice. With the cache the second read of the message
    comes from memory and the keys cost more than it (5M events, phrase over 24 h: 25 ms count +
    15 ms page against 38 ms keys + 14 ms rows).
    """
    if sort not in ("asc", "desc"):
        raise BadRequest("sort must be ts:desc or ts:asc")
    where, params = scope.where()
    page_cond = "1"
    if cursor:
        c_ts, c_uid, c_dir = _decode_cursor(cursor)
        if c_dir != sort:
            raise BadRequest("the cursor belongs to a search sorted the other way")
        op = "<" if sort == "desc" else ">"
        params = {**params, "c_ts": c_ts, "c_uid": c_uid}
        page_cond = (
            f"(ts {op} fromUnixTimestamp64Micro({{c_ts:Int64}}, 'UTC')"
            f" OR (ts = fromUnixTimestamp64Micro({{c_ts:Int64}}, 'UTC') AND uid {op} {{c_uid:UInt64}}))"
        )
    limit = max(0, int(limit))
    if limit == 0:
        return SearchResult(count(store, scope), [], None)
    order = "DESC" if sort == "desc" else "ASC"
    if not cursor and _needle(scope):
        # Most likely a handful of matches: one statement returns them whole with their total, the
        # rows to read capped: a needle that is not one is refused early and takes the general path.
        try:
            found = store.rows(
                f"SELECT count() OVER () AS n, {event_select(fields)} FROM events WHERE {where}"
                f" ORDER BY ts {order}, uid {order} LIMIT {limit}"
                f" SETTINGS max_rows_to_read = {NEEDLE_MAX_ROWS}, read_overflow_mode = 'throw'",
                params,
            )
        except ReadLimitExceeded:
            pass
        else:
            return _page(int(found[0]["n"]) if found else 0, [stored_row_to_event(r) for r in found], limit, sort)
    if _text_required(scope) and _short_range(scope):
        # The matches are a fraction of the range: one read sorts them and counts them exactly. After
        # a cursor, the rows past it sort first (the total still counts every match) and are kept.
        past = (f", {page_cond} AS past_cursor", "past_cursor DESC, ") if cursor else ("", "")
        found, total = store.rows_with_total(
            f"SELECT {event_select(fields, json=True)}{past[0]} FROM events WHERE {where}"
            f" ORDER BY {past[1]}ts {order}, uid {order} LIMIT {limit}",
            params,
        )
        return _page(total, [stored_row_to_event(r) for r in found if r.get("past_cursor", 1)], limit, sort)
    if not _reads_message(where) or store.block_cache_mb:
        total = int(store.scalar(f"SELECT count() FROM events WHERE {where}", params) or 0)
        page_sql = (
            f"SELECT {event_select(fields)} FROM events WHERE {where} AND {page_cond}<window>"
            f" ORDER BY ts {order}, uid {order} LIMIT {limit}"
        )
        rows = None
        window = _page_window(scope, total, limit, sort, params.get("c_ts"))
        if window is not None:
            # The page most likely lies in a window at the near end of the range: read that first;
            # with fewer than ``limit`` matches there, read the whole range (the page is the same).
            op = ">=" if sort == "desc" else "<="
            rows = store.rows(
                page_sql.replace("<window>", f" AND ts {op} fromUnixTimestamp64Micro({{w_edge:Int64}}, 'UTC')"),
                {**params, "w_edge": window},
            )
            if len(rows) < limit:
                rows = None
        if rows is None:
            rows = store.rows(page_sql.replace("<window>", ""), params)
        return _page(total, [stored_row_to_event(r) for r in rows], limit, sort)
    # groupArraySorted keeps the smallest keys: negate (ts) and complement (uid) for newest first.
    # The service and pattern ride along: the rows are then read from their own granules only.
    key = (
        "(-toUnixTimestamp64Micro(ts), bitNot(uid), service, pattern_id)"
        if sort == "desc"
        else "(toUnixTimestamp64Micro(ts), uid, service, pattern_id)"
    )
    unkey = ("-k.1", "bitNot(k.2)") if sort == "desc" else ("k.1", "k.2")
    head = store.rows(
        f"SELECT n, arrayMap(k -> {unkey[0]}, keys) AS ts_us, arrayMap(k -> {unkey[1]}, keys) AS uids,"
        " arrayDistinct(arrayMap(k -> toString(k.3), keys)) AS services,"
        " arrayDistinct(arrayMap(k -> k.4, keys)) AS patterns FROM"
        f" (SELECT count() AS n, groupArraySortedIf({limit})({key}, {page_cond}) AS keys"
        f" FROM events WHERE {where})",
        params,
    )[0]
    keys = list(zip(head["ts_us"], head["uids"], strict=True))
    page = _events_by_key(store, scope.tenant, keys, head["services"], head["patterns"], fields)
    return _page(int(head["n"]), page, limit, sort)


# The needle statement's read limit: 64 granules of the events table.
NEEDLE_MAX_ROWS = 64 * 1024


def _needle(scope: Scope) -> bool:
    """Whether the query requires a message token with a long run of digits (an id, a block number).

    Such tokens are nearly unique, so the matches are few: they are read whole in one statement
    (at 5M benchmark events, 15 ms against 24 ms for a count-and-keys pass then a read by key).
    Any other query, or a needle that matches widely, takes the general path.
    """
    return any(
        m.field is None and m.op in ("term", "phrase") and cut_by_index(m.value) for m in _required_matches(scope)
    )


def _required_matches(scope: Scope) -> list[Match]:
    """The field matches every result must pass: the query itself, or the items of its top-level AND."""
    node = parse_query(scope.q, scope.regex_max)
    items = node.items if isinstance(node, And) else (node,)
    return [m for m in items if isinstance(m, Match)]


# The longest range whose text searches take one statement (``_short_range``), microseconds.
ONE_STATEMENT_SPAN_US = 86_400_000_000


def _short_range(scope: Scope) -> bool:
    """Whether the time range is at most ``ONE_STATEMENT_SPAN_US`` long.

    One statement for page and total reads the keys (ts, uid) of every match, where the count
    reads ts alone and the page only the near end of the range: it saves a statement's planning and
    fixed cost (~10 ms) but reads more per match. Measured at 5M benchmark events (714k a day),
    interleaved with main's two statements: 24 h ranges 5–15 ms faster (two words, a phrase, a word in
    a third of the events), 7-day ranges 6–30 ms slower (their rows are past the block cache's
    reach, and 100k–1.8M matches' uids are read). See docs/storage.md.
    """
    if scope.from_us is None:
        return False
    hi = scope.to_us if scope.to_us is not None else scope.now_us
    return hi - scope.from_us <= ONE_STATEMENT_SPAN_US


def _text_required(scope: Scope) -> bool:
    """Whether the query requires a condition on the message (a word, a phrase, a wildcard, a regex).

    Its pages and total then come from one statement (``EventStore.rows_with_total``): the
    engine reads the keys of every match once, sorts them and counts them, where two statements
    (the total, then the page from a window at the near end of the range) planned and read twice
    (5M benchmark events, 24 h: two words 35 → 24 ms, a phrase 52 → 41 ms, both reading the
    message once instead of twice). Queries on other fields alone keep the two statements: their
    matches can be most of the range, and the page's window at the near end of the range reads a
    fraction of them, while one statement would read every match.
    """
    for m in _required_matches(scope):
        try:
            kind, _ = resolve_field(m.field)
        except ValueError:
            continue
        if kind == "message" and m.op in ("term", "phrase", "wildcard", "regex"):
            return True
    return False


def _page_window(scope: Scope, total: int, limit: int, sort: str, cursor_ts: int | None) -> int | None:
    """The far edge of a window at the near end of the range expected to hold ``limit`` matches.

    Assumes the matches spread evenly over the range and takes four times the span that would
    hold ``limit`` of them; None when that is most of the range anyway (or the range is open).
    """
    if scope.from_us is None or total <= limit:
        return None
    hi = scope.to_us if scope.to_us is not None else scope.now_us
    span = hi - scope.from_us
    width = span * limit * 4 // total
    if width * 2 >= span:
        return None
    if sort == "desc":
        near = hi if cursor_ts is None else min(hi, cursor_ts)
        return near - width
    near = scope.from_us if cursor_ts is None else max(scope.from_us, cursor_ts)
    return near + width


def _page(total: int, events: list[LogEvent], limit: int, sort: str) -> SearchResult:
    next_cursor = None
    if len(events) == limit and events:
        last = events[-1]
        next_cursor = _encode_cursor(last.ts_us, last.uid, sort)
    return SearchResult(total, events, next_cursor)


_INDEX_ONLY = re.compile(r"\b(?:hasToken|hasAllTokens)\(message, ")


def _reads_message(where: str) -> bool:
    """Whether the condition reads the message column (beyond what the text index answers)."""
    return "message" in _INDEX_ONLY.sub("", where)


def _events_by_key(
    store: EventStore,
    tenant: str,
    keys: list[tuple[int, int]],
    services: list[str],
    patterns: list[int],
    fields: frozenset[str],
) -> list[LogEvent]:
    """The events with these (ts, uid) keys, in the keys' order (a key twice: its rows in turn).

    ``services`` and ``patterns`` are the events' own: with them the primary key (tenant, service,
    pattern, ts) finds the few granules that hold the rows (without, one granule per service and
    pattern of the tenant in the time span).
    """
    if not keys:
        return []
    names = {f"s{i}": service for i, service in enumerate(services)}  # each escaped as a String value
    in_services = ", ".join(f"{{{name}:String}}" for name in names)
    rows = store.rows(
        f"SELECT {event_select(fields)} FROM events WHERE tenant = {{tenant:String}} AND service IN ({in_services})"
        " AND pattern_id IN {patterns:Array(UInt64)}"
        " AND ts >= fromUnixTimestamp64Micro({lo:Int64}, 'UTC') AND ts <= fromUnixTimestamp64Micro({hi:Int64}, 'UTC')"
        " AND uid IN {uids:Array(UInt64)}",
        {
            "tenant": tenant,
            **names,
            "patterns": sorted({int(p) for p in patterns}),
            "lo": min(k[0] for k in keys),
            "hi": max(k[0] for k in keys),
            "uids": sorted({k[1] for k in keys}),
        },
    )
    by_key: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in rows:
        by_key.setdefault((int(r["ts_us"]), int(r["uid"])), []).append(r)
    out = []
    for k in keys:
        found = by_key.get((int(k[0]), int(k[1])))
        if found:  # a row merged away between the two statements is simply absent
            out.append(stored_row_to_event(found.pop(0)))
    return out


def count(store: EventStore, scope: Scope) -> int:
    where, params = scope.where()
    return int(store.scalar(f"SELECT count() FROM events WHERE {where}", params) or 0)


def pick_interval_s(span_us: int, target_buckets: int = 100) -> int:
    span_s = max(1, span_us // 1_000_000)
    for size in _BUCKETS_S:
        if span_s / size <= target_buckets:
            return size
    return _BUCKETS_S[-1]


def bucket_step_s(lo_us: int, hi_us: int, interval: str | None, target_buckets: int = 100) -> int:
    """Bucket size in seconds: ``interval`` ("5m") when given, else about ``target_buckets`` over the
    range; a 400 when the range would need more than ``MAX_BUCKETS``."""
    if interval:
        try:
            step_s = max(1, parse_duration_us(interval) // 1_000_000)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
    else:
        step_s = pick_interval_s(hi_us - lo_us, target_buckets)
    if (hi_us - lo_us) // 1_000_000 // step_s > MAX_BUCKETS:
        raise BadRequest(f"more than {MAX_BUCKETS} buckets: choose a larger interval or a shorter range")
    return step_s


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
    step_s = bucket_step_s(lo, hi, interval, target_buckets)
    params = {**params, "step": step_s}
    bucket = "toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({step:UInt32})))"
    by_level = bool(split and split.lower() == "level")
    # Each branch is one statement of (bucket b, split value k, count c) rows.
    statement = _minute_count_statement(scope, step_s, by_level) if by_level or not split else None
    if statement is not None:
        sql, params = statement
    elif by_level:
        # Six fixed values: no need to find the top ones first (one query instead of two).
        sql = f"SELECT {bucket} AS b, toString(level) AS k, count() AS c FROM events WHERE {where} GROUP BY b, k"
    elif split:
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
        sql = (
            f"SELECT {bucket} AS b, if({in_top}, {key}, '__other__') AS k,"
            f" count() AS c FROM events WHERE {where} GROUP BY b, k"
        )
    else:
        sql = f"SELECT {bucket} AS b, '' AS k, count() AS c FROM events WHERE {where} GROUP BY b"
    # The engine shapes the buckets whole, empty ones included (WITH FILL) so charts have a
    # continuous time axis: one JSON decode instead of 10,000s of Python dicts built from columns
    # (7 days of 1-minute buckets at 5M events: 97 → 59 ms, benchmarks/store.py).
    start = (lo // 1_000_000) // step_s * step_s
    end = (hi // 1_000_000) // step_s * step_s
    if end < start:  # a range that ends before it starts holds no bucket
        return {"interval_seconds": step_s, "split": split, "buckets": [], "total": 0}
    if statement is not None and by_level:
        # k is the level's number: one column per level, the levels with no events left out.
        level_names = ", ".join(f"'{level.name}'" for level in Level)
        sums = ", ".join(f"sumIf(c, k = {int(level)})" for level in Level)
        grouped = (
            f"SELECT b, sum(c) AS total, mapFilter((n, v) -> v > 0, mapFromArrays([{level_names}], [{sums}])) AS counts"
        )
        grouped += f" FROM ({sql})"
    else:
        counts_of = "mapFromArrays(groupArray(k), groupArray(c))" if split else "map()"
        grouped = f"SELECT b, sum(c) AS total, {counts_of} AS counts"
        grouped += f" FROM (SELECT b, k, sum(c) AS c FROM ({sql}) GROUP BY b, k)"
    params = {**params, "b_start": start, "b_end": end, "b_past": end + step_s}
    out = store.json_rows(
        "SELECT formatDateTime(toDateTime(b, 'UTC'), '%Y-%m-%dT%H:%i:%SZ') AS ts, total, counts FROM"
        f" ({grouped} WHERE b >= {{b_start:Int64}} AND b <= {{b_end:Int64}} GROUP BY b"
        " ORDER BY b WITH FILL FROM {b_start:Int64} TO {b_past:Int64} STEP {step:UInt32})",
        params,
    )
    out.sort(key=operator.itemgetter("ts"))  # already in order: the check is one pass
    return {
        "interval_seconds": step_s,
        "split": split,
        "buckets": out,
        "total": sum(e["total"] for e in out),
    }


def _minute_count_statement(scope: Scope, step_s: int, by_level: bool) -> tuple[str, dict[str, Any]] | None:
    """A histogram statement over the per-minute counts (the ``minute_counts`` projections), or None.

    Used when the buckets are whole minutes and the query names only service and level, the
    columns the counts are kept by: the whole minutes of the range come from the counts, the
    partial minutes at either end from the rows. Otherwise (None) the caller counts the rows.
    The result is the same either way; only the work differs.
    """
    if step_s % 60 or not _counts_cover(scope):
        return None
    minute_us = 60_000_000
    first = None if scope.from_us is None else -(-scope.from_us // minute_us) * minute_us
    end = None if scope.to_us is None else scope.to_us // minute_us * minute_us
    if first is not None and end is not None and first >= end:
        return None  # less than a whole minute: the rows are few
    where, params = replace(scope, from_us=None, to_us=None).where()
    params["step"] = step_s
    whole, edges = [where], []
    if first is not None:
        params["m_first"] = first
        whole.append("toStartOfMinute(ts) >= fromUnixTimestamp64Micro({m_first:Int64}, 'UTC')")
        if scope.from_us is not None and scope.from_us < first:
            params["from_us"] = scope.from_us
            edges.append(
                "(ts >= fromUnixTimestamp64Micro({from_us:Int64}, 'UTC')"
                " AND ts < fromUnixTimestamp64Micro({m_first:Int64}, 'UTC'))"
            )
    if end is not None:
        params["m_end"] = end
        whole.append("toStartOfMinute(ts) < fromUnixTimestamp64Micro({m_end:Int64}, 'UTC')")
        if scope.to_us is not None:
            params["to_us"] = scope.to_us
            edges.append(
                "(ts >= fromUnixTimestamp64Micro({m_end:Int64}, 'UTC')"
                " AND ts <= fromUnixTimestamp64Micro({to_us:Int64}, 'UTC'))"
            )
    key = "toInt8(level)" if by_level else "0"  # a number groups faster than the level's name
    sql = (
        f"SELECT toUnixTimestamp(toStartOfInterval(toStartOfMinute(ts), toIntervalSecond({{step:UInt32}}))) AS b,"
        f" {key} AS k, count() AS c FROM events WHERE {' AND '.join(whole)} GROUP BY b, k"
    )
    if edges:
        sql += (
            f" UNION ALL SELECT toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({{step:UInt32}}))) AS b,"
            f" {key} AS k, count() AS c FROM events WHERE {where} AND ({' OR '.join(edges)}) GROUP BY b, k"
        )
    return sql, params


def _counts_cover(scope: Scope) -> bool:
    """Whether the query names only fields the per-minute counts are kept by (service, level)."""

    def covered(node: Node) -> bool:
        if isinstance(node, All):
            return True
        if isinstance(node, And | Or):
            return all(covered(item) for item in node.items)
        if isinstance(node, Not):
            return covered(node.item)
        try:
            kind, target = resolve_field(node.field)
        except ValueError:
            return False
        return kind == "level" or (kind == "column" and target == "service")

    return covered(parse_query(scope.q, scope.regex_max))


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
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    if not names:
        return {"fields": out, "total": count(store, scope)}
    # One statement for all fields: the engine runs the branches in parallel, and the store's
    # single connection is taken once instead of once per field. Each branch groups every matching
    # event (the empty value too, dropped below), so the sum over its groups is the exact total:
    # no second read for it.
    local = dict(params)
    branches = []
    for i, name in enumerate(names):
        expr = field_expression(name, local)
        branches.append(
            f"(SELECT toInt32({i}) AS fi, toString({expr}) AS v, count() AS c, sum(count()) OVER () AS total"
            f" FROM events WHERE {where} GROUP BY v ORDER BY c DESC, v LIMIT {int(size) + 1})"
        )
    total = 0
    rows = store.rows(" UNION ALL ".join(branches), local)
    for r in sorted(rows, key=lambda r: (int(r["fi"]), -int(r["c"]), r["v"])):
        total = int(r["total"])
        values = out[names[int(r["fi"])]]
        if r["v"] != "" and len(values) < size:
            values.append({"value": r["v"], "count": int(r["c"])})
    return {"fields": out, "total": total}


def get_event(store: EventStore, tenant: str, event_id: str) -> LogEvent:
    try:
        ts_us, uid = parse_event_id(event_id)
    except ValueError:
        raise NotFound(f"no event with id {event_id!r}") from None
    rows = store.rows(
        f"SELECT {EVENT_SELECT_STORED} FROM events WHERE tenant = {{tenant:String}}"
        " AND ts = fromUnixTimestamp64Micro({ts:Int64}, 'UTC') AND uid = {uid:UInt64} LIMIT 1",
        {"tenant": tenant, "ts": ts_us, "uid": uid},
    )
    if not rows:
        raise NotFound(f"no event with id {event_id!r}")
    return stored_row_to_event(rows[0])


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
        f"SELECT {EVENT_SELECT_STORED} FROM events WHERE tenant = {{tenant:String}} AND service = {{service:String}}"
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
        "before": [stored_row_to_event(r) for r in reversed(older)],
        "after": [stored_row_to_event(r) for r in newer],
    }
