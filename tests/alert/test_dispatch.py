"""Noise control end to end: real metadata DB, real HTTP receiver, the dispatcher's worker thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logloupe.alert.engine import AlertEngine
from logloupe.alert.rules import RuleSpec, Targets
from logloupe.settings import Settings
from logloupe.store.events import EventStore
from logloupe.store.meta import MetaStore
from tests.alert.conftest import Clock, Receiver
from tests.alert.helpers import event


def _engine(tmp_path: Path, store: EventStore, meta: MetaStore, receiver: Receiver, clock: Clock, **kw: object):
    settings = Settings(
        data_dir=tmp_path / "data",
        alert_webhook_url=receiver.url + "/hook",
        alert_webhook_secret="s3cret",
        alert_retry_base_s=0.01,
        **kw,
    )
    engine = AlertEngine(settings, store, meta, clock=clock)
    engine.start(scheduler=False)
    return engine


@pytest.fixture
def engine(
    tmp_path: Path, store: EventStore, meta: MetaStore, receiver: Receiver, clock: Clock
) -> Iterator[AlertEngine]:
    e = _engine(tmp_path, store, meta, receiver, clock)
    yield e
    e.close()


def _rule(engine: AlertEngine, **params: object) -> str:
    spec = RuleSpec(name="incidents to webhook", type="classification", channels=["webhook"], params=params)
    rule = engine.alerts.create_rule("default", spec)
    engine.reload()
    return rule.id


def test_burst_of_100000_events_gives_one_notification_per_key_and_window(
    engine: AlertEngine, receiver: Receiver, clock: Clock
) -> None:
    rule_id = _rule(engine, classes=["incident"])
    keys = 4
    batch = [
        event(f"payment failed for order {i}", classification="incident", pattern_id=1 + i % keys)
        for i in range(10_000)
    ]
    for _ in range(10):  # 100,000 matching events inside one dedup window
        engine.on_stored(batch)
        clock.advance(1)
    engine.dispatcher.sweep()
    engine.dispatcher.drain()
    hooks = receiver.on("/hook")
    assert len(hooks) == keys  # the configuration allows one per (tenant, rule, key) per window
    firing = engine.alerts.history("default", rule_id=rule_id, state="firing")
    suppressed = engine.alerts.history("default", rule_id=rule_id, state="suppressed")
    assert len(firing) == keys and len(suppressed) == keys
    notified = sum(h["matches"] for h in firing)
    assert notified == 10_000  # the first batch's events are in the first notifications
    assert sum(h["suppressed"] for h in suppressed) == 100_000 - notified
    assert all(d["result"] == "sent" for h in firing for d in h["deliveries"])

    # After the window, the next repeat notifies again and carries the suppressed count.
    clock.advance(600)
    engine.on_stored(batch[:keys])
    engine.dispatcher.drain()
    repeats = [r.json() for r in receiver.on("/hook")[keys:]]
    assert len(repeats) == keys
    assert sum(r["suppressed"] for r in repeats) == 100_000 - notified  # type: ignore[index]
    assert all(r["state"] == "firing" for r in repeats)  # type: ignore[index]

    # Quiet for the resolve period: one resolved notification per key.
    clock.advance(601)
    engine.dispatcher.sweep()
    engine.dispatcher.drain()
    resolved = [r.json() for r in receiver.on("/hook")[2 * keys :]]
    assert [r["state"] for r in resolved] == ["resolved"] * keys  # type: ignore[index]
    assert len(receiver.on("/hook")) == 3 * keys
    assert len(engine.alerts.history("default", rule_id=rule_id, state="resolved")) == keys


def test_rate_cap_per_channel(
    tmp_path: Path, store: EventStore, meta: MetaStore, receiver: Receiver, clock: Clock
) -> None:
    engine = _engine(tmp_path, store, meta, receiver, clock, alert_channel_max_per_hour=3)
    try:
        rule_id = _rule(engine, classes=["incident"])
        engine.on_stored([event("boom", classification="incident", pattern_id=p) for p in range(1, 11)])
        engine.dispatcher.drain()
        assert len(receiver.on("/hook")) == 3
        results = [d["result"] for h in engine.alerts.history("default", rule_id=rule_id) for d in h["deliveries"]]
        assert sorted(results) == ["rate_limited"] * 7 + ["sent"] * 3
        clock.advance(3600)  # the hour has passed: the cap allows sends again
        engine.on_stored([event("boom", classification="incident", pattern_id=99)])
        engine.dispatcher.drain()
        assert len(receiver.on("/hook")) == 4
    finally:
        engine.close()


def test_silence_with_expiry(engine: AlertEngine, receiver: Receiver, clock: Clock) -> None:
    rule_id = _rule(engine, classes=["incident"], group_by="service")
    engine.alerts.add_silence(
        "default",
        rule_id=rule_id,
        group_key="incident:api",
        duration_s=300,
        reason="deploy",
        created_by="t",
        now=clock(),
    )
    engine.dispatcher.refresh_silences()
    engine.on_stored([event("down", classification="incident", service="api")] * 3)
    engine.on_stored([event("down", classification="incident", service="web")])
    engine.dispatcher.sweep()
    engine.dispatcher.drain()
    sent = [r.json()["group_key"] for r in receiver.on("/hook")]  # type: ignore[index]
    assert sent == ["incident:web"]
    silenced = engine.alerts.history("default", rule_id=rule_id, state="silenced")
    assert len(silenced) == 1 and silenced[0]["deliveries"] == []
    clock.advance(301)  # the silence expired
    engine.dispatcher.refresh_silences()
    engine.on_stored([event("down", classification="incident", service="api")])
    engine.dispatcher.drain()
    assert [r.json()["group_key"] for r in receiver.on("/hook")] == ["incident:web", "incident:api"]  # type: ignore[index]


def test_retries_with_backoff_and_failures_recorded(engine: AlertEngine, receiver: Receiver) -> None:
    rule_id = _rule(engine, classes=["incident"])
    receiver.fail_next = 2
    engine.on_stored([event("boom", classification="incident", pattern_id=1)])
    engine.dispatcher.drain()
    receiver.fail_status, receiver.fail_next = 400, 1  # a client error is not retried
    engine.on_stored([event("boom", classification="incident", pattern_id=2)])
    engine.dispatcher.drain()
    deliveries = {
        h["group_key"]: h["deliveries"][0] for h in engine.alerts.history("default", rule_id=rule_id, state="firing")
    }
    assert deliveries["incident:0000000000000001"]["result"] == "sent"
    assert deliveries["incident:0000000000000001"]["attempts"] == 3
    assert deliveries["incident:0000000000000002"]["result"] == "failed"
    assert deliveries["incident:0000000000000002"]["attempts"] == 1
    assert "HTTP 400" in deliveries["incident:0000000000000002"]["error"]


def test_default_rules_record_unconfigured_channels(engine: AlertEngine) -> None:
    names = {r.name: r for r in engine.alerts.list_rules("default")}
    assert names["Incidents"].channels == ["email", "teams"]
    assert names["Preventive actions"].channels == ["teams"]
    engine.on_stored([event("disk 91% full", classification="preventive_action", service="db")])
    engine.dispatcher.drain()
    [h] = engine.alerts.history("default", rule_id=names["Preventive actions"].id)
    assert [(d["channel"], d["result"]) for d in h["deliveries"]] == [("teams", "not_configured")]


def test_old_history_is_pruned(engine: AlertEngine, clock: Clock) -> None:
    rule_id = _rule(engine, classes=["incident"])
    engine.on_stored([event("boom", classification="incident", pattern_id=1)])
    engine.dispatcher.drain()
    assert len(engine.alerts.history("default", rule_id=rule_id)) == 1
    clock.advance(91 * 86400)
    engine.evaluate_due()  # resolves the quiet alert (a new row), then prunes what is older than 90 days
    assert [h["state"] for h in engine.alerts.history("default", rule_id=rule_id)] == ["resolved"]


def test_settings_destinations_serve_only_the_default_tenant(engine: AlertEngine, receiver: Receiver) -> None:
    spec = RuleSpec(name="to webhook", type="classification", channels=["webhook"], params={})
    other = engine.alerts.create_rule("acme", spec)
    own = engine.alerts.create_rule(
        "globex", spec.model_copy(update={"targets": Targets(webhook_url=receiver.url + "/globex")})
    )
    engine.reload()
    engine.on_stored(
        [
            event("acme secret", tenant="acme", classification="incident"),
            event("g", tenant="globex", classification="incident"),
        ]
    )
    engine.dispatcher.drain()
    assert receiver.on("/hook") == []  # acme's log lines never reach the operator's webhook
    assert len(receiver.on("/globex")) == 1
    [h] = engine.alerts.history("acme", rule_id=other.id)
    assert [d["result"] for d in h["deliveries"]] == ["not_configured"]
    assert engine.alerts.history("globex", rule_id=own.id)[0]["deliveries"][0]["result"] == "sent"
