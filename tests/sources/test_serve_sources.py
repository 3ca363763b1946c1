"""Sources configured in ``logloupe serve``: they run inside the server, keep their checkpoints in the
metadata store across restarts, and show their status in /api/v1/sources and /metrics."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.settings import Settings
from tests.sources.conftest import Server, assert_exact, env


def _config(tmp_path: Path, logs: Path) -> Path:
    path = tmp_path / "logloupe.toml"
    path.write_text(
        f"""
writer_flush_ms = 20

[[sources]]
type = "tail"
name = "app-logs"
paths = ["{logs}/*.log"]
service = "served-app"
labels = {{ team = "payments" }}
start_at = "beginning"
scan_s = 0.2
idle_s = 0.1
multiline_flush_s = 0.2
"""
    )
    return path


def test_tail_source_inside_serve_survives_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setenv("LOGLOUPE_CONFIG", str(_config(tmp_path, logs)))
    assert "LOGLOUPE_CONFIG" in env()
    written = [f"served line {i}" for i in range(300)]
    (logs / "app.log").write_text("".join(line + "\n" for line in written[:200]))
    server = Server(tmp_path / "data")
    server.start()
    try:
        assert server.wait_total("service:served-app", 200) == 200
        listed = httpx.get(f"{server.url}/api/v1/sources").json()["sources"]
        assert [s["id"] for s in listed] == ["app-logs"]
        src = listed[0]
        assert src["kind"] == "tail" and src["status"] == "running" and src["events_total"] == 200
        assert src["last_read_at"] and src["errors_total"] == 0 and src["lag"] == {"bytes": 0}
        one = httpx.get(f"{server.url}/api/v1/sources/app-logs").json()
        assert one["position"]["bytes"] == (logs / "app.log").stat().st_size
        assert httpx.get(f"{server.url}/api/v1/sources/nope").status_code == 404
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'logloupe_source_events_total{source="app-logs"} 200.0' in metrics
        assert 'logloupe_source_lag_bytes{source="app-logs"} 0.0' in metrics
        server.stop()
        with (logs / "app.log").open("a") as fh:
            fh.write("".join(line + "\n" for line in written[200:]))
        server.start()
        assert server.wait_total("service:served-app", 300) == 300
        time.sleep(1)
        assert_exact(server.messages("service:served-app"), written)
        hit = httpx.get(f"{server.url}/api/v1/search", params={"q": "attr.team:payments", "limit": 1}).json()
        assert hit["total"] == 300
    finally:
        server.stop()


def test_bad_source_config_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", sources=[{"type": "tail", "name": "x", "pathz": ["/tmp/*.log"]}])
    with pytest.raises(Exception, match="unknown options"), TestClient(create_app(settings)):
        pass
    settings = Settings(data_dir=tmp_path / "e", sources=[{"type": "ftp", "name": "x"}])
    with pytest.raises(Exception, match="type must be one of"), TestClient(create_app(settings)):
        pass
