"""Metrics: pushed to a real VictoriaMetrics (Debian's package) and read back; the Grafana
dashboard references only metrics that exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from logloupe.metrics import ANOMALY_SCORE, LOG_INCIDENT, REGISTRY, MetricsPusher, push_metrics
from tests.helpers import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
VM_BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[str]:
    if not Path(VM_BINARY).exists():
        pytest.skip("victoria-metrics is not installed (scripts/test.sh installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [
            VM_BINARY,
            f"-storageDataPath={tmp_path / 'vm'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=1",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", timeout_s=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _export(client: httpx.Client, url: str, name: str) -> list[dict[str, object]]:
    client.get(url + "/internal/force_flush")
    r = client.get(url + "/api/v1/export", params={"match[]": name})
    r.raise_for_status()
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def test_push_to_victoria_metrics_and_query_back(victoria: str) -> None:
    LOG_INCIDENT.labels("vmtest", "checkout").inc(7)
    ANOMALY_SCORE.labels("vmtest", "volume").observe(0.9)
    with httpx.Client(timeout=10) as client:
        push_metrics(client, victoria)
        deadline = time.monotonic() + 30
        series: list[dict[str, object]] = []
        while time.monotonic() < deadline and not series:
            series = _export(client, victoria, 'log_incident_total{tenant="vmtest"}')
            time.sleep(0.2)
        assert series, "pushed series not found"
        metric = series[0]["metric"]
        assert isinstance(metric, dict) and metric["service"] == "checkout"
        assert series[0]["values"] == [7]
        result: list[dict[str, object]] = []
        while time.monotonic() < deadline and not result:  # the index catches up with the import shortly
            query = client.get(victoria + "/api/v1/query", params={"query": 'log_incident_total{tenant="vmtest"}'})
            assert query.json()["status"] == "success"
            result = query.json()["data"]["result"]
            time.sleep(0.2)
        assert result and result[0]["value"][1] == "7"  # type: ignore[index]
        buckets = _export(client, victoria, 'logloupe_anomaly_score_bucket{tenant="vmtest",le="1.0"}')
        assert buckets and buckets[0]["values"] == [1]


def test_pusher_counts_failures_and_successes(victoria: str) -> None:
    ok_before = REGISTRY.get_sample_value("logloupe_metrics_pushes_total", {"result": "ok"}) or 0
    failed_before = REGISTRY.get_sample_value("logloupe_metrics_pushes_total", {"result": "failed"}) or 0
    pusher = MetricsPusher(victoria, interval_s=0.05)
    pusher.start()
    time.sleep(0.3)
    pusher.close()
    assert (REGISTRY.get_sample_value("logloupe_metrics_pushes_total", {"result": "ok"}) or 0) > ok_before
    assert not MetricsPusher(f"http://127.0.0.1:{free_port()}", 1).push_once()
    assert (REGISTRY.get_sample_value("logloupe_metrics_pushes_total", {"result": "failed"}) or 0) == failed_before + 1


def _exposed_names() -> set[str]:
    names: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = {
            "counter": ["_total", "_created"],
            "histogram": ["_bucket", "_sum", "_count", "_created"],
            "gauge": [""],
            "summary": ["_sum", "_count", ""],
        }.get(family.type, [""])
        names.update(family.name + s for s in suffixes)
    return names


def test_grafana_dashboard_uses_only_existing_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/logloupe.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    referenced = {m for e in exprs for m in re.findall(r"\b(log[a-z_]*)\s*[{\[),]", e)}
    assert len(referenced) >= 15
    missing = sorted(referenced - _exposed_names())
    assert not missing, f"the dashboard references metrics that do not exist: {missing}"
    for name in ("log_incident_total", "log_warning_total", "logloupe_alert_deliveries_total"):
        assert name in referenced
    assert dashboard["uid"] and all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])


def test_server_pushes_when_configured(victoria: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from logloupe.serve.app import create_app
    from logloupe.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", victoria_metrics_url=victoria, metrics_push_interval_s=60)
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").status_code == 200
    # The interval is long: what arrived was pushed at shutdown.
    with httpx.Client(timeout=10) as client:
        deadline = time.monotonic() + 30
        series: list[dict[str, object]] = []
        while time.monotonic() < deadline and not series:
            series = _export(client, victoria, "logloupe_writer_queue_events")
            time.sleep(0.2)
    assert series and series[0]["values"] == [0]
