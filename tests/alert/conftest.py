"""Real servers for the alerting tests: an HTTP receiver, SMTP servers (aiosmtpd), a clock."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient

from logloupe.serve.app import create_app
from logloupe.settings import Settings
from logloupe.store.meta import MetaStore
from tests.helpers import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server recording every POST; ``fail_next`` answers that many with ``fail_status``."""

    url: str
    requests: list[Received] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 500
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                if state.fail_next > 0:
                    state.fail_next -= 1
                    status = state.fail_status
                else:
                    state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    status = 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


class Clock:
    """Time the tests move forward explicitly; passed in where the code takes ``clock``."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def meta(tmp_path: Path) -> Iterator[MetaStore]:
    m = MetaStore(tmp_path / "meta.db")
    m.ensure_tenant("default")
    yield m
    m.close()


@dataclass
class Cert:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A self-signed certificate for 127.0.0.1 / localhost, made here (nothing downloaded)."""
    d = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Cert(d / "cert.pem", d / "key.pem")


# An aiosmtpd inbox and the running app with every channel pointed at the local receivers
# (test_insight.py, test_redaction.py).
@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def app_client(tmp_path: Path, receiver: Receiver, smtp: tuple[Inbox, int]) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path / "data",
        writer_flush_ms=5,
        smtp_host="127.0.0.1",
        smtp_port=smtp[1],
        smtp_security="none",
        alert_email_to=["oncall@example.com"],
        slack_webhook_url=receiver.url + "/slack",
        teams_webhook_url=receiver.url + "/teams",
        alert_webhook_url=receiver.url + "/hook",
        alert_webhook_secret="k",
        public_url="https://logs.example.com",
    )
    with TestClient(create_app(settings)) as c:
        # The default "Incidents" rule sends email + Teams; this one Slack + the webhook.
        rule = {"name": "incidents out", "type": "classification", "channels": ["slack", "webhook"], "params": {}}
        assert c.post("/api/v1/alerts/rules", json=rule).status_code == 201
        yield c
