import random

from logloupe.analyse.anomaly.tracker import SessionTracker, TrackerSettings

SEC = 1_000_000
ALLOC, RECV, STORED, DELETE, FAIL = 1, 2, 3, 4, 99


def block(rng):
    return [ALLOC] + [RECV] * 3 + [STORED] * 3 + [DELETE] * rng.choice([3, 3, 0])


def feed(tracker, sessions, start_s):
    found = []
    ts = start_s * SEC
    for n, patterns in enumerate(sessions):
        for i, pattern in enumerate(patterns):
            found += tracker.add("t1", "hdfs", f"blk_{start_s}_{n}", ts + i, pattern, f"e{start_s}-{n}-{i}")
        ts += SEC
    found += tracker.tick(ts + 10_000 * SEC)
    return found


def test_sessions_train_then_flag_the_broken_ones():
    rng = random.Random(0)
    tracker = SessionTracker(TrackerSettings(train_sessions=300, idle_close_s=60))
    assert feed(tracker, [block(rng) for _ in range(400)], 0) == []  # training: no alerts
    found = feed(tracker, [block(rng) for _ in range(50)], 100_000)
    assert found == []
    broken = [[ALLOC, RECV, FAIL], [ALLOC, RECV]]
    found = feed(tracker, broken, 200_000)
    assert {a.explanation.split()[1] for a in found} == {"blk_200000_0", "blk_200000_1"}
    by_key = {a.explanation.split()[1]: a for a in found}
    assert by_key["blk_200000_0"].pattern_ids == (FAIL,)
    assert all(a.kind == "session" and 0.5 <= a.score <= 1 for a in found)
    assert by_key["blk_200000_1"].event_ids == ("e200000-1-0", "e200000-1-1")


def test_idle_sessions_close_only_after_the_timeout():
    tracker = SessionTracker(TrackerSettings(train_sessions=1, idle_close_s=60))
    tracker.add("t1", "s", "k", 0, 1, "a")
    assert tracker.tick(30 * SEC) == []
    assert len(tracker._open) == 1
    tracker.tick(61 * SEC)
    assert tracker._open == {}


def test_a_false_positive_retrains_the_model_and_real_undoes_it():
    rng = random.Random(1)
    tracker = SessionTracker(TrackerSettings(train_sessions=300, idle_close_s=60))
    feed(tracker, [block(rng) for _ in range(400)], 0)
    odd = [ALLOC, RECV, RECV, RECV, STORED, STORED, STORED, FAIL]
    first = feed(tracker, [odd], 100_000)
    assert len(first) == 1
    assert tracker.feedback(first[0], real=False) is True
    assert feed(tracker, [odd, odd], 200_000) == [], "sessions like it are no longer flagged"
    assert feed(tracker, [[ALLOC, RECV, 77]], 300_000), "other anomalies still are"
    assert tracker.feedback(first[0], real=True) is True
    assert len(feed(tracker, [odd], 400_000)) == 1, "called real: flagged again"


def test_feedback_on_an_unknown_session_says_so():
    tracker = SessionTracker(TrackerSettings(train_sessions=1))
    stranger = feed(SessionTracker(TrackerSettings(train_sessions=1)), [[1, 2], [1, 2], [1, 9]], 0)
    assert stranger
    assert tracker.feedback(stranger[0], real=False) is False


def test_sliding_windows_per_service_are_scored():
    tracker = SessionTracker(TrackerSettings(window_events=20, window_step=10, train_sessions=100))
    found = []
    ts = 0
    cycle = [1, 2, 3, 4]  # a service's request lifecycle, over and over
    for i in range(2_000):
        ts += SEC
        found += tracker.add_to_window("t1", "svc", ts, cycle[i % 4], f"e{i}")
    assert found == [], "training windows and normal ones raise nothing"
    for i in range(5):
        ts += SEC
        found += tracker.add_to_window("t1", "svc", ts, 99, f"bad{i}")
    for i in range(30):
        ts += SEC
        found += tracker.add_to_window("t1", "svc", ts, cycle[i % 4], f"n{i}")
    # Windows of 20 every 10 events: the two that hold the strange events are flagged, then quiet.
    assert [a.kind for a in found] == ["window", "window"]
    assert all(a.pattern_ids == (99,) for a in found)
    assert found[0].explanation.startswith("window e1990..n4 (20 events): event 0000000000000063 seen in 0")
    assert "bad0" in found[0].event_ids
    assert tracker.add_to_window("t1", "other", ts, 99, "x") == [], "windows are per service"
