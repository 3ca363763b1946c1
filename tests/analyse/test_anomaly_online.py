import copy
import random
import re

import pytest

from logloupe.analyse.anomaly.online import OnlineDetector, OnlineSettings
from logloupe.analyse.anomaly.rates import RateBaseline, squash
from logloupe.model import Level

MIN = 60_000_000
T0 = 1_700_000_000_000_000 - 1_700_000_000_000_000 % (3600 * 1_000_000)
PATTERNS = [101, 102, 103, 104]


def steady(detector, minutes, rate=30, start_min=0, seed=0, service="api", errors=0.02):
    """Poisson-ish steady traffic: ``rate`` events a minute over a few INFO patterns."""
    rng = random.Random(seed)
    found = []
    for minute in range(start_min, start_min + minutes):
        n = max(0, int(rng.gauss(rate, rate**0.5)))
        for i in range(n):
            ts = T0 + minute * MIN + int(i * MIN / max(n, 1))
            level = Level.ERROR if rng.random() < errors else Level.INFO
            pattern = 900 if level == Level.ERROR else rng.choice(PATTERNS)
            found += detector.observe("t1", service, ts, level, pattern, f"{service}-{minute}-{i}")
        found += detector.tick(T0 + (minute + 1) * MIN)
    return found


@pytest.fixture
def warmed():
    detector = OnlineDetector()
    noise = steady(detector, 180)
    return detector, noise


def test_steady_traffic_raises_nothing(warmed):
    detector, noise = warmed
    assert noise == []
    assert steady(detector, 120, start_min=180, seed=1) == []


def test_a_spike_is_caught_and_explained_by_its_pattern(warmed):
    detector, _ = warmed
    minute = 180
    for i in range(300):
        detector.observe("t1", "api", T0 + minute * MIN + i * 100_000, Level.INFO, 103, f"spike-{i}")
    found = steady(detector, 2, start_min=minute + 1, seed=5)
    spikes = [a for a in found if a.kind == "rate_spike"]
    assert spikes, found
    service_spike = next(a for a in spikes if "grew most" in a.explanation)
    assert service_spike.pattern_ids[0] == 103
    assert 0.7 <= service_spike.score <= 1
    assert service_spike.event_ids and service_spike.event_ids[0] == "spike-0"


def test_silence_is_reported_once_from_tick(warmed):
    detector, _ = warmed
    found = []
    for minute in range(180, 200):
        found += detector.tick(T0 + (minute + 1) * MIN)
    silences = [a for a in found if a.kind == "silence"]
    assert len(silences) == 1
    assert "went silent" in silences[0].explanation
    assert silences[0].service == "api"


def test_new_patterns_weighted_by_level(warmed):
    detector, _ = warmed
    ts = T0 + 180 * MIN + 1
    assert detector.observe("t1", "api", ts, Level.INFO, 555, "info-new") == []  # 0.5 < 0.7
    found = detector.observe("t1", "api", ts + 1, Level.ERROR, 556, "err-new")
    assert [a.kind for a in found] == ["new_pattern"]
    assert found[0].score == pytest.approx(0.9)
    assert found[0].pattern_ids == (556,) and found[0].event_ids == ("err-new",)
    assert detector.observe("t1", "api", ts + 2, Level.ERROR, 556, "err-again") == []


def test_new_patterns_weighted_by_classification(warmed):
    detector, _ = warmed
    ts = T0 + 180 * MIN + 1
    assert detector.observe("t1", "api", ts, Level.INFO, 557, "plain", "normal") == []
    found = detector.observe("t1", "api", ts + 1, Level.INFO, 558, "reads-like-incident", "incident")
    assert [a.kind for a in found] == ["new_pattern"]
    assert found[0].score == pytest.approx(0.9)
    assert "classified incident" in found[0].explanation
    prevent = detector.observe("t1", "api", ts + 2, Level.INFO, 559, "disk-80", "preventive_action")
    assert [a.score for a in prevent] == [pytest.approx(0.75)]


def test_no_new_pattern_alerts_during_warm_up():
    detector = OnlineDetector()
    assert detector.observe("t1", "fresh", T0, Level.FATAL, 1, "e1") == []


def test_error_ratio_jump(warmed):
    detector, _ = warmed
    found = steady(detector, 3, start_min=180, seed=9, errors=0.5)
    ratio = [a for a in found if a.kind == "error_ratio"]
    assert ratio
    assert 900 in ratio[0].pattern_ids
    assert "errors" in ratio[0].explanation


def test_threshold_is_configurable():
    detector = OnlineDetector(OnlineSettings(threshold=0.4, warmup_events=0, warmup_s=0))
    detector.observe("t1", "api", T0, Level.INFO, 1, "a")
    found = detector.observe("t1", "api", T0 + 1, Level.INFO, 2, "b")
    assert [a.kind for a in found] == ["new_pattern"]


def test_tenants_and_services_are_separate(warmed):
    detector, _ = warmed
    steady(detector, 180, service="other")
    ts = T0 + 400 * MIN
    # A pattern known to "api" of tenant t1 is new to tenant t2 (still warming up: no alert)
    assert detector.observe("t2", "api", ts, Level.ERROR, 900, "x") == []


def test_baseline_learns_a_lasting_change_but_not_a_single_spike():
    base = RateBaseline()
    for _ in range(200):
        base.update(10, 0)
    base.update(1000, 0)
    assert base.expected(0)[0] < 20
    for _ in range(200):
        base.update(100, 0)
    assert base.expected(0)[0] == pytest.approx(100, rel=0.1)


def test_squash_maps_to_the_threshold():
    assert squash(6.0, 6.0, 0.7) == pytest.approx(0.7)
    assert squash(0.0) == 0.0
    assert 0 < squash(1e9) < 1


def test_idle_series_are_forgotten():
    detector = OnlineDetector(OnlineSettings(idle_forget_s=3600))
    detector.observe("t1", "a", T0, Level.INFO, 1, "x")
    detector.observe("t1", "b", T0, Level.INFO, 1, "y")
    detector.observe("t1", "b", T0 + 3000 * 1_000_000, Level.INFO, 2, "z")
    detector.tick(T0 + 5000 * 1_000_000)
    assert ("t1", "a") not in detector._services
    assert set(detector._services[("t1", "b")].patterns) == {2}


def test_an_error_burst_raises_a_level_spike_naming_its_pattern(warmed):
    detector, _ = warmed
    minute = 180
    for i in range(60):
        detector.observe("t1", "api", T0 + minute * MIN + i * 500_000, Level.ERROR, 900, f"err-{i}")
    found = steady(detector, 1, start_min=minute + 1, seed=11)
    level_spikes = [a for a in found if a.kind == "rate_spike" and "ERROR events" in a.explanation]
    assert level_spikes, found
    assert 900 in level_spikes[0].pattern_ids


def test_anomaly_api_shape():
    from logloupe.model import Anomaly

    anomaly = Anomaly("t1", "api", "silence", 0.8, 1_700_000_000_000_000, "went silent", (255,), ("e1",))
    body = anomaly.to_api()
    assert body == {
        "tenant": "t1",
        "service": "api",
        "kind": "silence",
        "score": 0.8,
        "ts": "2023-11-14T22:13:20.000000Z",
        "explanation": "went silent",
        "pattern_ids": ["00000000000000ff"],
        "event_ids": ["e1"],
    }


def test_feedback_mutes_a_false_positive_and_real_lifts_it():
    settings = OnlineSettings(warmup_events=0, warmup_s=0)
    detector = OnlineDetector(settings)
    detector.observe("t1", "api", T0, Level.INFO, 1, "a")
    first = detector.observe("t1", "api", T0 + 1, Level.ERROR, 2, "b")
    assert [a.kind for a in first] == ["new_pattern"]
    detector.feedback(first[0], real=False)
    # A muted key: the same kind for the same service and pattern is not returned again.
    assert detector._emit(first) == []
    other = detector.observe("t1", "api", T0 + 2, Level.ERROR, 3, "c")
    assert [a.pattern_ids for a in other] == [(3,)]
    detector.feedback(first[0], real=True)
    assert detector._emit(first) == first


def test_unknown_levels_do_not_break_counting():
    detector = OnlineDetector(OnlineSettings(warmup_events=0, warmup_s=0))
    for minute in range(40):
        for i in range(20):
            detector.observe("t1", "api", T0 + minute * MIN + i, 9, 1, f"e{minute}-{i}")
    found = detector.observe("t1", "api", T0 + 41 * MIN, 9, 2, "new")
    assert [a.kind for a in found] == ["new_pattern"]
    assert "level 9" in found[0].explanation


def test_observe_many_is_observe_in_order():
    """The ingest path's batch form: the same anomalies (with evidence) and the same state."""
    rng = random.Random(7)
    rows = []
    for minute in range(240):
        # a spike, an error burst, new patterns late, a silent service, late events, two tenants
        n = 400 if minute == 200 else (0 if 150 <= minute < 170 else 30)
        for i in range(n):
            ts = T0 + minute * MIN + int(i * MIN / n) - (MIN if i % 97 == 0 else 0)
            level = rng.choice(
                [Level.INFO] * 6 + [Level.WARN, Level.ERROR] + ([Level.FATAL] * 5 if minute == 220 else [])
            )
            pattern = rng.choice(PATTERNS) if minute < 210 else rng.choice([*PATTERNS, 5000 + minute % 7])
            rows.append((f"t{i % 2}", rng.choice(["api", "db"]), ts, level, pattern, rng.choice(["", "incident"])))
    one = OnlineDetector(OnlineSettings(warmup_events=50, warmup_s=60))
    many = OnlineDetector(OnlineSettings(warmup_events=50, warmup_s=60))
    expected, got = [], []
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        for i, row in enumerate(chunk):
            expected += one.observe(*row[:5], f"e{start + i}", row[5])
        got += many.observe_many(chunk, lambda i, start=start: f"e{start + i}")
        now = chunk[-1][2]
        expected += one.tick(now)
        got += many.tick(now)
    assert expected  # the stream does raise anomalies
    assert got == expected
    assert repr(many._services) == repr(one._services)


def test_a_pattern_that_stops_while_its_service_goes_on_is_a_drop():
    detector = OnlineDetector()
    rng = random.Random(4)

    def minute_of(minute, with_jobs):
        found = []
        for i in range(30):  # the service's other traffic goes on
            found += detector.observe(
                "t1", "api", T0 + minute * MIN + i * 1_000_000, Level.INFO, rng.choice(PATTERNS), "x"
            )
        for i in range(40 if with_jobs else 0):  # a job pattern logging 40 times a minute
            found += detector.observe(
                "t1", "api", T0 + minute * MIN + i * 1_000_000 + 500, Level.INFO, 777, f"j{minute}-{i}"
            )
        return found + detector.tick(T0 + (minute + 1) * MIN)

    noise = [a for m in range(120) for a in minute_of(m, True)]
    assert noise == []
    found = [a for m in range(120, 123) for a in minute_of(m, False)]
    drops = [a for a in found if a.kind == "rate_drop" and a.pattern_ids == (777,)]
    assert drops and drops[0].score >= 0.7, found
    assert "pattern 0000000000000309: 0 events" in drops[0].explanation
    assert not any(a.kind == "silence" for a in found)


# -- seasonality: the same hour on previous days -----------------------------------------------------
DAY0 = T0 - T0 % (86400 * 1_000_000)  # midnight UTC: the detector's hours of the day are UTC hours
DAY_HOURS = range(8, 20)  # 100 events a minute from 08:00 to 20:00, 5 a minute at night


def _usual(minute: int) -> int:
    return 100 if (minute // 60) % 24 in DAY_HOURS else 5


def _usual_in(explanation: str) -> float:
    found = re.search(r"against a usual ([0-9.]+)", explanation)
    assert found, explanation
    return float(found.group(1))


def _day_and_night(detector: OnlineDetector, minutes: range, rng: random.Random, count=_usual) -> list:
    """``count(minute)`` INFO events each minute (Poisson-like noise), over a few patterns."""
    found = []
    for minute in minutes:
        n = count(minute)
        n = max(0, round(rng.gauss(n, n**0.5))) if n == _usual(minute) else n
        rows = [
            ("t1", "shop", DAY0 + minute * MIN + i * MIN // max(n, 1), Level.INFO, rng.choice(PATTERNS), "")
            for i in range(n)
        ]
        found += detector.observe_many(rows, lambda i, minute=minute: f"m{minute}-{i}")
        found += detector.tick(DAY0 + (minute + 1) * MIN)
    return found


def test_a_quiet_night_is_judged_against_previous_nights():
    """Three days of busy days and quiet nights, then the two changes of regime: there the last
    hour's level says the opposite of the same hour on previous days, and the latter must win."""
    rng = random.Random(3)
    detector = OnlineDetector()
    night_starts = 3 * 1440 + 20 * 60  # day 3, 20:00: 12 hours of 100/min just ended
    # The first days teach each hour (an hour is trusted after two days of it: until then the
    # changes of regime are spikes and drops) ...
    learning = _day_and_night(detector, range(3 * 1440), rng)
    assert {a.kind for a in learning} == {"rate_spike", "rate_drop"}
    # ... after which they are expected (08:00 on day 3 raises nothing).
    assert _day_and_night(detector, range(3 * 1440, night_starts), rng) == []

    # A count of 5 on the first night minute is what previous nights had (the last hour had 100).
    quiet = copy.deepcopy(detector)
    assert _day_and_night(quiet, range(night_starts, night_starts + 2), random.Random(1), lambda m: 5) == []
    # A daytime count at night is a spike.
    busy = copy.deepcopy(detector)
    found = _day_and_night(busy, range(night_starts, night_starts + 2), random.Random(1), lambda m: 100)
    spikes = [a for a in found if a.kind == "rate_spike" and a.service == "shop" and "grew most" in a.explanation]
    assert spikes and spikes[0].score >= 0.7, found
    assert _usual_in(spikes[0].explanation) == pytest.approx(5, rel=0.2)  # the nights', not the last hour's

    # The night goes on, then the first day minute: 5 is a drop, 100 is normal (the last 12 hours had 5).
    day_starts = 4 * 1440 + 8 * 60
    assert _day_and_night(quiet, range(night_starts + 2, day_starts), rng) == []
    normal = copy.deepcopy(quiet)
    assert _day_and_night(normal, range(day_starts, day_starts + 2), random.Random(1), lambda m: 100) == []
    found = _day_and_night(quiet, range(day_starts, day_starts + 2), random.Random(1), lambda m: 5)
    drops = [a for a in found if a.kind == "rate_drop" and a.pattern_ids == ()]
    assert drops and drops[0].score >= 0.7, found
    assert drops[0].explanation.startswith("5 events in 60s")
    assert _usual_in(drops[0].explanation) == pytest.approx(100, rel=0.1)


def test_rate_baseline_keeps_an_expectation_per_hour_of_day():
    base = RateBaseline()
    for minute in range(3 * 1440 + 20 * 60):  # until day 3, 20:00
        base.update(_usual(minute), (minute // 60) % 24)
    night, day = 20, 14
    assert base.overall.mean == pytest.approx(100, rel=0.05)  # the last hours were day-time
    assert base.expected(night)[0] == pytest.approx(5, rel=0.05)
    assert base.expected(day)[0] == pytest.approx(100, rel=0.05)
    assert abs(base.zscore(5, night)) < 1
    assert base.zscore(100, night) > 6
    assert base.zscore(5, day) < -6
    # Before two days of an hour have been seen, the hour falls back on the overall level.
    young = RateBaseline()
    for minute in range(1440 + 20 * 60):
        young.update(_usual(minute), (minute // 60) % 24)
    assert young.expected(night)[0] == pytest.approx(young.overall.mean)
