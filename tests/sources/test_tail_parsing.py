"""A tailed file's lines are read as text lines (format, time, level), in the zone of the parsing source
that matches the tail, with its patterns; lines without a header keep their text and the arrival time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.settings import Settings


def _events(client: TestClient, q: str, expect: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(
            "/api/v1/search", params={"q": q, "from": "2020-01-01T00:00:00Z", "limit": 100, "fields": "all"}
        ).json()
        if body["total"] >= expect:
            return sorted(body["events"], key=lambda e: e["message"])
        time.sleep(0.1)
    raise AssertionError(f"{q}: {body.get('total')} events")


def test_tailed_lines_are_read_with_the_parsing_source(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text(
        "2026-02-01 09:30:00 ERROR [main] app.Ledger: balance mismatch\n"
        "java.lang.IllegalStateException: off by one\n"
        "\tat app.Ledger.close(Ledger.java:3)\n"
        "2026-02-01 09:31:00|WARN|billing|card declined\n"
        "no header at all\n"
    )
    settings = Settings(
        data_dir=tmp_path / "data",
        writer_flush_ms=5,
        sources=[
            {
                "type": "tail",
                "name": "ledger",
                "paths": [f"{logs}/*.log"],
                "service": "ledger",
                "start_at": "beginning",
                "scan_s": 0.1,
                "idle_s": 0.05,
                "multiline_flush_s": 0.1,
            }
        ],
        parsing_sources=[
            {
                "name": "tokyo-files",
                "match": {"source": "tail:*"},
                "timezone": "Asia/Tokyo",
                "patterns": [
                    {
                        "name": "pipes",
                        "pattern": r"%{TIMESTAMP_ISO8601:ts}\|%{LOGLEVEL:level}\|%{WORD:module}\|%{GREEDYDATA:msg}",
                    }
                ],
            }
        ],
    )
    with TestClient(create_app(settings)) as client:
        events = _events(client, "service:ledger", 3)
    by_message = {e["message"].split("\n")[0]: e for e in events}
    trace = by_message["balance mismatch"]
    assert trace["ts"] == "2026-02-01T00:30:00.000000Z"  # 09:30 in Tokyo
    assert trace["level"] == "ERROR"
    assert trace["message"].split("\n")[1:] == [
        "java.lang.IllegalStateException: off by one",
        "\tat app.Ledger.close(Ledger.java:3)",
    ]
    assert trace["attributes"]["file.path"].endswith("app.log")
    assert trace["attributes"]["logger"] == "app.Ledger"  # the tail names the service
    piped = by_message["card declined"]
    assert piped["ts"] == "2026-02-01T00:31:00.000000Z"
    assert piped["attributes"]["module"] == "billing"
    assert piped["level"] == "WARN"
    plain = by_message["no header at all"]
    assert plain["ts"] == plain["observed_ts"]  # no time written: the time it was read
