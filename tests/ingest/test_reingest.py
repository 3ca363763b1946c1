"""Re-sending an input stores it once: event ids name an event's place in its input (issue #2).

Through the real paths: a `logloupe serve` process and its HTTP clients, the CLI in and out of a
server, and a restart in between.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from click.testing import CliRunner

from logloupe.cli.main import main
from tests.helpers import free_port, wait_http
from tests.ingest.conftest import LOGLOUPE, Server, start_server, stop


def _mark() -> str:
    return "m" + uuid.uuid4().hex[:12]


def _iso(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _total(url: str, q: str) -> int:
    r = httpx.get(f"{url}/api/v1/search", params={"q": q, "from": "now-2d", "limit": 1}, timeout=30)
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


def _ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in records)


def _post(url: str, body: bytes, path: str = "/api/v1/logs") -> httpx.Response:
    r = httpx.post(f"{url}{path}", content=body, headers={"content-type": "application/x-ndjson"}, timeout=30)
    assert r.status_code in (200, 201, 202), r.text
    return r


def test_the_same_body_posted_twice_is_stored_once(server: Server) -> None:
    m = _mark()
    body = _ndjson([{"timestamp": _iso(60 - i), "service": "api", "message": f"{m} request {i}"} for i in range(20)])
    _post(server.url, body)
    assert _total(server.url, m) == 20
    first = {e["id"] for e in server.search(m, 20)}
    _post(server.url, body)  # a client's retry after a timeout
    assert _total(server.url, m) == 20
    assert {e["id"] for e in server.search(m, 20)} == first
    # a different body holding some of the same events is a different input: its events are new
    _post(server.url, body + b"\n" + orjson.dumps({"timestamp": _iso(1), "service": "api", "message": f"{m} late"}))
    assert _total(server.url, m) == 41


def test_two_identical_lines_in_one_body_stay_two_events(server: Server) -> None:
    m = _mark()
    record = {"timestamp": _iso(30), "service": "api", "host": "h1", "message": f"{m} heartbeat"}
    _post(server.url, _ndjson([record, record]))
    events = server.search(m, 2)
    assert len(events) == 2 and events[0]["id"] != events[1]["id"]
    _post(server.url, _ndjson([record, record]))
    assert _total(server.url, m) == 2


def test_events_without_a_time_of_their_own_are_not_recognised(server: Server) -> None:
    # They get the arrival time, so a re-send is a new event (docs/ingest.md; Loki has the same rule).
    m = _mark()
    body = _ndjson([{"service": "api", "message": f"{m} no time"}])
    _post(server.url, body)
    time.sleep(0.002)
    _post(server.url, body)
    assert _total(server.url, m) == 2


def _bulk(docs: list[tuple[str, dict[str, Any]]], index: str) -> bytes:
    lines = []
    for doc_id, doc in docs:
        lines.append(orjson.dumps({"index": {"_index": index, **({"_id": doc_id} if doc_id else {})}}))
        lines.append(orjson.dumps(doc))
    return b"\n".join(lines) + b"\n"


def test_bulk_sent_twice_without_ids_is_stored_once(server: Server) -> None:
    m = _mark()
    docs = [("", {"@timestamp": _iso(50 - i), "message": f"{m} doc {i}"}) for i in range(5)]
    body = _bulk(docs, f"logs-{m}")
    for _ in range(2):
        r = _post(server.url, body, "/_bulk")
        assert r.json()["errors"] is False
    assert _total(server.url, m) == 5


def test_bulk_ids_name_the_event_in_any_request(server: Server) -> None:
    m = _mark()
    docs = [(f"{m}-{i}", {"@timestamp": _iso(50 - i), "message": f"{m} doc {i}"}) for i in range(6)]
    _post(server.url, _bulk(docs, f"logs-{m}"), "/_bulk")
    assert _total(server.url, m) == 6
    _post(server.url, _bulk(docs, f"logs-{m}"), "/_bulk")  # the same body
    # a client re-sends the last three (its retry of a partial failure), in a new request with a new doc
    extra = (f"{m}-new", {"@timestamp": _iso(5), "message": f"{m} doc new"})
    _post(server.url, _bulk([*docs[3:], extra], f"logs-{m}"), "/_bulk")
    assert _total(server.url, m) == 7
    # the same _id with another time is another event (ids are unique within a microsecond)
    _post(server.url, _bulk([(f"{m}-0", {"@timestamp": _iso(3), "message": f"{m} doc 0"})], f"logs-{m}"), "/_bulk")
    assert _total(server.url, m) == 8


def test_an_upload_sent_twice_is_stored_once(server: Server, tmp_path: Path) -> None:
    m = _mark()
    path = tmp_path / "app.log"
    path.write_text("".join(f"{_iso(100 - i)} INFO {m} line {i}\n" for i in range(30)))
    for _ in range(2):
        with path.open("rb") as f:
            r = httpx.post(f"{server.url}/api/v1/upload", files={"file": (path.name, f)}, timeout=30)
        assert r.status_code == 202, r.text
        job = r.json()
        deadline = time.monotonic() + 30
        while job.get("status") == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            job = httpx.get(f"{server.url}/api/v1/jobs/{job['id']}", timeout=10).json()
        assert job["status"] == "done", job
    assert _total(server.url, m) == 30


def test_cli_ingest_of_a_file_twice_is_stored_once(server: Server, tmp_path: Path) -> None:
    m = _mark()
    log = tmp_path / "app.log"
    log.write_text("".join(f"{_iso(200 - i)} ERROR {m} payment {i} failed\n" for i in range(40)))
    # without a server: the CLI opens the store itself
    data = tmp_path / "data"
    for _ in range(2):
        result = CliRunner().invoke(main, ["ingest", str(log), "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["search", m, "--since", "1d", "--json", "--data-dir", str(data)])
    assert orjson.loads(result.output)["total"] == 40
    # through a running server
    env = {**os.environ, "LOGLOUPE_DATA_DIR": str(server.data)}
    for _ in range(2):
        out = subprocess.run(
            [*LOGLOUPE, "ingest", str(log), "--server", server.url], capture_output=True, text=True, env=env, check=True
        )
        assert "ingested 40 events" in out.stdout, out.stdout
    assert _total(server.url, m) == 40


def test_a_resend_after_a_restart_is_stored_once(tmp_path: Path) -> None:
    """The store's memory of what it holds is the table itself: a restart forgets nothing."""
    m = _mark()
    body = _ndjson([{"timestamp": _iso(500 - i), "service": "api", "message": f"{m} event {i}"} for i in range(10)])
    data = tmp_path / "data"
    for _ in range(2):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(data, port)
        try:
            wait_http(f"{url}/healthz")
            _post(url, body)
            # a newer event first, so the re-send is older than the newest stored for its service
            _post(url, _ndjson([{"timestamp": _iso(1), "service": "api", "message": f"{m} newest {port}"}]))
            total = _total(url, f"{m} AND event")
        finally:
            stop(proc)
        assert total == 10
