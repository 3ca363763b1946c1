"""Syslog with --auth: an API key in the message names its tenant (structured data or a first word),
a tenant port names its tenant, and what no key vouches for is quarantined, never stored elsewhere."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from logloupe.ingest.syslog import message_key, without_key
from logloupe.serve.app import create_app
from tests.auth.conftest import auth_settings, bearer, login, register
from tests.helpers import free_port
from tests.ingest.conftest import free_udp_port


def _accounts(data: Path) -> dict[str, Any]:
    """Two organisations with an ingest and a viewer key each (first app run: ids are made here)."""
    out: dict[str, Any] = {"tenants": {}, "keys": {}}
    with TestClient(create_app(auth_settings(data))) as client:
        for user, org in (("alice", "Acme"), ("gina", "Globex")):
            out["tenants"][org] = register(client, user, org)["tenant"]
            token = login(client, user)["access_token"]
            for role in ("ingest", "viewer"):
                r = client.post("/api/v1/keys", json={"name": f"{org}-{role}", "role": role}, headers=bearer(token))
                out["keys"][f"{org}-{role}"] = r.json()["key"]
    return out


def _search(client: TestClient, token: str, q: str, expect: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        body = client.get("/api/v1/search", params={"q": q}, headers=bearer(token)).json()
        events = body["events"]
        if body["total"] >= expect:
            break
        time.sleep(0.1)
    return events


def _quarantine(client: TestClient, token: str, mark: str, expect: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = [
            i
            for i in client.get("/api/v1/quarantine", headers=bearer(token)).json()["items"]
            if mark in str(i.get("raw", ""))
        ]
        if len(items) >= expect:
            break
        time.sleep(0.1)
    return items


def test_message_key_is_read_and_taken_out() -> None:
    record = {"message": "hello", "attributes": {"sd.logloupe@32473.key": "llk_abc", "sd.origin.ip": "1.2.3.4"}}
    assert message_key(record) == "llk_abc"
    assert without_key(record) == {"message": "hello", "attributes": {"sd.origin.ip": "1.2.3.4"}}
    plain = {"message": "llk_xyz disk full", "attributes": {}}
    assert message_key(plain) == "llk_xyz" and without_key(plain)["message"] == "disk full"
    assert message_key({"message": "no key here", "attributes": {"sd.other.key": "llk_nope"}}) is None


def test_syslog_keys_ports_and_required_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    acct = _accounts(data)
    acme = acct["tenants"]["Acme"]
    keys = acct["keys"]
    udp, tcp, acme_port = free_udp_port(), free_port(), free_port()
    settings = auth_settings(
        data,
        syslog_udp_port=udp,
        syslog_tcp_port=tcp,
        syslog_tenant=acme,  # where keyless messages would go, were keys not required
        syslog_require_key=True,
        syslog_tenant_ports={acme_port: acme},
    )
    mark = f"sysk{time.time_ns()}"
    with TestClient(create_app(settings)) as client:
        alice, gina = login(client, "alice")["access_token"], login(client, "gina")["access_token"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            # RFC 5424 with the key in structured data, over UDP: Globex's.
            s.sendto(
                f'<11>1 2026-11-21T10:00:00Z h app - - [logloupe@32473 key="{keys["Globex-ingest"]}"]'
                f" {mark} sd-key".encode(),
                ("127.0.0.1", udp),
            )
            # No key on the shared port while keys are required: quarantined (Acme's, the fallback).
            s.sendto(f"<14>Nov 21 10:00:00 h app: {mark} keyless".encode(), ("127.0.0.1", udp))
            # A tenant port is its own credential: Acme.
            s.sendto(f"<14>Nov 21 10:00:00 h app: {mark} by-port".encode(), ("127.0.0.1", acme_port))
        with socket.create_connection(("127.0.0.1", tcp)) as c:
            # RFC 3164 with the key as the first word, over TCP: Acme's; an unknown key and a viewer
            # key (may not ingest) are quarantined.
            c.sendall(f"<14>Nov 21 10:00:00 h app: {keys['Acme-ingest']} {mark} word-key\n".encode())
            c.sendall(f"<14>Nov 21 10:00:00 h app: llk_not_a_key {mark} unknown-key\n".encode())
            c.sendall(f"<14>Nov 21 10:00:00 h app: {keys['Acme-viewer']} {mark} viewer-key\n".encode())

        got_globex = _search(client, gina, mark, 1)
        got_acme = _search(client, alice, mark, 2)
        assert [e["message"] for e in got_globex] == [f"{mark} sd-key"]
        assert not any(k.startswith("sd.logloupe") for k in got_globex[0]["attributes"])
        assert sorted(e["message"] for e in got_acme) == [f"{mark} by-port", f"{mark} word-key"]

        held = _quarantine(client, alice, mark, 3)
        reasons = sorted(i["reason"] for i in held)
        assert len(held) == 3, held
        assert any("without an API key" in r for r in reasons)
        assert any("invalid or revoked" in r for r in reasons)
        assert any("editor role" in r or "ingest" in r for r in reasons)
        dumped = orjson.dumps(held).decode()
        assert keys["Acme-viewer"] not in dumped and "llk_not_a_key" not in dumped  # keys never kept
        assert _quarantine(client, gina, mark, 0) == []
