"""Pattern corrections made through the API reach the template miner, which keeps them."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _ingest(client: TestClient, lines: list[str]) -> None:
    body = "\n".join(lines).encode()
    r = client.post("/api/v1/logs", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text


def test_every_ingested_line_carries_its_pattern_and_class(client: TestClient) -> None:
    _ingest(client, [f"2026-11-20T10:00:{i:02d}Z ERROR db: connection refused to 10.0.0.{i}:5432" for i in range(20)])
    events = client.get("/api/v1/search", params={"limit": 20, "fields": "all"}).json()["events"]
    assert {e["pattern_id"] for e in events} != {""}
    assert len({e["pattern_id"] for e in events}) == 1
    assert all(e["classification"] in ("incident", "preventive_action", "normal") for e in events)
    assert all(e["level"] == "ERROR" and e["ts"].startswith("2026-11-20T10:00:") for e in events)
    assert all(e["pattern_vars"] for e in events)


def test_rename_and_split_are_remembered_by_the_miner(client: TestClient) -> None:
    _ingest(client, [f"job {n} finished in {n * 3} ms" for n in range(30)])
    pid = client.get("/api/v1/search", params={"limit": 1}).json()["events"][0]["pattern_id"]
    assert client.post(f"/api/v1/patterns/{pid}/rename", json={"name": "job done"}).status_code == 200
    miner = client.app.state.services.enricher.miner  # type: ignore[attr-defined]
    assert any(p.name == "job done" for p in miner.patterns(tenant="default"))
    r = client.post(f"/api/v1/patterns/{pid}/split", json={"position": 1})
    assert r.status_code == 200, r.text
    assert r.json()["locked"]
    assert client.post(f"/api/v1/patterns/{pid}/split", json={"position": 99}).status_code == 400


def test_events_written_directly_are_enriched_and_counted(client: TestClient) -> None:
    """The demo, the CLI and in-process sources write through the StoreWriter, not the buffer."""
    from logloupe.model import LogEvent, event_uid

    services = client.app.state.services  # type: ignore[attr-defined]
    now = 1_795_000_000_000_000
    events = [
        LogEvent("default", now + i, now, event_uid("direct", i), f"worker {i} stopped", source="direct-writer")
        for i in range(10)
    ]
    services.writer.write(events)
    stored = client.get("/api/v1/search", params={"q": "source:direct-writer", "limit": 10, "fields": "all"}).json()[
        "events"
    ]
    assert len(stored) == 10 and all(e["pattern_id"] and e["classification"] for e in stored)
    metrics = client.get("/metrics").text
    assert 'logloupe_ingested_events_total{level="INFO",source="direct-writer",tenant="default"} 10.0' in metrics
