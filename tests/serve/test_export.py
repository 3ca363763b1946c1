"""Export through the real app: NDJSON and CSV, across the search's pages, formulas defused, tenants apart."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from logloupe.serve.api.export import PAGE
from logloupe.serve.app import create_app
from tests.auth.conftest import auth_settings, bearer, ingest, login, register


def _send(client: TestClient, lines: list[dict[str, object]]) -> None:
    body = b"\n".join(orjson.dumps(x) for x in lines)
    r = client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200 and r.json()["accepted"] == len(lines), r.text


def test_ndjson_export_walks_every_page_newest_first(client: TestClient) -> None:
    n = PAGE + 700  # more than one search statement's page
    _send(
        client,
        [{"ts": 1_700_000_000 + i, "service": "api", "message": f"request {i} served"} for i in range(n)]
        + [{"ts": 1_700_000_000, "service": "other", "message": "not this one"}],
    )
    r = client.get("/api/v1/export", params={"q": "service:api", "from": "2023-01-01", "limit": 100_000})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    assert r.headers["content-disposition"].startswith('attachment; filename="logloupe-export-')
    assert r.headers["x-logloupe-total"] == r.headers["x-logloupe-exported"] == str(n)
    events = [orjson.loads(line) for line in r.content.splitlines()]
    assert [e["message"] for e in events] == [f"request {i} served" for i in reversed(range(n))]
    assert len({e["id"] for e in events}) == n
    capped = client.get(
        "/api/v1/export", params={"q": "service:api", "from": "2023-01-01", "limit": 10, "sort": "ts:asc"}
    )
    assert capped.headers["x-logloupe-exported"] == "10"
    assert [orjson.loads(x)["message"] for x in capped.content.splitlines()] == [
        f"request {i} served" for i in range(10)
    ]


def test_csv_export_quotes_text_and_defuses_formulas(client: TestClient) -> None:
    tricky = [
        {"service": "web", "level": "warn", "message": '=HYPERLINK("http://evil.example","click")'},
        {"service": "web", "message": 'line one, with "quotes"\nline two', "meta": {"user": "-5"}},
        {"service": "web", "message": "@SUM(A1:A9) and +1 and -1"},
    ]
    _send(client, tricky)
    r = client.get("/api/v1/export", params={"q": "service:web", "format": "csv", "sort": "ts:asc"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0] == [
        "ts",
        "id",
        "service",
        "host",
        "level",
        "message",
        "pattern_id",
        "source",
        "trace_id",
        "span_id",
        "attributes",
    ]
    by_message = {row[5]: row for row in rows[1:]}
    assert set(by_message) == {
        '\'=HYPERLINK("http://evil.example","click")',
        'line one, with "quotes"\nline two',  # quoted as RFC 4180 says, read back whole
        "'@SUM(A1:A9) and +1 and -1",
    }
    assert by_message['line one, with "quotes"\nline two'][10] == '{"user":"-5"}'
    assert by_message['\'=HYPERLINK("http://evil.example","click")'][4] == "WARN"


def test_export_errors_are_clear(client: TestClient) -> None:
    assert client.get("/api/v1/export", params={"q": "(unclosed"}).status_code == 400
    r = client.get("/api/v1/export", params={"format": "xlsx"})
    assert r.status_code == 400 and "ndjson or csv" in r.json()["error"]["message"]
    r = client.get("/api/v1/export", params={"limit": 10**9})
    assert r.status_code == 400 and "export_max_events" in r.json()["error"]["message"]


def test_an_export_holds_only_the_callers_tenant(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "data", ingest_wait_stored=True, pipeline_decode_processes=0)
    with TestClient(create_app(settings)) as c:
        register(c, "alice", "Alpha")
        register(c, "bob", "Beta")
        alice, bob = (bearer(login(c, user)["access_token"]) for user in ("alice", "bob"))
        ingest(c, alice, [{"service": "pay", "message": "alpha secret"}])
        ingest(c, bob, [{"service": "pay", "message": "beta note"}])
        assert c.get("/api/v1/export").status_code == 401
        got = c.get("/api/v1/export", headers=bob).content.splitlines()
        assert [orjson.loads(x)["message"] for x in got] == ["beta note"]
