"""Search semantics against the real embedded engine."""

from __future__ import annotations

import pytest

from logloupe.errors import NotFound
from logloupe.model import Level, LogEvent, event_uid
from logloupe.store import search as ops
from logloupe.store.events import EventStore
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


def test_replayed_batch_is_stored_once(store: EventStore) -> None:
    events = _events("t1")
    store.insert(events, dedup_token="batch-1")
    store.insert(events, dedup_token="batch-1")
    assert ops.count(store, ops.Scope("t1", "")) == len(events)
