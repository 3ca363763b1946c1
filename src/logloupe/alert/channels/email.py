"""SMTP email: multipart text + HTML, plain / STARTTLS / implicit TLS, optional AUTH.

Every piece of log text is HTML-escaped in the HTML part; the subject has line breaks removed.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from logloupe.alert.notification import RESOLVED, DeliveryError, Notification

SECURITY_MODES = ("none", "starttls", "tls")


def render_html(n: Notification) -> str:
    e = html.escape
    color = "#1a7f37" if n.state == RESOLVED else "#cf222e"
    rows = [
        ("Rule", f"{n.rule_name} ({n.rule_type})"),
        ("Severity", n.severity),
        ("Matches", str(n.matches) + (f" (+{n.suppressed} repeats suppressed)" if n.suppressed else "")),
    ]
    if n.service:
        rows.append(("Service", n.service))
    table = "".join(f"<tr><th align='left'>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    parts = [
        "<!doctype html><html><body style=\"font-family:system-ui,-apple-system,'Segoe UI',sans-serif\">",
        f"<h2 style='color:{color}'>{e(n.state.upper())}: {e(n.title)}</h2>",
    ]
    if n.summary:
        parts.append(f"<p>{e(n.summary)}</p>")
    parts.append(f"<table cellpadding='4'>{table}</table>")
    if n.pattern:
        parts.append(f"<h3>Pattern</h3><pre>{e(n.pattern)}</pre>")
    if n.insight:
        parts.append(f"<h3>Insight</h3><p>{e(n.insight)}</p>")
    if n.explanation:
        parts.append(f"<h3>Why</h3><p>{e(n.explanation)}</p>")
    if n.samples:
        parts.append("<h3>Sample lines</h3><pre>" + "\n".join(e(s) for s in n.samples) + "</pre>")
    parts.append(
        f"<p><a href='{e(n.alert_url, quote=True)}'>Open alert</a> · "
        f"<a href='{e(n.search_url, quote=True)}'>Search logs</a> · "
        f"<a href='{e(n.silence_url, quote=True)}'>Silence</a></p></body></html>"
    )
    return "".join(parts)


def build_message(n: Notification, sender: str, recipients: list[str]) -> EmailMessage:
    msg = EmailMessage()
    subject = f"[LogLoupe {n.state.upper()}] {n.title}"
    msg["Subject"] = " ".join(subject.split())[:200]
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="logloupe")
    msg["X-LogLoupe-Rule"] = n.rule_id
    msg.set_content(n.text())
    msg.add_alternative(render_html(n), subtype="html")
    return msg


class EmailChannel:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: list[str],
        security: str = "starttls",
        username: str = "",
        password: str = "",
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 20.0,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"smtp security must be one of {SECURITY_MODES}")
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.security = security
        self.username = username
        self.password = password
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.timeout_s = timeout_s

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=self.ssl_context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        if self.security == "starttls":
            smtp.starttls(context=self.ssl_context)
        return smtp

    def send(self, notification: Notification) -> str:
        if not self.recipients:
            raise DeliveryError("no email recipients configured", retryable=False)
        msg = build_message(notification, self.sender, self.recipients)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(msg)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"server does not support this: {exc}", retryable=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        return ",".join(self.recipients)
