"""``logloupe demo``'s story reaches the Anomalies API: each of its four injected incidents is found by
the detectors in the running app.

The demo's own pieces (``demo_traffic``, ``write_demo``: generator → record parsing → store writer
with the pattern miner → store → detection hook) run in an app started in-process, on a compressed
clock: 70 minutes of history (past the new-pattern warm-up of an hour) and the first 15 minutes of
"live" traffic are written as fast as they go, at 8 events a second (the demo's default is 40), and
the detectors are ticked with the event time after each write, as the demo's detection thread does
with its event clock. The background ticker is set to an hour so it never runs during the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from logloupe.analyse.anomaly.live import LiveDetection
from logloupe.cli.store_commands import demo_traffic, write_demo
from logloupe.ingest.demo import CALM_S, LATENCY, OUTAGE, SILENCE, DemoTraffic
from logloupe.parse.records import Limits
from logloupe.serve.app import create_app
from logloupe.settings import Settings
from logloupe.store.search import now_us

MINUTE_US = 60_000_000
RATE = 8.0
HISTORY_MIN = 70
LIVE_MIN = 15


def _ts_us(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1_000_000)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoTraffic, list[dict[str, Any]]]]:
    """The demo's history and first quarter hour of live traffic, then every stored anomaly."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("demo") / "data", writer_flush_ms=5, anomaly_tick_s=3600)
    # Live traffic "started" 20 minutes ago, 17 s into a minute (the demo starts at any second).
    live_us = (now_us() - 20 * MINUTE_US) // MINUTE_US * MINUTE_US + 17_000_000
    traffic = demo_traffic(live_us, HISTORY_MIN * MINUTE_US)
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        live: LiveDetection = services.extras["anomaly_detection"]
        limits = Limits()
        cursor = traffic.start_us
        while cursor < live_us + LIVE_MIN * MINUTE_US:
            step = 600_000_000 if cursor < live_us else 10_000_000  # history in big batches, as the demo
            end = min(cursor + step, live_us) if cursor < live_us else cursor + step
            write_demo(services, list(traffic.events(cursor, end, RATE)), limits, position=f"demo:{cursor}")
            live.tick(end)
            cursor = end
        r = client.get("/api/v1/anomalies", params={"limit": 1000})
        assert r.status_code == 200, r.text
        yield traffic, r.json()["items"]


def _live_window(traffic: DemoTraffic, window: tuple[int, int]) -> tuple[int, int]:
    """Event times (bucket ends) at which the first live cycle's incident can be reported."""
    origin = traffic.live_us - traffic.live_us % MINUTE_US
    return origin + window[0] * 1_000_000, origin + window[1] * 1_000_000 + MINUTE_US


def _found(items: list[dict[str, Any]], kind: str, service: str, window: tuple[int, int]) -> list[dict[str, Any]]:
    lo, hi = window
    return [a for a in items if a["kind"] == kind and a["service"] == service and lo < _ts_us(a["ts"]) <= hi]


def test_the_new_error_pattern_is_reported_once_live(demo: tuple[DemoTraffic, list[dict[str, Any]]]) -> None:
    traffic, items = demo
    new = [a for a in items if a["kind"] == "new_pattern"]
    assert len(new) == 1, new  # the demo's only new pattern, reported once
    assert new[0]["service"] == "payments" and new[0]["score"] >= 0.7
    assert "CouponService" in new[0]["explanation"]["patterns"][0]["example"]
    assert traffic.new_pattern_us <= _ts_us(new[0]["ts"]) < traffic.live_us + LIVE_MIN * MINUTE_US


def test_the_database_outage_is_reported_live(demo: tuple[DemoTraffic, list[dict[str, Any]]]) -> None:
    traffic, items = demo
    window = _live_window(traffic, OUTAGE)
    for service in ("database", "payments", "api-gateway"):
        ratio = _found(items, "error_ratio", service, window)
        assert ratio and ratio[0]["score"] >= 0.7, (service, items)
    connection = _found(items, "error_ratio", "database", window)[0]
    assert "connection refused" in connection["explanation"]["patterns"][0]["example"]


def test_the_latency_spike_is_reported_live(demo: tuple[DemoTraffic, list[dict[str, Any]]]) -> None:
    traffic, items = demo
    window = _live_window(traffic, LATENCY)
    for service in ("api-gateway", "database"):  # slow requests, and the slow queries behind them
        spikes = [
            a for a in _found(items, "rate_spike", service, window) if "WARN events" in a["explanation"]["summary"]
        ]
        assert spikes and spikes[0]["score"] >= 0.7, (service, items)


def test_the_workers_silence_is_reported_live_and_no_other(demo: tuple[DemoTraffic, list[dict[str, Any]]]) -> None:
    traffic, items = demo
    silences = _found(items, "silence", "workers", _live_window(traffic, SILENCE))
    assert len(silences) == 1 and silences[0]["score"] >= 0.7, items
    assert "workers went silent" in silences[0]["explanation"]["summary"]
    assert {a["service"] for a in items if a["kind"] == "silence"} == {"workers"}


def test_every_incident_of_the_history_after_its_calm_start_is_reported_too(
    demo: tuple[DemoTraffic, list[dict[str, Any]]],
) -> None:
    """Cycles in the history (timed backwards from live) hold the same story: 70 minutes minus a calm
    half hour leave two whole cycles before live traffic, at -30 and -15 minutes."""
    traffic, items = demo
    for cycle in (-2, -1):
        shift = cycle * 15 * 60
        assert _found(items, "error_ratio", "database", _live_window(traffic, (OUTAGE[0] + shift, OUTAGE[1] + shift)))
        assert _found(items, "silence", "workers", _live_window(traffic, (SILENCE[0] + shift, SILENCE[1] + shift)))
    assert traffic.start_us + CALM_S * 1_000_000 < traffic.live_us - 30 * MINUTE_US


def test_the_story_is_calm_first_and_the_workers_really_stop() -> None:
    live_us = 1_763_700_000_000_000 + 17_000_000
    traffic = demo_traffic(live_us, 2 * 3600 * 1_000_000)
    records = list(traffic.events(traffic.start_us, live_us + 15 * MINUTE_US, 5.0))
    origin = live_us - live_us % MINUTE_US

    def at(r: dict[str, Any]) -> int:
        return _ts_us(r["timestamp"])

    coupons = [r for r in records if "CouponService" in r["message"]]
    assert coupons and min(at(r) for r in coupons) >= live_us + 60 * 1_000_000
    calm_end = traffic.start_us + CALM_S * 1_000_000
    assert not [r for r in records if at(r) < calm_end and "connection refused" in r["message"]]
    assert [r for r in records if at(r) >= calm_end and "connection refused" in r["message"]]
    silent = (origin + SILENCE[0] * 1_000_000, origin + SILENCE[1] * 1_000_000)
    assert not [r for r in records if r["service"] == "workers" and silent[0] <= at(r) < silent[1]]
    others = [r for r in records if silent[0] <= at(r) < silent[1]]
    assert len(others) > 0.8 * 5 * (SILENCE[1] - SILENCE[0])  # only the workers' tenth is missing


def test_a_short_history_puts_the_new_pattern_after_the_warm_up() -> None:
    live_us = 1_763_700_000_000_000
    traffic = demo_traffic(live_us, 10 * MINUTE_US)
    assert traffic.new_pattern_us == traffic.start_us + 3600 * 1_000_000 + 60 * 1_000_000
