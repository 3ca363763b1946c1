"""Per-source parsing settings through a real ``logloupe serve``: a time zone and grok patterns from the
settings file and from ``/api/v1/parsing/sources``, applied on the text, JSON, _bulk, Loki and syslog paths."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from logloupe.errors import InvalidInput
from logloupe.serve.app import create_app
from logloupe.settings import Settings
from tests.helpers import free_port, wait_http
from tests.ingest.conftest import free_udp_port, stop

CONFIG = r"""
[[parsing_sources]]
name = "legacy"
match = { service = "legacy-*" }
timezone = "Asia/Tokyo"
patterns = [
  { name = "legacy", pattern = '%{TIMESTAMP_ISO8601:ts} \| %{LOGLEVEL:level} \| %{WORD:module} \| %{GREEDYDATA:msg}' },
]

[[parsing_sources]]
name = "syslog-paris"
match = { source = "syslog_*", service = "cron*" }
timezone = "Europe/Paris"
"""


@dataclass
class Served:
    url: str
    udp_port: int
    proc: subprocess.Popen[bytes]

    def events(self, q: str, expect: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            r = httpx.get(
                f"{self.url}/api/v1/search",
                params={"q": q, "limit": 100, "from": "2020-01-01T00:00:00Z", "fields": "all"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            body = r.json()
            if body["total"] >= expect:
                return sorted(body["events"], key=lambda e: e["ts"])
            time.sleep(0.1)
        raise AssertionError(f"{q!r}: expected {expect} events, found {body.get('total')}")


def serve(data: Path, config: str | None = None, **env: str) -> Served:
    port, udp = free_port(), free_udp_port()
    environ = {
        **os.environ,
        "LOGLOUPE_WRITER_FLUSH_MS": "20",
        "LOGLOUPE_SYSLOG_UDP_PORT": str(udp),
        **env,
    }
    environ.pop("LOGLOUPE_CONFIG", None)
    if config is not None:
        path = data.parent / f"{data.name}.toml"
        path.write_text(config)
        environ["LOGLOUPE_CONFIG"] = str(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "logloupe.cli", "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environ,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz")
    except TimeoutError:
        stop(proc)
        raise
    return Served(url, udp, proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = serve(tmp_path_factory.mktemp("parsing") / "data", CONFIG, LOGLOUPE_MULTILINE_FLUSH_MS="300")
    try:
        yield s
    finally:
        stop(s.proc)


def mark() -> str:
    return f"m{secrets.token_hex(4)}"


BILLING = {
    "match": {"service": "billing*"},
    "timezone": "America/New_York",
    "patterns": [
        {
            "name": "billing",
            "pattern": r"%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} \[%{NOTSPACE:thread}\] order=%{INT:order_id} %{GREEDYDATA:msg}",
        }
    ],
}


def test_api_source_zone_and_grok_on_text_json_bulk_and_loki(server: Served) -> None:
    svc = f"billing-{mark()}"
    r = httpx.put(f"{server.url}/api/v1/parsing/sources/billing", json=BILLING)
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "America/New_York"
    listed = httpx.get(f"{server.url}/api/v1/parsing/sources").json()["items"]
    assert [(s["name"], s["from"]) for s in listed] == [
        ("billing", "api"),
        ("legacy", "settings"),
        ("syslog-paris", "settings"),
    ]

    # text/plain: the stream is named by ?service=
    text = "2026-01-15 10:00:00 WARN [worker-3] order=42 charge declined\n"
    r = httpx.post(
        f"{server.url}/api/v1/logs",
        params={"service": svc, "sync": "true"},
        content=text,
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    # a JSON record: its zone-less time is read in the source's zone; its message through the patterns
    record = {"timestamp": "2026-01-15 11:00:00", "service": svc, "message": "no pattern here"}
    matched = {"service": svc, "message": "2026-01-15 12:00:00 ERROR [w1] order=7 card expired"}
    r = httpx.post(f"{server.url}/api/v1/logs", params={"sync": "true"}, json=[record, matched])
    assert r.status_code == 200, r.text
    # Elasticsearch _bulk: the index names the service
    action = json.dumps({"index": {"_index": svc}})
    bulk = f'{action}\n{{"message":"2026-01-15 13:00:00 INFO [w2] order=8 refunded"}}\n'.encode()
    r = httpx.post(
        f"{server.url}/_bulk", params={"sync": "true"}, content=bulk, headers={"content-type": "application/x-ndjson"}
    )
    assert r.status_code == 200 and not r.json()["errors"], r.text
    # Loki push: the service_name label names the service
    loki = {
        "streams": [
            {
                "stream": {"service_name": svc},
                "values": [[str(time.time_ns()), "2026-01-15 14:00:00 DEBUG [w3] order=9 retried"]],
            }
        ]
    }
    r = httpx.post(f"{server.url}/loki/api/v1/push", params={"sync": "true"}, json=loki)
    assert r.status_code == 204, r.text
    # OTLP/HTTP JSON: the resource's service.name names the service
    otlp = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(time.time_ns()),
                                "body": {"stringValue": "2026-01-15 15:00:00 INFO [w4] order=10 exported"},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    r = httpx.post(f"{server.url}/v1/logs", params={"sync": "true"}, json=otlp)
    assert r.status_code == 200, r.text

    events = server.events(f"service:{svc}", 6)
    assert [e["ts"] for e in events] == [
        "2026-01-15T15:00:00.000000Z",
        "2026-01-15T16:00:00.000000Z",
        "2026-01-15T17:00:00.000000Z",
        "2026-01-15T18:00:00.000000Z",
        "2026-01-15T19:00:00.000000Z",
        "2026-01-15T20:00:00.000000Z",
    ]
    by_ts = {e["ts"][11:13]: e for e in events}
    assert by_ts["15"]["message"] == "charge declined"
    assert by_ts["15"]["level"] == "WARN"
    assert by_ts["15"]["attributes"]["thread"] == "worker-3"
    assert by_ts["15"]["attributes"]["order_id"] == "42"
    assert by_ts["16"]["message"] == "no pattern here"
    assert by_ts["17"]["level"] == "ERROR"
    assert by_ts["17"]["attributes"]["order_id"] == "7"
    assert by_ts["17"]["attributes"]["parsing.pattern"] == "billing"
    assert by_ts["18"]["attributes"]["order_id"] == "8"
    assert by_ts["18"]["message"] == "refunded"
    assert by_ts["19"]["attributes"]["order_id"] == "9"
    assert by_ts["19"]["level"] == "DEBUG"
    assert by_ts["20"]["attributes"]["order_id"] == "10"
    assert by_ts["20"]["message"] == "exported"
    # the grok fields are searchable
    found = server.events(f'service:{svc} attr.order_id:"42"', 1)
    assert len(found) == 1

    # deleted: the next lines are read with the defaults (UTC, no pattern)
    assert httpx.delete(f"{server.url}/api/v1/parsing/sources/billing").status_code == 200
    r = httpx.post(
        f"{server.url}/api/v1/logs",
        params={"service": svc, "sync": "true"},
        content="2026-01-16 10:00:00 INFO [worker-4] order=43 paid\n",
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 200
    after = server.events(f"service:{svc}", 7)
    last = after[-1]
    assert last["ts"] == "2026-01-16T10:00:00.000000Z"
    assert "order_id" not in last["attributes"]


def test_settings_file_source_on_text_and_syslog(server: Served) -> None:
    m = mark()
    svc = f"legacy-{m}"
    lines = f"2026-02-01 09:30:00 | ERROR | ledger | {m} balance mismatch\n"
    r = httpx.post(
        f"{server.url}/api/v1/logs",
        params={"service": svc, "sync": "true"},
        content=lines,
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 200, r.text
    (e,) = server.events(f"service:{svc}", 1)
    assert e["ts"] == "2026-02-01T00:30:00.000000Z"  # 09:30 in Tokyo
    assert e["attributes"]["module"] == "ledger"
    assert e["message"] == f"{m} balance mismatch"
    assert e["level"] == "ERROR"

    # RFC 3164 syslog has no zone: the source's (Paris, UTC+1 in February) applies
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(f"<14>Feb  1 10:00:00 box1 cron-{m}[7]: {m} job ran".encode(), ("127.0.0.1", server.udp_port))
    (sys_event,) = server.events(f"service:cron-{m}", 1)
    assert sys_event["ts"].endswith("-02-01T09:00:00.000000Z")


def test_upload_is_read_with_its_source(server: Served, tmp_path: Path) -> None:
    m = mark()
    path = tmp_path / "ledger.log"
    path.write_text(
        f"2026-02-02 08:00:00 | WARN | ledger | {m} slow close\n"
        "java.lang.IllegalStateException: late\n"
        "\tat app.Ledger.close(Ledger.java:3)\n"
        f"2026-02-02 08:00:05 | INFO | ledger | {m} closed\n"
    )
    with path.open("rb") as f:
        r = httpx.post(f"{server.url}/api/v1/upload", files={"file": (path.name, f)}, data={"service": f"legacy-{m}"})
    assert r.status_code == 202, r.text
    events = server.events(f"service:legacy-{m}", 2)
    assert [e["ts"] for e in events] == ["2026-02-01T23:00:00.000000Z", "2026-02-01T23:00:05.000000Z"]
    assert events[0]["message"].split("\n") == [
        f"{m} slow close",
        "java.lang.IllegalStateException: late",
        "\tat app.Ledger.close(Ledger.java:3)",
    ]
    assert events[0]["source"] == "upload:ledger.log"


def test_invalid_sources_are_refused_with_the_reason(server: Served) -> None:
    bad = [
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"patterns": [{"name": "x", "pattern": "%{NOPE:x}"}]}, "NOPE"),
        ({"patterns": [{"name": "x", "pattern": "(unclosed"}]}, "invalid pattern"),
        ({"multiline": "sometimes"}, "multiline"),
        ({"multiline_start": "["}, "multiline_start"),
        ({"match": {"index": "x"}}, "unknown match"),
        ({"format": "nope"}, "format"),
    ]
    for body, words in bad:
        r = httpx.put(f"{server.url}/api/v1/parsing/sources/bad", json=body)
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["error"]["message"], r.text
    assert httpx.get(f"{server.url}/api/v1/parsing/sources/bad").status_code == 404
    assert httpx.delete(f"{server.url}/api/v1/parsing/sources/bad").status_code == 404


def test_dry_run_parses_without_storing(server: Served) -> None:
    r = httpx.post(
        f"{server.url}/api/v1/parsing/test",
        json={"lines": ["2026-01-15 10:00:00 WARN [t] order=1 x"], "rule": BILLING},
    )
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert item["format"] == "billing"
    assert item["attributes"] == {"thread": "t", "order_id": "1"}
    r = httpx.post(f"{server.url}/api/v1/parsing/test", json={"lines": ["x | INFO | m | y"], "service": "legacy-a"})
    assert r.json()["timezone"] == "Asia/Tokyo"


def test_a_bad_settings_table_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", parsing_sources=[{"name": "x", "timezone": "Nowhere/Land"}])
    with pytest.raises(InvalidInput, match="Nowhere/Land"), TestClient(create_app(settings)):
        pass
