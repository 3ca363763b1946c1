"""LiveDetection on its own (real metadata store, no server): sessions keyed by an attribute reach
the session tracker, listeners are isolated from each other, fingerprints are stable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from logloupe.analyse.anomaly.live import LiveDetection, fingerprint
from logloupe.model import Anomaly, LogEvent
from logloupe.store.anomalies import AnomalyRecords, StoredAnomaly
from logloupe.store.meta import MetaStore
from tests.analyse.events import block_detection, block_event

T0 = 1_790_000_000 * 1_000_000


def _session(n: int, ts_us: int, messages: list[str]) -> list[LogEvent]:
    return [block_event(n * 100 + j, m, f"blk_{n}", ts_us + j * 1000) for j, m in enumerate(messages)]


NORMAL = [
    "Receiving block blk_1 src: /10.0.0.1:500 dest: /10.0.0.2:500",
    "Received block blk_1 of size 67108864 from /10.0.0.1",
    "PacketResponder 1 for block blk_1 terminating",
]


def test_sessions_keyed_by_an_attribute_are_scored(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    heard: list[Anomaly] = []

    def broken(_anomaly: Anomaly) -> None:
        raise RuntimeError("a listener that fails")

    live = block_detection(meta, train_sessions=40, listeners=[broken, heard.append])
    for n in range(60):
        live.on_stored(_session(n, T0 + n * 1_000_000, NORMAL))  # no thread started: detects inline
    assert live.tick(T0 + 200 * 1_000_000) == []  # 60 sessions closed: 40 trained the model
    odd = _session(
        99, T0 + 300 * 1_000_000, [NORMAL[0], "Exception in receiveBlock for block blk_99 java.io.IOException"]
    )
    live.on_stored(odd)
    stored = live.tick(T0 + 500 * 1_000_000)
    assert [s.anomaly.kind for s in stored] == ["session"]
    session = stored[0]
    assert session.anomaly.score >= 0.7
    assert "session blk_99" in session.details["summary"]
    assert session.anomaly.event_ids == tuple(e.id for e in odd)
    assert heard == [session.anomaly], "a failing listener does not keep the others from hearing"
    assert AnomalyRecords(meta.engine).find("t")[0].id == session.id
    meta.close()


def test_session_feedback_mutes_session_anomalies(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    live = block_detection(meta, train_sessions=40)
    for n in range(60):
        live.on_stored(_session(n, T0 + n * 1_000_000, NORMAL))
    live.tick(T0 + 200 * 1_000_000)
    bad = [NORMAL[0], "Exception in receiveBlock for block blk_99 java.io.IOException"]
    live.on_stored(_session(99, T0 + 300 * 1_000_000, bad))
    first = live.tick(T0 + 500 * 1_000_000)
    assert len(first) == 1
    live.feedback(first[0].anomaly, real=False)
    live.on_stored(_session(98, T0 + 600 * 1_000_000, bad))
    assert live.tick(T0 + 800 * 1_000_000) == []
    live.feedback(first[0].anomaly, real=True)
    live.on_stored(_session(97, T0 + 1000 * 1_000_000, bad))
    assert len(live.tick(T0 + 1200 * 1_000_000)) == 1
    meta.close()


def _burst_of_one_fault(meta: MetaStore) -> list[StoredAnomaly]:
    """A trained block model, then the same faulty block shape at 300, 400, 500 and 1,000 s (a
    600 s repeat window): what the server stored, newest first."""
    live = block_detection(meta, train_sessions=40, repeat_s=600)
    for n in range(60):
        live.on_stored(_session(n, T0 + n * 1_000_000, NORMAL))
    live.tick(T0 + 200 * 1_000_000)
    bad = [NORMAL[0], "Exception in receiveBlock for block blk_99 java.io.IOException"]
    for n, at_s in ((99, 300), (98, 400), (97, 500), (96, 1000)):
        live.on_stored(_session(n, T0 + at_s * 1_000_000, bad))
        live.tick(T0 + (at_s + 90) * 1_000_000)
    return AnomalyRecords(meta.engine).find("t")


def test_repeats_within_repeat_s_are_counted_not_stored(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    stored = _burst_of_one_fault(meta)
    assert sorted(a.details["summary"].split()[1] for a in stored) == ["blk_96", "blk_99"]
    meta.close()


def test_fingerprints_mask_variable_tokens_and_are_stable() -> None:
    a = fingerprint("Receiving block blk_123 src: /10.0.0.1:50010")
    assert a == fingerprint("Receiving block blk_-98765 src: /10.250.19.102:54106")
    assert a != fingerprint("Deleting block blk_123 file /data/1")
    assert a == 0x9D58333DDC36E9E8  # pinned: stored anomalies and replayed mutes name fingerprints
    assert fingerprint("") != 0


def test_ticks_follow_event_time_during_a_backfill(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    wall = [T0 + 2 * 86400 * 1_000_000]  # "now": the events below are two days old
    live = LiveDetection(AnomalyRecords(meta.engine), session_key="", clock_us=lambda: wall[0])
    assert live.event_clock() == wall[0]
    minute = 60_000_000
    for m in range(120):  # two hours of history arriving in a backfill, 20 events a minute
        batch = [block_event(m * 100 + i, f"tick {i} done", "", T0 + m * minute + i * 1_000_000) for i in range(20)]
        live.on_stored(batch)
        wall[0] += 1_000_000
        assert live.tick() == [], "a wall-clock tick here would call the service silent"
        assert live.event_clock() == T0 + m * minute + 19 * 1_000_000 + 1_000_000
    # Then nothing at all: the clock runs on with the wall, and the silence is reported.
    wall[0] += 10 * minute
    stored = live.tick()
    assert [s.anomaly.kind for s in stored] == ["silence"]
    meta.close()


def test_one_event_sessions_are_not_reported(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    live = block_detection(meta, train_sessions=40)
    for n in range(60):
        live.on_stored(_session(n, T0 + n * 1_000_000, NORMAL))
    live.tick(T0 + 200 * 1_000_000)
    # One normal event alone breaks the learned counts (score 1.0), as each service's share of a
    # cross-service trace did in the demo.
    live.on_stored(_session(99, T0 + 300 * 1_000_000, [NORMAL[0]]))
    assert live.tick(T0 + 500 * 1_000_000) == []
    live.on_stored(_session(98, T0 + 600 * 1_000_000, [NORMAL[0], "Exception in receiveBlock for block blk_98"]))
    assert len(live.tick(T0 + 800 * 1_000_000)) == 1
    meta.close()


def test_repeats_are_counted_on_the_stored_anomaly_and_survive_an_old_table(tmp_path: Path) -> None:
    meta = MetaStore(tmp_path / "meta.db")
    stored = _burst_of_one_fault(meta)
    assert {a.details["summary"].split()[1]: a.repeats for a in stored} == {"blk_99": 2, "blk_96": 0}
    assert [a.to_api()["repeats"] for a in stored] == [0, 2]
    meta.close()
    # A table from before the column: the migration adds it, the rows read 0.
    db = sqlite3.connect(tmp_path / "meta.db")
    db.execute("ALTER TABLE anomalies DROP COLUMN repeats")
    db.execute("DELETE FROM schema_migrations WHERE name = '0630_anomaly_repeats'")
    db.commit()
    db.close()
    meta = MetaStore(tmp_path / "meta.db")
    assert [a.repeats for a in AnomalyRecords(meta.engine).find("t")] == [0, 0]
    meta.close()
