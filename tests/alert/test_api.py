"""The alerts API through the real app: rules CRUD, roles, tenants, history with deliveries, silences."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from logloupe.alert.engine import AlertEngine
from logloupe.metrics import REGISTRY
from logloupe.serve.app import create_app
from logloupe.serve.deps import Principal
from logloupe.serve.services import Services
from logloupe.settings import Settings
from tests.alert.conftest import Receiver
from tests.alert.helpers import event


@pytest.fixture
def app_client(tmp_path: Path, receiver: Receiver) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data",
        writer_flush_ms=5,
        alert_webhook_url=receiver.url + "/hook",
        alert_webhook_secret="k",
        public_url="https://logs.example.com",
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _services(c: TestClient) -> Services:
    return c.app.state.services  # type: ignore[attr-defined,no-any-return]


def _as(c: TestClient, tenant: str, role: str = "admin") -> None:
    def resolve(request: Request) -> Principal:
        return Principal(tenant=request.headers.get("x-test-tenant", tenant), user="u1", role=role)

    _services(c).extras["principal_resolver"] = resolve


RULE = {
    "name": "incidents to webhook",
    "type": "classification",
    "channels": ["webhook"],
    "params": {"classes": ["incident"]},
    "targets": {"webhook_secret": "per-rule"},
}


def test_rules_crud(app_client: TestClient) -> None:
    names = {r["name"] for r in app_client.get("/api/v1/alerts/rules").json()["items"]}
    assert {"Incidents", "Preventive actions", "Anomalies"} <= names
    r = app_client.post("/api/v1/alerts/rules", json=RULE)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["targets"]["webhook_secret"] is True  # secrets are write-only
    assert app_client.get(f"/api/v1/alerts/rules/{rule['id']}").json()["name"] == RULE["name"]
    dup = app_client.post("/api/v1/alerts/rules", json=RULE)
    assert dup.status_code == 400 and dup.json()["error"]["code"] == "invalid_input"
    changed = app_client.put(f"/api/v1/alerts/rules/{rule['id']}", json={**RULE, "enabled": False}).json()
    assert changed["enabled"] is False
    assert app_client.delete(f"/api/v1/alerts/rules/{rule['id']}").json()["result"] == "deleted"
    assert app_client.get(f"/api/v1/alerts/rules/{rule['id']}").status_code == 404
    default = next(r for r in app_client.get("/api/v1/alerts/rules").json()["items"] if r["name"] == "Incidents")
    assert app_client.delete(f"/api/v1/alerts/rules/{default['id']}").json()["result"] == "disabled"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "type": "nope"},
        {"name": "x", "type": "query", "params": {"query": "a AND ("}},
        {"name": "x", "type": "query", "params": {"query": "a", "window_s": "soon"}},
        {"name": "x", "type": "classification", "channels": ["pager"]},
        {"name": "", "type": "silence"},
    ],
)
def test_bad_rules_are_400(app_client: TestClient, body: dict[str, object]) -> None:
    r = app_client.post("/api/v1/alerts/rules", json=body)
    assert r.status_code == 400, r.text
    assert "error" in r.json()


def test_viewer_cannot_change_rules_and_tenants_are_apart(app_client: TestClient) -> None:
    _as(app_client, "acme", role="viewer")
    assert app_client.post("/api/v1/alerts/rules", json=RULE).status_code == 403
    _as(app_client, "acme")
    rule = app_client.post("/api/v1/alerts/rules", json=RULE).json()
    other = {"x-test-tenant": "globex"}
    assert app_client.get(f"/api/v1/alerts/rules/{rule['id']}", headers=other).status_code == 404
    assert app_client.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=other).status_code == 404
    assert rule["id"] not in {r["id"] for r in app_client.get("/api/v1/alerts/rules", headers=other).json()["items"]}


def test_stored_incidents_notify_and_show_in_history(app_client: TestClient, receiver: Receiver) -> None:
    rule = app_client.post("/api/v1/alerts/rules", json=RULE).json()
    services = _services(app_client)
    now = time.time_ns() // 1000
    labels = {"tenant": "default", "service": "api"}
    before = REGISTRY.get_sample_value("log_incident_total", labels) or 0.0
    services.writer.write(
        [event("db connection refused <b>", classification="incident", ts_us=now, pattern_id=5) for _ in range(3)]
        + [event("other tenant", tenant="globex", classification="incident", ts_us=now)]
    )
    engine: AlertEngine = services.extras["alerts"]
    engine.dispatcher.drain()
    [hook] = receiver.on("/hook")
    body = hook.json()
    assert isinstance(body, dict) and body["matches"] == 3 and body["tenant"] == "default"
    assert body["links"]["alert"].startswith("https://logs.example.com/app/alerts?tab=history&id=")
    history = app_client.get("/api/v1/alerts/history", params={"rule_id": rule["id"]}).json()["items"]
    [item] = history
    assert item["state"] == "firing" and item["notification"]["samples"][0].endswith("db connection refused <b>")
    [delivery] = item["deliveries"]
    assert delivery["channel"] == "webhook" and delivery["result"] == "sent" and delivery["target"] == "127.0.0.1"
    incidents = app_client.get("/api/v1/alerts/history", params={"state": "firing"}).json()["items"]
    default_rule = [i for i in incidents if i["rule_name"] == "Incidents"]
    assert [d["result"] for d in default_rule[0]["deliveries"]] == ["not_configured", "not_configured"]
    assert app_client.get("/api/v1/alerts/history", params={"state": "bogus"}).status_code == 400
    assert REGISTRY.get_sample_value("log_incident_total", labels) == before + 3
    metrics = app_client.get("/metrics").text
    assert 'log_incident_total{service="api",tenant="default"}' in metrics
    assert 'logloupe_alert_deliveries_total{channel="webhook",result="sent"}' in metrics


def test_silences_api(app_client: TestClient, receiver: Receiver) -> None:
    rule = app_client.post("/api/v1/alerts/rules", json=RULE).json()
    r = app_client.post("/api/v1/alerts/silences", json={"rule_id": rule["id"], "duration_s": 600, "reason": "deploy"})
    assert r.status_code == 201
    silence = r.json()
    assert [s["id"] for s in app_client.get("/api/v1/alerts/silences").json()["items"]] == [silence["id"]]
    services = _services(app_client)
    services.writer.write([event("boom", classification="incident", ts_us=time.time_ns() // 1000)])
    services.extras["alerts"].dispatcher.drain()
    assert receiver.on("/hook") == []
    assert len(app_client.get("/api/v1/alerts/history", params={"state": "silenced"}).json()["items"]) == 1
    assert app_client.post("/api/v1/alerts/silences", json={"rule_id": "nope", "duration_s": 60}).status_code == 404
    assert app_client.post("/api/v1/alerts/silences", json={"duration_s": -1}).status_code == 400
    assert app_client.delete(f"/api/v1/alerts/silences/{silence['id']}").json() == {"deleted": silence["id"]}
    assert app_client.get("/api/v1/alerts/silences").json()["items"] == []


def test_report_anomalies(app_client: TestClient, receiver: Receiver) -> None:
    app_client.post(
        "/api/v1/alerts/rules",
        json={"name": "anomalies to webhook", "type": "anomaly", "channels": ["webhook"], "params": {"threshold": 0.8}},
    )
    r = app_client.post(
        "/api/v1/alerts/anomalies",
        json=[
            {
                "service": "api",
                "kind": "error_burst",
                "score": 0.93,
                "ts_us": 1,
                "explanation": "errors 12x",
                "pattern_ids": ["00000000000000ff"],
                "insight": "Deploy 42 broke login",
            },
            {"service": "api", "kind": "error_burst", "score": 0.75, "ts_us": 2},
        ],
    )
    assert r.json() == {"accepted": 2}
    _services(app_client).extras["alerts"].dispatcher.drain()
    [hook] = receiver.on("/hook")
    body = hook.json()
    assert isinstance(body, dict)
    assert (
        body["insight"] == "Deploy 42 broke login"
        and body["value"] == 0.93
        and body["pattern_id"] == "00000000000000ff"
    )
    bad = app_client.post("/api/v1/alerts/anomalies", json=[{"kind": "x", "score": 2, "ts_us": 1}])
    assert bad.status_code == 400


def test_rule_targets_are_validated(app_client: TestClient) -> None:
    for targets in ({"email_to": ["not an address\r\nBcc: x@y"]}, {"webhook_url": "file:///etc/passwd"}):
        r = app_client.post("/api/v1/alerts/rules", json={**RULE, "targets": targets})
        assert r.status_code == 400, r.text


def test_webhook_urls_and_secrets_are_not_readable(app_client: TestClient) -> None:
    secret_url = "https://hooks.slack.com/services/T000/B000/very-secret"
    body = {**RULE, "channels": ["slack", "webhook"], "targets": {"slack_url": secret_url, "webhook_secret": "k2"}}
    rule = app_client.post("/api/v1/alerts/rules", json=body).json()
    assert rule["targets"]["slack_url"] == "https://hooks.slack.com/…"
    assert "very-secret" not in app_client.get("/api/v1/alerts/rules").text
    # Sending back what was read (as the UI does) keeps the stored URL and secret.
    put = {k: rule[k] for k in ("name", "type", "channels", "params", "severity")}
    put["targets"] = {k: v for k, v in rule["targets"].items() if k != "webhook_secret"}
    assert app_client.put(f"/api/v1/alerts/rules/{rule['id']}", json={**put, "enabled": False}).status_code == 200
    stored = _services(app_client).extras["alerts"].alerts.get_rule("default", rule["id"])
    assert stored.targets.slack_url == secret_url and stored.targets.webhook_secret == "k2"
    assert stored.enabled is False


def test_a_new_tenants_default_rules_evaluate_at_once(app_client: TestClient) -> None:
    _as(app_client, "acme")
    names = {r["name"]: r for r in app_client.get("/api/v1/alerts/rules").json()["items"]}  # creates the defaults
    services = _services(app_client)
    services.writer.write([event("down", tenant="acme", classification="incident", ts_us=time.time_ns() // 1000)])
    services.extras["alerts"].dispatcher.drain()
    [item] = app_client.get("/api/v1/alerts/history", params={"rule_id": names["Incidents"]["id"]}).json()["items"]
    assert item["state"] == "firing"
