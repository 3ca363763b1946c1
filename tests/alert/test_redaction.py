"""What a notification sends is redacted with the tenant's masking mode, on every channel: the running
app, a real local HTTP receiver (webhook, Slack, Teams) and aiosmtpd (email)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from logloupe.alert.notification import Notification
from logloupe.analyse.redact import RedactionPolicy, tenant_hash_key
from logloupe.parse.masking import redact
from tests.alert.conftest import Inbox, Receiver
from tests.alert.test_insight import _delivered, _incident, _parts

SECRETS = {
    "EMAIL": "bob.smith@example.com",
    "TOKEN": "abcdefghijklmnop1234",
    "AWS_KEY": "AKIAIOSFODNN7EXAMPLE",
    "SECRET": "hunter2",
    "CARD": "4111 1111 1111 1111",
}
LINE = (
    f"connection refused for {SECRETS['EMAIL']} Authorization: Bearer {SECRETS['TOKEN']} "
    f"key {SECRETS['AWS_KEY']} password={SECRETS['SECRET']} card {SECRETS['CARD']}"
)


def _everything_sent(receiver: Receiver, inbox: Inbox) -> str:
    hook, slack, teams, mail = _delivered(receiver, inbox)
    text, markup = _parts(mail)
    return "\n".join([json.dumps(hook), json.dumps(slack), json.dumps(teams), text, markup, str(mail["Subject"])])


def _set_mode(c: TestClient, mode: str) -> None:
    r = c.put("/api/v1/tenant/llm-policy", json={"masking_mode": mode})
    assert r.status_code == 200 and r.json()["masking_mode"] == mode


def test_default_mode_masks_secrets_and_personal_data_on_every_channel(
    app_client: TestClient, receiver: Receiver, smtp: tuple[Inbox, int]
) -> None:
    _incident(app_client, LINE)
    sent = _everything_sent(receiver, smtp[0])
    for kind, value in SECRETS.items():
        assert value not in sent, kind
        assert f"<{kind}>" in sent, kind
    hook = receiver.on("/hook")[0].json()
    assert isinstance(hook, dict)
    assert hook["samples"][0].endswith(
        "connection refused for <EMAIL> Authorization: Bearer <TOKEN> key <AWS_KEY> password=<SECRET> card <CARD>"
    )
    assert hook["pattern"] and SECRETS["EMAIL"] not in hook["pattern"]
    # The history is local: it keeps the line as it was.
    rows = app_client.get("/api/v1/alerts/history", params={"state": "firing"}).json()["items"]
    assert all(r["notification"]["samples"][0].endswith(LINE) for r in rows)


def test_hash_mode_sends_keyed_hashes_that_stay_correlatable(
    app_client: TestClient, receiver: Receiver, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    _set_mode(app_client, "hash")
    _incident(app_client, LINE)
    sent = _everything_sent(receiver, smtp[0])
    for kind, value in SECRETS.items():
        assert value not in sent, kind
        assert f"<{kind}:" in sent, kind
    # The same keyed hash as the LLM path gives for this tenant: one value, one hash, wherever it goes.
    key = tenant_hash_key(tmp_path / "data", "default")
    email = redact(SECRETS["EMAIL"], "hash", types=frozenset({"EMAIL"}), hash_key=key)
    assert email == RedactionPolicy.for_mode("hash", hash_key=key).apply(SECRETS["EMAIL"])
    hook = receiver.on("/hook")[0].json()
    assert isinstance(hook, dict)
    assert email in hook["samples"][0]
    [mail] = smtp[0].messages
    assert email in _parts(mail)[0]


def test_keep_mode_sends_the_text_as_it_is(app_client: TestClient, receiver: Receiver, smtp: tuple[Inbox, int]) -> None:
    _set_mode(app_client, "keep")
    _incident(app_client, LINE)
    hook = receiver.on("/hook")[0].json()
    assert isinstance(hook, dict)
    assert hook["samples"][0].endswith(LINE)
    sent = _everything_sent(receiver, smtp[0])
    assert all(value in sent for value in SECRETS.values())


def test_strict_mode_also_masks_addresses_and_hosts(
    app_client: TestClient, receiver: Receiver, smtp: tuple[Inbox, int]
) -> None:
    _set_mode(app_client, "strict")
    _incident(app_client, "connection refused to 10.1.2.3:5432 (db1.prod.example.com) for a@b.io")
    hook = receiver.on("/hook")[0].json()
    assert isinstance(hook, dict)
    assert hook["samples"][0].endswith("connection refused to <IPV4>:5432 (<HOST>) for <EMAIL>")


def test_every_field_that_carries_log_text_is_redacted() -> None:
    n = Notification(
        tenant="t",
        rule_id="r",
        rule_name="errors by user",
        rule_type="query",
        group_key="bob@example.com",
        state="firing",
        title="errors by user: 5 ≥ 3 (attr.user=bob@example.com)",
        summary="5 events matched `user:bob@example.com` in the last 300s.",
        service="api",
        pattern_id="00000000000000ab",
        pattern="login <*> for bob@example.com",
        samples=["login failed for bob@example.com", "password=hunter2"],
        insight="bob@example.com keeps failing",
        explanation="bob@example.com over baseline",
        public_url="https://logs.example.com",
    )
    assert "group_key=bob" in n.silence_url
    out = n.redacted(RedactionPolicy().apply)
    assert "bob@example.com" not in json.dumps(out.to_json()) and "hunter2" not in json.dumps(out.to_json())
    assert "bob@example.com" not in out.text()
    assert out.group_key == "<EMAIL>" and "group_key" not in out.silence_url  # never the value it hid
    assert out.service == "api" and out.pattern_id == n.pattern_id and out.rule_name == n.rule_name
    assert n.samples[0] == "login failed for bob@example.com"  # the original is untouched
