"""Two organisations on one real server (in-process app, real store): acme and globex, with an
admin, an editor and a viewer in acme, an admin in globex, API keys and data in both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.settings import Settings

PASSWORD = "correct horse battery"


def auth_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "writer_flush_ms": 5,
        "auth_enabled": True,
        "auth_argon2_time_cost": 1,
        "auth_argon2_memory_kib": 1024,
        "auth_login_ip_failures": 10_000,
        "auth_lockout_failures": 3,
    }
    values.update(overrides)
    return Settings(**values)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: TestClient, username: str, tenant: str, password: str = PASSWORD) -> dict[str, Any]:
    r = client.post(
        "/api/v1/auth/register",
        json={"username": username, "email": f"{username}@example.com", "password": password, "tenant": tenant},
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def ingest(client: TestClient, headers: dict[str, str], lines: list[dict[str, Any]]) -> dict[str, Any]:
    body = b"\n".join(orjson.dumps(x) for x in lines)
    r = client.post("/api/v1/logs", content=body, headers={**headers, "content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@dataclass
class World:
    client: TestClient
    settings: Settings
    tenants: dict[str, str] = field(default_factory=dict)  # org name -> tenant id
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> login answer
    keys: dict[str, str] = field(default_factory=dict)  # name -> secret
    key_ids: dict[str, str] = field(default_factory=dict)
    event_ids: dict[str, str] = field(default_factory=dict)  # org -> an event id
    saved: dict[str, str] = field(default_factory=dict)  # org -> saved search id
    invitation_ids: dict[str, str] = field(default_factory=dict)

    def h(self, user: str) -> dict[str, str]:
        return bearer(self.tokens[user]["access_token"])


def build_world(data_dir: Path) -> Iterator[World]:
    settings = auth_settings(data_dir)
    with TestClient(create_app(settings)) as client:
        w = World(client, settings)
        w.tenants["acme"] = register(client, "alice", "Acme")["tenant"]
        w.tenants["globex"] = register(client, "gina", "Globex")["tenant"]
        w.tokens["alice"] = login(client, "alice")
        w.tokens["gina"] = login(client, "gina")
        for user, role in (("bob", "editor"), ("vera", "viewer")):
            inv = client.post("/api/v1/tenant/invitations", json={"role": role}, headers=w.h("alice")).json()
            register(client, user, inv["token"])
            w.tokens[user] = login(client, user)
        for org, admin in (("acme", "alice"), ("globex", "gina")):
            ingest(
                client,
                w.h(admin),
                [
                    {"service": f"{org}-api", "level": "error", "message": f"{org}-secret payment failed"},
                    {"service": f"{org}-api", "level": "info", "message": f"{org}-secret login ok"},
                    {"service": f"{org}-api", "message": f"{org} row", "tenant": "spoofed", "customer": org},
                ],
            )
            r = client.get("/api/v1/search", params={"q": f"{org}-secret"}, headers=w.h(admin)).json()
            assert r["total"] == 2
            w.event_ids[org] = r["events"][0]["id"]
            saved = client.post(
                "/api/v1/saved-searches", json={"name": f"{org} errors", "query": "level:error"}, headers=w.h(admin)
            ).json()
            w.saved[org] = saved["id"]
            bad = client.post(
                "/api/v1/logs",
                content=f'{{"message": "{org} fine"}}\n{{broken {org}-quarantined'.encode(),
                headers={**w.h(admin), "content-type": "application/x-ndjson"},
            )
            assert bad.status_code == 200
            for kind in ("ingest", "viewer"):
                k = client.post("/api/v1/keys", json={"name": f"{org}-{kind}", "role": kind}, headers=w.h(admin)).json()
                w.keys[f"{org}-{kind}"] = k["key"]
                w.key_ids[f"{org}-{kind}"] = k["id"]
            inv = client.post("/api/v1/tenant/invitations", json={"role": "viewer"}, headers=w.h(admin)).json()
            w.invitation_ids[org] = inv["id"]
        yield w


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("world") / "data")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[World]:
    """A world of its own, for tests that change it (revocations, lockouts, removals)."""
    yield from build_world(tmp_path / "data")
