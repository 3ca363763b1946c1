"""Azure Monitor Logs poller against a local HTTPS stand-in for the Logs query API.

The stand-in speaks ``POST /v1/workspaces/{id}/query`` → ``{"tables": [{"name", "columns", "rows"}]}``
over TLS with a certificate made here; the real ``azure-monitor-query`` client talks to it with a
static credential. Restarts between pages, between runs (with a late row inside the overlap),
and after a crash between acknowledgement and checkpoint: every row stored exactly once.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from logloupe.ingest.azure import AzureConfig, AzureMonitorPoller, make_client
from logloupe.ingest.checkpoints import FileCheckpoints
from logloupe.ingest.sinks import WriterSink
from logloupe.serve.services import Services
from logloupe.settings import Settings
from logloupe.store.search import Scope, now_us, search
from tests.helpers import free_port
from tests.sources.conftest import Snapshots, assert_exact

WORKSPACE = "00000000-1111-2222-3333-444444444444"
TOKEN = "test-token"
_DT = re.compile(r"datetime\(([^)]+)\)")
_TAKE = re.compile(r"\|\s*take\s+(\d+)")


def _cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class LogAnalytics:
    """Rows of one table; answers a query by its time bounds, ascending time and ``take``."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []  # TimeGenerated (datetime), Message, Level
        self.queries: list[str] = []

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        query = str(body["query"])
        self.queries.append(query)
        bounds = [datetime.fromisoformat(b.replace("Z", "+00:00")) for b in _DT.findall(query)]
        take = _TAKE.search(query)
        rows = sorted(self.rows, key=lambda r: (r[0], r[1]))
        if len(bounds) == 2:
            rows = [r for r in rows if bounds[0] <= r[0] < bounds[1]]
        if take:
            rows = rows[: int(take.group(1))]
        return {
            "tables": [
                {
                    "name": "PrimaryResult",
                    "columns": [
                        {"name": "TimeGenerated", "type": "datetime"},
                        {"name": "Message", "type": "string"},
                        {"name": "Level", "type": "string"},
                    ],
                    "rows": [[r[0].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), r[1], r[2]] for r in rows],
                }
            ]
        }


@pytest.fixture
def log_analytics(tmp_path: Path) -> Iterator[tuple[str, Path, LogAnalytics]]:
    cert, key = _cert(tmp_path)
    state = LogAnalytics()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.headers.get("authorization") != f"Bearer {TOKEN}":
                self._send(401, {"error": {"code": "AuthorizationRequired", "message": "no token"}})
            elif self.path.split("?")[0] != f"/v1/workspaces/{WORKSPACE}/query":
                self._send(404, {"error": {"code": "NotFound", "message": self.path}})
            else:
                self._send(200, state.answer(orjson.loads(body)))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            raw = orjson.dumps(payload)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert, state
    finally:
        server.shutdown()
        server.server_close()


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    svc = Services.open(Settings(data_dir=tmp_path / "data", writer_flush_ms=5))
    try:
        yield svc
    finally:
        svc.close()


def stored(services: Services) -> list[str]:
    scope = Scope(tenant="default", q="service:azure-app", now_us=now_us())
    return [e.message for e in search(services.store, scope, limit=10000, sort="asc").events]


def test_azure_exactly_once_across_pages_runs_and_crashes(
    log_analytics: tuple[str, Path, LogAnalytics], services: Services, tmp_path: Path
) -> None:
    endpoint, cert, la = log_analytics
    now = datetime.now(UTC)
    written: list[str] = []
    for i in range(20):
        ts = now - timedelta(minutes=10) + timedelta(seconds=i * 10)
        la.rows.append([ts, f"row {i}", "Error" if i % 5 == 0 else "Information"])
        written.append(f"row {i}")
    same = now - timedelta(minutes=5, microseconds=123)
    for i in range(6):  # six rows in one microsecond: a page boundary falls among them
        la.rows.append([same, f"same-time {i}", "Information"])
        written.append(f"same-time {i}")

    config = AzureConfig(
        WORKSPACE,
        "AppTraces | project TimeGenerated, Message, Level",
        endpoint=endpoint,
        ca_bundle=str(cert),
        service="azure-app",
        start_lookback_s=3600,
        overlap_s=600,
        settle_s=0,
        page_rows=4,
    )
    checkpoints = Snapshots(tmp_path / "cp.json")

    def poller(cp: Any = None) -> AzureMonitorPoller:
        client = make_client(config, StaticCredential())
        return AzureMonitorPoller(config, WriterSink(services), cp or FileCheckpoints(checkpoints.path), client=client)

    p = poller(checkpoints)
    p.step()
    for _ in range(6):  # a new poller for each page
        p = poller()
        p.step()
    while p.step():
        pass
    assert_exact(stored(services), written)
    assert any("take 4" in q and "AppTraces" in q for q in la.queries)

    # Between runs: a late row (older than the checkpoint, inside the overlap) and new rows,
    # then a crash after the store acknowledged a page but before the checkpoint moved.
    high = datetime.fromtimestamp(p.high_us / 1e6, UTC)  # type: ignore[operator]
    la.rows.append([high - timedelta(seconds=30), "late row", "Warning"])
    written.append("late row")
    for i in range(5):
        la.rows.append([datetime.now(UTC) - timedelta(milliseconds=5 * (5 - i)), f"second run {i}", "Information"])
        written.append(f"second run {i}")
    checkpoints = Snapshots(checkpoints.path)
    p = poller(checkpoints)
    seen = len(checkpoints.history)
    while not p.status.events_total:
        assert p.step() or p.status.events_total
    crashed = next(s for s in reversed(checkpoints.history[seen:]) if s.get("pending"))
    checkpoints.save(p.id, crashed)
    p = poller()
    while p.step():
        pass
    time.sleep(0.01)
    p.step()
    assert_exact(stored(services), written)
    events = search(services.store, Scope(tenant="default", q='service:azure-app "row 0"', now_us=now_us()), limit=1)
    assert events.events[0].attributes["Level"] == "Error"
    assert p.status.to_api()["position"]["seen_keys"] > 0


def test_azure_rejected_credential_is_an_error_not_a_skip(
    log_analytics: tuple[str, Path, LogAnalytics], services: Services, tmp_path: Path
) -> None:
    endpoint, cert, la = log_analytics
    la.rows.append([datetime.now(UTC) - timedelta(seconds=30), "kept for later", "Information"])

    class WrongCredential:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken("wrong", int(time.time()) + 3600)

    config = AzureConfig(WORKSPACE, "T", endpoint=endpoint, ca_bundle=str(cert), start_lookback_s=60, settle_s=0)
    cp = FileCheckpoints(tmp_path / "cp.json")
    p = AzureMonitorPoller(config, WriterSink(services), cp, client=make_client(config, WrongCredential()))
    with pytest.raises(Exception, match=r"AuthorizationRequired|401"):
        p.step()
    assert p.status.errors_total == 1
    before = cp.load(p.id)
    p = AzureMonitorPoller(config, WriterSink(services), cp, client=make_client(config, StaticCredential()))
    while p.step():
        pass
    assert before is not None and p.status.events_total == 1
