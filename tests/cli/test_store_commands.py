"""serve / ingest / search / demo as a user runs them: real processes, a real port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from click.testing import CliRunner

from logloupe.cli.main import main
from tests.helpers import free_port, wait_http

HDFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "loghub-2k" / "HDFS" / "HDFS_2k.log"
LOGLOUPE = [sys.executable, "-m", "logloupe.cli"]


def _lines(path: Path) -> Path:
    if HDFS.exists():
        return HDFS
    path.write_text(
        "".join(f"081109 2036{i:02d} 148 INFO dfs.DataNode: PacketResponder {i} terminating\n" for i in range(50))
    )
    return path


def test_ingest_and_search_without_a_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = _lines(tmp_path / "in.log")
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(log), "--service", "hdfs", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    n = sum(1 for _ in log.open())
    assert f"ingested {n} events" in result.output
    result = runner.invoke(main, ["search", "PacketResponder", "--json", "--limit", "3", "--data-dir", str(data)])
    body = orjson.loads(result.output)
    assert body["total"] > 0 and len(body["events"]) == 3
    assert body["events"][0]["service"] == "hdfs"


def test_ingest_text_chunk_lifts_meta_as_json_bodies_do(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "mixed.log"
    # one plain line in the chunk: it takes the text path (format detection per line)
    meta_line = orjson.dumps({"service": "auth", "level": "error", "message": "denied", "meta": {"user_id": 7}})
    log.write_bytes(b"2026-11-21 10:00:00 INFO plain start\n" + meta_line + b"\n")
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(log), "--data-dir", str(data)])
    assert result.exit_code == 0 and "ingested 2 events" in result.output, result.output
    result = runner.invoke(main, ["search", "attr.user_id:7", "--json", "--data-dir", str(data)])
    events = orjson.loads(result.output)["events"]
    assert [(e["message"], e["service"], e["attributes"]) for e in events] == [("denied", "auth", {"user_id": "7"})]


def test_ingest_json_file_with_invalid_utf8_stores_it_flagged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "bad.ndjson"
    log.write_bytes(b'{"message":"cli fine"}\n{"message":"cli bad \xff","meta":{"user_id":8}}\n')
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(log), "--data-dir", str(data)])
    assert result.exit_code == 0 and "ingested 2 events, rejected 0" in result.output, result.output
    result = runner.invoke(main, ["search", "cli", "--json", "--data-dir", str(data)])
    got = {e["message"]: (e["flags"], e["attributes"]) for e in orjson.loads(result.output)["events"]}
    assert got == {"cli fine": ([], {}), "cli bad \ufffd": (["invalid_utf8"], {"user_id": "8"})}


def test_bad_query_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["search", "(oops", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "position" in result.output


def test_since_takes_a_duration_or_now_minus_one(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["search", "x", "--since", "1", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "is not a duration" in bad.output and "Traceback" not in bad.output
    good = CliRunner().invoke(main, ["search", "x", "--since", "now-1h", "--json", "--data-dir", str(tmp_path)])
    assert good.exit_code == 0, good.output


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    data = tmp_path / "served"
    proc = subprocess.Popen(
        [*LOGLOUPE, "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        yield url, data
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_cli_goes_through_a_running_server(server: tuple[str, Path], tmp_path: Path) -> None:
    url, data = server
    log = tmp_path / "app.log"
    log.write_text("ERROR payment failed for order 17\nINFO all good\n")
    env = {**os.environ, "LOGLOUPE_DATA_DIR": str(data)}
    out = subprocess.run([*LOGLOUPE, "ingest", str(log)], capture_output=True, text=True, env=env, check=True)
    assert "via http://127.0.0.1" in out.stdout
    out = subprocess.run(
        [*LOGLOUPE, "search", "level:ERROR", "--json"], capture_output=True, text=True, env=env, check=True
    )
    body = orjson.loads(out.stdout)
    assert body["total"] == 1
    assert body["events"][0]["message"] == "ERROR payment failed for order 17"
    assert httpx.get(f"{url}/api/v1/search", params={"q": "good"}).json()["total"] == 1


def test_remote_ingest_keeps_text_structure_and_traces_across_chunks(server: tuple[str, Path], tmp_path: Path) -> None:
    url, data = server
    from logloupe.cli.store_commands import CHUNK_LINES

    lines = [f"2026-11-21 10:00:00,{i % 1000:03d} INFO worker: job {i} done" for i in range(CHUNK_LINES - 1)]
    lines.append("2026-11-21 10:00:01,000 ERROR worker: job failed")
    lines.append("java.lang.IllegalStateException: queue closed")  # line CHUNK_LINES + 1: the next chunk
    lines.append("\tat com.example.Worker.run(Worker.java:42)")
    lines.append("2026-11-21 10:00:02,000 INFO worker: recovered")
    log = tmp_path / "big.log"
    log.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "LOGLOUPE_DATA_DIR": str(data)}
    out = subprocess.run(
        [*LOGLOUPE, "ingest", str(log), "--service", "jobs"], capture_output=True, text=True, env=env, check=True
    )
    assert f"ingested {len(lines)} events" in out.stdout, out.stdout  # lines accepted
    found = httpx.get(f"{url}/api/v1/search", params={"q": "level:ERROR", "from": "2026-11-21T00:00:00Z"}).json()
    assert found["total"] == 1
    event = found["events"][0]
    assert event["service"] == "jobs"
    assert event["ts"].startswith("2026-11-21T10:00:01")  # the line's own time: its format was detected
    assert "IllegalStateException" in event["message"] and "Worker.java:42" in event["message"]


def test_serve_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "without authentication" in result.output


def test_demo_serves_generated_traffic(tmp_path: Path) -> None:
    # An hour of history: the story's first half hour is calm (CALM_S), the second holds outages.
    port = free_port()
    proc = subprocess.Popen(
        [*LOGLOUPE, "demo", "--port", str(port), "--history", "1h", "--data-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
        facets: list[dict[str, object]] = []
        outage = 0
        for _ in range(300):
            facets = httpx.get(f"{url}/api/v1/facets", params={"fields": "service"}).json()["fields"]["service"]
            outage = httpx.get(f"{url}/api/v1/search", params={"q": '"connection refused"'}).json()["total"]
            if len(facets) == 5 and outage > 0:
                break
            time.sleep(0.2)
        assert {f["value"] for f in facets} == {"auth", "payments", "api-gateway", "database", "workers"}
        assert outage > 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
