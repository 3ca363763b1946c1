"""Isolation and security: each case is one distinct attack, and every one must be rejected.

Attacks are counted by ``test_attack_count`` (at least 50). The world: acme (alice admin, bob
editor, vera viewer) and globex (gina admin), each with data, a saved search, quarantined input,
an ingest key, a viewer key and an open invitation (see conftest.py).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.auth.conftest import World, bearer, login, register

# -- 1. no credentials at all, on every protected endpoint ------------------------------------------

PROTECTED = [
    ("GET", "/api/v1/search?q=secret"),
    ("POST", "/api/v1/search"),
    ("GET", "/api/v1/histogram"),
    ("GET", "/api/v1/facets"),
    ("GET", "/api/v1/events/{event}"),
    ("GET", "/api/v1/events/{event}/context"),
    ("GET", "/api/v1/quarantine"),
    ("GET", "/api/v1/saved-searches"),
    ("POST", "/api/v1/saved-searches"),
    ("DELETE", "/api/v1/saved-searches/{saved}"),
    ("POST", "/api/v1/logs"),
    ("POST", "/ingest"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/api/v1/keys"),
    ("POST", "/api/v1/keys"),
    ("GET", "/api/v1/tenant"),
    ("PUT", "/api/v1/tenant/retention"),
    ("GET", "/api/v1/tenant/members"),
    ("POST", "/api/v1/tenant/invitations"),
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
]


def _fill(world: World, path: str, org: str = "acme") -> str:
    return path.format(event=world.event_ids[org], saved=world.saved[org])


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
def test_no_credentials_is_401(world: World, method: str, path: str) -> None:
    body = {"name": "x", "query": "", "days": 1, "role": "viewer"}
    r = world.client.request(method, _fill(world, path), json=body)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthorized"
    assert "secret" not in r.text


def test_healthz_stays_open(world: World) -> None:
    assert world.client.get("/healthz").status_code == 200


# -- 2. cross-tenant reads: globex credentials against acme's data ------------------------------------


def _globex(world: World) -> dict[str, str]:
    return world.h("gina")


CROSS_READS: list[tuple[str, Callable[[World], Any]]] = [
    ("event by id", lambda w: w.client.get(f"/api/v1/events/{w.event_ids['acme']}", headers=_globex(w))),
    ("context of event", lambda w: w.client.get(f"/api/v1/events/{w.event_ids['acme']}/context", headers=_globex(w))),
    (
        "event by id with viewer key",
        lambda w: w.client.get(f"/api/v1/events/{w.event_ids['acme']}", headers={"X-API-Key": w.keys["globex-viewer"]}),
    ),
]


@pytest.mark.parametrize("case", [c[1] for c in CROSS_READS], ids=[c[0] for c in CROSS_READS])
def test_cross_tenant_ids_are_404(world: World, case: Callable[[World], Any]) -> None:
    r = case(world)
    assert r.status_code == 404, r.text
    assert "acme" not in r.text


QUERY_ATTACKS = [
    "acme-secret",
    "service:acme-api",
    'message:"acme-secret payment failed"',
    "attr.customer:acme",
    "/acme.*/",
    "acme-secret OR NOT acme-secret",
    "') OR 1=1 --",
    "x' UNION SELECT * FROM events --",
    "service:* OR tenant_id:*",
]


@pytest.mark.parametrize("q", QUERY_ATTACKS)
def test_search_never_returns_another_tenants_events(world: World, q: str) -> None:
    r = world.client.get("/api/v1/search", params={"q": q, "limit": 1000}, headers=_globex(world))
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert all("acme" not in e["message"] and e["service"] != "acme-api" for e in r.json()["events"])
        assert "acme-secret" not in r.text


@pytest.mark.parametrize("field", ["id", "pattern_id", "trace_id"])
def test_query_by_another_tenants_ids_finds_nothing(world: World, field: str) -> None:
    event = world.client.get(f"/api/v1/events/{world.event_ids['acme']}", headers=world.h("alice")).json()
    value = {"id": event["id"], "pattern_id": event["pattern_id"], "trace_id": event["trace_id"]}[field] or "0"
    r = world.client.get("/api/v1/search", params={"q": f'{field}:"{value}"'}, headers=_globex(world))
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert all(e["service"] != "acme-api" for e in r.json()["events"])


@pytest.mark.parametrize("q", ["tenant:{acme}", "tenant:*", "TENANT:{acme}", "NOT tenant:{globex}", "-tenant:x"])
def test_tenant_field_cannot_be_queried(world: World, q: str) -> None:
    r = world.client.get("/api/v1/search", params={"q": q.format(**world.tenants)}, headers=_globex(world))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "query_syntax"


def test_facets_on_tenant_show_only_own_attributes(world: World) -> None:
    r = world.client.get("/api/v1/facets", params={"fields": "tenant,service"}, headers=_globex(world)).json()
    text = str(r)
    assert world.tenants["acme"] not in text and "acme" not in text


def test_histogram_split_by_tenant_sees_only_own_rows(world: World) -> None:
    r = world.client.get("/api/v1/histogram", params={"split": "tenant"}, headers=_globex(world)).json()
    own = world.client.get("/api/v1/search", params={"limit": 0}, headers=_globex(world)).json()["total"]
    assert r["total"] == own
    assert world.tenants["acme"] not in str(r)


def test_cursor_from_another_tenant_reveals_nothing(world: World) -> None:
    page = world.client.get("/api/v1/search", params={"limit": 1}, headers=world.h("alice")).json()
    r = world.client.get(
        "/api/v1/search", params={"limit": 100, "cursor": page["next_cursor"]}, headers=_globex(world)
    ).json()
    assert all(e["service"] != "acme-api" for e in r["events"])


def test_saved_searches_are_not_listed_across_tenants(world: World) -> None:
    r = world.client.get("/api/v1/saved-searches", headers=_globex(world)).json()
    assert [s["name"] for s in r["items"]] == ["globex errors"]


def test_saved_search_of_another_tenant_cannot_be_deleted(world: World) -> None:
    r = world.client.delete(f"/api/v1/saved-searches/{world.saved['acme']}", headers=_globex(world))
    assert r.status_code == 404
    names = [s["name"] for s in world.client.get("/api/v1/saved-searches", headers=world.h("alice")).json()["items"]]
    assert "acme errors" in names


def test_quarantine_is_not_shared(world: World) -> None:
    r = world.client.get("/api/v1/quarantine", headers=_globex(world))
    assert r.status_code == 200
    assert "acme" not in r.text and "globex" in r.text


def test_ingest_cannot_write_into_another_tenant(world: World) -> None:
    acme = world.tenants["acme"]
    body = {"message": "planted by globex", "tenant": acme, "meta": {"tenant": acme}}
    r = world.client.post("/api/v1/logs", json=body, headers={"X-API-Key": world.keys["globex-ingest"]})
    assert r.status_code == 200
    seen = world.client.get("/api/v1/search", params={"q": "planted"}, headers=world.h("alice")).json()
    assert seen["total"] == 0


CROSS_ADMIN: list[tuple[str, Callable[[World], Any]]] = [
    (
        "revoke other tenant's key",
        lambda w: w.client.delete(f"/api/v1/keys/{w.key_ids['acme-ingest']}", headers=_globex(w)),
    ),
    (
        "change role of other tenant's member",
        lambda w: w.client.put(
            f"/api/v1/tenant/members/{_member_id(w, 'vera')}", json={"role": "admin"}, headers=_globex(w)
        ),
    ),
    (
        "withdraw other tenant's invitation",
        lambda w: w.client.delete(f"/api/v1/tenant/invitations/{w.invitation_ids['acme']}", headers=_globex(w)),
    ),
]


@pytest.mark.parametrize("case", [c[1] for c in CROSS_ADMIN], ids=[c[0] for c in CROSS_ADMIN])
def test_admin_of_one_tenant_cannot_touch_another(world: World, case: Callable[[World], Any]) -> None:
    assert case(world).status_code == 404
    # acme's ingest key still works, acme's invitation is still listed
    ok = world.client.post(
        "/api/v1/logs", json={"message": "still fine"}, headers={"X-API-Key": world.keys["acme-ingest"]}
    )
    assert ok.status_code == 200
    invs = world.client.get("/api/v1/tenant/invitations", headers=world.h("alice")).json()["items"]
    assert world.invitation_ids["acme"] in [i["id"] for i in invs]


def test_metrics_show_no_other_tenants_series(world: World) -> None:
    text = world.client.get("/metrics", headers=_globex(world)).text
    assert f'tenant="{world.tenants["globex"]}"' in text
    assert world.tenants["acme"] not in text


def test_members_list_shows_only_own_members(world: World) -> None:
    names = {m["username"] for m in world.client.get("/api/v1/tenant/members", headers=_globex(world)).json()["items"]}
    assert names == {"gina"}


def test_login_into_a_tenant_you_do_not_belong_to(world: World) -> None:
    r = world.client.post(
        "/api/v1/auth/login", json={"username": "gina", "password": "correct horse battery", "tenant": "Acme"}
    )
    assert r.status_code == 403


def test_registering_an_existing_org_name_does_not_join_it(world: World) -> None:
    r = world.client.post(
        "/api/v1/auth/register",
        json={"username": "mallory", "email": "m@example.com", "password": "password123", "tenant": "acme"},
    )
    assert r.status_code == 400
    assert "invitation" in r.json()["error"]["message"]


# -- 3. X-Scope-OrgID spoofing (Loki's tenant header is never trusted alone) ---------------------------


def test_scope_orgid_alone_is_401(world: World) -> None:
    r = world.client.get("/api/v1/search", headers={"X-Scope-OrgID": world.tenants["acme"]})
    assert r.status_code == 401


@pytest.mark.parametrize("value", ["{acme}", "Acme", "acme"])
def test_scope_orgid_naming_another_tenant_is_403(world: World, value: str) -> None:
    headers = {**_globex(world), "X-Scope-OrgID": value.format(**world.tenants)}
    r = world.client.get("/api/v1/search", params={"q": "acme-secret"}, headers=headers)
    assert r.status_code == 403


def test_scope_orgid_with_ingest_key_of_another_tenant_is_403(world: World) -> None:
    headers = {"X-API-Key": world.keys["globex-ingest"], "X-Scope-OrgID": world.tenants["acme"]}
    r = world.client.post("/api/v1/logs", json={"message": "into acme?"}, headers=headers)
    assert r.status_code == 403


# -- 4. forged, expired, unsigned and misused tokens ---------------------------------------------------


def _claims(world: World, user: str = "alice", **changes: Any) -> dict[str, Any]:
    real = jwt.decode(world.tokens[user]["access_token"], options={"verify_signature": False})
    return {**real, **changes}


def _secret(world: World) -> str:
    return (world.settings.data_dir / "jwt.secret").read_text().strip()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _alg_none(world: World) -> str:
    import orjson

    header = _b64(orjson.dumps({"alg": "none", "typ": "JWT"}))
    payload = _b64(orjson.dumps(_claims(world)))
    return f"{header}.{payload}."


def _tampered(world: World) -> str:
    head, _payload, sig = world.tokens["gina"]["access_token"].split(".")
    import orjson

    payload = _b64(orjson.dumps(_claims(world, "gina", tid=world.tenants["acme"])))
    return f"{head}.{payload}.{sig}"


FORGED: list[tuple[str, Callable[[World], str]]] = [
    ("alg none", _alg_none),
    ("alg none, signature kept", lambda w: _alg_none(w) + w.tokens["alice"]["access_token"].split(".")[2]),
    ("another secret", lambda w: jwt.encode(_claims(w), "x" * 48, algorithm="HS256")),
    ("expired", lambda w: jwt.encode(_claims(w, exp=int(time.time()) - 10), _secret(w), algorithm="HS256")),
    ("HS512 with the right secret", lambda w: jwt.encode(_claims(w), _secret(w), algorithm="HS512")),
    ("payload swapped to another tenant", _tampered),
    ("refresh token as access token", lambda w: w.tokens["alice"]["refresh_token"]),
    ("wrong issuer", lambda w: jwt.encode(_claims(w, iss="evil"), _secret(w), algorithm="HS256")),
    (
        "no expiry",
        lambda w: jwt.encode({k: v for k, v in _claims(w).items() if k != "exp"}, _secret(w), algorithm="HS256"),
    ),
    ("garbage", lambda w: "not.a.jwt"),
    ("unknown API key as bearer", lambda w: "llk_" + "B" * 43),
    ("empty bearer", lambda w: ""),
    (
        "right secret, user not a member of the tenant",
        lambda w: jwt.encode(_claims(w, "gina", tid=w.tenants["acme"]), _secret(w), algorithm="HS256"),
    ),
]


@pytest.mark.parametrize("make", [f[1] for f in FORGED], ids=[f[0] for f in FORGED])
def test_forged_tokens_are_401(world: World, make: Callable[[World], str]) -> None:
    r = world.client.get("/api/v1/search", params={"q": "acme-secret"}, headers=bearer(make(world)))
    assert r.status_code == 401, r.text
    assert "acme-secret" not in r.text


def test_access_token_is_not_a_refresh_token(world: World) -> None:
    r = world.client.post("/api/v1/auth/refresh", json={"refresh_token": world.tokens["alice"]["access_token"]})
    assert r.status_code == 401


def test_forged_refresh_token_is_401(world: World) -> None:
    claims = jwt.decode(world.tokens["alice"]["refresh_token"], options={"verify_signature": False})
    forged = jwt.encode({**claims, "jti": "0" * 32}, _secret(world), algorithm="HS256")
    assert world.client.post("/api/v1/auth/refresh", json={"refresh_token": forged}).status_code == 401


# -- 5. API keys: unknown, revoked, out of scope -------------------------------------------------------


def _key_headers(style: str, key: str) -> dict[str, str]:
    if style == "x-api-key":
        return {"X-API-Key": key}
    if style == "apikey":
        return {"Authorization": f"ApiKey {key}"}
    if style == "bearer":
        return {"Authorization": f"Bearer {key}"}
    if style == "apikey-es":
        return {"Authorization": "ApiKey " + base64.b64encode(f"someid:{key}".encode()).decode()}
    return {"Authorization": "Basic " + base64.b64encode(f"elastic:{key}".encode()).decode()}


KEY_STYLES = ["x-api-key", "apikey", "apikey-es", "basic", "bearer"]


@pytest.mark.parametrize("style", KEY_STYLES)
def test_revoked_key_is_401_in_every_header(world: World, style: str) -> None:
    w = world
    made = w.client.post("/api/v1/keys", json={"name": f"to revoke {style}"}, headers=w.h("alice")).json()
    key = made["key"]
    assert w.client.post("/api/v1/logs", json={"message": "m"}, headers=_key_headers(style, key)).status_code == 200
    assert w.client.delete(f"/api/v1/keys/{made['id']}", headers=w.h("alice")).status_code == 200
    r = w.client.post("/api/v1/logs", json={"message": "after revoke"}, headers=_key_headers(style, key))
    assert r.status_code == 401


@pytest.mark.parametrize("style", KEY_STYLES)
def test_unknown_key_is_401(world: World, style: str) -> None:
    r = world.client.post("/api/v1/logs", json={"message": "m"}, headers=_key_headers(style, "llk_" + "A" * 43))
    assert r.status_code == 401


INGEST_KEY_MISUSE = [
    ("GET", "/api/v1/search"),
    ("POST", "/api/v1/search"),
    ("GET", "/api/v1/events/{event}"),
    ("GET", "/api/v1/quarantine"),
    ("POST", "/api/v1/keys"),
    ("POST", "/api/v1/saved-searches"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), INGEST_KEY_MISUSE, ids=[f"{m} {p}" for m, p in INGEST_KEY_MISUSE])
def test_ingest_key_cannot_read_or_administer(world: World, method: str, path: str) -> None:
    r = world.client.request(
        method,
        _fill(world, path),
        json={"name": "k", "role": "ingest", "query": ""},
        headers={"X-API-Key": world.keys["acme-ingest"]},
    )
    assert r.status_code == 403, r.text


def test_viewer_key_cannot_ingest(world: World) -> None:
    r = world.client.post("/api/v1/logs", json={"message": "m"}, headers={"X-API-Key": world.keys["acme-viewer"]})
    assert r.status_code == 403


def test_source_scoped_key_cannot_ingest_from_another_source(world: World) -> None:
    w = world
    k = w.client.post(
        "/api/v1/keys", json={"name": "syslog only", "role": "ingest", "sources": ["syslog*"]}, headers=w.h("alice")
    ).json()
    r = w.client.post("/api/v1/logs", json={"message": "via http"}, headers={"X-API-Key": k["key"]})
    assert r.status_code == 403
    assert "source" in r.json()["error"]["message"]


def test_keys_are_stored_hashed_and_never_listed(world: World) -> None:
    listed = world.client.get("/api/v1/keys", headers=world.h("alice")).text
    raw = (world.settings.data_dir / "meta.db").read_bytes()
    for name in ("acme-ingest", "acme-viewer"):
        secret = world.keys[name]
        assert secret not in listed
        assert secret.encode() not in raw


# -- 6. escalation: viewer → editor/admin, editor → admin ------------------------------------------------

ESCALATIONS = [
    ("vera", "PUT", "/api/v1/tenant/retention", {"days": 1}),
    ("vera", "POST", "/api/v1/keys", {"name": "mine", "role": "ingest"}),
    ("vera", "GET", "/api/v1/keys", None),
    ("vera", "POST", "/api/v1/tenant/invitations", {"role": "admin"}),
    ("vera", "PUT", "/api/v1/tenant/members/{vera_id}", {"role": "admin"}),
    ("vera", "POST", "/api/v1/saved-searches", {"name": "v", "query": ""}),
    ("vera", "DELETE", "/api/v1/saved-searches/{saved}", None),
    ("vera", "POST", "/api/v1/logs", {"message": "viewer writes"}),
    ("vera", "GET", "/metrics", None),
    ("vera", "GET", "/api/v1/tenant/members", None),
    ("bob", "PUT", "/api/v1/tenant/retention", {"days": 1}),
    ("bob", "PUT", "/api/v1/tenant/members/{bob_id}", {"role": "admin"}),
    ("bob", "POST", "/api/v1/keys", {"name": "mine", "role": "ingest"}),
    ("bob", "DELETE", "/api/v1/keys/{key}", None),
    ("bob", "PUT", "/api/v1/tenant/llm-policy", {"allowed_providers": ["openai"]}),
    ("bob", "PUT", "/api/v1/tenant/quotas", {"rate_per_s": 0}),
    ("bob", "POST", "/api/v1/tenant/invitations", {"role": "admin"}),
    ("bob", "DELETE", "/api/v1/tenant/members/{vera_id}", None),
]


def _member_id(world: World, username: str) -> str:
    members = world.client.get("/api/v1/tenant/members", headers=world.h("alice")).json()["items"]
    return next(m["user_id"] for m in members if m["username"] == username)


@pytest.mark.parametrize(
    ("user", "method", "path", "body"), ESCALATIONS, ids=[f"{u} {m} {p}" for u, m, p, _ in ESCALATIONS]
)
def test_role_escalation_is_403(world: World, user: str, method: str, path: str, body: Any) -> None:
    url = path.format(
        vera_id=_member_id(world, "vera"),
        bob_id=_member_id(world, "bob"),
        saved=world.saved["acme"],
        key=world.key_ids["acme-viewer"],
    )
    r = world.client.request(method, url, json=body, headers=world.h(user))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"
    me = world.client.get("/api/v1/auth/me", headers=world.h(user)).json()
    assert me["role"] == {"vera": "viewer", "bob": "editor"}[user]


def test_invitation_role_cannot_be_upgraded_at_registration(world: World) -> None:
    w = world
    inv = w.client.post("/api/v1/tenant/invitations", json={"role": "viewer"}, headers=w.h("alice")).json()
    r = w.client.post(
        "/api/v1/auth/register",
        json={
            "username": "eve",
            "email": "eve@example.com",
            "password": "password123",
            "tenant": inv["token"],
            "role": "admin",
        },
    )
    assert r.status_code == 201 and r.json()["role"] == "viewer"


def test_invitation_is_single_use(world: World) -> None:
    w = world
    inv = w.client.post("/api/v1/tenant/invitations", json={"role": "editor"}, headers=w.h("alice")).json()
    body = {"username": "one", "email": "one@example.com", "password": "password123", "tenant": inv["token"]}
    assert w.client.post("/api/v1/auth/register", json=body).status_code == 201
    body = {**body, "username": "two", "email": "two@example.com"}
    assert w.client.post("/api/v1/auth/register", json=body).status_code == 400


def test_invitation_for_another_email_is_refused(world: World) -> None:
    w = world
    inv = w.client.post(
        "/api/v1/tenant/invitations", json={"role": "admin", "email": "boss@example.com"}, headers=w.h("alice")
    ).json()
    body = {"username": "notboss", "email": "eve@example.com", "password": "password123", "tenant": inv["token"]}
    assert w.client.post("/api/v1/auth/register", json=body).status_code == 400


def test_forged_invitation_token_is_refused(world: World) -> None:
    body = {"username": "forger", "email": "f@example.com", "password": "password123", "tenant": "inv_" + "a" * 32}
    assert world.client.post("/api/v1/auth/register", json=body).status_code == 400


def test_last_admin_cannot_be_demoted(world: World) -> None:
    w = world
    alice_id = _member_id(w, "alice")
    r = w.client.put(f"/api/v1/tenant/members/{alice_id}", json={"role": "viewer"}, headers=w.h("alice"))
    assert r.status_code == 400


def test_removed_member_token_stops_working(world: World) -> None:
    w = world
    inv = w.client.post("/api/v1/tenant/invitations", json={"role": "editor"}, headers=w.h("alice")).json()
    register(w.client, "leaver", inv["token"])
    tokens = login(w.client, "leaver")
    assert w.client.get("/api/v1/search", headers=bearer(tokens["access_token"])).status_code == 200
    leaver_id = _member_id(w, "leaver")
    assert w.client.delete(f"/api/v1/tenant/members/{leaver_id}", headers=w.h("alice")).status_code == 200
    assert w.client.get("/api/v1/search", headers=bearer(tokens["access_token"])).status_code == 401
    r = w.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


# -- 7. CSRF: cookies carry no authority -----------------------------------------------------------------


@pytest.mark.parametrize("cookie", ["logloupe.token", "access_token", "session", "Authorization"])
def test_cookie_alone_does_not_authenticate(world: World, cookie: str) -> None:
    token = world.tokens["alice"]["access_token"]
    client = TestClient(world.client.app)
    client.cookies.set(cookie, token)
    r = client.post(
        "/api/v1/saved-searches",
        json={"name": "csrf", "query": ""},
        headers={"Origin": "https://evil.example", "Referer": "https://evil.example/"},
    )
    assert r.status_code == 401


def test_cross_site_form_post_is_401(world: World) -> None:
    r = world.client.post(
        "/api/v1/logs",
        content=b"message=planted",
        headers={"content-type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"},
    )
    assert r.status_code == 401


# -- 8. brute force and hostile usernames ----------------------------------------------------------------

SQLISH = [
    "' OR '1'='1",
    "alice'--",
    "alice' OR 1=1 --",
    '" OR ""="',
    "alice'; DROP TABLE users; --",
    "%",
    "*",
    "alice\x00",
    "ALICE' UNION SELECT password_hash FROM users --",
]


@pytest.mark.parametrize("name", SQLISH)
def test_sqlish_username_at_login_is_401(world: World, name: str) -> None:
    r = world.client.post("/api/v1/auth/login", json={"username": name, "password": "' OR '1'='1"})
    assert r.status_code == 401, r.text
    assert r.json()["error"]["message"] == "wrong username or password"


@pytest.mark.parametrize("name", SQLISH)
def test_sqlish_username_at_register_is_400(world: World, name: str) -> None:
    body = {"username": name, "email": "x@example.com", "password": "password123", "tenant": "NewOrg"}
    r = world.client.post("/api/v1/auth/register", json=body)
    assert r.status_code == 400
    # the users table survived and alice still logs in
    assert (
        world.client.post(
            "/api/v1/auth/login", json={"username": "alice", "password": "correct horse battery"}
        ).status_code
        == 200
    )


def test_brute_force_locks_the_account(world: World) -> None:
    w = world
    register(w.client, "target", "Target Org")
    for _ in range(w.settings.auth_lockout_failures):
        assert (
            w.client.post("/api/v1/auth/login", json={"username": "target", "password": "guess-123"}).status_code == 401
        )
    r = w.client.post("/api/v1/auth/login", json={"username": "target", "password": "correct horse battery"})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    # the email spelling of the same account is locked too
    r = w.client.post("/api/v1/auth/login", json={"email": "target@example.com", "password": "correct horse battery"})
    assert r.status_code == 429
    # other accounts are not
    assert (
        w.client.post("/api/v1/auth/login", json={"username": "vera", "password": "correct horse battery"}).status_code
        == 200
    )


@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh"])
def test_oversized_body_to_a_public_endpoint_is_413(world: World, path: str) -> None:
    r = world.client.post(path, content=b'{"username": "' + b"a" * 70_000 + b'"}')
    assert r.status_code == 413


def test_unknown_and_known_users_fail_alike(world: World) -> None:
    a = world.client.post("/api/v1/auth/login", json={"username": "nobody-here", "password": "x" * 10})
    b = world.client.post("/api/v1/auth/login", json={"username": "gina", "password": "x" * 10})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


# -- the count ---------------------------------------------------------------------------------------------


def test_attack_count() -> None:
    cases = (
        len(PROTECTED)
        + len(CROSS_READS)
        + len(QUERY_ATTACKS)
        + 5  # tenant field
        + 3  # query by another tenant's event id, pattern id, trace id
        + 6  # facets, histogram, cursor, saved list, saved delete, quarantine
        + 1  # ingest into another tenant
        + len(CROSS_ADMIN)
        + 4  # metrics, members list, login into other tenant, register existing org
        + 1
        + 3
        + 1  # X-Scope-OrgID
        + len(FORGED)
        + 2  # refresh misuse
        + 2 * len(KEY_STYLES)
        + len(INGEST_KEY_MISUSE)
        + 2  # viewer key ingest, source scope
        + len(ESCALATIONS)
        + 5  # invitation upgrade, reuse, other email, forged, last admin
        + 1  # removed member
        + 4
        + 1  # CSRF
        + 2 * len(SQLISH)
        + 2  # lockout, enumeration
        + 3  # oversized bodies to public endpoints
    )
    assert cases >= 50, cases
