"""The detectors in a running server: fed by the store writer, ticked by a thread, results stored
and published.

``LiveDetection.on_stored`` is a ``StoreWriter.after_store`` hook, so it runs on the ingest path
(the writer's thread, before the batch is acknowledged). It only counts: one lock, one
``OnlineDetector.observe`` per event, and the (tenant, service, session, pattern, event) of
events carrying a session key appended to a bounded queue. Anomalies it reveals are rare; they
are stored and published right there, so they are visible when the ingest request returns.
The session tracker (which may close sessions and fit models) is fed from that queue by the
ticker thread, off the ingest path; the same thread calls ``tick(now)`` every ``tick_s``.

Events without a pattern id (no template miner in the pipeline yet) are keyed by a message
fingerprint instead: the message with every token holding a digit masked, hashed to 64 bits.
Explanations say which kind of key each pattern is, with an example message.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from logloupe.analyse.anomaly.online import OnlineDetector, OnlineSettings
from logloupe.analyse.anomaly.tracker import SessionTracker, TrackerSettings
from logloupe.metrics import ANOMALIES, ANOMALY_SKIPPED
from logloupe.model import Anomaly, LogEvent, format_pattern_id
from logloupe.store.anomalies import AnomalyRecords, StoredAnomaly

log = logging.getLogger(__name__)

Listener = Callable[[Anomaly], None]

# Tokens holding a digit are variables (ids, numbers, addresses, times) in a fingerprint.
_VARIABLE = re.compile(r"\S*\d\S*")
FINGERPRINT_CHARS = 512
EXAMPLE_CHARS = 300
MAX_EXAMPLES = 200_000
SESSION_QUEUE_MAX = 200_000


def fingerprint(message: str) -> int:
    """64 stable bits naming a message's shape; never 0 (0 means "no pattern")."""
    masked = _VARIABLE.sub("#", message[:FINGERPRINT_CHARS])
    value = int.from_bytes(hashlib.blake2b(masked.encode("utf-8", "replace"), digest_size=8).digest(), "big")
    return value or 1


class LiveDetection:
    def __init__(
        self,
        records: AnomalyRecords,
        *,
        threshold: float = 0.7,
        tick_s: float = 10.0,
        session_key: str = "trace_id",
        listeners: list[Listener] | None = None,
        online: OnlineSettings | None = None,
        tracker: TrackerSettings | None = None,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.records = records
        self.threshold = threshold
        self.tick_s = tick_s
        self.session_key = session_key
        self.listeners: list[Listener] = listeners if listeners is not None else []
        online = online or OnlineSettings()
        tracker = tracker or TrackerSettings()
        self.online = OnlineDetector(replace(online, threshold=threshold))
        self.tracker = SessionTracker(replace(tracker, threshold=threshold))
        self.clock_us = clock_us
        self._lock = threading.Lock()  # the online detector: writer thread, ticker, feedback
        self._tracker_lock = threading.Lock()
        self._sessions: deque[tuple[str, str, str, int, int, str]] = deque()
        self._session_mutes: set[tuple[str, str, str, int]] = set()
        # (tenant, service, pattern id) -> (example message, "pattern" or "fingerprint")
        self._examples: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.observed = 0

    # -- the after_store hook -----------------------------------------------------------------
    def on_stored(self, events: Sequence[LogEvent]) -> None:
        found: list[Anomaly] = []
        key = self.session_key
        sessions = self._sessions
        examples = self._examples
        skipped = 0
        with self._lock:
            observe = self.online.observe
            for e in events:
                pid = e.pattern_id
                source = "pattern"
                if not pid:
                    pid = fingerprint(e.message)
                    source = "fingerprint"
                ex_key = (e.tenant, e.service, pid)
                if ex_key not in examples and len(examples) < MAX_EXAMPLES:
                    examples[ex_key] = (e.message[:EXAMPLE_CHARS], source)
                event_id = e.id
                hits = observe(e.tenant, e.service, e.ts_us, e.level, pid, event_id)
                if hits:
                    found += hits
                if key:
                    session = e.trace_id if key == "trace_id" else e.attributes.get(key, "")
                    if session:
                        if len(sessions) < SESSION_QUEUE_MAX:
                            sessions.append((e.tenant, e.service, session, e.ts_us, pid, event_id))
                        else:
                            skipped += 1
            self.observed += len(events)
        if skipped:
            ANOMALY_SKIPPED.labels("session_queue_full").inc(skipped)
        if found:
            self._publish(found)

    # -- ticking ------------------------------------------------------------------------------
    def tick(self, now_us: int | None = None) -> list[StoredAnomaly]:
        """Feeds queued session events to the tracker, closes every bucket and idle session that
        ended before ``now_us`` (default: the clock), stores and publishes what surfaced."""
        now = self.clock_us() if now_us is None else now_us
        found = self._drain_sessions()
        with self._lock:
            found += self.online.tick(now)
        with self._tracker_lock:
            found += self.tracker.tick(now)
        return self._publish(found)

    def _drain_sessions(self) -> list[Anomaly]:
        found: list[Anomaly] = []
        sessions = self._sessions
        with self._tracker_lock:
            add = self.tracker.add
            while sessions:
                tenant, service, key, ts_us, pid, event_id = sessions.popleft()
                found += add(tenant, service, key, ts_us, pid, event_id)
        return found

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="logloupe-anomaly-ticker", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _run(self) -> None:
        next_tick = time.monotonic() + self.tick_s
        while not self._stop.wait(min(self.tick_s, 0.5)):
            try:
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_s
                    self.tick()
                elif self._sessions:
                    self._publish(self._drain_sessions())
            except Exception:  # the ticker must outlive one bad tick
                log.exception("anomaly tick failed")

    # -- results ------------------------------------------------------------------------------
    def _publish(self, found: list[Anomaly]) -> list[StoredAnomaly]:
        keep = [a for a in found if a.score >= self.threshold and _mute_key(a) not in self._session_mutes]
        if not keep:
            return []
        stored = self.records.insert([(a, self.explain(a)) for a in keep])
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
        return {"summary": anomaly.explanation, "kind": anomaly.kind, "patterns": patterns}

    # -- feedback -----------------------------------------------------------------------------
    def feedback(self, anomaly: Anomaly, real: bool) -> None:
        """A false positive mutes that kind of anomaly for that service and pattern; a real one
        lifts the mute."""
        if anomaly.kind == "session":
            key = _mute_key(anomaly)
            if real:
                self._session_mutes.discard(key)
            else:
                self._session_mutes.add(key)
            return
        with self._lock:
            self.online.feedback(anomaly, real)


def _mute_key(anomaly: Anomaly) -> tuple[str, str, str, int]:
    # The same key as OnlineDetector.feedback: tenant, service, kind, first pattern.
    return (anomaly.tenant, anomaly.service, anomaly.kind, anomaly.pattern_ids[0] if anomaly.pattern_ids else 0)
