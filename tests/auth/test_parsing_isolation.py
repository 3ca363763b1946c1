"""Parsing sources are a tenant's own: another tenant neither sees them nor has its lines read by them,
and only a tenant admin changes them."""

from __future__ import annotations

from tests.auth.conftest import World

SOURCE = {"match": {"service": "shared-svc"}, "timezone": "America/New_York"}


def post_text(world: World, user: str, text: str) -> None:
    r = world.client.post(
        "/api/v1/logs",
        params={"service": "shared-svc", "sync": "true"},
        content=text,
        headers={**world.h(user), "content-type": "text/plain"},
    )
    assert r.status_code == 200, r.text


def test_a_tenants_parsing_sources_stay_its_own(world: World) -> None:
    c = world.client
    assert c.put("/api/v1/parsing/sources/ny", json=SOURCE, headers=world.h("bob")).status_code == 403  # editor
    assert c.put("/api/v1/parsing/sources/ny", json=SOURCE, headers=world.h("vera")).status_code == 403  # viewer
    r = c.put("/api/v1/parsing/sources/ny", json=SOURCE, headers=world.h("alice"))
    assert r.status_code == 200, r.text

    assert [s["name"] for s in c.get("/api/v1/parsing/sources", headers=world.h("alice")).json()["items"]] == ["ny"]
    assert c.get("/api/v1/parsing/sources", headers=world.h("gina")).json()["items"] == []
    assert c.get("/api/v1/parsing/sources/ny", headers=world.h("gina")).status_code == 404
    assert c.delete("/api/v1/parsing/sources/ny", headers=world.h("gina")).status_code == 404
    assert c.put("/api/v1/parsing/sources/ny", json=SOURCE, headers={"X-Scope-OrgID": "x"}).status_code == 401

    post_text(world, "alice", "2026-01-15 10:00:00 INFO acme-tz line\n")
    post_text(world, "gina", "2026-01-15 10:00:00 INFO globex-tz line\n")
    params = {"q": "service:shared-svc", "from": "2020-01-01T00:00:00Z"}
    (acme,) = c.get("/api/v1/search", params=params, headers=world.h("alice")).json()["events"]
    (globex,) = c.get("/api/v1/search", params=params, headers=world.h("gina")).json()["events"]
    assert acme["ts"] == "2026-01-15T15:00:00.000000Z"  # acme's source: New York
    assert globex["ts"] == "2026-01-15T10:00:00.000000Z"  # globex has none: UTC
    assert c.delete("/api/v1/parsing/sources/ny", headers=world.h("alice")).status_code == 200
