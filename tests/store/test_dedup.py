"""Every insert leaves out the rows the store holds already, by (tenant, ts, uid)."""

from __future__ import annotations

from pathlib import Path

from logloupe.metrics import DUPLICATES_DROPPED
from logloupe.model import LogEvent, input_uid
from logloupe.store import search as ops
from logloupe.store.events import EventStore

NOW = ops.now_us()


def _input(key: str, n: int, *, tenant: str = "t1", start: int = NOW - 3_600_000_000) -> list[LogEvent]:
    return [
        LogEvent(tenant, start + i * 1000, NOW, input_uid(tenant, key, i), f"{key} line {i}", service=f"s{i % 3}")
        for i in range(n)
    ]


def _count(store: EventStore, tenant: str = "t1") -> int:
    return ops.count(store, ops.Scope(tenant, ""))


def test_a_re_sent_input_is_stored_once_across_a_restart(tmp_path: Path) -> None:
    events = _input("body-a", 300)
    with EventStore(tmp_path / "s") as store:
        store.insert(events)
        store.insert(events)
        assert _count(store) == 300
    with EventStore(tmp_path / "s") as store:  # what is stored is read from the table, not remembered
        dropped = DUPLICATES_DROPPED.labels("t1")._value.get()
        store.insert(events[100:] + _input("body-b", 10))
        assert _count(store) == 310
        assert DUPLICATES_DROPPED.labels("t1")._value.get() - dropped == 200
        # a re-send in pieces, oldest first: each piece is older than what was stored before the restart
        store.insert(events[:50])
        store.insert(events[50:100])
        assert _count(store) == 310


def test_repeats_within_one_insert_and_other_tenants(store: EventStore) -> None:
    events = _input("body-a", 50)
    other = _input("body-a", 50, tenant="t2")
    # the same (ts, uid) in another tenant is another event; the same row twice in one batch is one
    same_uid = [LogEvent("t2", e.ts_us, NOW, e.uid, "t2's own", service=e.service) for e in events[:5]]
    store.insert(events + events[:20] + other[:10] + same_uid)
    assert _count(store) == 50
    assert _count(store, "t2") == 15


def test_newer_rows_are_kept_and_older_ones_checked(store: EventStore) -> None:
    old = _input("old", 100, start=NOW - 7_200_000_000)
    new = _input("new", 100)
    store.insert(new)
    store.insert(old)  # older than anything stored: checked, and new
    store.insert(old[:50] + _input("newer", 20, start=NOW - 1_000_000))
    assert _count(store) == 220
    # equal uids at another time are other events
    moved = [LogEvent(e.tenant, e.ts_us + 1, NOW, e.uid, e.message, service=e.service) for e in old[:10]]
    store.insert(moved)
    assert _count(store) == 230


def test_batches_sent_newest_first_are_stored_once(tmp_path: Path) -> None:
    # clients that post newer batches first (the ingest benchmark's): each batch is older than all
    # inserted before it, so it is not looked up; re-sends of any of them still are
    pieces = [_input(f"piece-{i}", 60, start=NOW - (i + 1) * 3_600_000_000) for i in range(4)]
    looked_up: list[str] = []
    with EventStore(tmp_path / "s") as store:
        columns = store.columns

        def counted(sql: str, params: dict[str, object] | None = None) -> dict[str, list[object]]:
            looked_up.append(sql)
            return columns(sql, params)

        store.columns = counted  # type: ignore[method-assign]
        for piece in pieces:
            store.insert(piece)
        assert _count(store) == 240
        assert looked_up == []  # nothing stored could hold them
        store.insert(pieces[1])  # a re-send between the oldest and the newest inserted
        store.insert(pieces[3][:30] + _input("older-still", 10, start=NOW - 6 * 3_600_000_000))
        assert _count(store) == 250
        assert len(looked_up) == 2
    with EventStore(tmp_path / "s") as store:  # after a restart the table's rows are below the floor
        store.insert(pieces[2] + pieces[0][10:20])
        store.insert(_input("older-still", 10, start=NOW - 6 * 3_600_000_000))
        assert _count(store) == 250


def test_input_uids_count_up_and_differ_between_inputs() -> None:
    a = [input_uid("t1", "body-a", i) for i in range(5)]
    assert [u - a[0] for u in a] == [0, 1, 2, 3, 4]
    assert input_uid("t1", "body-b", 0) >> 24 != a[0] >> 24
    assert input_uid("t2", "body-a", 0) != a[0]
    assert input_uid("t1", "body-a", 0, "svc") != a[0]
    # past 2^24 items the next block of the same input has a digest of its own
    assert input_uid("t1", "body-a", 1 << 24) >> 24 != a[0] >> 24
    assert input_uid("t1", "body-a", (1 << 24) + 1) == input_uid("t1", "body-a", 1 << 24) + 1


def test_assembled_uids_count_up_per_service_and_never_meet() -> None:
    from logloupe.parse.records import Fields
    from logloupe.pipeline.assemble import assemble

    items = [Fields(f"line {i}", ts_us=NOW, service="ab"[i % 2]) for i in range(6)]
    whole = assemble(items, tenant="t1", now_us=NOW, position="body:x")
    by_service = {s: [e.uid for e in whole if e.service == s] for s in "ab"}
    assert all([u - uids[0] for u in uids] == [0, 1, 2] for uids in by_service.values())
    assert by_service["a"][0] >> 24 != by_service["b"][0] >> 24  # the service is in the digest
    assert len({e.uid for e in whole}) == 6  # one timestamp, six events, six ids
    # assembled in runs of consecutive items (the multiline joiner's way): still six ids
    runs = [assemble(items[i : i + 2], tenant="t1", now_us=NOW, position="body:x", first_index=i) for i in (0, 2, 4)]
    assert len({e.uid for run in runs for e in run}) == 6
    # the same input again: the same ids
    assert [e.uid for e in assemble(items, tenant="t1", now_us=NOW, position="body:x")] == [e.uid for e in whole]


def test_the_writer_hands_only_stored_events_to_its_hooks(store: EventStore) -> None:
    # A re-send must not reach live tail, pattern counts or the detectors a second time either.
    from logloupe.pipeline.writer import StoreWriter

    seen: list[str] = []
    writer = StoreWriter(store, flush_ms=10)
    writer.after_store.append(lambda events: seen.extend(e.message for e in events))
    try:
        events = _input("body-h", 30)
        assert writer.write(events) == 30
        assert writer.write(events[10:] + _input("body-i", 5)) == 5
        assert writer.write(events + events[:3]) == 0
    finally:
        writer.close()
    assert sorted(seen) == sorted(e.message for e in events + _input("body-i", 5))
    assert writer.stored_total == 35
    assert _count(store) == 35
