"""Event-store migrations: a store made by an older schema opens with its rows intact."""

from __future__ import annotations

import orjson

from logloupe.model import Level, LogEvent
from logloupe.store import search as ops
from logloupe.store.events import EventStore, event_row
from logloupe.store.retention import enforce_retention
from logloupe.store.schema import MIGRATIONS, migrate

NOW = ops.now_us()
REBUILD = "0003_granules_of_1024_observed_lag"
SINCE_REBUILD = [name for name, _ in MIGRATIONS[[n for n, _ in MIGRATIONS].index(REBUILD) :]]


def _old_row(event: LogEvent) -> dict[str, object]:
    """The row as the 0001/0002 table took it: observed_ts itself, no lag column."""
    row = event_row(event, 30)
    del row["observed_lag_us"]
    del row["level_raw_text"]
    row["level_raw"] = event.level_raw  # stored whole before 0004
    us = event.observed_ts_us
    row["observed_ts"] = f"{us // 1_000_000}.{us % 1_000_000:06d}"
    return row


def _as_before_the_rebuild(store: EventStore, events: list[LogEvent]) -> None:
    """Put the store back to the schema of the migrations before 0003, holding ``events``."""
    store.execute("DROP TABLE events SYNC")
    for name, step in MIGRATIONS:
        if name == REBUILD:
            break
        step(store)
    for name in SINCE_REBUILD:
        store.execute(
            "ALTER TABLE schema_migrations DELETE WHERE name = {n:String} SETTINGS mutations_sync = 2", {"n": name}
        )
    rows = [_old_row(e) for e in events]
    store.insert_json_lines(b"\n".join(orjson.dumps(r) for r in rows), columns=list(rows[0]))
    assert "observed_lag_us" not in {r["name"] for r in store.rows("DESCRIBE TABLE events")}


def test_rebuild_keeps_every_row_and_its_observed_time(store: EventStore) -> None:
    day = 86_400_000_000
    events = [
        LogEvent(
            "t1",
            NOW - i * 60_000_000,
            NOW - i * 60_000_000 + 1_500_000 * (i % 3),  # arrived 0, 1.5 or 3 s later
            1000 + i,
            f"block blk_{4_000_000_000_000 + i} served to 10.0.0.{i}",
            service=("auth", "db")[i % 2],
            host="h1",
            level=Level.WARN if i % 2 else Level.INFO,
            attributes={"n": str(i)},
        )
        for i in range(50)
    ]
    old = NOW - 10 * day
    events.append(LogEvent("t1", old, old, 9, "ingested ten days ago"))
    _as_before_the_rebuild(store, events)

    assert migrate(store) == SINCE_REBUILD
    assert migrate(store) == []

    found = ops.search(store, ops.Scope("t1", ""), limit=100)
    assert found.total == len(events)
    by_id = {e.id: e for e in found.events}
    assert by_id == {e.id: e for e in events}
    # The text index of the new table answers, long numbers exactly.
    assert [e.uid for e in ops.search(store, ops.Scope("t1", "blk_4000000000007")).events] == [1007]
    assert ops.count(store, ops.Scope("t1", "served")) == 50
    # Retention still reads the ingestion time (now the alias over the lag).
    enforce_retention(store, "t1", 5, NOW)
    assert ops.count(store, ops.Scope("t1", "")) == 50
    settings = store.scalar(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
    )
    assert "index_granularity = 1024" in settings
    assert store.scalar("SELECT count() FROM system.tables WHERE name = 'events_v3'") == 0


def test_a_replay_after_the_rebuild_stores_nothing_twice(store: EventStore) -> None:
    """A crash after an insert, before the write-ahead checkpoint moved, then an upgrade: the
    replay's dedup token is unknown to the rebuilt table, so the stored rows are left out by id."""
    events = [LogEvent("t1", NOW - i, NOW - i, 500 + i, f"line {i}", service="api") for i in range(20)]
    events.append(LogEvent("t2", NOW, NOW, 500, "other tenant, same uid"))
    _as_before_the_rebuild(store, events[:15])  # the crash came after these were stored
    assert migrate(store) == SINCE_REBUILD

    store.insert(events, dedup_token="wal-0-21")  # the replay of the whole range

    assert ops.count(store, ops.Scope("t1", "")) == 20
    assert ops.count(store, ops.Scope("t2", "")) == 1
    assert sorted(e.uid for e in ops.search(store, ops.Scope("t1", ""), limit=50).events) == list(range(500, 520))
    # Every insert is checked, with a token or without: rows the table holds are left out.
    store.insert(events[:3], dedup_token="wal-21-24")
    store.insert(events[:3])
    assert ops.count(store, ops.Scope("t1", "")) == 20


def _codecs(store: EventStore) -> dict[str, str]:
    rows = store.rows(
        "SELECT name, compression_codec AS codec FROM system.columns"
        " WHERE database = currentDatabase() AND table = 'events'"
    )
    return {r["name"]: r["codec"] for r in rows}


def test_0004_smaller_columns_and_level_raw_by_alias(store: EventStore) -> None:
    codecs = _codecs(store)
    assert "Delta" in codecs["uid"] and "ZSTD(9)" in codecs["attributes"]
    raws = ["WARN", "warning", "", "\x00odd", "\x00"]
    store.insert([LogEvent("t1", NOW - 9 + i, NOW, i, "e", level=Level.WARN, level_raw=r) for i, r in enumerate(raws)])
    stored = store.rows("SELECT level_raw_text, level_raw FROM events ORDER BY uid")
    assert [r["level_raw_text"] for r in stored] == ["\x00", "warning", "", "\x00\x00odd", "\x00\x00"]
    assert [r["level_raw"] for r in stored] == raws
    assert [e.level_raw for e in ops.search(store, ops.Scope("t1", ""), limit=10).events][::-1] == raws
    # a text search over a short range reads the page as JSON and puts level_raw together in Python
    hour = ops.Scope("t1", "e", from_us=NOW - 3_600_000_000)
    assert [e.level_raw for e in ops.search(store, hour, limit=10).events][::-1] == raws
    assert ops.count(store, ops.Scope("t1", "level_raw:warning")) == 1
    assert ops.count(store, ops.Scope("t1", "level_raw:WARN")) == 1
    # an older store gets it by its migration, rows and their level text intact
    _as_before_the_rebuild(store, [LogEvent("t1", NOW, NOW, 77, "kept", level=Level.ERROR, level_raw="ERROR")])
    assert migrate(store) == SINCE_REBUILD
    assert "Delta" in _codecs(store)["uid"]
    (event,) = ops.search(store, ops.Scope("t1", "")).events
    assert (event.uid, event.level_raw) == (77, "ERROR")
    (event,) = ops.search(store, ops.Scope("t1", "kept", from_us=NOW - 3_600_000_000)).events
    assert (event.uid, event.level_raw) == (77, "ERROR")


def _as_before(store: EventStore, step: str) -> list[str]:
    """An empty ``events`` as the migrations before ``step`` left it; the names from ``step`` on."""
    names = [n for n, _ in MIGRATIONS]
    since = names[names.index(step) :]
    store.execute("DROP TABLE events SYNC")
    for name, migration in MIGRATIONS[: names.index(step)]:
        migration(store)
    for name in since:
        store.execute(
            "ALTER TABLE schema_migrations DELETE WHERE name = {n:String} SETTINGS mutations_sync = 2", {"n": name}
        )
    return since


def test_0005_sorts_a_service_by_pattern_and_keeps_every_row(store: EventStore) -> None:
    since = _as_before(store, "0005_events_by_pattern")
    events = [
        LogEvent(
            "t1",
            NOW - i * 1_000_000,
            NOW - i * 1_000_000,
            3000 + i,
            f"{('read timed out after', 'connected to')[i % 2]} {i} ms",
            service="api",
            level=(Level.ERROR, Level.INFO)[i % 2],
            pattern_id=(7, 9)[i % 2],
            pattern_vars=[str(i)],
            attributes={"n": str(i)},
        )
        for i in range(40)
    ]
    store.insert(events)
    key = "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
    assert store.scalar(key) == "tenant, service, ts"

    assert migrate(store) == since

    assert store.scalar(key) == "tenant, service, pattern_id, ts"
    assert "Delta" in _codecs(store)["uid"] and "ZSTD(9)" in _codecs(store)["attributes"]
    found = ops.search(store, ops.Scope("t1", ""), limit=100)
    assert {e.id: e for e in found.events} == {e.id: e for e in events}
    assert [e.uid for e in found.events] == [3000 + i for i in range(40)]  # newest first, across patterns
    assert ops.count(store, ops.Scope("t1", '"read timed out"')) == 20
    assert ops.count(store, ops.Scope("t1", "pattern:0000000000000009")) == 20
    assert store.scalar("SELECT count() FROM system.tables WHERE name = 'events_v5'") == 0
    # the per-minute counts came along: the histogram by level still adds up
    buckets = ops.histogram(store, ops.Scope("t1", "", from_us=NOW - 3_600_000_000, to_us=NOW), interval="1m")
    assert sum(b["total"] for b in buckets["buckets"]) == 40


def test_0006_pattern_variables_as_spans_of_the_message(store: EventStore) -> None:
    def event(i: int, message: str, variables: list[str]) -> LogEvent:
        return LogEvent("t1", NOW - i, NOW - i, 4000 + i, message, service="api", pattern_id=5, pattern_vars=variables)

    old = event(0, "stored before 0006: 7 items", ["7"])
    since = _as_before(store, "0006_pattern_vars_as_spans")
    store.insert([old])
    assert migrate(store) == since

    new = [
        event(1, "took 250 ms for blk_42", ["250", "blk_42"]),
        event(2, "héllo wörld 5 µs then 5 again", ["wörld", "5", "5"]),  # bytes, not characters
        event(3, "normalised: CPU#3", ["3 "]),  # not the message's text in order: kept as text
        event(4, "in order only: b then a", ["a", "b"]),
        event(5, "no variables", []),
        event(6, "an empty one here", ["", "here"]),
    ]
    store.insert(new)
    stored = {
        r["uid"]: r for r in store.rows("SELECT uid, pattern_var_spans AS spans, pattern_vars_text AS text FROM events")
    }
    assert stored[4001]["spans"] == [5, 3, 16, 6] and stored[4001]["text"] == []
    assert stored[4002]["spans"] == [7, 6, 14, 1, 25, 1]  # byte offsets
    assert stored[4003]["spans"] == [] and stored[4003]["text"] == ["3 "]
    assert stored[4004]["text"] == ["a", "b"]
    assert stored[4000]["text"] == ["7"]  # the row stored before keeps its text
    found = {
        e.uid: e.pattern_vars for e in ops.search(store, ops.Scope("t1", ""), limit=50, fields=ops.ALL_FIELDS).events
    }
    assert found == {e.uid: e.pattern_vars for e in [old, *new]}
    assert ops.get_event(store, "t1", new[1].id).pattern_vars == ["wörld", "5", "5"]
    assert ops.count(store, ops.Scope("t1", "var.0:250")) == 1
    assert ops.count(store, ops.Scope("t1", "var.2:5")) == 1
    assert ops.count(store, ops.Scope("t1", "var.0:7")) == 1
    assert ops.count(store, ops.Scope("t1", "var.0:3*")) == 1
    assert ops.count(store, ops.Scope("t1", "var:*")) == 6
