"""Cross-tenant attacks on patterns (rename, merge, split, read) and upload jobs."""

from __future__ import annotations

import time

from tests.auth.conftest import World


def _patterns(world: World, user: str) -> list[dict[str, object]]:
    body = world.client.get("/api/v1/patterns", headers=world.h(user)).json()
    return list(body["patterns"])


def _acme_pattern(world: World) -> str:
    pats = _patterns(world, "alice")
    assert pats, "acme has patterns"
    return str(pats[0]["id"])


def test_patterns_list_is_tenant_scoped(fresh: World) -> None:
    acme = {p["id"] for p in _patterns(fresh, "alice")}
    globex = {p["id"] for p in _patterns(fresh, "gina")}
    assert acme and globex
    for p in _patterns(fresh, "gina"):
        assert "acme" not in str(p.get("example", ""))


def test_another_tenant_cannot_rename_a_pattern(fresh: World) -> None:
    pid = _acme_pattern(fresh)
    r = fresh.client.post(f"/api/v1/patterns/{pid}/rename", json={"name": "pwned"}, headers=fresh.h("gina"))
    assert r.status_code == 404
    names = {p["id"]: p.get("name") for p in _patterns(fresh, "alice")}
    assert names[pid] != "pwned"
    miner = fresh.client.app.state.services.enricher.miner  # type: ignore[attr-defined]
    assert all(p.name != "pwned" for p in miner.patterns(tenant=fresh.tenants["acme"]))


def test_another_tenant_cannot_merge_or_split_a_pattern(fresh: World) -> None:
    ids = [str(p["id"]) for p in _patterns(fresh, "alice")][:2]
    assert len(ids) == 2
    assert fresh.client.post("/api/v1/patterns/merge", json={"ids": ids}, headers=fresh.h("gina")).status_code == 404
    r = fresh.client.post(f"/api/v1/patterns/{ids[0]}/split", json={"position": 0}, headers=fresh.h("gina"))
    assert r.status_code == 404
    after = {str(p["id"]) for p in _patterns(fresh, "alice")}
    assert set(ids) <= after  # still two patterns for acme
    r = fresh.client.get("/api/v1/search", params={"q": f"pattern:{ids[0]}"}, headers=fresh.h("gina")).json()
    assert r["total"] == 0


def test_another_tenant_cannot_read_an_upload_job(fresh: World) -> None:
    r = fresh.client.post(
        "/api/v1/upload",
        files={"file": ("app.log", b"ERROR acme-secret upload line\nINFO fine\n")},
        headers=fresh.h("alice"),
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 30
    while fresh.client.get(f"/api/v1/jobs/{job_id}", headers=fresh.h("alice")).json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert fresh.client.get(f"/api/v1/jobs/{job_id}", headers=fresh.h("gina")).status_code == 404
    assert fresh.client.get(f"/api/v1/jobs/{job_id}").status_code == 401
