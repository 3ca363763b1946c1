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
