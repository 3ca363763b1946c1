"""With --auth, an ingest key works on every machine-ingest protocol, and lands in its own tenant."""

from __future__ import annotations

import base64

import orjson

from tests.auth.conftest import World


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"elastic:{key}".encode()).decode()}


def _found(world: World, user: str, q: str) -> int:
    r = world.client.get("/api/v1/search", params={"q": q}, headers=world.h(user))
    return int(r.json()["total"])


def test_elasticsearch_bulk_with_basic_and_apikey(fresh: World) -> None:
    key = fresh.keys["acme-ingest"]
    body = (
        b"\n".join([orjson.dumps({"index": {"_index": "shop"}}), orjson.dumps({"message": "bulk-basic-line"})]) + b"\n"
    )
    r = fresh.client.post(
        "/_bulk?refresh=true", content=body, headers={**_basic(key), "content-type": "application/x-ndjson"}
    )
    assert r.status_code == 200 and not r.json()["errors"], r.text
    body2 = body.replace(b"bulk-basic-line", b"bulk-apikey-line")
    r = fresh.client.post(
        "/_bulk", content=body2, headers={"Authorization": f"ApiKey {key}", "content-type": "application/x-ndjson"}
    )
    assert r.status_code == 200, r.text
    assert _found(fresh, "alice", "bulk-basic-line") == 1 and _found(fresh, "alice", "bulk-apikey-line") == 1
    assert _found(fresh, "gina", "bulk-basic-line") == 0
    assert (
        fresh.client.post("/_bulk", content=body, headers={"content-type": "application/x-ndjson"}).status_code == 401
    )


def test_otlp_json_with_key_header(fresh: World) -> None:
    key = fresh.keys["acme-ingest"]
    payload = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
                "scopeLogs": [{"logRecords": [{"severityText": "ERROR", "body": {"stringValue": "otlp-key-line"}}]}],
            }
        ]
    }
    r = fresh.client.post("/v1/logs", json=payload, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    assert _found(fresh, "alice", "otlp-key-line service:checkout") == 1
    assert _found(fresh, "gina", "otlp-key-line") == 0
    assert fresh.client.post("/v1/logs", json=payload).status_code == 401


def test_loki_push_needs_a_key_and_ignores_a_spoofed_org(fresh: World) -> None:
    key = fresh.keys["acme-ingest"]
    push = {"streams": [{"stream": {"service": "edge"}, "values": [["1795000000000000000", "loki-key-line"]]}]}
    assert (
        fresh.client.post("/loki/api/v1/push", json=push, headers={"X-Scope-OrgID": fresh.tenants["acme"]}).status_code
        == 401
    )
    r = fresh.client.post("/loki/api/v1/push", json=push, headers={"X-API-Key": key})
    assert r.status_code in (200, 204), r.text
    assert _found(fresh, "alice", "loki-key-line") == 1
    spoof = {"X-API-Key": key, "X-Scope-OrgID": fresh.tenants["globex"]}
    assert fresh.client.post("/loki/api/v1/push", json=push, headers=spoof).status_code == 403
    assert _found(fresh, "gina", "loki-key-line") == 0
