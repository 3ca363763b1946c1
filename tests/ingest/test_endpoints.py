"""Protocol endpoints through the in-process app: bad input is a clear 4xx and lands in the quarantine."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import cramjam
from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.settings import Settings
from tests.ingest.conftest import free_udp_port


def test_undecodable_bodies_are_4xx_and_quarantined(client: TestClient) -> None:
    r = client.post("/v1/logs", content=b"\x0a\xff\xff garbage", headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    r = client.post("/loki/api/v1/push", content=b'{"streams": 3}', headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/v1/logs", content=b"x", headers={"content-type": "text/xml"})
    assert r.status_code == 415
    claims_64_mib = b"\x80\x80\x80\x20" + bytes(cramjam.snappy.compress_raw(b"tiny"))[1:]
    r = client.post("/loki/api/v1/push", content=claims_64_mib, headers={"content-type": "application/x-protobuf"})
    assert r.status_code == 413  # refused from the header, before inflating
    sources = {item["source"] for item in client.get("/api/v1/quarantine").json()["items"]}
    assert {"otlp", "loki"} <= sources


def test_es_root_and_bulk_in_process(client: TestClient) -> None:
    info = client.get("/")
    assert info.headers["x-elastic-product"] == "Elasticsearch"
    assert info.json()["version"]["number"].startswith("8.")
    assert client.get("/", headers={"accept": "text/html"}, follow_redirects=False).status_code == 307
    assert client.get("/_license").json()["license"]["status"] == "active"
    r = client.post("/logs-app/_bulk", content=b'{"create":{}}\n{"message":"bulk in index","level":"error"}\n')
    assert r.json()["items"][0]["create"]["status"] == 201
    r = client.put("/logs-app/_doc/abc", json={"message": "with id"})
    assert r.status_code == 201 and r.json()["_id"] == "abc"
    events = client.get("/api/v1/search", params={"q": "service:logs-app"}).json()["events"]
    assert {e["message"] for e in events} == {"bulk in index", "with id"}
    bad = client.post("/_bulk", content=b"\n")
    assert bad.status_code == 400 and bad.headers["x-elastic-product"] == "Elasticsearch"  # errors too
    assert client.delete("/_bulk").headers["x-elastic-product"] == "Elasticsearch"  # 405
    assert "x-elastic-product" not in client.get("/api/v1/search", params={"q": "("}).headers
    # Beats' start-up set-up: lookups say "none yet", creations are acknowledged.
    assert client.head("/_index_template/filebeat-8.17.0").status_code == 404
    assert client.put("/_ilm/policy/filebeat", json={"policy": {}}).json() == {"acknowledged": True}
    assert client.get("/_xpack").json()["features"]["ilm"]["available"] is True


def test_udp_syslog_drops_are_counted_when_over_the_rate(tmp_path: Path) -> None:
    udp = free_udp_port()
    settings = Settings(
        data_dir=tmp_path,
        syslog_udp_port=udp,
        ingest_rate_bytes_s=1,
        ingest_burst_bytes=1,
        pipeline_decode_processes=0,
        writer_flush_ms=5,
    )
    with TestClient(create_app(settings)) as client:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(5):
                s.sendto(b"<11>app: over the rate %d" % i, ("127.0.0.1", udp))
                time.sleep(0.1)  # separate batches
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            text = client.get("/metrics").text
            if 'logloupe_dropped_events_total{reason="rate_limit",source="syslog_udp"}' in text:
                break
            time.sleep(0.1)
        assert 'logloupe_dropped_events_total{reason="rate_limit",source="syslog_udp"}' in text
        client.app.state.services.extras["pipeline"].flush()  # type: ignore[attr-defined]
        assert client.get("/api/v1/search", params={"q": "rate"}).json()["total"] >= 1  # the first one passed


def test_upload_limit_and_shape_errors(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, upload_max_bytes=2048, pipeline_decode_processes=0)
    with TestClient(create_app(settings)) as client:
        r = client.post("/api/v1/upload", files={"file": ("big.log", b"x\n" * 5000)})
        assert r.status_code == 413
        assert client.post("/api/v1/upload", files={"other": ("a.log", b"x\n")}).status_code == 400
        assert client.post("/api/v1/upload", content=b"plain").status_code == 400
        assert not list((tmp_path / "uploads").glob("upload-*"))  # temp files removed


def test_tcp_syslog_pushes_back_instead_of_dropping(tmp_path: Path) -> None:
    from tests.helpers import free_port

    tcp = free_port()
    settings = Settings(
        data_dir=tmp_path,
        syslog_tcp_port=tcp,
        ingest_rate_bytes_s=200_000,
        ingest_burst_bytes=2000,
        pipeline_decode_processes=0,
        writer_flush_ms=5,
    )
    with TestClient(create_app(settings)) as client:
        with socket.create_connection(("127.0.0.1", tcp)) as s:
            for i in range(3000):  # > one 256 KiB read: the second read finds the tenant over its rate
                msg = b"<14>1 - host app - - - pushback message %04d %s" % (i, b"x" * 60)
                s.sendall(b"%d %s" % (len(msg), msg))
        pipeline = client.app.state.services.extras["pipeline"]  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        total = 0
        while time.monotonic() < deadline and total < 3000:
            pipeline.flush()
            total = client.get("/api/v1/search", params={"q": "pushback"}).json()["total"]
            time.sleep(0.2)
        assert total == 3000  # nothing dropped...
        metrics = client.get("/metrics").text
        refused = [ln for ln in metrics.splitlines() if ln.startswith("logloupe_rate_limited_requests_total{")]
        assert any('reason="rate_limit"' in ln and not ln.endswith(" 0.0") for ln in refused)  # ...though refused
        assert 'source="syslog_tcp"' not in "".join(
            ln for ln in metrics.splitlines() if ln.startswith("logloupe_dropped_events_total{")
        )
