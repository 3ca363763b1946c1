"""The write-ahead buffer and the pipeline on a real store: durability, replay, bounds, rate limits."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from logloupe.errors import TooManyRequests
from logloupe.pipeline.buffer import WriteAheadBuffer
from logloupe.pipeline.decode import encode_entry
from logloupe.pipeline.workers import IngestPipeline, RateLimiter
from logloupe.serve.app import create_app
from logloupe.settings import Settings
from logloupe.store.events import EventStore


def _entry(i: int) -> bytes:
    return encode_entry("default", "test", [orjson.dumps({"message": f"m{i}", "service": "buf"})])


def test_entries_survive_reopen_and_a_torn_tail_is_cut(tmp_path: Path) -> None:
    buf = WriteAheadBuffer(tmp_path, segment_bytes=64 * 1024)
    ends = [buf.append(_entry(i), 1) for i in range(2000)]  # several segments
    buf.close()
    segs = sorted(tmp_path.glob("*.seg"))
    assert len(segs) > 1
    with open(segs[-1], "ab") as f:
        f.write(b"\x00\x00\x01\x00garbage")  # a crash mid-append
    buf = WriteAheadBuffer(tmp_path, segment_bytes=64 * 1024)
    assert buf.written == ends[-1]
    got = list(buf.iter_range(0, buf.written))
    assert [e.payload for e in got] == [_entry(i) for i in range(2000)]
    buf.set_checkpoint(ends[1500])
    assert len(list(tmp_path.glob("*.seg"))) < len(segs)  # stored segments are deleted
    assert buf.append(_entry(9), 1) > ends[-1]
    buf.close()


def test_full_buffer_refuses_with_retry_after(tmp_path: Path) -> None:
    buf = WriteAheadBuffer(tmp_path, max_bytes=10_000, fsync="never")
    with pytest.raises(TooManyRequests) as info:
        for i in range(1000):
            buf.append(_entry(i), 1)
    assert info.value.retry_after_s >= 1
    buf.set_checkpoint(buf.written)  # the consumer caught up: room again
    buf.append(_entry(0), 1)
    buf.close()


def test_rate_limiter_allows_the_burst_then_refuses() -> None:
    limiter = RateLimiter(rate_bytes_s=1000, burst_bytes=5000)
    limiter.take("a", 4000)
    limiter.take("a", 4000)  # into debt: one body may exceed what is left
    with pytest.raises(TooManyRequests) as info:
        limiter.take("a", 10)
    assert info.value.retry_after_s >= 3
    limiter.take("b", 10)  # tenants are independent


@pytest.mark.parametrize("processes", [0, 2])
def test_an_interrupted_insert_replays_exactly_once(tmp_path: Path, processes: int) -> None:
    settings = Settings(data_dir=tmp_path, writer_flush_ms=5, pipeline_decode_processes=processes)
    buf = WriteAheadBuffer(tmp_path / "wal")
    end = 0
    for i in range(10):
        end = buf.append(_entry(i), 1)
    buf.close()
    store = EventStore(tmp_path)
    pipeline = IngestPipeline(settings, store)  # reads the 10 entries as one batch [0, end)
    assert pipeline.flush(30)
    pipeline.close()
    # The process died after inserting [0, end) but before recording it as done.
    (tmp_path / "wal" / "checkpoint.json").write_bytes(orjson.dumps({"done": 0, "inflight": [0, end]}))
    pipeline = IngestPipeline(settings, store)
    assert pipeline.flush(30)
    assert pipeline.buffer.checkpoint.done == end
    pipeline.close()
    counts = store.rows("SELECT message, count() AS n FROM events GROUP BY message")
    store.close()
    assert {r["message"]: r["n"] for r in counts} == {f"m{i}": 1 for i in range(10)}


def test_http_answers_429_with_retry_after_over_the_rate(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        ingest_rate_bytes_s=100,
        ingest_burst_bytes=100,
        writer_flush_ms=5,
        pipeline_decode_processes=0,
    )
    with TestClient(create_app(settings)) as client:
        body = b"\n".join(orjson.dumps({"message": "x" * 50, "i": i}) for i in range(10))
        assert client.post("/api/v1/logs", content=body).status_code == 200
        r = client.post("/api/v1/logs", content=body)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "too_many_requests"


def test_sync_param_and_flush_make_events_searchable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, writer_flush_ms=5, ingest_wait_stored=False, pipeline_decode_processes=0)
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/v1/logs?sync=true", json={"message": "sync one"})
        assert r.status_code == 200
        assert client.get("/api/v1/search", params={"q": "sync"}).json()["total"] == 1
        client.post("/api/v1/logs", json={"message": "async two"})
        client.app.state.services.extras["pipeline"].flush()  # type: ignore[attr-defined]
        assert client.get("/api/v1/search", params={"q": "async"}).json()["total"] == 1


def test_decoder_processes_with_analysis_stages_store_what_the_server_would(tmp_path: Path) -> None:
    """With an event stage and after-store hooks, decoder processes hand the events back to the server:
    the stored events (ids, fields, what the stage set) and what the hooks saw match in-server decoding."""
    from logloupe.model import LogEvent

    observed = time.time_ns() // 1000  # fixed, so both runs give the same times and ids
    payloads = [
        encode_entry(
            "t1",
            "http",
            [orjson.dumps({"message": f"job {i} done", "level": "warn", "meta": {"i": i}})],
            observed_us=observed,
        )
        for i in range(30)
    ] + [
        encode_entry(
            "t2", "syslog_udp", [], [b"<11>Nov 21 04:40:00 h app: disk full", b"plain line"], observed_us=observed
        )
    ]
    results = []
    for processes in (0, 2):
        data = tmp_path / f"p{processes}"
        buf = WriteAheadBuffer(data / "wal")
        for p in payloads:
            buf.append(p, 1)
        buf.append(b"not an entry", 1)  # unreadable: quarantined, the rest stored
        buf.close()
        seen: list[LogEvent] = []
        quarantined: list[str] = []

        def stage(events: list[LogEvent]) -> list[LogEvent]:
            for e in events:
                e.classification = f"staged:{e.level.name}"
            return events

        settings = Settings(data_dir=data, writer_flush_ms=5, pipeline_decode_processes=processes)
        store = EventStore(data)
        pipeline = IngestPipeline(
            settings,
            store,
            after_store=[seen.extend],
            quarantine=lambda tenant, source, items: quarantined.extend(r for r, _ in items),
            extras={"event_stage": stage},
        )
        assert pipeline.flush(60)
        pipeline.close()
        rows = store.rows("SELECT uid, tenant, message, level, classification, attributes FROM events ORDER BY uid")
        store.close()
        results.append((rows, sorted(e.uid for e in seen), len(quarantined)))
    assert results[0] == results[1]
    rows, seen_uids, quarantined_n = results[1]
    assert len(rows) == 32 and seen_uids == [r["uid"] for r in rows] and quarantined_n == 1
    assert {r["classification"] for r in rows} >= {"staged:WARN", "staged:ERROR"}


@pytest.mark.parametrize("processes", [0, 2])
def test_hooks_see_every_stored_batch_in_order_before_stored_acknowledgements(tmp_path: Path, processes: int) -> None:
    """The after-store hooks run in their own thread: a slow hook lags the inserts, yet it sees every
    batch once and in buffer order, a "stored" acknowledgement resolves only after it saw the batch,
    and close() drains it — also when the decoder processes decoded and counted the events."""
    from collections.abc import Sequence

    from logloupe.model import LogEvent

    seen: list[str] = []

    def slow_hook(events: Sequence[LogEvent]) -> None:
        time.sleep(0.05)
        seen.extend(e.message for e in events)

    settings = Settings(data_dir=tmp_path, writer_flush_ms=1, writer_batch_rows=3, pipeline_decode_processes=processes)
    store = EventStore(tmp_path)
    pipeline = IngestPipeline(settings, store, after_store=[slow_hook])
    ends = [pipeline.append("default", _entry(i), 1, limit=False) for i in range(12)]
    pipeline.wait_stored(ends[5]).result(timeout=30)
    assert seen[:6] == [f"m{i}" for i in range(6)]
    for i in range(12, 20):
        pipeline.append("default", _entry(i), 1, limit=False)
    pipeline.close()
    assert seen == [f"m{i}" for i in range(20)]
    assert store.rows("SELECT count() AS n FROM events")[0]["n"] == 20
    store.close()


@pytest.mark.parametrize("processes", [0, 2])
def test_ingested_metric_counts_each_stored_event_once(tmp_path: Path, processes: int) -> None:
    """``logloupe_ingested_events_total`` by level, whether the decoder processes or the server count."""
    from logloupe.metrics import INGESTED

    tenant = f"metric-{processes}"

    def count(level: str) -> float:
        return float(INGESTED.labels(tenant, "test", level)._value.get())

    settings = Settings(data_dir=tmp_path, writer_flush_ms=5, pipeline_decode_processes=processes)
    store = EventStore(tmp_path)
    pipeline = IngestPipeline(settings, store, after_store=[lambda events: None])
    records = [orjson.dumps({"message": f"m{i}", "level": ["info", "error"][i % 2]}) for i in range(10)]
    pipeline.append(tenant, encode_entry(tenant, "test", records), 10, limit=False)
    assert pipeline.flush(60)
    pipeline.close()
    store.close()
    assert (count("INFO"), count("ERROR")) == (5.0, 5.0)
