"""Anomaly detection in the running server: events ingested over HTTP reach the detectors through
the store writer's hook and the detection thread; anomalies come back through /api/v1/anomalies, per tenant.

Time is simulated: events carry explicit past timestamps (one bucket = one minute), and the
detectors' tick is called with an explicit clock. The background ticker is set to an hour so it
never runs during a test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from logloupe.analyse.anomaly.live import LiveDetection
from logloupe.model import Anomaly, iso_micros
from logloupe.serve.app import create_app
from logloupe.serve.deps import Principal
from logloupe.serve.services import Services
from logloupe.settings import Settings

MINUTE_US = 60_000_000
# Three days ago, on the hour: within retention, and far from the wall clock.
HOUR_US = 3600 * 1_000_000
T0 = (time.time_ns() // 1000 - 72 * HOUR_US) // HOUR_US * HOUR_US
BASELINE_MINUTES = 150


def _settings(tmp_path: Path, processes: int = 0) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", writer_flush_ms=5, anomaly_tick_s=3600, pipeline_decode_processes=processes
    )


def _at(minute: int, second: float = 0.0) -> str:
    return iso_micros(T0 + minute * MINUTE_US + int(second * 1_000_000))


def _normal(minute: int, service: str, per_minute: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(per_minute):
        if service == "api":
            msg = f"GET /items/{minute * 100 + i} 200 in {10 + i % 7}ms"
        else:
            msg = f"charged invoice {minute * 1000 + i} amount {i % 50}.00 EUR"
        out.append({"timestamp": _at(minute, i * 60 / per_minute), "service": service, "level": "info", "message": msg})
    return out


def _errors(minute: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": _at(minute, i * 60 / n),
            "service": "api",
            "level": "error",
            # Most of them on one database: the value that drives the anomaly.
            "message": f"database connection refused to db-{2 if i % 5 else i % 2} after {5000 + i}ms",
        }
        for i in range(n)
    ]


def _ingest(client: TestClient, events: list[dict[str, Any]], tenant: str = "") -> None:
    body = b"\n".join(orjson.dumps(e) for e in events)
    headers = {"content-type": "application/x-ndjson"}
    if tenant:
        headers["x-tenant"] = tenant
    r = client.post("/api/v1/logs", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(events)


def _baseline(client: TestClient, tenant: str = "", minutes: range = range(BASELINE_MINUTES)) -> None:
    chunk: list[dict[str, Any]] = []
    for minute in minutes:
        chunk += _normal(minute, "api", 20) + _normal(minute, "billing", 10)
        if len(chunk) >= 1500:
            _ingest(client, chunk, tenant)
            chunk = []
    if chunk:
        _ingest(client, chunk, tenant)


def _live(client: TestClient) -> LiveDetection:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    live: LiveDetection = services.extras["anomaly_detection"]
    return live


def _items(client: TestClient, tenant: str = "", **params: Any) -> list[dict[str, Any]]:
    _live(client).flush()  # detection runs on its own thread: wait until it has seen every batch
    headers = {"x-tenant": tenant} if tenant else {}
    r = client.get("/api/v1/anomalies", params=params, headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path))) as c:
        yield c


@pytest.fixture(params=[0, 2], ids=["in-server", "decoder-processes"])
def any_client(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app decoding in its own thread, and with two decoder processes (whose events reach the
    miner and the detectors as column lists)."""
    with TestClient(create_app(_settings(tmp_path, int(request.param)))) as c:
        yield c


def _incident(client: TestClient, tenant: str = "") -> None:
    """Baseline, then at minute 150 a burst of a brand-new error in api while billing goes silent."""
    _baseline(client, tenant)
    _ingest(client, _normal(BASELINE_MINUTES, "api", 20) + _errors(BASELINE_MINUTES, 200), tenant)
    for minute in range(BASELINE_MINUTES + 1, BASELINE_MINUTES + 11):
        _ingest(client, _normal(minute, "api", 20), tenant)


def test_burst_new_message_and_silence_become_anomalies(any_client: TestClient) -> None:
    client = any_client
    heard: list[Anomaly] = []
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    services.extras["anomaly_listeners"].append(heard.append)

    _baseline(client)
    assert _items(client) == [], "a steady baseline raises nothing"

    _ingest(client, _normal(BASELINE_MINUTES, "api", 20) + _errors(BASELINE_MINUTES, 200))
    new = _items(client, kind="new_pattern")
    assert len(new) == 1
    assert new[0]["service"] == "api"
    assert new[0]["score"] >= 0.7
    pattern = new[0]["explanation"]["patterns"][0]
    assert "database connection refused" in pattern["example"]
    assert pattern["source"] == "pattern"  # the template miner names it before storage
    assert new[0]["pattern_ids"] == [pattern["id"]]

    for minute in range(BASELINE_MINUTES + 1, BASELINE_MINUTES + 11):
        _ingest(client, _normal(minute, "api", 20))
    # billing has said nothing for 11 minutes; the ticker's clock is explicit here.
    ticked = _live(client).tick(T0 + (BASELINE_MINUTES + 11) * MINUTE_US)
    assert [s.anomaly.kind for s in ticked] == ["silence"]

    items = _items(client)
    kinds = {(a["service"], a["kind"]) for a in items}
    assert {("api", "new_pattern"), ("api", "rate_spike"), ("api", "error_ratio"), ("billing", "silence")} <= kinds
    assert not {k for s, k in kinds if s == "billing"} - {"silence"}
    assert all(a["score"] >= 0.7 and a["explanation"]["summary"] for a in items)
    assert [a["ts"] for a in items] == sorted((a["ts"] for a in items), reverse=True)
    assert {a.kind for a in heard} == {a["kind"] for a in items} and len(heard) == len(items)

    ratio = next(a for a in items if a["kind"] == "error_ratio")
    assert "200 of 220 events were errors" in ratio["explanation"]["summary"]
    driver = ratio["explanation"]["drivers"][0]  # which variable value drove it
    assert driver["pattern_id"] == pattern["id"] and (driver["variable"], driver["value"]) == ("var.0", "2")
    assert driver["share"] == 0.8 and driver["baseline_share"] == 0.0 and driver["count"] == 160
    assert ratio["explanation"]["patterns"][0]["id"] == pattern["id"]
    silence = next(a for a in items if a["kind"] == "silence")
    assert "billing went silent" in silence["explanation"]["summary"]

    # Evidence links resolve to the stored events.
    assert ratio["event_ids"]
    for event_id, link in zip(ratio["event_ids"][:3], ratio["links"]["events"][:3], strict=True):
        event = client.get(link).json()
        assert event["id"] == event_id
        assert event["level"] == "ERROR" and "database connection refused" in event["message"]

    # Filters.
    assert {a["kind"] for a in _items(client, service="billing")} == {"silence"}
    assert all(a["score"] >= 0.9 for a in _items(client, min_score=0.9))
    assert _items(client, **{"from": _at(BASELINE_MINUTES + 30)}) == []
    assert len(_items(client, limit=1)) == 1
    assert client.get("/api/v1/anomalies", params={"from": "yesterday-ish"}).status_code == 400
    assert client.get("/api/v1/anomalies", params={"min_score": 2}).status_code == 400

    one = client.get(f"/api/v1/anomalies/{silence['id']}")
    assert one.status_code == 200 and one.json() == silence
    missing = client.get("/api/v1/anomalies/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    timeline = client.get(
        "/api/v1/anomalies/timeline", params={"from": _at(0), "to": _at(BASELINE_MINUTES + 20), "interval": "10m"}
    ).json()
    assert timeline["interval_seconds"] == 600
    by_service = {s["service"]: s["points"] for s in timeline["series"]}
    assert set(by_service) == {"api", "billing"}
    assert len(by_service["api"]) == len(timeline["buckets"]) >= 17
    assert max(p["max_score"] for p in by_service["api"]) >= 0.9
    assert sum(p["count"] for p in by_service["api"]) == sum(1 for a in items if a["service"] == "api")
    assert sum(1 for p in by_service["billing"] if p["count"]) == 1
    auto = client.get("/api/v1/anomalies/timeline").json()
    assert auto["interval_seconds"] > 0 and {s["service"] for s in auto["series"]} == {"api", "billing"}


def test_feedback_is_stored_and_mutes_similar_anomalies(client: TestClient) -> None:
    _incident(client)
    ratio = _items(client, kind="error_ratio")
    assert len(ratio) == 1
    bad = client.post(f"/api/v1/anomalies/{ratio[0]['id']}/feedback", json={"verdict": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"
    assert client.post("/api/v1/anomalies/nope/feedback", json={"verdict": "real"}).status_code == 404

    r = client.post(f"/api/v1/anomalies/{ratio[0]['id']}/feedback", json={"verdict": "false_positive"})
    assert r.status_code == 200 and r.json()["feedback"] == "false_positive"
    assert client.get(f"/api/v1/anomalies/{ratio[0]['id']}").json()["feedback"] == "false_positive"

    # The same burst again: the service still spikes, but the muted error-ratio alarm stays quiet.
    second = BASELINE_MINUTES + 11
    spikes_before = len(_items(client, kind="rate_spike"))
    _ingest(client, _normal(second, "api", 20) + _errors(second, 200))
    _ingest(client, _normal(second + 1, "api", 20))
    assert len(_items(client, kind="error_ratio")) == 1
    assert len(_items(client, kind="rate_spike")) > spikes_before

    # "real" lifts the mute: a third burst is reported again.
    client.post(f"/api/v1/anomalies/{ratio[0]['id']}/feedback", json={"verdict": "real"})
    third = second + 2
    _ingest(client, _normal(third, "api", 20) + _errors(third, 400))
    _ingest(client, _normal(third + 1, "api", 20))
    assert len(_items(client, kind="error_ratio")) == 2


def test_feedback_survives_a_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with TestClient(create_app(settings)) as c:
        _baseline(c, minutes=range(70))
        _ingest(c, _normal(70, "api", 20) + _errors(70, 200))
        new = _items(c, kind="new_pattern")
        assert len(new) == 1
        c.post(f"/api/v1/anomalies/{new[0]['id']}/feedback", json={"verdict": "false_positive"})
    with TestClient(create_app(settings)) as c:
        # A fresh process has empty detectors: the same steady history, then the same new error.
        _baseline(c, minutes=range(70))
        _ingest(c, _normal(70, "api", 20) + _errors(70, 200))
        assert len(_items(c, kind="new_pattern")) == 1, "the muted pattern is not reported again"
        _ingest(c, [{"timestamp": _at(70, 59), "service": "api", "level": "fatal", "message": "disk on fire"}])
        assert len(_items(c, kind="new_pattern")) == 2, "other new patterns still are"


def test_tenants_never_see_each_others_anomalies(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    services = Services.open(settings)
    services.meta.ensure_tenant("acme")
    services.meta.ensure_tenant("globex")

    def resolve(request: Request) -> Principal:
        return Principal(tenant=request.headers.get("x-tenant", "acme"), user="u", role="admin")

    services.extras["principal_resolver"] = resolve
    try:
        with TestClient(create_app(settings, services)) as c:
            _incident(c, "acme")
            # globex logs the same service name, steadily: its detector state is its own.
            _baseline(c, "globex", range(BASELINE_MINUTES + 11))
            _live(c).tick(T0 + (BASELINE_MINUTES + 11) * MINUTE_US)

            acme = _items(c, "acme")
            assert {a["kind"] for a in acme} >= {"new_pattern", "rate_spike", "error_ratio", "silence"}
            assert _items(c, "globex") == []
            target = acme[0]["id"]
            other = {"x-tenant": "globex"}
            assert c.get(f"/api/v1/anomalies/{target}", headers=other).status_code == 404
            r = c.post(f"/api/v1/anomalies/{target}/feedback", json={"verdict": "false_positive"}, headers=other)
            assert r.status_code == 404
            assert c.get(f"/api/v1/anomalies/{target}", headers={"x-tenant": "acme"}).json()["feedback"] == ""
            assert c.get("/api/v1/anomalies/timeline", headers=other).json()["series"] == []
            assert c.get("/api/v1/anomalies/timeline", headers={"x-tenant": "acme"}).json()["series"]
    finally:
        services.close()


def test_learned_baselines_survive_a_restart(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with TestClient(create_app(settings)) as c:
        _baseline(c)
        assert _items(c) == []
    assert (settings.data_dir / "anomaly" / "state.pickle").exists(), "saved on shutdown"
    with TestClient(create_app(settings)) as c:
        # No history in this process: the burst is judged against the baselines learned before.
        _ingest(c, _normal(BASELINE_MINUTES, "api", 20) + _errors(BASELINE_MINUTES, 200))
        _ingest(c, _normal(BASELINE_MINUTES + 1, "api", 20))
        kinds = {a["kind"] for a in _items(c, service="api")}
        assert {"new_pattern", "error_ratio"} <= kinds


def test_a_damaged_state_file_is_set_aside(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    state = settings.data_dir / "anomaly" / "state.pickle"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"not a pickle")
    with TestClient(create_app(settings)) as c:
        assert c.get("/healthz").status_code == 200
        _baseline(c, minutes=range(10))
    assert state.with_suffix(".unreadable").read_bytes() == b"not a pickle"
    assert state.exists()
