"""POST /api/v1/logs: a JSON record and the same JSON sent as a text line are read alike — one key
table (``parse/keys.py``) with ECS dotted and nested keys — and a record's time is read by the same
reader as a text line's, with the same sanity window and reason attribute."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One real app for the module (the tests use words of their own)."""
    data = tmp_path_factory.mktemp("keys") / "data"
    settings = Settings(data_dir=data, writer_flush_ms=5, ingest_wait_stored=True, pipeline_decode_processes=0)
    with TestClient(create_app(settings)) as c:
        yield c


RECORDS: list[dict[str, Any]] = [
    {
        "@timestamp": "2026-01-02T03:04:05Z",
        "log.level": "error",
        "service.name": "checkout",
        "message": "m1 ecs dotted",
    },
    {
        "@timestamp": "2026-01-02T03:04:06Z",
        "service": {"name": "checkout", "version": "1.2"},
        "log": {"level": "warn", "logger": "app.Pay"},
        "host": {"name": "web-1"},
        "message": "m2 ecs nested",
    },
    {"time": "2026-01-02T03:04:07Z", "status": "error", "service": "dd", "message": "m3 datadog status"},
    {"time": "2026-01-02T03:04:08Z", "status": 503, "level": "info", "app": "web", "msg": "m4 http status"},
    {"ts": 1767323049.5, "severity": "WARNING", "trace.id": "abc", "span.id": "def", "message": "m5 otel ids"},
]


def _stored(client: TestClient, word: str) -> dict[str, Any]:
    events = client.get("/api/v1/search", params={"q": word, "from": "2025-01-01T00:00:00Z", "fields": "all"}).json()[
        "events"
    ]
    assert len(events) == 1, events
    e = events[0]
    return {k: e[k] for k in ("ts", "level", "service", "host", "message", "trace_id", "span_id", "attributes")}


def test_records_and_text_lines_read_the_same_keys(client: TestClient) -> None:
    as_records = [
        {**r, ("message" if "message" in r else "msg"): "rec " + str(r.get("message") or r.get("msg"))} for r in RECORDS
    ]
    r = client.post("/api/v1/logs", json=as_records)
    assert r.status_code == 200 and r.json()["accepted"] == len(RECORDS)
    text = "\n".join(
        orjson.dumps(
            {**r, ("message" if "message" in r else "msg"): "txt " + str(r.get("message") or r.get("msg"))}
        ).decode()
        for r in RECORDS
    )
    r = client.post("/api/v1/logs", content=text, headers={"content-type": "text/plain"})
    assert r.status_code == 200
    expected = [
        ("ERROR", "checkout", "", {}),
        ("WARN", "checkout", "web-1", {"service_info.version": "1.2", "log.logger": "app.Pay"}),
        ("ERROR", "dd", "", {}),
        ("INFO", "web", "", {"status": "503"}),
        ("WARN", "", "", {}),
    ]
    for i, (level, service, host, attrs) in enumerate(expected, 1):
        rec, txt = _stored(client, f"rec m{i}"), _stored(client, f"txt m{i}")
        assert (rec["level"], rec["service"], rec["host"]) == (level, service, host), rec
        assert rec["attributes"] == attrs, rec
        assert {k: v for k, v in rec.items() if k != "message"} == {k: v for k, v in txt.items() if k != "message"}
    assert _stored(client, "rec m5")[("trace_id")] == "abc" and _stored(client, "rec m5")["span_id"] == "def"
    assert _stored(client, "rec m1")["ts"] == "2026-01-02T03:04:05.000000Z"


@pytest.mark.parametrize(
    ("word", "value", "ts"),
    [
        ("clf", "10/Oct/2025:13:55:36 -0700", "2025-10-10T20:55:36.000000Z"),
        ("rfc2822", "Sun, 04 Jan 2026 04:47:44 GMT", "2026-01-04T04:47:44.000000Z"),
        ("comma", "2026-01-02 03:04:05,250", "2026-01-02T03:04:05.250000Z"),
    ],
)
def test_record_times_in_text_line_formats(client: TestClient, word: str, value: str, ts: str) -> None:
    r = client.post("/api/v1/logs", json=[{"time": value, "message": f"timed {word}"}])
    assert r.status_code == 200
    stored = _stored(client, word)
    assert stored["ts"] == ts and "time_replaced_reason" not in stored["attributes"]


def test_impossible_record_times_keep_the_event_with_the_reason(client: TestClient) -> None:
    body = [
        {"time": "not a time", "message": "bad once"},
        {"time": 0, "message": "zero twice"},
        {"time": "2999-01-01T00:00:00Z", "message": "future thrice"},
    ]
    assert client.post("/api/v1/logs", json=body).json()["accepted"] == 3
    events = client.get("/api/v1/search", params={"q": "once OR twice OR thrice", "fields": "all"}).json()["events"]
    reasons = {e["message"]: e["attributes"]["time_replaced_reason"] for e in events}
    assert reasons == {
        "bad once": "unparsable_time",
        "zero twice": "time_before_1990",
        "future thrice": "time_in_future",
    }
    assert all("time_replaced" in e["flags"] for e in events)
