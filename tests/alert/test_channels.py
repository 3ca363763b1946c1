"""Each channel against a real server: aiosmtpd (plain, STARTTLS + AUTH, implicit TLS) and a local
HTTP receiver checking the Slack blocks, the Teams Adaptive Card and the signed webhook."""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from logloupe.alert.channels.email import EmailChannel
from logloupe.alert.channels.slack import SlackChannel
from logloupe.alert.channels.teams import TeamsChannel
from logloupe.alert.channels.webhook import SIGNATURE_HEADER, WebhookChannel, verify_signature
from logloupe.alert.notification import DeliveryError, Notification
from tests.alert.conftest import Cert, Receiver
from tests.helpers import free_port

HOSTILE = "<script>alert(1)</script> & <@channel> *bold* [x](http://evil)"


def _notification() -> Notification:
    return Notification(
        tenant="default",
        rule_id="r1",
        rule_name="Incidents",
        rule_type="classification",
        group_key="incident:00000000000000ab",
        state="firing",
        title="Incident in checkout",
        severity="critical",
        summary="Events classified incident.",
        matches=12,
        suppressed=40,
        service="checkout",
        pattern_id="00000000000000ab",
        pattern="payment <*> failed for order <*>",
        samples=["2026-01-01T00:00:00.000000Z ERROR [checkout] payment declined " + HOSTILE, "second line"],
        insight="The card processor times out since the 14:02 deploy.",
        explanation="Error rate 40x baseline",
        history_id=7,
        public_url="https://logs.example.com",
    )


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        raw = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 OK"


def _authenticator(inbox: Inbox):  # type: ignore[no-untyped-def]
    def check(server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        def text(v: str | bytes) -> str:
            return v.decode() if isinstance(v, bytes) else v

        ok = isinstance(auth_data, LoginPassword) and (text(auth_data.login), text(auth_data.password)) == (
            "alerts",
            "pw",
        )
        if ok:
            inbox.logins.append(text(auth_data.login))
        return AuthResult(success=ok, handled=False)

    return check


def _server_tls(cert: Cert) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert.cert, cert.key)
    return ctx


def _client_tls(cert: Cert) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert.cert))


@pytest.fixture
def smtp_starttls(self_signed: Cert) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_tls(self_signed),
        require_starttls=True,
        authenticator=_authenticator(inbox),
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def smtp_implicit_tls(self_signed: Cert) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=_server_tls(self_signed),
        authenticator=_authenticator(inbox),
        auth_required=True,
        auth_require_tls=False,  # aiosmtpd does not see implicit TLS as TLS; the socket is TLS all the same
    )
    controller.start()
    yield inbox, port
    controller.stop()


def _check_email(msg: EmailMessage) -> None:
    assert msg["To"] == "oncall@example.com"
    assert "Incident in checkout" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for body in (text, html):
        assert "payment &lt;*&gt; failed" in body or "payment <*> failed" in body
        assert "card processor times out" in body
        assert "40" in body  # suppressed repeats
    assert HOSTILE in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "https://logs.example.com/app/alerts?tab=history&amp;id=7" in html


def test_email_plain(smtp: tuple[Inbox, int]) -> None:  # the plain server: conftest's ``smtp``
    inbox, port = smtp
    channel = EmailChannel(
        "127.0.0.1", port, sender="logloupe@example.com", recipients=["oncall@example.com"], security="none"
    )
    assert channel.send(_notification()) == "oncall@example.com"
    [msg] = inbox.messages
    _check_email(msg)


def test_email_starttls_with_auth(smtp_starttls: tuple[Inbox, int], self_signed: Cert) -> None:
    inbox, port = smtp_starttls
    channel = EmailChannel(
        "127.0.0.1",
        port,
        sender="logloupe@example.com",
        recipients=["oncall@example.com"],
        security="starttls",
        username="alerts",
        password="pw",
        ssl_context=_client_tls(self_signed),
    )
    channel.send(_notification())
    assert inbox.logins == ["alerts"]
    _check_email(inbox.messages[0])


def test_email_bad_password_is_not_retryable(smtp_starttls: tuple[Inbox, int], self_signed: Cert) -> None:
    _, port = smtp_starttls
    channel = EmailChannel(
        "127.0.0.1",
        port,
        sender="logloupe@example.com",
        recipients=["oncall@example.com"],
        username="alerts",
        password="wrong",
        ssl_context=_client_tls(self_signed),
    )
    with pytest.raises(DeliveryError) as info:
        channel.send(_notification())
    assert info.value.retryable is False


def test_email_starttls_refuses_an_unverified_server(smtp_starttls: tuple[Inbox, int]) -> None:
    _, port = smtp_starttls
    channel = EmailChannel("127.0.0.1", port, sender="a@b", recipients=["c@d"], username="alerts", password="pw")
    with pytest.raises(DeliveryError):
        channel.send(_notification())  # the system CAs do not know the self-signed cert


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_implicit_tls_with_auth(smtp_implicit_tls: tuple[Inbox, int], self_signed: Cert) -> None:
    inbox, port = smtp_implicit_tls
    channel = EmailChannel(
        "127.0.0.1",
        port,
        sender="logloupe@example.com",
        recipients=["oncall@example.com"],
        security="tls",
        username="alerts",
        password="pw",
        ssl_context=_client_tls(self_signed),
    )
    channel.send(_notification())
    assert inbox.logins == ["alerts"]
    _check_email(inbox.messages[0])


def test_slack_blocks(receiver: Receiver) -> None:
    with httpx.Client() as client:
        SlackChannel(receiver.url + "/slack", client).send(_notification())
    [req] = receiver.on("/slack")
    body = req.json()
    assert isinstance(body, dict)
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "actions"
    text = "\n".join(b.get("text", {}).get("text", "") for b in body["blocks"])
    assert "payment &lt;*&gt; failed for order &lt;*&gt;" in text
    assert "&lt;@channel&gt;" in text and "<@channel>" not in text  # no mentions from log text
    assert "card processor" in text and "40 repeats suppressed" in text
    urls = [e["url"] for e in body["blocks"][-1]["elements"]]
    assert urls[0] == "https://logs.example.com/app/alerts?tab=history&id=7"


def test_teams_adaptive_card(receiver: Receiver) -> None:
    with httpx.Client() as client:
        TeamsChannel(receiver.url + "/teams", client).send(_notification())
    [req] = receiver.on("/teams")
    body = req.json()
    assert isinstance(body, dict)
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    titles = {a["title"]: a["url"] for a in card["actions"]}
    assert titles["Open alert"] == "https://logs.example.com/app/alerts?tab=history&id=7"
    assert titles["Search logs"].startswith("https://logs.example.com/app/discover?q=pattern_id")
    texts = [b.get("text", "") for b in card["body"]]
    assert any("card processor" in t for t in texts)
    assert any("payment <\\*> failed" in t or "payment \\<\\*\\> failed" in t for t in texts)
    assert not any("[x](http://evil)" in t for t in texts)  # no links from log text


def test_webhook_signature(receiver: Receiver) -> None:
    with httpx.Client() as client:
        WebhookChannel(receiver.url + "/hook", "topsecret", client).send(_notification())
    [req] = receiver.on("/hook")
    signature = req.headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("sha256=")
    assert verify_signature("topsecret", req.body, signature)
    assert not verify_signature("other", req.body, signature)
    body = req.json()
    assert isinstance(body, dict)
    assert body["state"] == "firing" and body["suppressed"] == 40
    assert body["samples"][0].endswith(HOSTILE)
    assert body["pattern"] == "payment <*> failed for order <*>"
    assert body["insight"].startswith("The card processor")


def test_http_channel_error_classes(receiver: Receiver) -> None:
    with httpx.Client() as client:
        receiver.fail_next, receiver.fail_status = 1, 503
        with pytest.raises(DeliveryError) as info:
            SlackChannel(receiver.url + "/slack", client).send(_notification())
        assert info.value.retryable
        receiver.fail_next, receiver.fail_status = 1, 404
        with pytest.raises(DeliveryError) as info:
            SlackChannel(receiver.url + "/slack", client).send(_notification())
        assert not info.value.retryable
        with pytest.raises(DeliveryError) as info:
            SlackChannel(f"http://127.0.0.1:{free_port()}/nothing", client).send(_notification())
        assert info.value.retryable
