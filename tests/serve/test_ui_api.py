"""Patterns, dashboard stats, live-tail filtering and the UI's own routes, through the real app."""

from __future__ import annotations

import asyncio
import threading
import time

from fastapi.testclient import TestClient

from logloupe.model import Level, LogEvent, event_uid
from logloupe.serve.api.tail import Subscriber, TailHub
from logloupe.store.evaluate import compile_matcher

NOW = time.time_ns() // 1000
P_LOGIN, P_REFUSED, P_NEW = 0xA000000000000001, 0xF00000000000000B, 0x0000000000000C0C


def _event(
    i: int, *, ago_s: float, pid: int, level: Level = Level.INFO, service: str = "auth", tenant: str = "default"
) -> LogEvent:
    return LogEvent(
        tenant,
        NOW - int(ago_s * 1_000_000),
        NOW,
        event_uid(i, pid),
        f"message {i} of {pid:x}",
        service=service,
        level=level,
        pattern_id=pid,
    )


def _load(client: TestClient) -> None:
    events = [_event(i, ago_s=3000 - i * 10, pid=P_LOGIN) for i in range(200)]
    events += [
        _event(1000 + i, ago_s=2500 - i * 20, pid=P_REFUSED, level=Level.ERROR, service="database") for i in range(50)
    ]
    events += [_event(2000 + i, ago_s=300 - i * 10, pid=P_NEW, level=Level.WARN, service="database") for i in range(10)]
    events += [_event(3000 + i, ago_s=100, pid=P_LOGIN, tenant="other") for i in range(30)]
    client.app.state.services.writer.write(events)  # type: ignore[attr-defined]


def test_patterns_from_the_events_table(client: TestClient) -> None:
    _load(client)
    body = client.get("/api/v1/patterns", params={"from": "now-1h", "buckets": 12}).json()
    by_id = {p["id"]: p for p in body["patterns"]}
    assert list(by_id) == ["a000000000000001", "f00000000000000b", "0000000000000c0c"]
    login = by_id["a000000000000001"]
    assert login["count"] == 200  # the other tenant's 30 are not counted
    assert login["levels"] == {"INFO": 200}
    assert sum(login["trend"]) == 200 and len(login["trend"]) >= 12
    assert login["example"].startswith("message ")
    assert len(login["samples"]) == 3 and len(set(login["samples"])) == 3  # distinct messages
    assert login["example"] in login["samples"] and all(m.startswith("message ") for m in login["samples"])
    assert not login["new"] and by_id["0000000000000c0c"]["new"]
    assert body["total"] == 260
    only_db = client.get("/api/v1/patterns", params={"from": "now-1h", "service": "database"}).json()
    assert {p["id"] for p in only_db["patterns"]} == {"f00000000000000b", "0000000000000c0c"}


def test_rename_merge_split(client: TestClient) -> None:
    _load(client)
    assert client.post("/api/v1/patterns/a000000000000001/rename", json={"name": "user logins"}).status_code == 200
    r = client.post("/api/v1/patterns/merge", json={"ids": ["f00000000000000b", "0000000000000c0c"]})
    assert r.json() == {"id": "f00000000000000b", "merged": ["0000000000000c0c"]}
    body = client.get("/api/v1/patterns", params={"from": "now-1h"}).json()
    by_id = {p["id"]: p for p in body["patterns"]}
    assert by_id["a000000000000001"]["name"] == "user logins"
    assert "0000000000000c0c" not in by_id
    assert by_id["f00000000000000b"]["count"] == 60
    assert by_id["f00000000000000b"]["merged"] == ["0000000000000c0c"]
    # A search for the surviving id finds the merged pattern's events too.
    assert client.get("/api/v1/search", params={"q": "pattern:f00000000000000b", "limit": 1}).json()["total"] == 60
    r = client.post("/api/v1/patterns/f00000000000000b/split", json={})
    assert r.json()["split"] == ["0000000000000c0c"]
    assert client.get("/api/v1/search", params={"q": "pattern:f00000000000000b", "limit": 1}).json()["total"] == 50
    # Bad input is a clear 400, never a 500.
    assert client.post("/api/v1/patterns/f00000000000000b/split", json={}).status_code == 400
    assert client.post("/api/v1/patterns/nothex/rename", json={"name": "x"}).status_code == 400
    assert (
        client.post("/api/v1/patterns/merge", json={"ids": ["a000000000000001", "a000000000000001"]}).status_code == 400
    )
    assert client.post("/api/v1/patterns/merge", json={"ids": ["a000000000000001"]}).status_code == 400


def test_stats_overview(client: TestClient) -> None:
    _load(client)
    body = client.get("/api/v1/stats/overview", params={"from": "now-1h", "to": "now"}).json()
    assert body["total"] == 260 and body["errors"] == 50
    assert abs(body["error_rate"] - 50 / 260) < 1e-9
    assert body["by_level"]["WARN"] == 10
    assert [s["service"] for s in body["by_service"]] == ["auth", "database"]
    assert body["top_error_patterns"][0] == {
        "id": "f00000000000000b",
        "name": "",
        "count": 50,
        "example": body["top_error_patterns"][0]["example"],
        "service": "database",
    }
    assert all(e["level"] == "ERROR" for e in body["latest_errors"]) and body["latest_errors"]
    assert sum(b["total"] for b in body["timeline"]["buckets"]) == 260
    db = client.get("/api/v1/stats/overview", params={"from": "now-1h", "service": "database"}).json()
    assert db["total"] == 60 and [s["service"] for s in db["by_service"]] == ["database"]
    quoted = client.get("/api/v1/stats/overview", params={"service": 'we"ird\\'}).json()
    assert quoted["total"] == 0


def test_tail_rejects_a_bad_query_with_its_position(client: TestClient) -> None:
    r = client.get("/api/v1/tail", params={"q": "service:auth AND (oops"})
    assert r.status_code == 400
    assert r.json()["error"]["position"] == 22


def test_tail_hub_filters_by_tenant_and_query() -> None:
    async def scenario() -> list[list[LogEvent]]:
        hub = TailHub()
        loop = asyncio.get_running_loop()
        mine = Subscriber("default", compile_matcher("level:>=WARN", now_us=NOW), loop)
        hub.add(mine)
        hub.publish(
            [
                _event(1, ago_s=1, pid=1, level=Level.ERROR),
                _event(2, ago_s=1, pid=1, level=Level.INFO),
                _event(3, ago_s=1, pid=1, level=Level.ERROR, tenant="other"),
            ]
        )
        await asyncio.sleep(0.05)
        got = []
        while not mine.queue.empty():
            got.append(mine.queue.get_nowait())
        return got

    # In its own thread: a browser test in the same session may hold this thread's event loop.
    result: list[list[list[LogEvent]]] = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(scenario())))
    worker.start()
    worker.join(30)
    batches = result[0]
    assert [[e.uid for e in b] for b in batches] == [[event_uid(1, 1)]]


def test_ui_routes(client: TestClient) -> None:
    r = client.get("/", follow_redirects=False, headers={"accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 307 and r.headers["location"] == "/app/discover"
    # Without asking for HTML, / is Elasticsearch's cluster info (for _bulk clients).
    assert client.get("/").headers["x-elastic-product"] == "Elasticsearch"
    shell = client.get("/app/patterns")
    assert shell.status_code == 200 and '<script type="module" src="/static/app.js">' in shell.text
    assert "script-src 'self'" in shell.headers["content-security-policy"]
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/pages/discover.js").status_code == 200
    assert client.get("/static/../api/ui.py").status_code == 404
    assert client.get("/static/%2e%2e/api/ui.py").status_code == 404
    assert client.get("/static/nope.js").status_code == 404
