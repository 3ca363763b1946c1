"""The Python evaluator (live tail) agrees with the SQL compiler (search) on the same events."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from logloupe.errors import QuerySyntaxError
from logloupe.model import Level, LogEvent, event_uid
from logloupe.store.evaluate import compile_matcher
from logloupe.store.events import EventStore
from logloupe.store.search import Scope, search

# Recent: events older than the retention would be removed by the store's TTL.
T0 = (time.time_ns() // 1000 - 3_600_000_000) // 1_000_000 * 1_000_000

EVENTS = [
    LogEvent(
        "t1",
        T0 + i * 1_000_000,
        T0,
        event_uid(i),
        msg,
        service=svc,
        host=host,
        level=lvl,
        pattern_id=pid,
        attributes=attrs,
        trace_id=f"tr{i % 3}",
        flags=flags,
    )
    for i, (msg, svc, host, lvl, pid, attrs, flags) in enumerate(
        [
            (
                "Connection refused: could not connect to 10.0.5.12:5432",
                "database",
                "db-1",
                Level.ERROR,
                0xA1,
                {"attempt": "3"},
                [],
            ),
            ("user alice logged in from 10.1.2.3", "auth", "auth-1", Level.INFO, 0xB2, {"user": "alice"}, []),
            ("failed login for user bob: invalid password", "auth", "auth-2", Level.WARN, 0xB3, {"user": "bob"}, []),
            (
                "GET /api/v1/cart 200 14ms",
                "api-gateway",
                "gw-1",
                Level.INFO,
                0xC4,
                {"status": "200", "latency_ms": "14"},
                [],
            ),
            (
                "GET /api/v1/cart 503 5200ms",
                "api-gateway",
                "gw-2",
                Level.ERROR,
                0xC4,
                {"status": "503", "latency_ms": "5200"},
                [],
            ),
            (
                "Timeout waiting for SMTP\n  File worker.py line 4",
                "workers",
                "w-1",
                Level.FATAL,
                0xD5,
                {},
                ["truncated"],
            ),
            ("payment accepted order=ord_1 amount=3.5", "payments", "pay-1", Level.DEBUG, 0, {"amount": "3.5"}, []),
            ("CONNECTION reset by peer", "payments", "pay-2", Level.TRACE, 0xA1, {"user": "carol"}, []),
        ]
    )
]

# Pattern variables for var.N / var (the rest have none).
for _i, _vars in ((1, ["alice", "10.1.2.3"]), (2, ["bob"]), (3, ["200", "14ms"]), (4, ["503", "5200ms"])):
    EVENTS[_i].pattern_vars = _vars

QUERIES = [
    "",
    "refused",
    "REFUSED",
    "connection",
    '"could not connect"',
    '"Connection Refused"',
    "conn*",
    "tim?out",
    "service:auth",
    "service:auth*",
    "service:(auth OR payments)",
    "-service:auth",
    "NOT service:auth AND level:>=WARN",
    "level:ERROR",
    "level:>=WARN",
    "level:<INFO",
    "level:[DEBUG TO WARN]",
    "level:warning",
    "attr.user:alice",
    "user:*",
    "latency_ms:>500",
    "latency_ms:[10 TO 100]",
    "attr.status:503 OR attr.status:200",
    "pattern:00000000000000a1",
    "/time(out|d)/",
    "service:/pay.*/",
    "host:gw-1 OR (service:workers AND level:FATAL)",
    "flags:truncated",
    "trace_id:tr1",
    f"id:{EVENTS[2].id}",
    f"ts:[{(T0 + 2_000_000) // 1_000_000} TO {(T0 + 4_000_000) // 1_000_000}]",
    "ts:>=now-1h",
    "message:refused",
    "amount:>=3",
    "var.0:alice",
    "var:bob",
    "var:ali*",
    "var.0:>=300",
    "var.0:[100 TO 300]",
    "var:>=300",
    "var:*",
    "var.1:*",
    "-var:alice",
    "var:/5.*/",
    "var.5:x",
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EventStore]:
    store = EventStore(tmp_path_factory.mktemp("eval"))
    store.insert(EVENTS)
    store.insert([LogEvent("t2", T0, T0, 99, "refused by the other tenant", service="auth")])
    yield store
    store.close()


@pytest.mark.parametrize("q", QUERIES)
def test_evaluator_matches_the_sql_compiler(loaded: EventStore, q: str) -> None:
    in_sql = {e.id for e in search(loaded, Scope(tenant="t1", q=q, now_us=T0), limit=100).events}
    matches = compile_matcher(q, now_us=T0)
    in_python = {e.id for e in EVENTS if matches(e)}
    assert in_python == in_sql


def test_merged_patterns_are_found_by_the_surviving_id(loaded: EventStore) -> None:
    groups = {0xA1: (0xC4,)}
    in_sql = {
        e.id for e in search(loaded, Scope(tenant="t1", q="pattern:00000000000000a1", pattern_groups=groups)).events
    }
    matches = compile_matcher("pattern:00000000000000a1", now_us=T0, pattern_groups=groups)
    assert in_sql == {e.id for e in EVENTS if matches(e)}
    assert len(in_sql) == 4


@pytest.mark.parametrize(
    "q", ["(oops", "level:BOGUS", "tenant:t2", "pattern:xyz", "ts:>garbage", "anomaly_score:>high"]
)
def test_bad_queries_fail_the_same_way(q: str) -> None:
    with pytest.raises(QuerySyntaxError):
        compile_matcher(q, now_us=T0)
