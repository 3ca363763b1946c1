"""The whole flows: register → login → upload → search, patterns and insights, refresh rotation, logout, keys, retention,
quotas, LLM policy, the OpenAPI security schemes, the login page, and local mode unchanged."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from logloupe.errors import Forbidden, Unauthorized
from logloupe.parse.records import Limits, record_fields
from logloupe.pipeline.assemble import assemble
from logloupe.serve.app import create_app
from logloupe.serve.auth import principal_from_headers, principal_from_key
from logloupe.serve.deps import Principal
from logloupe.serve.services import Services
from logloupe.settings import Settings
from logloupe.store.search import now_us
from tests.auth.conftest import PASSWORD, auth_settings, bearer, ingest, login, register

DAY_US = 86_400_000_000


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(auth_settings(tmp_path / "data"))) as c:
        yield c


def test_register_login_upload_search_sees_only_own_data(app_client: TestClient) -> None:
    c = app_client
    a = register(c, "ann", "Ann Corp")
    b = register(c, "ben", "Ben Corp")
    assert a["role"] == "admin" and a["tenant"] != b["tenant"]
    ta = login(c, "ann")
    tb = login(c, "ben@example.com")  # email works as the login name
    assert ta["tenant"] == a["tenant"] and ta["token_type"] == "bearer"
    ingest(c, bearer(ta["access_token"]), [{"service": "shop", "level": "error", "message": "ann checkout failed"}])
    # Ben uploads a file (multipart) with his bearer token; the job shows its patterns and insights.
    lines = [f"2026-11-21 10:00:{i:02d} ERROR db: connection refused to db-{i}:5432 after timeout" for i in range(20)]
    lines += [f"2026-11-21 10:01:{i:02d} INFO api: ben request {i} served" for i in range(30)]
    up = c.post(
        "/api/v1/upload",
        files={"file": ("ben-app.log", ("\n".join(lines) + "\n").encode())},
        headers=bearer(tb["access_token"]),
    )
    assert up.status_code == 202, up.text
    job_url = f"/api/v1/jobs/{up.json()['id']}"
    deadline = time.monotonic() + 30
    while (job := c.get(job_url, headers=bearer(tb["access_token"])).json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["status"] == "done" and job["stored"] == 50, job
    templates = {p["template"]: p["count"] for p in job["patterns"]}
    assert sorted(templates.values()) == [20, 30], templates
    assert job["insights"] and any(c["verified"] for i in job["insights"] for c in i["citations"]), job["insights"]
    assert c.get(job_url, headers=bearer(ta["access_token"])).status_code == 404  # not Ann's job
    ra = c.get("/api/v1/search", headers=bearer(ta["access_token"])).json()
    rb = c.get("/api/v1/search", params={"limit": 100}, headers=bearer(tb["access_token"])).json()
    assert [e["message"] for e in ra["events"]] == ["ann checkout failed"]
    assert rb["total"] == 50 and all("ben" in e["message"] or "db-" in e["message"] for e in rb["events"])
    pa = c.get("/api/v1/patterns", headers=bearer(ta["access_token"])).json()["patterns"]
    pb = c.get("/api/v1/patterns", headers=bearer(tb["access_token"])).json()["patterns"]
    assert {p["id"] for p in pb} == {p["id"] for p in job["patterns"]}
    assert not {p["id"] for p in pa} & {p["id"] for p in pb} and all("ann" in p["example"] for p in pa)
    assert c.get("/api/v1/auth/me", headers=bearer(ta["access_token"])).json()["tenant"] == a["tenant"]


def test_refresh_rotates_and_reuse_ends_every_session(app_client: TestClient) -> None:
    c = app_client
    register(c, "rita", "Rita Org")
    first = login(c, "rita")
    second = c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    new = second.json()
    assert c.get("/api/v1/search", headers=bearer(new["access_token"])).status_code == 200
    # the used refresh token is spent; presenting it again revokes the whole family
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]}).status_code == 401


def test_logout_revokes_access_and_refresh(app_client: TestClient) -> None:
    c = app_client
    register(c, "leo", "Leo Org")
    t = login(c, "leo")
    r = c.post("/api/v1/auth/logout", json={"refresh_token": t["refresh_token"]}, headers=bearer(t["access_token"]))
    assert r.status_code == 200
    assert c.get("/api/v1/search", headers=bearer(t["access_token"])).status_code == 401
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]}).status_code == 401


def test_password_change_ends_sessions(app_client: TestClient) -> None:
    c = app_client
    register(c, "pat", "Pat Org")
    t = login(c, "pat")
    h = bearer(t["access_token"])
    wrong = c.post("/api/v1/auth/password", json={"current_password": "nope-nope", "new_password": "x" * 12}, headers=h)
    assert wrong.status_code == 403
    r = c.post("/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "brand new pw"}, headers=h)
    assert r.status_code == 200
    assert c.get("/api/v1/search", headers=h).status_code == 401
    assert c.post("/api/v1/auth/refresh", json={"refresh_token": t["refresh_token"]}).status_code == 401
    assert c.post("/api/v1/auth/login", json={"username": "pat", "password": PASSWORD}).status_code == 401
    assert login(c, "pat", "brand new pw")["role"] == "admin"


def test_api_key_shown_once_listed_without_secret_last_used(app_client: TestClient) -> None:
    c = app_client
    register(c, "kim", "Kim Org")
    h = bearer(login(c, "kim")["access_token"])
    made = c.post("/api/v1/keys", json={"name": "shipper", "role": "ingest"}, headers=h)
    assert made.status_code == 201
    key = made.json()["key"]
    assert key.startswith("llk_")
    listed = c.get("/api/v1/keys", headers=h).json()["items"]
    assert listed[0]["last_used_at"] is None and "key" not in listed[0]
    assert c.post("/api/v1/logs", json={"message": "by key"}, headers={"X-API-Key": key}).status_code == 200
    listed = c.get("/api/v1/keys", headers=h).json()["items"]
    assert listed[0]["last_used_at"] is not None
    assert c.get("/api/v1/search", params={"q": "key"}, headers=h).json()["total"] == 1


def test_retention_deletes_old_events_from_the_store(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "data")
    with TestClient(create_app(settings)) as c:
        tenant = register(c, "ret", "Ret Org")["tenant"]
        h = bearer(login(c, "ret")["access_token"])
        services: Services = c.app.state.services  # type: ignore[attr-defined]
        now = now_us()
        old = assemble([record_fields({"message": "ancient"}, Limits())], tenant=tenant, now_us=now - 20 * DAY_US)
        services.writer.write(old)
        ingest(c, h, [{"message": "recent"}])

        def stored() -> int:
            # Straight to the engine: not the search API, so nothing can be merely hidden.
            return int(
                services.store.scalar("SELECT count() FROM events WHERE tenant = {t:String}", {"t": tenant}) or 0
            )

        assert stored() == 2
        r = c.put("/api/v1/tenant/retention", json={"days": 7}, headers=h)
        assert r.status_code == 200
        assert stored() == 1
        assert c.get("/api/v1/tenant", headers=h).json()["retention_days"] == 7
        assert c.get("/api/v1/search", headers=h).json()["events"][0]["message"] == "recent"


def test_retention_sweeper_deletes_past_retention_per_tenant(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "data")
    with TestClient(create_app(settings)) as c:
        short = register(c, "sam", "Short Org")["tenant"]
        long = register(c, "lena", "Long Org")["tenant"]
        services: Services = c.app.state.services  # type: ignore[attr-defined]
        then = now_us() - 20 * DAY_US
        for tenant in (short, long):
            services.writer.write(
                assemble([record_fields({"message": "old"}, Limits())], tenant=tenant, now_us=then, position=tenant)
            )
        services.meta.set_retention(short, 7)  # straight to the store: only the sweeper can enforce it
        assert services.extras["retention_sweeper"].run_once() == {short: 1}

        def stored(tenant: str) -> int:
            return int(services.store.scalar("SELECT count() FROM events WHERE tenant = {t:String}", {"t": tenant}))

        assert stored(short) == 0 and stored(long) == 1
        assert services.extras["retention_sweeper"].run_once() == {}


def test_rate_and_burst_quota_answer_429(app_client: TestClient) -> None:
    c = app_client
    register(c, "quin", "Quota Org")
    h = bearer(login(c, "quin")["access_token"])
    q = c.put("/api/v1/tenant/quotas", json={"rate_per_s": 0.01, "burst": 3}, headers=h)
    assert q.json() == {"rate_per_s": 0.01, "burst": 3, "daily_bytes": 0}
    assert c.post("/api/v1/logs", json=[{"message": "a"}, {"message": "b"}], headers=h).status_code == 200
    r = c.post("/api/v1/logs", json=[{"message": "c"}, {"message": "d"}], headers=h)
    assert r.status_code == 429
    assert r.json()["error"]["quota"] == "rate"
    assert int(r.headers["retry-after"]) >= 1
    assert c.get("/api/v1/search", headers=h).json()["total"] == 2  # nothing of the refused batch stored


def test_quotas_hold_for_the_usual_ndjson_body(app_client: TestClient) -> None:
    """NDJSON whose lines are all objects skips the per-item walk (bodies.ObjectLines): the rate and
    the daily volume are charged all the same, on its line count and bytes."""
    c = app_client
    register(c, "nadia", "Lines Org")
    h = bearer(login(c, "nadia")["access_token"])
    ndjson = {**h, "content-type": "application/x-ndjson"}
    assert c.put("/api/v1/tenant/quotas", json={"rate_per_s": 0.01, "burst": 3}, headers=h).status_code == 200
    lines = b'{"message": "a"}\n{"message": "b"}'
    assert c.post("/api/v1/logs", content=lines, headers=ndjson).status_code == 200
    r = c.post("/api/v1/logs", content=lines, headers=ndjson)
    assert r.status_code == 429 and r.json()["error"]["quota"] == "rate"
    quotas = {"rate_per_s": 0, "burst": 0, "daily_bytes": 70}
    assert c.put("/api/v1/tenant/quotas", json=quotas, headers=h).status_code == 200
    assert c.post("/api/v1/logs", content=b'{"message": "c"}\n{"message": "d"}', headers=ndjson).status_code == 200
    r = c.post("/api/v1/logs", content=b'{"message": "e"}\n{"message": "f"}', headers=ndjson)
    assert r.status_code == 429 and r.json()["error"]["quota"] == "daily_bytes"
    assert c.get("/api/v1/search", headers=h).json()["total"] == 4


def test_daily_volume_quota_answers_429(app_client: TestClient) -> None:
    c = app_client
    register(c, "dora", "Daily Org")
    h = bearer(login(c, "dora")["access_token"])
    c.put("/api/v1/tenant/quotas", json={"daily_bytes": 60}, headers=h)
    assert c.post("/api/v1/logs", json={"message": "x" * 20}, headers=h).status_code == 200
    r = c.post("/api/v1/logs", json={"message": "y" * 40}, headers=h)
    assert r.status_code == 429 and r.json()["error"]["quota"] == "daily_bytes"


def test_llm_policy_is_stored_per_tenant(app_client: TestClient) -> None:
    c = app_client
    register(c, "lia", "LLM Org")
    register(c, "lou", "Other Org")
    h = bearer(login(c, "lia")["access_token"])
    r = c.put("/api/v1/tenant/llm-policy", json={"allowed_providers": ["ollama"], "masking_mode": "strict"}, headers=h)
    assert r.json() == {"allowed_providers": ["ollama"], "masking_mode": "strict"}
    assert c.put("/api/v1/tenant/llm-policy", json={"masking_mode": "bogus"}, headers=h).status_code == 400
    other = c.get("/api/v1/tenant", headers=bearer(login(c, "lou")["access_token"])).json()
    assert other["llm"] == {"allowed_providers": [], "masking_mode": "mask"}


def test_openapi_describes_the_security_schemes(app_client: TestClient) -> None:
    c = app_client
    register(c, "olga", "Doc Org")
    doc = c.get("/openapi.json", headers=bearer(login(c, "olga")["access_token"])).json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    assert schemes["apiKeyHeader"]["type"] == "apiKey" and schemes["apiKeyHeader"]["name"] == "X-API-Key"
    assert schemes["basicAuth"]["scheme"] == "basic"
    assert {"bearerAuth": []} in doc["security"]
    assert doc["paths"]["/api/v1/auth/login"]["post"]["security"] == []


def test_jwt_secret_is_generated_once_with_0600(tmp_path: Path) -> None:
    settings = auth_settings(tmp_path / "data")
    with TestClient(create_app(settings)):
        pass
    path = settings.data_dir / "jwt.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    with TestClient(create_app(settings)):
        pass
    assert path.read_text() == first


def test_principal_from_headers_for_protocol_modules(app_client: TestClient) -> None:
    c = app_client
    tenant = register(c, "pia", "Proto Org")["tenant"]
    h = bearer(login(c, "pia")["access_token"])
    key = c.post("/api/v1/keys", json={"name": "loki", "sources": ["loki"]}, headers=h).json()["key"]
    services: Services = c.app.state.services  # type: ignore[attr-defined]
    p = principal_from_headers(services, {"X-API-Key": key, "X-Scope-OrgID": tenant})
    assert p == Principal(tenant=tenant, user="key:loki", role="ingest", sources=("loki",), via="key")
    assert principal_from_headers(services, {"authorization": h["Authorization"]}).role == "admin"
    with pytest.raises(Forbidden):
        principal_from_headers(services, {"x-api-key": key, "x-scope-orgid": "someone-else"})
    with pytest.raises(Unauthorized):
        principal_from_headers(services, {"X-Scope-OrgID": tenant})
    assert principal_from_key(services, key).tenant == tenant


def test_login_page_posts_and_stores_the_token(app_client: TestClient) -> None:
    page = app_client.get("/login?next=/search")
    assert page.status_code == 200
    assert 'id="login-form"' in page.text and "<script>" not in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    js = app_client.get("/login/login.js").text
    assert '"logloupe.token"' in js and "/api/v1/auth/login" in js
    assert app_client.get("/login/login.css").status_code == 200


def test_wrong_password_then_correct_one(app_client: TestClient) -> None:
    register(app_client, "wes", "Wes Org")
    assert app_client.post("/api/v1/auth/login", json={"username": "wes", "password": "nope-nope"}).status_code == 401
    assert app_client.post("/api/v1/auth/login", json={"username": "wes", "password": PASSWORD}).status_code == 200


def test_login_rate_limit_per_client_address(tmp_path: Path) -> None:
    with TestClient(create_app(auth_settings(tmp_path / "data", auth_login_ip_failures=4))) as c:
        for n in range(4):
            r = c.post("/api/v1/auth/login", json={"username": f"user{n}", "password": "guess-guess"})
            assert r.status_code == 401
        r = c.post("/api/v1/auth/login", json={"username": "user9", "password": "guess-guess"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_registration_can_be_closed(tmp_path: Path) -> None:
    with TestClient(create_app(auth_settings(tmp_path / "data", auth_allow_registration=False))) as c:
        body = {"username": "nobody", "email": "n@example.com", "password": "password123", "tenant": "Org"}
        assert c.post("/api/v1/auth/register", json=body).status_code == 403


# -- local mode stays as it was ----------------------------------------------------------------------


def test_local_mode_needs_no_credentials_and_login_explains(client: TestClient) -> None:
    assert client.post("/api/v1/logs", json={"message": "local"}).status_code == 200
    assert client.get("/api/v1/search").json()["total"] == 1
    assert client.get("/api/v1/auth/me").json() == {
        "user": "local",
        "tenant": "default",
        "role": "admin",
        "via": "local",
        "auth_enabled": False,
    }
    page = client.get("/login")
    assert "single-user local mode" in page.text
    assert 'id="auth-on" hidden' in page.text
    r = client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
    assert r.status_code == 400 and "local mode" in r.json()["error"]["message"]


def test_local_mode_principal_from_headers(settings: Settings) -> None:
    services = Services.open(settings)
    try:
        assert principal_from_headers(services, {}) == Principal(tenant="default")
    finally:
        services.close()
