"""The detectors in a running server: fed by the store writer, ticked by a thread, results stored
and published.

``LiveDetection.on_stored`` is a ``StoreWriter.after_store`` hook, so it runs on the ingest path
(the writer's thread, before the batch is acknowledged). It only queues the batch (O(1)); a
detection thread runs ``OnlineDetector.observe`` over it, while the writer's next insert runs in
chDB without the GIL, and stores and publishes the anomalies found. The queue is bounded in
events: when detection falls behind by ``max_queued`` events the hook waits, so the writer
slows to detection speed instead of memory growing or events going unseen. Events carrying a
session key go on to the session tracker (which may close sessions and fit models) through a
bounded queue, on a thread of its own. Every ``tick_s`` both threads tick their detector, so that
silence is noticed when no events come at all and idle sessions close. ``flush()`` and
``tick(now_us)`` run the same steps in the caller's thread, with an explicit clock for tests.

Events without a pattern id (no template miner in the pipeline yet) are keyed by a message
fingerprint instead: the message with every token holding a digit masked, hashed to 64 bits.
Explanations say which kind of key each pattern is, with an example message.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import Any

from logloupe.analyse.anomaly.online import OnlineDetector, OnlineSettings
from logloupe.analyse.anomaly.tracker import SessionTracker, TrackerSettings
from logloupe.metrics import ANOMALIES, ANOMALIES_REPEATED, ANOMALY_SKIPPED
from logloupe.model import Anomaly, EventColumns, LogEvent, format_pattern_id
from logloupe.settings import Settings
from logloupe.store.anomalies import AnomalyRecords, StoredAnomaly

log = logging.getLogger(__name__)

Listener = Callable[[Anomaly], None]

# Tokens holding a digit are variables (ids, numbers, addresses, times) in a fingerprint.
_VARIABLE = re.compile(r"\S*\d\S*")
FINGERPRINT_CHARS = 512
EXAMPLE_CHARS = 300
MAX_EXAMPLES = 200_000
SESSION_QUEUE_MAX = 200_000
FINGERPRINT_CACHE = 50_000
SESSION_DRAIN_STEP = 5_000
# The server's default anomaly_threshold, and the score of a session or window at its model's own
# limit (TrackerSettings.limit_score).
DEFAULT_THRESHOLD: float = Settings.model_fields["anomaly_threshold"].default
SESSION_LIMIT_SCORE = DEFAULT_THRESHOLD
# Bumped whenever the pickled detector classes change shape: an older state file is set aside.
STATE_VERSION = 1


def fingerprint(message: str) -> int:
    """64 stable bits naming a message's shape; never 0 (0 means "no pattern")."""
    masked = _VARIABLE.sub("#", message[:FINGERPRINT_CHARS])
    value = int.from_bytes(hashlib.blake2b(masked.encode("utf-8", "replace"), digest_size=8).digest(), "big")
    return value or 1


def _fingerprinted(message: str, prints: dict[str, int]) -> int:
    """``fingerprint(message)``, remembered in ``prints`` (bounded): events without a pattern id."""
    pid = prints.get(message, 0)
    if not pid:
        pid = fingerprint(message)
        if len(prints) >= FINGERPRINT_CACHE:
            prints.clear()
        prints[message] = pid
    return pid


class LiveDetection:
    def __init__(
        self,
        records: AnomalyRecords,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        tick_s: float = 10.0,
        session_key: str = "trace_id",
        listeners: list[Listener] | None = None,
        online: OnlineSettings | None = None,
        tracker: TrackerSettings | None = None,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
        max_queued: int = 500_000,
        repeat_s: float = 600.0,
        state_path: Path | None = None,
        checkpoint_s: float = 300.0,
    ) -> None:
        self.records = records
        self.threshold = threshold
        self.tick_s = tick_s
        self.session_key = session_key
        self.listeners: list[Listener] = listeners if listeners is not None else []
        online = online or OnlineSettings()
        tracker = tracker or TrackerSettings()
        self.online = OnlineDetector(replace(online, threshold=threshold))
        # A session at its model's own limit scores the server's default threshold, so that the
        # threshold means the same for sessions as for the rate detectors (docs/anomaly.md).
        self.tracker = SessionTracker(replace(tracker, threshold=threshold, limit_score=SESSION_LIMIT_SCORE))
        self.clock_us = clock_us
        self._lock = threading.Lock()  # the online detector: worker, tick, feedback
        self._tracker_lock = threading.Lock()
        self._process_lock = threading.Lock()  # one consumer of the batch queue at a time, in order
        self._cond = threading.Condition()
        self._batches: deque[Sequence[LogEvent]] = deque()
        self._queued = 0
        self.max_queued = max_queued
        self._sessions: deque[tuple[str, str, str, int, int, str]] = deque()
        self._session_mutes: set[tuple[str, str, str, int]] = set()
        # (tenant, service, pattern id) -> (example message, "pattern" or "fingerprint")
        self._examples: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._fingerprints: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session_thread: threading.Thread | None = None
        self.observed = 0
        self.repeat_us = int(repeat_s * 1_000_000)
        self._publish_lock = threading.Lock()
        self._last_stored: dict[tuple[str, str, str, int], int] = {}
        # The id each key's last stored anomaly got, to count its repeats on it.
        self._last_ids: dict[tuple[str, str, str, int], str] = {}
        # Event time, as of the wall time it was seen: the clock ticks follow (see ``event_clock``).
        self._event_us = 0
        self._event_wall_us = 0
        # Learned state is saved here every checkpoint_s and on stop (see ``save``).
        self.state_path = state_path
        self.checkpoint_s = checkpoint_s
        # The variable values behind an anomaly (``drivers.store_drivers``), when a store is at hand.
        self.drivers: Callable[[Anomaly], list[dict[str, Any]]] | None = None

    # -- the after_store hook -----------------------------------------------------------------
    def on_stored(self, events: Sequence[LogEvent]) -> None:
        """Queues a stored batch for the detection thread: O(1) on the writer's thread. When
        ``max_queued`` events wait already, it waits for room (backpressure, nothing dropped);
        without a running thread it detects inline."""
        if not events:
            return
        with self._cond:
            while self._queued >= self.max_queued and self._thread is not None and not self._stop.is_set():
                self._cond.wait(0.1)
            self._batches.append(events)
            self._queued += len(events)
            self._cond.notify_all()
        if self._thread is None:
            self.flush()

    def flush(self) -> list[StoredAnomaly]:
        """Runs the detectors over every queued batch now; stores and publishes what they found."""
        stored: list[StoredAnomaly] = []
        with self._process_lock:
            while True:
                with self._cond:
                    if not self._batches:
                        break
                    batch = self._batches.popleft()
                found = self._observe(batch)
                with self._cond:
                    self._queued -= len(batch)
                    self._cond.notify_all()
                if found:
                    stored += self._publish(found)
        return stored

    @property
    def queued(self) -> int:
        return self._queued

    def _observe(self, events: Sequence[LogEvent]) -> list[Anomaly]:
        if isinstance(events, EventColumns):
            return self._observe_columns(events)
        key = self.session_key
        windows = self.tracker.settings.window_events > 0
        sessions = self._sessions
        examples = self._examples
        prints = self._fingerprints
        skipped = 0
        latest = 0
        with self._lock:
            rows: list[tuple[str, str, int, int, int, str]] = []
            pids: list[int] = []
            for e in events:
                if e.ts_us > latest:
                    latest = e.ts_us
                pid = e.pattern_id
                source = "pattern"
                if not pid:
                    pid = _fingerprinted(e.message, prints)
                    source = "fingerprint"
                ex_key = (e.tenant, e.service, pid)
                if ex_key not in examples and len(examples) < MAX_EXAMPLES:
                    examples[ex_key] = (e.message[:EXAMPLE_CHARS], source)
                rows.append((e.tenant, e.service, e.ts_us, e.level, pid, e.classification))
                pids.append(pid)
            # One call for the batch: event ids are formatted only for the events kept as evidence.
            found = self.online.observe_many(rows, lambda i: events[i].id)
            if key or windows:
                for e, pid in zip(events, pids, strict=True):
                    if key:
                        session = e.trace_id if key == "trace_id" else e.attributes.get(key, "")
                        if session:
                            if len(sessions) < SESSION_QUEUE_MAX:
                                sessions.append((e.tenant, e.service, session, e.ts_us, pid, e.id))
                            else:
                                skipped += 1
                    if windows:
                        # An empty key stands for "the service's window" in the session queue.
                        if len(sessions) < SESSION_QUEUE_MAX:
                            sessions.append((e.tenant, e.service, "", e.ts_us, pid, e.id))
                        else:
                            skipped += 1
            self.observed += len(events)
            wall = self.clock_us()
            self._event_us = max(self._event_us, min(latest, wall))
            self._event_wall_us = wall
        if skipped:
            ANOMALY_SKIPPED.labels("session_queue_full").inc(skipped)
        return found

    def _observe_columns(self, events: EventColumns) -> list[Anomaly]:
        """``_observe`` on column lists (the pipeline's batches from its decoder processes): the same
        effects, with no event built, and at C speed where every event has a pattern id (mined)."""
        key = self.session_key
        windows = self.tracker.settings.window_events > 0
        sessions = self._sessions
        examples = self._examples
        skipped = 0
        n = len(events)
        if not n:
            return []
        tenants, services, stamps, ids = events.tenant, events.service, events.ts_us, events.pattern_id
        with self._lock:
            if all(ids):
                pids = ids
                rows = list(zip(tenants, services, stamps, events.level, ids, events.classification, strict=True))
                # The first event of each (tenant, service, pattern), in batch order, names its example.
                keyed = list(zip(tenants, services, ids, strict=True))
                firsts = dict(zip(reversed(keyed), range(n - 1, -1, -1), strict=True))
                for ex_key, i in sorted(firsts.items(), key=itemgetter(1)):
                    if ex_key not in examples and len(examples) < MAX_EXAMPLES:
                        examples[ex_key] = (events.message[i][:EXAMPLE_CHARS], "pattern")
            else:  # events without a pattern id are fingerprinted: one at a time, as _observe does
                prints = self._fingerprints
                rows = []
                pids = []
                fields = zip(
                    tenants, services, stamps, events.level, ids, events.message, events.classification, strict=True
                )
                for tenant, service, ts_us, level, pid, message, classification in fields:
                    source = "pattern"
                    if not pid:
                        pid = _fingerprinted(message, prints)
                        source = "fingerprint"
                    ex_key = (tenant, service, pid)
                    if ex_key not in examples and len(examples) < MAX_EXAMPLES:
                        examples[ex_key] = (message[:EXAMPLE_CHARS], source)
                    rows.append((tenant, service, ts_us, level, pid, classification))
                    pids.append(pid)
            latest = max(0, max(stamps))
            # One call for the batch: event ids are formatted only for the events kept as evidence.
            found = self.online.observe_many(rows, events.event_id)
            if key or windows:
                keys: Sequence[str] = ()
                if key == "trace_id":
                    keys = events.trace_id
                elif key:
                    keys = [a.get(key, "") for a in events.attributes]
                # Events with a session (most have none: only those are walked), or all of them for windows.
                for i in range(n) if windows else compress(range(n), keys):
                    session = keys[i] if keys else ""
                    if session:
                        if len(sessions) < SESSION_QUEUE_MAX:
                            sessions.append((tenants[i], services[i], session, stamps[i], pids[i], events.event_id(i)))
                        else:
                            skipped += 1
                    if windows:
                        # An empty key stands for "the service's window" in the session queue.
                        if len(sessions) < SESSION_QUEUE_MAX:
                            sessions.append((tenants[i], services[i], "", stamps[i], pids[i], events.event_id(i)))
                        else:
                            skipped += 1
            self.observed += n
            wall = self.clock_us()
            self._event_us = max(self._event_us, min(latest, wall))
            self._event_wall_us = wall
        if skipped:
            ANOMALY_SKIPPED.labels("session_queue_full").inc(skipped)
        return found

    # -- ticking ------------------------------------------------------------------------------
    def event_clock(self) -> int:
        """The time the threads tick at: the latest event time seen (never ahead of the wall
        clock), advanced by the wall time since it was seen, and never past the wall clock.

        Live, that is about now. While old logs are loaded (a backfill, a replay, the demo's
        history) it stays with the events, so a wall-clock tick does not declare every service
        silent and then lump the rest of the backfill into one bucket; when events stop coming
        at all it runs on with the wall clock, so silence is still noticed."""
        wall = self.clock_us()
        if not self._event_wall_us:
            return wall
        return min(wall, self._event_us + max(0, wall - self._event_wall_us))

    def tick(self, now_us: int | None = None) -> list[StoredAnomaly]:
        """Detects over the queued batches, feeds queued session events to the tracker, closes
        every bucket and idle session that ended before ``now_us`` (default: the clock), stores
        and publishes what surfaced."""
        stored = self.flush()
        now = self.event_clock() if now_us is None else now_us
        found = self._drain_sessions()
        with self._lock:
            found += self.online.tick(now)
        with self._tracker_lock:
            found += self.tracker.tick(now)
        return stored + self._publish(found)

    def _drain_sessions(self, limit: int | None = None) -> list[Anomaly]:
        found: list[Anomaly] = []
        sessions = self._sessions
        left = len(sessions) if limit is None else limit
        with self._tracker_lock:
            add = self.tracker.add
            add_to_window = self.tracker.add_to_window
            while sessions and left > 0:
                left -= 1
                tenant, service, key, ts_us, pid, event_id = sessions.popleft()
                if key:
                    found += add(tenant, service, key, ts_us, pid, event_id)
                else:
                    found += add_to_window(tenant, service, ts_us, pid, event_id)
        return found

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="logloupe-anomaly-detection", daemon=True)
            self._thread.start()
            # Sessions on their own thread: a slow tracker (model fits, many open sessions) skips
            # session events (counted) instead of holding up detection and, through it, ingest.
            self._session_thread = threading.Thread(
                target=self._run_sessions, name="logloupe-anomaly-sessions", daemon=True
            )
            self._session_thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stops the threads after they have detected over what was queued."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in (self._thread, self._session_thread):
            if thread is not None:
                thread.join(timeout_s)
        self._thread = self._session_thread = None
        self.flush()
        if self.state_path is not None:
            self.save(self.state_path)

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        next_save = time.monotonic() + self.checkpoint_s
        while not self._stop.is_set():
            with self._cond:
                if not self._batches and not self._stop.is_set():
                    self._cond.wait(max(0.0, min(next_tick - time.monotonic(), 0.5)))
            try:
                self.flush()
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_s
                    with self._lock:
                        found = self.online.tick(self.event_clock())
                    self._publish(found)
                if self.state_path is not None and time.monotonic() >= next_save:
                    next_save = time.monotonic() + self.checkpoint_s
                    self.save(self.state_path)
            except Exception:  # the thread must outlive one bad batch or tick
                log.exception("anomaly detection failed")

    def _run_sessions(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        while not self._stop.wait(0.0 if len(self._sessions) > SESSION_DRAIN_STEP else min(self.tick_s, 0.2)):
            try:
                found = self._drain_sessions(limit=SESSION_DRAIN_STEP)  # so that stop() is prompt
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_s
                    with self._tracker_lock:
                        found += self.tracker.tick(self.event_clock())
                self._publish(found)
            except Exception:
                log.exception("session tracking failed")

    # -- results ------------------------------------------------------------------------------
    def _publish(self, found: list[Anomaly]) -> list[StoredAnomaly]:
        keep = []
        repeated: Counter[tuple[str, str, str, int]] = Counter()
        with self._publish_lock:
            for a in found:
                if a.score < self.threshold:
                    continue
                if a.kind == "session" and len(a.event_ids) < 2:
                    # One event is no session (a trace crossing services gives one per service):
                    # what it says is judged by the online detector (new pattern, rates).
                    ANOMALY_SKIPPED.labels("single_event_session").inc()
                    continue
                key = _mute_key(a)
                if key in self._session_mutes:
                    continue
                # The same thing again (kind, service, pattern) within repeat_s is counted on the
                # one stored, not stored again.
                last = self._last_stored.get(key)
                if last is not None and abs(a.ts_us - last) < self.repeat_us:
                    ANOMALIES_REPEATED.labels(a.tenant, a.kind).inc()
                    repeated[key] += 1
                    continue
                if len(self._last_stored) >= MAX_EXAMPLES:
                    self._last_stored.clear()
                    self._last_ids.clear()
                self._last_stored[key] = a.ts_us
                keep.append(a)
            stored = self.records.insert([(a, self.explain(a)) for a in keep]) if keep else []
            for s in stored:
                self._last_ids[_mute_key(s.anomaly)] = s.id
            self.records.add_repeats({self._last_ids[key]: n for key, n in repeated.items() if key in self._last_ids})
        for s in stored:
            ANOMALIES.labels(s.anomaly.tenant, s.anomaly.kind).inc()
            for listener in list(self.listeners):
                try:
                    listener(s.anomaly)
                except Exception:  # one listener's failure never hides the anomaly from the others
                    log.exception("anomaly listener failed")
        return stored

    def explain(self, anomaly: Anomaly) -> dict[str, Any]:
        """The explanation JSON: the detector's sentence and, per pattern, what it is."""
        patterns = []
        for pid in anomaly.pattern_ids:
            example, source = self._examples.get((anomaly.tenant, anomaly.service, pid), ("", "pattern"))
            patterns.append({"id": format_pattern_id(pid), "source": source, "example": example})
        explanation: dict[str, Any] = {"summary": anomaly.explanation, "kind": anomaly.kind, "patterns": patterns}
        if self.drivers is not None:
            try:
                explanation["drivers"] = self.drivers(anomaly)
            except Exception:  # the anomaly matters more than its drivers
                log.exception("finding the variable values behind an anomaly failed")
        return explanation

    # -- state across restarts ----------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Writes the learned state (baselines, session models, open sessions, mutes) atomically."""
        with self._process_lock, self._lock, self._tracker_lock, self._publish_lock:
            state = {
                "version": STATE_VERSION,
                "online": self.online,
                "tracker": self.tracker,
                "session_mutes": self._session_mutes,
                "examples": self._examples,
                "last_stored": self._last_stored,
                "last_ids": self._last_ids,
                "event_us": self._event_us,
            }
            data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def load(self, path: Path) -> bool:
        """Restores what ``save`` wrote, keeping this instance's settings. A missing file is a first
        start; an unreadable or older one is renamed ``*.unreadable`` and detection starts fresh."""
        if not path.exists():
            return False
        try:
            # The file is our own, in the data dir the server owns (like its SQLite and chDB files).
            state = pickle.loads(path.read_bytes())  # noqa: S301
            if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
                raise ValueError(f"state version {state.get('version') if isinstance(state, dict) else '?'}")
            online, tracker = state["online"], state["tracker"]
            if not isinstance(online, OnlineDetector) or not isinstance(tracker, SessionTracker):
                raise TypeError("not detector state")
        except Exception as exc:  # a damaged file must not keep the server from starting
            log.warning("anomaly state %s unreadable (%s); detectors start fresh", path, exc)
            path.replace(path.with_suffix(".unreadable"))
            return False
        with self._lock, self._tracker_lock, self._publish_lock:
            # Baselines are in buckets of bucket_s, windows of window_events: state learned with
            # other values is not reused.
            if online.settings.bucket_s == self.online.settings.bucket_s:
                online.settings = self.online.settings
                self.online = online
            if tracker.settings.window_events != self.tracker.settings.window_events:
                tracker._windows.clear()
            tracker.settings = self.tracker.settings
            self.tracker = tracker
            self._session_mutes = state["session_mutes"]
            self._examples = state["examples"]
            self._last_stored = state["last_stored"]
            self._last_ids = state.get("last_ids", {})  # absent from older state files
            self._event_us = state["event_us"]
        return True

    # -- feedback -----------------------------------------------------------------------------
    def feedback(self, anomaly: Anomaly, real: bool) -> None:
        """A false positive on a session or window retrains its service's model with it (see
        ``SessionTracker.feedback``), or mutes that kind of anomaly for that service and pattern
        when the tracker no longer knows the session; on a rate or pattern anomaly it mutes. A
        real verdict undoes either."""
        if anomaly.kind in ("session", "window"):
            key = _mute_key(anomaly)
            with self._tracker_lock:
                retrained = self.tracker.feedback(anomaly, real)
            if real:
                self._session_mutes.discard(key)
            elif not retrained:
                self._session_mutes.add(key)
            return
        with self._lock:
            self.online.feedback(anomaly, real)


def _mute_key(anomaly: Anomaly) -> tuple[str, str, str, int]:
    # The same key as OnlineDetector.feedback: tenant, service, kind, first pattern.
    return (anomaly.tenant, anomaly.service, anomaly.kind, anomaly.pattern_ids[0] if anomaly.pattern_ids else 0)
