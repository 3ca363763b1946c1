"""Rules against the real event store: scheduled query / pattern / silence rules, streaming
anomaly rules, tenant isolation, evaluation time, and rules loaded from a TOML file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logloupe.alert.engine import AlertEngine
from logloupe.alert.rules import AnomalySignal, RuleSpec
from logloupe.errors import InvalidInput
from logloupe.model import Level
from logloupe.pipeline.writer import StoreWriter
from logloupe.settings import Settings
from logloupe.store.events import EventStore
from logloupe.store.meta import MetaStore
from tests.alert.conftest import Clock
from tests.alert.helpers import event

MIN = 60_000_000


@pytest.fixture
def now_clock() -> Clock:
    return Clock(start=time.time())


@pytest.fixture
def engine(tmp_path: Path, store: EventStore, meta: MetaStore, now_clock: Clock) -> Iterator[AlertEngine]:
    e = AlertEngine(Settings(data_dir=tmp_path / "d"), store, meta, clock=now_clock)
    e.start(scheduler=False)
    yield e
    e.close()


@pytest.fixture
def writer(store: EventStore) -> Iterator[StoreWriter]:
    w = StoreWriter(store, flush_ms=5)
    yield w
    w.close()


def _add(engine: AlertEngine, tenant: str = "default", **spec: object) -> str:
    rule = engine.alerts.create_rule(tenant, RuleSpec.model_validate(spec))
    engine.reload()
    return rule.id


def _states(engine: AlertEngine, rule_id: str, tenant: str = "default") -> list[tuple[str, str]]:
    return [(h["state"], h["group_key"]) for h in reversed(engine.alerts.history(tenant, rule_id=rule_id))]


def test_query_threshold_count_group_and_resolve(engine: AlertEngine, writer: StoreWriter, now_clock: Clock) -> None:
    now = int(now_clock() * 1e6)
    writer.write(
        [event(f"timeout {i}", service="api", ts_us=now - i * 1_000_000) for i in range(6)]
        + [event("timeout old", service="api", ts_us=now - 10 * MIN)]
        + [event(f"timeout {i}", service="web", ts_us=now - i * 1_000_000) for i in range(2)]
        + [event("fine", service="api", level=Level.INFO, ts_us=now - 1_000_000)]
        # Another tenant's errors never count towards this tenant's rules.
        + [event(f"timeout {i}", tenant="other", service="web", ts_us=now) for i in range(50)]
    )
    total = _add(
        engine, name="errors", type="query", params={"query": "level:>=ERROR", "window_s": 300, "threshold": 8}
    )
    per_service = _add(
        engine,
        name="errors per service",
        type="query",
        params={"query": "level:>=ERROR", "window_s": 300, "threshold": 5, "group_by": "service"},
    )
    ratio = _add(
        engine,
        name="error ratio",
        type="query",
        params={"query": "level:>=ERROR", "window_s": 300, "threshold": 0.8, "mode": "ratio"},
    )
    results = {r["rule_id"]: r for r in engine.evaluate_due(force=True)}
    assert results[total]["firing"] == ["all"]  # 8 errors in the window; the old one and tenant other excluded
    assert results[per_service]["firing"] == ["api"]
    assert results[ratio]["firing"] == ["all"]  # 8 / 9
    [firing] = engine.alerts.history("default", rule_id=per_service)
    assert firing["matches"] == 6 and len(firing["notification"]["samples"]) == 5
    assert all("[api]" in s for s in firing["notification"]["samples"])
    rule = engine.alerts.get_rule("default", per_service)
    assert rule.last_eval_at is not None and rule.last_eval_ms is not None and rule.last_eval_ms >= 0

    now_clock.advance(600)  # the window has moved past the errors: every alert resolves
    engine.evaluate_due(force=True)
    assert _states(engine, per_service) == [("firing", "api"), ("resolved", "api")]
    assert _states(engine, total) == [("firing", "all"), ("resolved", "all")]


def test_query_rules_are_tenant_scoped(engine: AlertEngine, writer: StoreWriter, now_clock: Clock) -> None:
    now = int(now_clock() * 1e6)
    writer.write([event("boom", tenant="other", ts_us=now) for _ in range(20)] + [event("boom", ts_us=now)])
    mine = _add(engine, name="booms", type="query", params={"query": "boom", "threshold": 2})
    theirs = _add(engine, "other", name="booms", type="query", params={"query": "boom", "threshold": 2})
    results = {r["rule_id"]: r for r in engine.evaluate_due(force=True)}
    assert results[mine]["firing"] == [] and results[theirs]["firing"] == ["all"]
    assert engine.alerts.history("default", rule_id=theirs) == []  # history is per tenant too


def test_pattern_new_and_rate_change(engine: AlertEngine, writer: StoreWriter, now_clock: Clock) -> None:
    now = int(now_clock() * 1e6)
    events = [event("brand new thing", pattern_id=7, ts_us=now - 1_000_000)]
    events += [event("old thing", pattern_id=8, ts_us=now - 60 * MIN), event("old thing", pattern_id=8, ts_us=now)]
    # pattern 9: 2 per 5-minute window for an hour, then 30 in the last window
    events += [
        event("steady", pattern_id=9, ts_us=now - (5 + w * 5) * MIN + 1_000_000) for w in range(12) for _ in range(2)
    ]
    events += [event("steady", pattern_id=9, ts_us=now - i * 1_000_000) for i in range(30)]
    writer.write(events)
    new = _add(engine, name="new patterns", type="pattern", params={"mode": "new", "window_s": 300})
    rate = _add(
        engine,
        name="pattern rate",
        type="pattern",
        params={"mode": "rate_change", "window_s": 300, "baseline_windows": 12, "factor": 3, "min_count": 10},
    )
    results = {r["rule_id"]: r for r in engine.evaluate_due(force=True)}
    assert results[new]["firing"] == ["0000000000000007"]
    assert results[rate]["firing"] == ["0000000000000009"]
    [h] = engine.alerts.history("default", rule_id=rate)
    assert h["notification"]["pattern_id"] == "0000000000000009"
    assert h["notification"]["samples"] and "steady" in h["notification"]["samples"][0]


def test_silence_rule(engine: AlertEngine, writer: StoreWriter, now_clock: Clock) -> None:
    now = int(now_clock() * 1e6)
    writer.write([event("tick", service="cron", ts_us=now - 20 * MIN), event("req", service="api", ts_us=now)])
    every = _add(engine, name="quiet services", type="silence", params={"minutes": 15})
    ghost = _add(engine, name="ghost", type="silence", params={"minutes": 15, "service": "ghost"})
    results = {r["rule_id"]: r for r in engine.evaluate_due(force=True)}
    assert results[every]["firing"] == ["cron"]
    assert results[ghost]["firing"] == ["ghost"]
    writer.write([event("tick", service="cron", ts_us=now)])  # cron is back
    engine.evaluate_due(force=True)
    assert _states(engine, every) == [("firing", "cron"), ("resolved", "cron")]


def test_anomaly_rule_uses_the_threshold_setting(engine: AlertEngine) -> None:
    rule = next(r for r in engine.alerts.list_rules("default") if r.type == "anomaly")  # a default rule
    engine.on_anomalies(
        [
            AnomalySignal("default", "api", "volume_spike", 0.69, 1, explanation="below"),
            AnomalySignal("default", "api", "volume_spike", 0.91, 2, "10x the usual volume", [0xAB], ["e1"], ["l1"]),
            AnomalySignal("other", "api", "volume_spike", 0.99, 3),
        ]
    )
    engine.on_stored([event("odd", anomaly_score=0.95, service="db"), event("fine", anomaly_score=0.2)])
    engine.dispatcher.drain()
    history = engine.alerts.history("default", rule_id=rule.id)
    notes = {h["group_key"]: h["notification"] for h in history}
    assert set(notes) == {"volume_spike:api:00000000000000ab", "event:db:"}
    spike = notes["volume_spike:api:00000000000000ab"]
    assert spike["explanation"] == "10x the usual volume" and spike["threshold"] == 0.7 and spike["value"] == 0.91


def test_anomaly_threshold_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_THRESHOLD", "0.8")  # the spelling
    assert Settings().anomaly_threshold == 0.8
    monkeypatch.setenv("LOGLOUPE_ANOMALY_THRESHOLD", "0.85")  # the prefixed one wins
    assert Settings().anomaly_threshold == 0.85
    assert Settings(anomaly_threshold=0.5).anomaly_threshold == 0.5


def test_invalid_rules_are_4xx_errors(engine: AlertEngine) -> None:
    with pytest.raises(InvalidInput):
        engine.alerts.create_rule("default", RuleSpec(name="x", type="query", params={"threshold": 3}))
    with pytest.raises(InvalidInput):
        engine.alerts.create_rule("default", RuleSpec(name="x", type="silence", params={"minutes": -1}))
    with pytest.raises(Exception, match="position"):
        engine.alerts.create_rule("default", RuleSpec(name="x", type="query", params={"query": "a AND ("}))


def test_rules_file(tmp_path: Path, store: EventStore, meta: MetaStore) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[[rule]]
name = "5xx burst"
type = "query"
channels = ["slack", "webhook"]
query = 'service:api AND status:>=500'
window_s = 300
threshold = 50

[[rule]]
name = "Preventive actions"
type = "classification"
channels = ["teams", "email"]
classes = ["preventive_action"]

[[rule]]
name = "payments quiet"
tenant = "shop"
type = "silence"
service = "payments"
minutes = 10
"""
    )
    engine = AlertEngine(Settings(data_dir=tmp_path / "d", alert_rules_file=path), store, meta)
    try:
        engine.start(scheduler=False)
        rule = engine.alerts.find_rule("default", "5xx burst")
        assert rule is not None and rule.origin == "file" and rule.params.threshold == 50
        assert rule.channels == ["slack", "webhook"]
        shop = engine.alerts.find_rule("shop", "payments quiet")
        assert shop is not None and shop.params.minutes == 10
        assert engine.alerts.find_rule("shop", "Incidents") is not None  # defaults for the new tenant
        preventive = engine.alerts.find_rule("default", "Preventive actions")
        assert preventive is not None and preventive.channels == ["teams", "email"]  # the file reconfigured it
    finally:
        engine.close()
    path.write_text('[[rule]]\nname = "bad"\ntype = "query"\nwindow_s = 300\n')
    bad = AlertEngine(Settings(data_dir=tmp_path / "d", alert_rules_file=path), store, meta)
    try:
        with pytest.raises(InvalidInput, match="rule 1"):
            bad.start(scheduler=False)
    finally:
        bad.close()
