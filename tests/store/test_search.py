"""Search semantics against the real embedded engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from logloupe.errors import NotFound
from logloupe.model import Level, LogEvent, event_uid
from logloupe.store import search as ops
from logloupe.store.events import ALL_FIELDS, DEFAULT_FIELDS, EventStore
from logloupe.store.retention import enforce_retention, expire_now

NOW = ops.now_us()
MESSAGES = [
    ("auth", Level.INFO, "user alice logged in from 10.0.0.1", {"user": "alice"}),
    ("auth", Level.WARN, "failed login for user bob: invalid password", {"user": "bob"}),
    ("db", Level.ERROR, "Connection refused: could not connect to 10.0.5.12:5432", {"latency_ms": "30000"}),
    ("db", Level.DEBUG, "query executed in 12 ms", {"latency_ms": "12"}),
    ("api", Level.ERROR, "upstream returned 503 for POST /api/v1/payments", {"status": "503"}),
    ("api", Level.INFO, "GET /healthz 200 3ms", {"status": "200"}),
]


def _events(tenant: str = "t1", offset_s: int = 0) -> list[LogEvent]:
    out = []
    for i, (service, level, message, attrs) in enumerate(MESSAGES):
        ts = NOW - (len(MESSAGES) - i) * 1_000_000 - offset_s * 1_000_000
        out.append(
            LogEvent(
                tenant,
                ts,
                NOW,
                event_uid(tenant, i, offset_s),
                message,
                service=service,
                host="h1",
                level=level,
                attributes=attrs,
            )
        )
    return out


@pytest.fixture(params=[0, 64], ids=["no-block-cache", "block-cache"])
def either_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """A store without and with the engine's block cache: searches that read the message take
    different statements then (``search.search``), with the same results."""
    s = EventStore(tmp_path / "store", block_cache_mb=request.param)
    yield s
    s.close()


@pytest.fixture
def loaded(store: EventStore) -> EventStore:
    store.insert(_events("t1"))
    store.insert(_events("t2"))
    return store


def _messages(store: EventStore, q: str, tenant: str = "t1") -> list[str]:
    return [e.message for e in ops.search(store, ops.Scope(tenant, q), limit=100).events]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("refused", 1),
        ("REFUSED", 1),
        ('"could not connect"', 1),
        ('"connect could"', 0),
        ("login", 1),
        ("user", 2),
        ("user -bob", 1),
        ("user login", 1),
        ("REFUSED Connection 5432", 1),
        ("connect could", 1),
        ("user login -bob", 0),
        ("user (login OR alice)", 2),
        ("user AND NOT bob", 1),
        ("service:auth OR service:db", 4),
        ("service:(auth OR api)", 4),
        ("level:>=WARN", 3),
        ("level:error", 2),
        ("attr.latency_ms:>100", 1),
        ("latency_ms:[10 TO 100]", 1),
        ("attr.user:alice", 1),
        ("user:*", 2),
        ("service:a*", 4),
        ("/refused|503/", 2),
        ("10.0.0.1", 1),
        ("ts:>=now-1h", 6),
        ("ts:<now-1h", 0),
        ("", 6),
    ],
)
def test_query_matches(loaded: EventStore, q: str, expected: int) -> None:
    assert len(_messages(loaded, q)) == expected
    assert ops.count(loaded, ops.Scope("t1", q)) == expected


def test_tenants_never_see_each_other(store: EventStore) -> None:
    store.insert(_events("t1"))
    assert ops.count(store, ops.Scope("t2", "")) == 0
    event = ops.search(store, ops.Scope("t1", ""), limit=1).events[0]
    with pytest.raises(NotFound):
        ops.get_event(store, "t2", event.id)
    with pytest.raises(NotFound):
        ops.context(store, "t2", event.id)


def test_cursor_pages_cover_everything_once(loaded: EventStore) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        page = ops.search(loaded, ops.Scope("t1", ""), limit=4, cursor=cursor)
        assert page.total == 6
        seen += [e.id for e in page.events]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6
    assert seen == sorted(seen, reverse=True)


def test_histogram_split_by_level(loaded: EventStore) -> None:
    h = ops.histogram(loaded, ops.Scope("t1", "", from_us=NOW - 60_000_000, to_us=NOW), interval="1s")
    assert h["interval_seconds"] == 1
    assert h["total"] == 6
    totals: dict[str, int] = {}
    for bucket in h["buckets"]:
        for level, n in bucket["counts"].items():
            totals[level] = totals.get(level, 0) + n
    assert totals == {"INFO": 2, "WARN": 1, "ERROR": 2, "DEBUG": 1}


def test_histogram_automatic_interval() -> None:
    assert ops.pick_interval_s(7 * 86_400_000_000, 100) == 3 * 3600
    assert ops.pick_interval_s(15 * 60_000_000, 100) == 10


def test_facets_top_values(loaded: EventStore) -> None:
    f = ops.facets(loaded, ops.Scope("t1", ""), size=5)
    services = {v["value"]: v["count"] for v in f["fields"]["service"]}
    assert services == {"auth": 2, "db": 2, "api": 2}
    assert "attr.latency_ms" in f["fields"]


def test_context_same_service_and_host(store: EventStore) -> None:
    events = [
        LogEvent("t1", NOW - i * 1000, NOW, event_uid(i), f"line {i}", service="svc", host="h") for i in range(30)
    ]
    events.append(LogEvent("t1", NOW - 5000, NOW, 999, "other host", service="svc", host="h2"))
    store.insert(events)
    middle = next(e for e in events if e.message == "line 10")
    ctx = ops.context(store, "t1", middle.id, before=3, after=2)
    assert [e.message for e in ctx["before"]] == ["line 13", "line 12", "line 11"]
    assert [e.message for e in ctx["after"]] == ["line 9", "line 8"]


def test_retention_removes_rows_from_disk(store: EventStore) -> None:
    old = NOW - 40 * 86_400_000_000
    events = [LogEvent("t1", old, old, i, f"old {i}") for i in range(10)]
    events += [LogEvent("t1", NOW, NOW, 100 + i, f"new {i}") for i in range(5)]
    store.insert(events, retention_days=30)
    expire_now(store)
    assert ops.count(store, ops.Scope("t1", "")) == 5
    assert store.disk_usage()["rows"] == 5
    # A shortened retention applies to rows already stored.
    store.insert(
        [LogEvent("t2", NOW - 3 * 86_400_000_000, NOW - 3 * 86_400_000_000, 7, "three days")],
        retention_days=30,
    )
    enforce_retention(store, "t2", 2, NOW)
    store.optimize()
    assert ops.count(store, ops.Scope("t2", "")) == 0


def _epoch_s(iso: str) -> int:
    return int(datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())


def _minute_histogram_total(store: EventStore, tenant: str, q: str = "") -> int:
    # Whole-minute buckets over whole minutes: served from the per-minute counts alone.
    week = 7 * 86_400_000_000
    scope = ops.Scope(tenant, q, from_us=(NOW - week) // 60_000_000 * 60_000_000, to_us=NOW // 60_000_000 * 60_000_000)
    assert ops._counts_cover(scope)
    return int(ops.histogram(store, scope, interval="1h")["total"])


def test_retention_reaches_the_per_minute_counts(store: EventStore) -> None:
    """The histogram's per-minute counts live in the parts: TTL and retention deletes remove them too."""
    old, ten_days, three_days = (NOW - d * 86_400_000_000 for d in (40, 10, 3))
    store.insert([LogEvent("t1", three_days - i, old, i, f"expired {i}") for i in range(4)], retention_days=30)
    store.insert([LogEvent("t1", three_days - i, ten_days, 10 + i, f"ten days {i}") for i in range(5)])
    store.insert([LogEvent("t1", three_days - i, NOW, 20 + i, f"now {i}") for i in range(3)])
    store.insert([LogEvent("t2", three_days - i, three_days, 30 + i, f"other tenant {i}") for i in range(6)])
    expire_now(store)
    assert _minute_histogram_total(store, "t1") == 8 == ops.count(store, ops.Scope("t1", ""))
    enforce_retention(store, "t1", 5, NOW)
    assert _minute_histogram_total(store, "t1") == 3 == ops.count(store, ops.Scope("t1", ""))
    assert _minute_histogram_total(store, "t2") == 6
    enforce_retention(store, "t2", 2, NOW)
    assert _minute_histogram_total(store, "t2") == 0


def test_histogram_minute_counts_equal_the_rows(store: EventStore) -> None:
    """Whole minutes from the counts, partial ones at either end from the rows: the same numbers."""
    base = NOW // 60_000_000 * 60_000_000 - 30 * 60_000_000
    events = []
    for i in range(600):
        ts = base + i * 3_123_457  # ~31 minutes, not aligned to minutes
        level = [Level.INFO, Level.WARN, Level.ERROR][i % 3]
        service = ["auth", "db"][i % 2]
        events.append(LogEvent("t1", ts, ts, i, f"line {i}", service=service, level=level))
        events.append(LogEvent("t2", ts, ts, 10_000 + i, f"line {i}", service=service, level=Level.FATAL))
    store.insert(events)
    lo, hi = base + 90_500_000, base + 1_700_250_001  # partial minutes at both ends
    queries: dict[str, Callable[[LogEvent], bool]] = {
        "": lambda e: True,
        "level:>=WARN": lambda e: int(e.level) >= int(Level.WARN),
        "service:db AND NOT level:ERROR": lambda e: e.service == "db" and e.level != Level.ERROR,
        "service:a*": lambda e: e.service.startswith("a"),
    }
    for q, wanted in queries.items():
        for step in (60, 300):
            scope = ops.Scope("t1", q, from_us=lo, to_us=hi)
            assert ops._counts_cover(scope)
            h = ops.histogram(store, scope, interval=f"{step}s")
            expected: dict[int, dict[str, int]] = {}
            for e in events:
                if e.tenant == "t1" and lo <= e.ts_us <= hi and wanted(e):
                    per = expected.setdefault(e.ts_us // 1_000_000 // step * step, {})
                    per[e.level.name] = per.get(e.level.name, 0) + 1
            got = {_epoch_s(b["ts"]): b["counts"] for b in h["buckets"] if b["total"]}
            assert got == expected, (q, step)
            assert h["total"] == sum(sum(per.values()) for per in expected.values())
    # The statement's shape reads the projection (the plan names it).
    plan = store.rows(
        "EXPLAIN SELECT toUnixTimestamp(toStartOfInterval(toStartOfMinute(ts), toIntervalSecond(60))) AS b,"
        " toString(level) AS k, count() AS c FROM events WHERE tenant = 't1' AND toInt8(level) >= 4"
        " AND toStartOfMinute(ts) >= now() - 3600 GROUP BY b, k"
    )
    assert any("minute_counts" in r["explain"] for r in plan)
    assert not ops._counts_cover(ops.Scope("t1", "line"))
    assert not ops._counts_cover(ops.Scope("t1", "host:h1"))


def test_replayed_batch_is_stored_once(store: EventStore) -> None:
    events = _events("t1")
    store.insert(events, dedup_token="batch-1")
    store.insert(events, dedup_token="batch-1")
    assert ops.count(store, ops.Scope("t1", "")) == len(events)


def test_long_numbers_match_exactly(store: EventStore) -> None:
    """The index keeps only the first 8 digits of a long number; searches still match the exact token."""
    lines = [
        "Receiving block blk_-123456789012345 src: /10.0.0.1:50010",
        "Receiving block blk_123456789099999 src: /10.0.0.2:50010",
        "size 12345678 written",
        "size 123456780 written",
        "order 1234567 paid",
        "session 0xab1234567890cd started",
    ]
    store.insert([LogEvent("t1", NOW - i, NOW, i, m) for i, m in enumerate(lines)])
    cases = {
        "123456789012345": [0],
        "123456789000000": [],
        "123456789099999": [1],
        "12345678": [2],
        "123456780": [3],
        "1234567": [4],
        '"blk_-123456789012345"': [0],
        '"blk_-12345678901234"': [],  # a prefix of the number is not the token
        '"size 12345678"': [2],
        "blk AND NOT 123456789012345": [1],
        "*12345678*": [0, 1, 2, 3, 5],
        "/12345678[0-9]{2}/": [0, 1, 5],
        "0xAB1234567890CD": [5],  # digits inside a token are cut too; any case still matches
        "0xab1234567899cd": [],
        '"session 0xab1234567890cd"': [5],
    }
    for q, want in cases.items():
        got = sorted(lines.index(e.message) for e in ops.search(store, ops.Scope("t1", q), limit=10).events)
        assert got == want, q
        assert ops.count(store, ops.Scope("t1", q)) == len(want), q


@pytest.mark.parametrize("sort", ["desc", "asc"])
def test_pages_read_from_a_window_are_the_whole_range_pages(either_store: EventStore, sort: str) -> None:
    """The page is read from a window at the near end of the range first: same pages either way,
    whether the matches are spread evenly or bunched at the far end (the window then comes up short).
    A word or a regex required of the message takes one statement for page and total; a regex in
    an OR reads the message too: with the block cache it takes the window, without it one pass for
    the keys."""
    store = either_store
    hour = 3_600_000_000
    start = NOW - 10 * hour
    even = [start + i * (10 * hour // 150) for i in range(150)]
    bunched = [start + i * 1000 for i in range(100)] + [NOW - i * 1000 for i in range(3)]
    for tenant, times in (("even", even), ("bunched", bunched)):
        store.insert(
            [
                LogEvent(tenant, ts, ts, event_uid(tenant, i), f"tick {i}", level=Level.WARN if i % 2 else Level.INFO)
                for i, ts in enumerate(times)
            ]
        )
        for q in ("tick", "/tick/", "/tick/ OR nosuchword", "level:WARN"):
            want = sorted(
                (e for e in range(len(times)) if "tick" in q or e % 2), key=lambda i: times[i], reverse=sort == "desc"
            )
            got: list[str] = []
            cursor = None
            while True:
                page = ops.search(
                    store, ops.Scope(tenant, q, from_us=start, to_us=NOW), limit=7, sort=sort, cursor=cursor
                )
                assert page.total == len(want)
                got += [e.message for e in page.events]
                cursor = page.next_cursor
                if not cursor:
                    break
            assert got == [f"tick {i}" for i in want], (tenant, q)


def test_pages_read_by_key_from_services_with_any_name(either_store: EventStore) -> None:
    """Rows read back by key are looked up in their services' granules, whatever the services are called."""
    store = either_store
    services = ["a'b", 'c"d', "e\\f", "g\nh", "plain", "x,y", "[z]", ""]
    store.insert([LogEvent("t1", NOW - i, NOW, i, f"needle foo_{i} bar", service=s) for i, s in enumerate(services)])
    found = ops.search(store, ops.Scope("t1", '"needle foo" OR nosuchword'), limit=100)  # not one statement
    assert found.total == len(services)
    assert [e.service for e in found.events] == services
    assert [e.service for e in ops.search(store, ops.Scope("t1", '"foo_3 bar"')).events] == ["g\nh"]


@pytest.mark.parametrize("sort", ["desc", "asc"])
@pytest.mark.parametrize("max_rows", [None, 1024])
def test_needle_pages_and_totals(store: EventStore, monkeypatch: pytest.MonkeyPatch, sort: str, max_rows: int) -> None:
    """A query for a long number takes one statement, or the general path when it would read too
    much (``max_rows``): the same totals and pages either way. The refused statement also checks
    that a failed Arrow read does not spoil the next statement's result."""
    if max_rows is not None:
        monkeypatch.setattr(ops, "NEEDLE_MAX_ROWS", max_rows)
    events = [
        LogEvent(
            "t1", NOW - i * 1000, NOW, event_uid("t1", i), f"request 9876543210{i % 3} step {i}", service=f"s{i % 4}"
        )
        for i in range(3000)
    ]
    store.insert(events)
    for q in ("98765432101", '"98765432101 step"', "98765432101 AND step"):
        want = sorted(
            (e for e in events if e.message.startswith("request 98765432101 ")), key=lambda e: (e.ts_us, e.uid)
        )
        if sort == "desc":
            want.reverse()
        got: list[str] = []
        cursor = None
        while True:
            page = ops.search(store, ops.Scope("t1", q), limit=300, sort=sort, cursor=cursor)
            assert page.total == len(want), q
            got += [e.id for e in page.events]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert got == [e.id for e in want], q
    assert ops.search(store, ops.Scope("t1", "12345678901")).total == 0


@pytest.mark.parametrize("sort", ["desc", "asc"])
@pytest.mark.parametrize("from_us", [NOW - 3_600_000_000, None], ids=["hour", "all-time"])
def test_first_page_of_a_text_search_is_the_stored_events(either_store: EventStore, sort: str, from_us: int) -> None:
    """A text query over a short range takes one statement for its pages and total, read as JSON
    (``EventStore.rows_with_total``), over all time the count and the page: either way every field
    comes back as stored and read by id (Arrow), events of the same microsecond are ordered by
    uid, and the total is exact beyond the page."""
    store = either_store
    odd = [0.1, float("inf"), float("-inf"), float("nan"), -0.0, 3.4e38]
    events = [
        LogEvent(
            "t1",
            NOW - (i // 3) * 1000,  # three events per microsecond: the order falls to the uid
            NOW + i,
            (1 << 64) - 1 - i if i % 2 else i,
            f'probe {i} read timed out "quoted" \\ back\tslash \x01 ünïcode ☃ 😀 \u2028',
            service=f"s{i % 4}",
            host="h/1",
            level=Level.ERROR,
            level_raw="err",
            pattern_id=(1 << 63) + i,
            pattern_vars=[str(i), "", "a\nb"],
            attributes={"k": '{"nested": [1, 2]}', "é": "x" * i},
            source="src",
            trace_id="t" * 32,
            span_id="s" * 16,
            flags=["oversize"] if i % 5 == 0 else [],
            classification="c",
            anomaly_score=odd[i % len(odd)],
        )
        for i in range(40)
    ]
    store.insert(events)
    want = sorted(events, key=lambda e: (e.ts_us, e.uid), reverse=sort == "desc")
    for q in ("probe", '"read timed out"', '"ünïcode ☃"', "probe AND slash"):
        page = ops.search(store, ops.Scope("t1", q, from_us=from_us), limit=25, sort=sort)
        assert page.total == len(events), q
        assert [e.id for e in page.events] == [e.id for e in want[:25]], q
        for got in page.events:
            stored = ops.get_event(store, "t1", got.id)
            assert repr(got) == repr(stored), q  # repr: NaN equals itself there
        rest = ops.search(store, ops.Scope("t1", q, from_us=from_us), limit=25, sort=sort, cursor=page.next_cursor)
        assert rest.total == len(events) and [e.id for e in rest.events] == [e.id for e in want[25:]], q
    assert ops.search(store, ops.Scope("t1", "probe nosuchword", from_us=from_us), limit=25).total == 0


def test_histogram_buckets_continuous_with_gaps_and_splits(store: EventStore) -> None:
    """Empty buckets come back as zeros, in time order, one per step, for every split; the counts add up."""
    base = NOW // 3_600_000_000 * 3_600_000_000 - 3_600_000_000
    events = [
        LogEvent("t1", base + 5 * 60_000_000, NOW, 1, "a", service="auth", level=Level.INFO),
        LogEvent("t1", base + 5 * 60_000_000 + 1, NOW, 2, "b", service="db", level=Level.ERROR),
        LogEvent("t1", base + 40 * 60_000_000, NOW, 3, "c", service="db", level=Level.ERROR),
    ]
    store.insert(events)
    scope = ops.Scope("t1", "", from_us=base, to_us=base + 59 * 60_000_000)
    expected_counts = {
        "level": {5: {"INFO": 1, "ERROR": 1}, 40: {"ERROR": 1}},
        "service": {5: {"auth": 1, "db": 1}, 40: {"db": 1}},
        None: {5: {}, 40: {}},
    }
    for split, per_minute in expected_counts.items():
        h = ops.histogram(store, scope, interval="1m", split=split)
        buckets = h["buckets"]
        assert [_epoch_s(b["ts"]) for b in buckets] == list(range(base // 1_000_000, base // 1_000_000 + 60 * 60, 60))
        assert h["total"] == 3
        for minute, bucket in enumerate(buckets):
            assert bucket["counts"] == per_minute.get(minute, {}), (split, minute)
            assert bucket["total"] == {5: 2, 40: 1}.get(minute, 0), (split, minute)

    backwards = ops.Scope("t1", "", from_us=base + 59 * 60_000_000, to_us=base)
    assert ops.histogram(store, backwards, interval="1m")["buckets"] == []


@pytest.mark.parametrize(
    ("q", "from_s"),
    [
        ("", None),  # total, then the page from a window at the newest end
        ("refused OR 503", 3600),  # a condition on the message over a short range: one statement
        ('"could not connect"', None),  # a phrase over all time: keys first without the cache
        ("10.0.5.12", None),
        ("12345678901", None),  # a needle: one statement with its total
    ],
)
def test_pages_of_some_fields_hold_the_same_events_with_those_fields(
    either_store: EventStore, q: str, from_s: int | None
) -> None:
    events = _events("t1")
    events[2].message += " block 12345678901"
    events[2].trace_id, events[2].source, events[2].flags = "abc", "bench", ["truncated"]
    events[4].message += " block 12345678901"
    either_store.insert(events)
    scope = ops.Scope("t1", q, from_us=NOW - from_s * 1_000_000 if from_s else None)
    whole = ops.search(either_store, scope, limit=2)
    lean = ops.search(either_store, scope, limit=2, fields=DEFAULT_FIELDS)
    assert whole.total == lean.total > 0
    assert whole.next_cursor == lean.next_cursor
    assert [e.to_api(DEFAULT_FIELDS) for e in lean.events] == [e.to_api(DEFAULT_FIELDS) for e in whole.events]
    assert all(e.to_api().keys() == ALL_FIELDS for e in whole.events)
    # What the lean page did not read stays at its default, never another event's value.
    assert all((e.trace_id, e.source, e.flags, e.pattern_vars) == ("", "", [], []) for e in lean.events)
