"""Decoder processes' output: the events and Arrow columns the server would have built itself."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pyarrow as pa

from logloupe.model import Level, LogEvent
from logloupe.parse.records import Limits
from logloupe.pipeline.buffer import WriteAheadBuffer
from logloupe.pipeline.decode import decode_packed, decode_payload, encode_entry, unpack_events, with_analysis
from logloupe.pipeline.workers import IngestPipeline
from logloupe.settings import Settings
from logloupe.store.events import EventStore, record_batch


def _entries() -> list[tuple[int, bytes]]:
    records = [
        {
            "timestamp": 1_700_000_000 + i / 10,
            "service": ["api", "db"][i % 2],
            "host": f"h{i % 3}",
            "level": ["info", "warn", "error", "fatal"][i % 4],
            "message": f"request {i} took {i % 90} ms" if i != 7 else "boom\n  at x.y(Z.java:1)",
            "meta": {"trace": f"{i:08x}", "nested": {"a": [1, 2]}, "none": None} if i % 5 else {},
            "trace_id": "ab" * 16 if i % 3 == 0 else "",
        }
        for i in range(300)
    ]
    return [
        (pos * 10_000, encode_entry(tenant, "http", [orjson.dumps(r) for r in records[pos * 100 : pos * 100 + 100]]))
        for pos, tenant in enumerate(["default", "other", "default"])
    ]


def test_packed_events_and_columns_are_what_the_server_builds() -> None:
    entries = _entries()
    retention = {"default": 30, "other": 7}
    blob, columns, errors, counts = decode_packed(
        [*entries, (99_999, b"not an entry")], Limits(), 1000, None, retention, 14
    )
    expected = [e for pos, payload in entries for e in decode_payload(pos, payload, Limits(), 1000)]
    events = unpack_events(blob)
    assert events == expected
    assert counts == Counter((e.tenant, e.source, e.level.name) for e in expected)
    assert all(type(e.level) is Level for e in events)
    assert [pos for pos, _ in errors] == [99_999]
    # The analysis columns are set by the server's stage; the rest comes from the process as is.
    for i, e in enumerate(events):
        e.pattern_id, e.pattern_vars, e.classification, e.anomaly_score = i + 1, [str(i)], "normal", 0.25
    got = with_analysis(columns, events)
    want = record_batch(events, retention.__getitem__)
    assert pa.Table.from_batches(got).equals(pa.Table.from_batches([want]))


def test_an_entry_without_events_packs_empty() -> None:
    blob, columns, errors, counts = decode_packed([(0, b"")], Limits(), 1000)
    assert unpack_events(blob) == [] and columns == b"" and errors == [] and counts == {}


def test_a_stage_that_returns_other_events_gets_its_columns_built_again(tmp_path: Path) -> None:
    """With decoder processes the server fills in only the analysis columns, unless the stage
    returns other events than it was given: a filtering stage's result is stored as it is."""
    buf = WriteAheadBuffer(tmp_path / "wal")
    for _, payload in _entries():
        buf.append(payload, 100)
    buf.close()

    def stage(events: list[LogEvent]) -> list[LogEvent]:
        kept = [e for e in events if e.level >= Level.ERROR]
        for e in kept:
            e.classification = "incident"
        return kept

    seen: list[LogEvent] = []
    store = EventStore(tmp_path)
    settings = Settings(data_dir=tmp_path, writer_flush_ms=5, pipeline_decode_processes=2)
    pipeline = IngestPipeline(settings, store, after_store=[seen.extend], extras={"event_stage": stage})
    try:
        assert pipeline.flush(60)
        assert pipeline._pool is not None  # decoded in the processes, not in the server
    finally:
        pipeline.close()
    rows = store.rows("SELECT uid, level, classification FROM events ORDER BY uid")
    store.close()
    assert len(rows) == 150  # error and fatal: half of the 300 records
    assert {(r["level"], r["classification"]) for r in rows} == {
        (int(Level.ERROR), "incident"),
        (int(Level.FATAL), "incident"),
    }
    assert sorted(e.uid for e in seen) == [r["uid"] for r in rows]
