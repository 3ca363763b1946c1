"""The server's session and window tracker with ``logloupe detect``'s rules (real SessionTracker and
LiveDetection objects): fixed windows judged by line rarity without count structure, sessions
closed while waiting for their teardown spared as unfinished and continued when the key comes
back, and scores on the server's scale (the model's limit at anomaly_threshold)."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

from logloupe.analyse.anomaly.live import SESSION_LIMIT_SCORE
from logloupe.analyse.anomaly.tracker import SessionTracker, TrackerSettings, reported_score
from logloupe.store.meta import MetaStore
from tests.analyse.events import block_detection, block_event

SEC = 1_000_000
BURST_A, BURST_B, BURST_C, SPARSE, NEVER = 1, 2, 3, 4, 99
ALLOC, RECV, STORED, DELETE, FAIL = 11, 12, 13, 14, 98


def _windows(tracker: SessionTracker, windows: list[list[int]], start: int) -> list[int]:
    """Feeds windows of 20 lines; the indices of the flagged ones."""
    flagged = []
    for w, lines in enumerate(windows):
        for i, pattern in enumerate(lines):
            if tracker.add_to_window("t", "bgl", (start + w * 20 + i) * SEC, pattern, f"w{start + w}-{i}"):
                flagged.append(w)
    return flagged


def _burst_stream(rng: random.Random, n: int) -> list[list[int]]:
    """Windows that are pure bursts of one of three events (exact duplicates), a few holding one
    sparse line: in 5 % of the windows, yet 0.25 % of the lines."""
    out = []
    for _ in range(n):
        window = [rng.choice((BURST_A, BURST_B, BURST_C))] * 20
        if rng.random() < 0.05:
            window[rng.randrange(20)] = SPARSE
        out.append(window)
    return out


def test_fixed_windows_are_judged_by_line_rarity_not_by_collapsed_counts() -> None:
    rng = random.Random(3)
    tracker = SessionTracker(TrackerSettings(window_events=20, train_sessions=300))
    assert _windows(tracker, _burst_stream(rng, 300), 0) == []  # training
    # A burst changing mid-window is normal (its lines are common), though no training window
    # had that count vector: duplicates left the count structure no residual variance at all.
    mixed = [BURST_A] * 10 + [BURST_B] * 10
    with_sparse = [BURST_C] * 19 + [SPARSE]  # a sparse line: rare among lines, not among windows
    with_new = [BURST_A] * 19 + [NEVER]
    assert _windows(tracker, [mixed, [BURST_B] * 20, with_sparse, with_new], 10_000) == [2, 3]

    # The same stream with the tracker's rules before (counts judged, rarity by windows).
    old = TrackerSettings(window_events=20, train_sessions=300, structure_share=0, line_rarity=False)
    tracker = SessionTracker(old)
    _windows(tracker, _burst_stream(random.Random(3), 300), 0)
    assert _windows(tracker, [mixed, [BURST_B] * 20], 10_000) == [0], "the collapsed structure flagged it"


def _write(tracker: SessionTracker, key: str, ts: int, events: list[int]) -> None:
    for i, pattern in enumerate(events):
        tracker.add("t", "hdfs", key, ts + i, pattern, f"{key}-{ts}-{i}")


READ = 15
WRITE = [ALLOC] + [RECV] * 3 + [STORED] * 3
TEARDOWN = [DELETE] * 3


def _train_blocks(tracker: SessionTracker, n: int) -> int:
    """A block written every 10 s (two or three replicas, a few reads), closed idle while it waits
    for deletion, and for most blocks the teardown two minutes later under the same key; returns
    the clock after them."""
    rng = random.Random(5)
    pending: list[tuple[int, str, list[int]]] = []
    ts = 0
    for b in range(n):
        ts = b * 10 * SEC
        while pending and pending[0][0] <= ts:
            at, key, events = pending.pop(0)
            _write(tracker, key, at, events)
        tracker.tick(ts)
        replicas = rng.choice((3, 3, 3, 2))
        _write(tracker, f"blk_{b}", ts, [ALLOC] + [RECV] * replicas + [STORED] * replicas + [READ] * rng.randrange(3))
        if rng.random() < 0.7:
            pending.append((ts + 120 * SEC, f"blk_{b}", [DELETE] * replicas))
    for at, key, events in pending:
        _write(tracker, key, at, events)
    tracker.tick(ts + 1000 * SEC)
    return ts + 2000 * SEC


def test_sessions_closed_before_their_teardown_are_unfinished_and_continued() -> None:
    tracker = SessionTracker(TrackerSettings(train_sessions=300, idle_close_s=60))
    ts = _train_blocks(tracker, 250)
    # Two new blocks written: one whole write phase, one with a replica received but not stored.
    _write(tracker, "new_ok", ts, WRITE)
    _write(tracker, "new_broken", ts, [ALLOC] + [RECV] * 3 + [STORED] * 2)
    found = tracker.tick(ts + 100 * SEC)
    assert [a.explanation.split()[1] for a in found] == ["new_broken"], "in flight is not broken"
    # Their teardown, later: each block is judged again, whole; the healthy one is still normal.
    ts += 200 * SEC
    _write(tracker, "new_ok", ts, TEARDOWN)
    _write(tracker, "new_broken", ts + 10, TEARDOWN)
    found = tracker.tick(ts + 100 * SEC)
    assert [a.explanation.split()[1:3] for a in found] == [["new_broken", "(9"]]
    # A failed deletion of a healthy block is caught in its continuation.
    ts += 200 * SEC
    _write(tracker, "late", ts, WRITE)
    assert tracker.tick(ts + 100 * SEC) == []
    _write(tracker, "late", ts + 200 * SEC, [DELETE, DELETE, FAIL])
    found = tracker.tick(ts + 400 * SEC)
    assert [(a.explanation.split()[1], a.pattern_ids) for a in found] == [("late", (FAIL,))]


def test_a_key_is_continued_only_within_continue_s() -> None:
    tracker = SessionTracker(TrackerSettings(idle_close_s=60, continue_s=3600))
    _write(tracker, "k", 0, [1, 2])
    tracker.tick(100 * SEC)
    _write(tracker, "k", 200 * SEC, [3])
    assert tracker._open[("t", "hdfs", "k")].patterns == ["0000000000000001", "0000000000000002", "0000000000000003"]
    tracker.tick(300 * SEC)
    tracker.tick(5000 * SEC)  # an hour after it closed: forgotten
    _write(tracker, "k", 5000 * SEC, [4])
    assert tracker._open[("t", "hdfs", "k")].patterns == ["0000000000000004"]
    # A checkpoint written before continuations existed still loads and runs.
    old = pickle.loads(pickle.dumps(tracker))
    del old.__dict__["_closed"]
    old = pickle.loads(pickle.dumps(old))
    old.tick(5_100 * SEC)
    assert old._closed


def test_reported_score_puts_the_model_limit_at_the_server_threshold() -> None:
    assert reported_score(1.0) == 0.5 and reported_score(3.0) == 0.75  # the model's own scale
    assert reported_score(1.0, 0.7) == 0.7
    assert reported_score(0.0, 0.7) == 0.0 and reported_score(float("inf"), 0.7) == 1.0
    scores = [reported_score(e / 10, 0.7) for e in range(100)]
    assert scores == sorted(scores)


def test_the_server_reports_a_session_with_an_event_no_training_session_had(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    live = block_detection(meta, train_sessions=300)
    assert live.tracker.settings.limit_score == SESSION_LIMIT_SCORE
    t0 = 1_790_000_000 * SEC
    normal = ["Receiving block blk src: /10.0.0.1:50010", "Received block blk of size 67108864", "terminating"]
    for n in range(320):
        live.on_stored([block_event(n * 10 + j, m, f"blk_{n}", t0 + n * SEC + j) for j, m in enumerate(normal)])
    assert live.tick(t0 + 1000 * SEC) == []
    # Never seen in 300 training sessions: the model's excess is about 1.4 (score 0.58 on its own
    # scale), under a 0.7 threshold unless the model's limit is put there.
    odd = [*normal, "Unexpected error trying to delete block blk"]
    live.on_stored([block_event(9000 + j, m, "blk_odd", t0 + 2000 * SEC + j) for j, m in enumerate(odd)])
    stored = live.tick(t0 + 3000 * SEC)
    assert [s.anomaly.kind for s in stored] == ["session"]
    assert 0.7 <= stored[0].anomaly.score < 0.8
    meta.close()


def _mostly_failed_blocks(settings: TrackerSettings, faults: tuple[int, ...]) -> tuple[SessionTracker, int]:
    """A service whose first 600 blocks are mostly failures, each one of ``faults`` (the server
    learns from what it sees first); returns the tracker, fitted, and the clock after them."""
    tracker = SessionTracker(settings)
    rng = random.Random(8)
    ts = 0
    for b in range(600):
        ts = b * 10 * SEC
        extra = [faults[b % 3]] if b % 5 < 3 else []
        _write(tracker, f"blk_{b}", ts, [*WRITE, *[READ] * rng.randrange(3), *TEARDOWN, *extra])
        tracker.tick(ts)
    ts += 1000 * SEC
    assert tracker.tick(ts) == []  # closes the last training blocks; the model is fitted
    return tracker, ts + 1000 * SEC


def test_exclusive_outcomes_are_flagged_with_their_pattern_as_evidence() -> None:
    """Each way to fail is too common to be rare, yet no block combines two of them, while reads
    combine with anything."""
    delete_error, redundant_store, empty_packet = 81, 82, 83
    faults = (delete_error, redundant_store, empty_packet)
    for exclusive in (True, False):
        settings = TrackerSettings(train_sessions=600, idle_close_s=60, exclusive_events=exclusive)
        tracker, ts = _mostly_failed_blocks(settings, faults)
        _write(tracker, "healthy", ts, [*WRITE, READ, *TEARDOWN])
        _write(tracker, "failed", ts, [*WRITE, *TEARDOWN, redundant_store])
        found = tracker.tick(ts + 100 * SEC)
        if not exclusive:
            assert found == []
            continue
        assert [(a.explanation.split()[1], a.pattern_ids) for a in found] == [("failed", (redundant_store,))]
        assert "exclusive outcomes" in found[0].explanation
        # Called a false positive: the service's model refits and that way is no outcome any more.
        assert tracker.feedback(found[0], real=False)
        ts += 1000 * SEC
        _write(tracker, "again", ts, [*WRITE, *TEARDOWN, redundant_store])
        _write(tracker, "other", ts, [*WRITE, *TEARDOWN, delete_error])
        found = tracker.tick(ts + 100 * SEC)
        assert [a.explanation.split()[1] for a in found] == ["other"]
